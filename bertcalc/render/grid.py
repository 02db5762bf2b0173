"""The sweep grid (``memory --sweep``): rows of sequence length (× precision × attention), a column per batch,
each cell the peak in GiB, coloured against the budget, and the largest batch per row. As a rich table, and as
flat rows (exact bytes) for CSV and Markdown."""

from __future__ import annotations

from typing import Any

from .plain import SIMPLE_HEAD, Group, Table, Text

RenderableType = Any

STYLE = {"fits": "green", "tight": "dark_orange", "over": "bold red"}
MARK = {"fits": "", "tight": " ~", "over": " ✗"}  # the colour's meaning, readable without colour too


def _gib(n: int) -> str:
    return f"{n / (1 << 30):,.2f}"


def _secs(s: float) -> str:
    if s >= 1:
        return f"{s:,.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} µs"


def _keys(r: Any) -> list[str]:
    """The row label columns: the sequence length, and precision and attention when they vary."""
    keys = ["seq"]
    keys += [k for k in ("precision", "attention") if k in r.swept]
    return keys


def sweep_view(r: Any) -> RenderableType:
    fixed = [r.mode]
    if "precision" not in r.swept:
        fixed.append(r.rows[0].precision)
    if "attention" not in r.swept:
        fixed.append(r.rows[0].attention)
    if r.mode == "train":
        fixed.append(r.optimizer + ("  grad-checkpointing" if r.grad_checkpointing else ""))
    title = Text()
    title.append(r.label, style="bold cyan")
    title.append(f"  ·  {r.model_class}", style="cyan")
    title.append("  ·  " + "  ".join(fixed))
    what = Text(f"peak {r.on} memory, GiB", style="bold")
    if r.budget is not None:
        on = f" ({r.gpu})" if r.gpu else ""
        what.append(f", against {r.budget / (1 << 30):,.2f} GiB{on} less {r.context / (1 << 20):,.0f} MiB of CUDA "
                    "context", style="bold")
    if r.mfu is not None:
        rate = f"{r.peak_tflops:g} TFLOP/s" if r.peak_tflops is not None else "the card's peak for the precision"
        what.append(f"; time per {'step' if r.mode == 'train' else 'forward'} at {r.mfu:.0%} MFU of {rate}")
    t = Table(box=SIMPLE_HEAD, pad_edge=False, header_style="bold")
    keys = _keys(r)
    for k in keys:
        t.add_column("S" if k == "seq" else k, justify="right" if k == "seq" else "left", no_wrap=True)
    for b in r.batches:
        t.add_column(f"B={b:,}", justify="right", no_wrap=True)
    if r.budget is not None:
        t.add_column("max B", justify="right", no_wrap=True, style="bold")
    for row in r.rows:
        cells: list[Any] = [f"{getattr(row, k):,}" if k == "seq" else getattr(row, k) for k in keys]
        for c in row.cells:
            text = _gib(c.shown_bytes) + (MARK[c.level] if c.level else "")
            if c.step_seconds is not None:
                text += f"\n{_secs(c.step_seconds)}"
            cells.append(Text(text, style=STYLE.get(c.level or "", "")))
        if r.budget is not None:
            cells.append(f"{row.max_batch:,}")
        t.add_row(*cells)
    parts: list[RenderableType] = [title, what, t]
    if r.budget is not None:
        legend = Text()
        legend.append("green", style="green")
        legend.append(": ≥ 10 % to spare  ·  ")
        legend.append("amber ~", style="dark_orange")
        legend.append(": fits, < 10 % to spare  ·  ")
        legend.append("red ✗", style="bold red")
        legend.append(": does not fit  ·  max B: the largest batch that fits")
        parts.append(legend)
    if r.on == "reserved":
        parts.append(Text("reserved: torch.cuda.max_memory_reserved(), the caching allocator replayed over the step "
                          "(docs/memory.md)", style="dim"))
    return Group(*parts)


def sweep_rows(r: Any) -> tuple[list[str], list[list[Any]]]:
    """One row per grid row: the label columns, each batch's peak in bytes (what the grid shows), then, when
    timed, each batch's seconds per step, and with a budget the largest batch that fits."""
    headers = ["seq", "precision", "attention", *(f"B={b}" for b in r.batches)]
    timed = r.mfu is not None
    if timed:
        headers += [f"B={b} seconds" for b in r.batches]
    if r.budget is not None:
        headers += ["max_batch"]
    rows = []
    for row in r.rows:
        line: list[Any] = [row.seq, row.precision, row.attention, *(c.shown_bytes for c in row.cells)]
        if timed:
            line += [f"{c.step_seconds:.6g}" for c in row.cells]
        if r.budget is not None:
            line.append(row.max_batch)
        rows.append(line)
    return headers, rows
