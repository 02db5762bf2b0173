"""Rich tables for the terminal, and the same tables as plain text for files and golden tests."""

from __future__ import annotations

import io
import math
from typing import Any

from . import human, shape_text
from .plain import SIMPLE_HEAD, DoesNotFit, FirstThatFits, Group, Rows, Table, Text

RenderableType = Any  # a document of .plain's Text, Table, Group and FirstThatFits

NATURAL_WIDTH = 400  # "as wide as it needs": tables never expand, so they stop at their natural width


BATCH_CAP = 1 << 40  # bertcalc.fitting.LIMIT, the largest batch a fit looks for

def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


MAX_TABLE_ROWS = 10_000  # a rich table of 10^6 rows takes minutes and gigabytes; CSV and JSON do not


def table_rows(report: Any) -> int:
    """How many rows the table of ``report`` would have, counted without building it (or expanding layers)."""
    if report.kind == "shapes":
        if report.collapse:
            n = sum(len(tuple(c.templates())) for c in report.arch.components)
        else:
            n = report.arch.tensor_count()
        return n + len(report.activations or ())
    if report.kind == "inspect":
        return len(report.shown())
    return 0  # the other tables have a row per component or term, never per layer


def _check_size(report: Any, what: str = "the table") -> None:
    n = table_rows(report)
    if n > MAX_TABLE_ROWS:
        from ..errors import TableTooLargeError

        fix = "--collapse for one row per layer template" if report.kind == "shapes" else "--diff for the differences"
        raise TableTooLargeError(
            f"{what} would have {n:,} rows (limit {MAX_TABLE_ROWS:,}); use {fix}, or --format csv or json, "
            "which stream and have no limit", param="format")


def renderable(report: Any, explain: bool = False) -> Any:
    """The table as rich renderables (``rich.print(report)``, notebooks)."""
    from .plain import to_rich

    _check_size(report)
    return to_rich(document(report, explain))


def document(report: Any, explain: bool = False) -> RenderableType:
    """The table as a document of :mod:`.plain`'s objects, drawn plain or replayed into rich. The shapes
    listing streams when drawn plain, at any size; rich's layout needs every row, and refuses more than
    :data:`MAX_TABLE_ROWS` (:func:`renderable`, :func:`rich_text`)."""
    if report.kind == "count":
        return count_view(report, explain)
    if report.kind == "shapes":
        return shapes_view(report)
    if report.kind == "compare":
        return compare_view(report)
    if report.kind == "presets":
        return presets_view(report)
    if report.kind == "inspect":
        return inspect_view(report)
    if report.kind == "verify":
        return verify_view(report)
    if report.kind == "flops":
        return flops_view(report)
    if report.kind == "memory":
        return memory_view(report)
    if report.kind == "sweep":
        from .grid import sweep_view

        return sweep_view(report)
    raise TypeError(f"no table for {type(report).__name__}")


def to_text(report: Any, explain: bool = False, width: int | None = None) -> str:
    """Plain text, no colour: at ``width`` columns, or at the table's natural width. Drawn without rich where
    nothing has to wrap (:mod:`.plain`), else by rich: the same characters either way."""
    from .plain import DoesNotFit, draw

    doc = document(report, explain)
    try:
        return draw(doc, width or NATURAL_WIDTH)
    except DoesNotFit:
        _check_size(report)
        return rich_text(doc, width)


def text_chunks(report: Any, explain: bool = False, width: int | None = None) -> Any:
    """:func:`to_text`'s text in pieces, made while they are written: a shapes table of 10^5 layers streams
    in bounded memory. Where rich must draw it, the whole text as one piece."""
    from .plain import DoesNotFit, draw_chunks

    if report.kind != "shapes":  # a few dozen lines: drawn in one pass
        yield to_text(report, explain, width)
        return
    doc = document(report, explain)
    try:
        yield from draw_chunks(doc, width or NATURAL_WIDTH)
    except DoesNotFit:
        _check_size(report)
        yield rich_text(doc, width)


def rich_text(doc: RenderableType, width: int | None = None) -> str:
    """A document drawn by rich as plain text (no colour), each line without trailing spaces."""
    from rich.console import Console

    from .plain import to_rich

    buf = io.StringIO()
    console = Console(file=buf, width=width or NATURAL_WIDTH, color_system=None, force_terminal=False,
                      no_color=True, highlight=False, emoji=False, legacy_windows=False)
    console.print(to_rich(doc))
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def to_svg(report: Any, explain: bool = False, width: int | None = None) -> str:
    """The table in colour as an SVG image, through rich's recording console (what ``Console.save_svg``
    writes; the caller writes the file atomically)."""
    from rich.console import Console

    console = Console(file=io.StringIO(), record=True, width=width or 120, color_system="truecolor",
                      force_terminal=True, highlight=False, emoji=False, legacy_windows=False)
    console.print(renderable(report, explain))
    return console.export_svg(title="bertcalc")


def to_html(report: Any, explain: bool = False, width: int | None = None) -> str:
    """The table in colour as HTML (for notebooks)."""
    from rich.console import Console

    console = Console(file=io.StringIO(), record=True, width=width or 120, color_system="truecolor",
                      force_terminal=True, highlight=False, emoji=False, legacy_windows=False)
    console.print(renderable(report, explain))
    return console.export_html(inline_styles=True, code_format="<pre style=\"font-family:monospace\">{code}</pre>")


def print_report(report: Any, explain: bool = False) -> None:
    """To stdout: on a terminal, rich decides colour (NO_COLOR) and width (the terminal's); anywhere else
    (a pipe, a file) the plain text at its natural width, which needs no rich."""
    import sys

    if not _is_terminal(sys.stdout):
        for piece in text_chunks(report, explain):
            sys.stdout.write(piece)
        return
    _check_size(report)  # a terminal is no place for 10^5 rows: --collapse, or CSV/JSON to a file
    doc = document(report, explain)
    painted = _ansi_text(doc, sys.stdout)
    if painted is not None:
        sys.stdout.write(painted)
        return
    from rich.console import Console

    console = Console(highlight=False, emoji=False)
    if not console.is_terminal:  # rich's own reading of the environment (FORCE_COLOR, TTY_COMPATIBLE...)
        sys.stdout.write(to_text(report, explain))
        return
    from .plain import to_rich

    console.print(to_rich(doc))


def _ansi_text(doc: RenderableType, stream: Any) -> str | None:
    """The document for a real terminal, in colour, drawn without rich: a TTY whose environment forces nothing
    (rich's FORCE_COLOR, TTY_COMPATIBLE, Jupyter), at the terminal's width, when nothing has to wrap. None
    where rich must decide or draw."""
    import os

    env = os.environ
    if any(env.get(v) is not None for v in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS",
                                            "DATABRICKS_RUNTIME_VERSION")):
        return None
    try:
        if not stream.isatty():
            return None
        width = int(env["COLUMNS"]) if env.get("COLUMNS", "").isdigit() else os.get_terminal_size(stream.fileno())[0]
    except (AttributeError, ValueError, OSError):
        return None
    if width < 1:
        return None
    from .plain import Ansi, DoesNotFit, draw

    term = env.get("TERM", "").lower()
    ansi = None if term in ("dumb", "unknown") else Ansi(color=env.get("NO_COLOR", "") == "",
                                                          colors256="256" in term or bool(env.get("COLORTERM")))
    try:
        return draw(doc, width, ansi)
    except DoesNotFit:
        return None


def _is_terminal(stream: Any) -> bool:
    """Whether rich could take ``stream`` for a terminal: a TTY, or an environment that forces one. Where this
    says no, rich says no too (it is checked again), so that a pipe never imports rich."""
    import os

    if any(os.environ.get(v) for v in ("FORCE_COLOR", "TTY_INTERACTIVE", "TTY_COMPATIBLE", "JUPYTER_COLUMNS",
                                       "DATABRICKS_RUNTIME_VERSION")):
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


# -------------------------------------------------------------------------------------------------- header


def _config_line(config: dict[str, Any], notes: tuple[str, ...] = ()) -> Text:
    t = Text()
    for i, (k, v) in enumerate(config.items()):
        if i:
            t.append("  ")
        t.append(f"{k}=", style="dim")
        t.append(str(v).lower() if isinstance(v, bool) else f"{v}", style="bold")  # as in YAML and JSON
    for n in notes:
        t.append("\nnote: ", style="yellow")
        t.append(n)
    return t


def _title(label: str, model_class: str, extra: str = "") -> Text:
    t = Text()
    t.append(label, style="bold cyan")
    t.append(f"  ·  {model_class}", style="cyan")
    if extra:
        t.append(f"  ·  {extra}")
    return t


# --------------------------------------------------------------------------------------------------- count


def count_view(r: Any, explain: bool = False) -> RenderableType:
    pooler = "with pooler" if r.has_pooler else "no pooler"
    head = [_title(r.label, r.model_class, pooler)]
    if r.description:
        head.append(Text(r.description, style="dim"))
    shown = {k: v for k, v in r.config.items() if k not in r.unused_fields}
    head.append(_config_line(shown, r.notes))

    foot: list[RenderableType] = []
    if r.trainable_parameters is not None:
        foot.append(Text(r.adapter_summary, style="cyan"))
        foot.append(Text(f"trainable {r.trainable_parameters:,} ({human(r.trainable_parameters)}), frozen "
                         f"{r.frozen_parameters:,}, total {r.total_parameters:,}", style="bold"))
        foot.append(Text(r.peft_line(), style="dim"))
    if r.state_dict_parameters != r.total_parameters:
        foot.append(Text(f"state dict: {r.state_dict_parameters:,} parameters, counting tied tensors twice"))
    if r.tied:
        foot.append(Text("tied: " + ", ".join(f"{a} → {b}" for a, b in _dedupe(r.tied)), style="dim"))
    if explain:
        foot.append(Text("closed form: " + r.closed_form))
        foot.append(Text(_legend(shown), style="dim"))
    if explain:
        body = FirstThatFits(lambda: _count_table(r, formulas=True),
                             lambda: [_count_table(r, formulas=False), _formula_table(r)],
                             lambda: [_count_table(r, formulas=False, compact=True), _free(_formula_table(r))],
                             lambda: [_count_stacked(r), _formula_table(r)])
    else:
        body = FirstThatFits(lambda: _count_table(r, formulas=False),
                             lambda: _count_table(r, formulas=False, compact=True),
                             lambda: _count_stacked(r))
    return Group(*head, body, *foot)


def _free(table: Table) -> Table:
    """Mark a table whose width does not decide the layout (the formulas, which wrap as they must)."""
    table.free_width = True  # type: ignore[attr-defined]
    return table


def _count_stacked(r: Any) -> Table:
    """The narrowest count layout (about 40 columns for BERT-large): one column, each name on its own line
    and its shape and figures on the next, so that shapes never wrap into slivers and no number is cut."""
    t = Table(box=SIMPLE_HEAD, pad_edge=False, header_style="bold")
    t.add_column("component / shape, parameters", overflow="fold")
    for c in r.components:
        rep = _times(c)
        cell = Text(_cap(c.name), style="bold")
        cell.append(f" ({_pct(c.share).strip()})", style="dim")
        figures = f"{c.parameters:,} {rep} = {c.total_parameters:,}" if rep else f"{c.total_parameters:,}"
        if len(c.parts) == 1:
            cell.append("\n    " + " + ".join(shape_text(x.shape) for x in c.parts[0].tensors), style="dim")
        cell.append(f"\n    {figures}")
        t.add_row(cell)
        if len(c.parts) == 1:
            continue
        for p in c.parts:
            sub = Text("  " + p.label + (" (tied)" if any(x.tied_to for x in p.tensors) else ""))
            sub.append("\n      " + " + ".join(shape_text(x.shape) for x in p.tensors) + f"   {p.parameters:,}",
                       style="dim")
            t.add_row(sub)
    t.add_section()
    total = Text("Total ", style="bold")
    total.append(f"{r.total_parameters:,}", style="bold green")
    total.append(f" ({human(r.total_parameters)})", style="bold green")
    t.add_row(total)
    return t


def _count_table(r: Any, formulas: bool, compact: bool = False) -> Table:
    """The count table. ``compact`` (narrow terminals) folds "× L" and the share into the name, lets shapes
    wrap, and keeps the human figure for the total only, so that no number is ever cut."""
    share = not compact
    trains = r.trainable_parameters is not None and not compact
    table = Table(box=SIMPLE_HEAD, show_footer=False, pad_edge=False, header_style="bold")
    table.add_column("component", no_wrap=True)
    table.add_column("shape", overflow="fold")
    table.add_column("parameters", justify="right", no_wrap=True)
    if not compact:
        table.add_column("×", justify="right", no_wrap=True)
    table.add_column("total", justify="right", no_wrap=True)
    if not compact:
        table.add_column("≈", justify="right", no_wrap=True)
    if share:
        table.add_column("share", justify="right", no_wrap=True)
    if trains:
        table.add_column("trainable", justify="right", no_wrap=True)
    if formulas:
        table.add_column("formula", no_wrap=True)

    def row(*cells: Any, rep: str = "", approx: Any = "", formula: str | None = None, train: Any = "") -> list[Any]:
        out = list(cells[:3]) + ([] if compact else [rep]) + [cells[3]] + ([] if compact else [approx])
        return out + ([cells[4]] if share else []) + ([train] if trains else []) + ([formula] if formulas else [])

    for c in r.components:
        rep = _times(c)
        single = len(c.parts) == 1
        shape = " + ".join(shape_text(t.shape) for t in c.parts[0].tensors) if single else ""
        name = Text(_cap(c.name), style="bold")
        if compact:
            name.append(f" {rep}" if rep else "", style="bold")
            name.append(f" ({_pct(c.share).strip()})", style="dim")
        table.add_row(*row(name, shape, f"{c.parameters:,}", f"{c.total_parameters:,}", _pct(c.share), rep=rep,
                           approx=human(c.total_parameters), formula=_formula(c) if formulas else None,
                           train=f"{c.trainable_parameters:,}" if trains else ""))
        if single:  # the component row already shows its one module
            continue
        for p in c.parts:
            shp = " + ".join(shape_text(t.shape) for t in p.tensors)
            label = Text("  " + p.label)
            if any(t.tied_to for t in p.tensors):
                label.append(" (tied)", style="dim")
            table.add_row(*row(label, shp, f"{p.parameters:,}", "", "", formula=_formula(p) if formulas else None,
                               train=f"{p.trainable_parameters:,}" if trains else ""),
                          style=None if formulas else "dim")
    table.add_section()
    total = Text("Total", style="bold")
    if compact:
        total.append(f" ({human(r.total_parameters)})", style="bold green")
    table.add_row(*row(total, "", "", Text(f"{r.total_parameters:,}", style="bold green"), "100.0%",
                       approx=Text(human(r.total_parameters), style="bold green"),
                       formula=f"{r.total_formula} = {r.total_formula_values} = {r.total_parameters:,}",
                       train=Text(f"{r.trainable_parameters:,}", style="bold") if trains else ""))
    return table


def _times(c: Any) -> str:
    """'× 12' for L copies; 'shared × 12' for one copy run 12 times (ALBERT)."""
    if c.applied != c.repeat:
        return f"shared × {c.applied}" if c.repeat == 1 else f"× {c.repeat}, shared × {c.applied}"
    return f"× {c.repeat}" if c.repeat_symbol or c.repeat != 1 else ""


def _formula(row: Any) -> str:
    tied = [t for t in getattr(row, "tensors", ()) if t.tied_to]
    note = "; ".join(f"{t.name.rsplit('.', 1)[-1]} is {t.tied_to}" for t in tied)
    if tied and row.parameters == 0:
        return f"tied, nothing new: {note}"
    text = f"{row.formula} = {row.formula_values} = {row.parameters:,}"
    return f"{text} ({note})" if tied else text


def _formula_table(r: Any) -> Table:
    t = Table(box=SIMPLE_HEAD, pad_edge=False, header_style="bold", title_justify="left")
    t.add_column("row", no_wrap=True)
    t.add_column("formula = with numbers = parameters", overflow="fold")
    for c in r.components:
        t.add_row(Text(_cap(c.name), style="bold"), _formula(c))
        if len(c.parts) == 1:
            continue
        for p in c.parts:
            t.add_row("  " + p.label, _formula(p))
    t.add_section()
    t.add_row(Text("Total", style="bold"), f"{r.total_formula} = {r.total_formula_values} = {r.total_parameters:,}")
    return t


def _dedupe(pairs: Any) -> list[tuple[str, str]]:
    seen, out = set(), []
    for p in pairs:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def _legend(config: dict[str, Any]) -> str:
    from ..formula import SHORT

    return "where " + ", ".join(f"{SHORT[k]}={v}" for k, v in config.items() if k in SHORT)


def _cap(name: str) -> str:
    return name[:1].upper() + name[1:]


# -------------------------------------------------------------------------------------------------- shapes


TRAINS = "  trainable"  # after a tensor's name in shapes, with an adapter or a freeze


def shapes_widths(r: Any) -> list[int]:
    """The widest cell of each of the shapes table's columns (#, name, shape, parameters) over every expanded
    row, from the layer templates alone: a name is widest at the largest layer index, and a template's shape
    and figures are the same in every layer. (Checked against the expanded rows in tests/test_render_plain.py.)"""
    from ..listing import displayed_shape

    count = r.arch.tensor_count()
    widths = [len(str(count)), 0, 0, 0]
    for comp in r.arch.components:
        templates = tuple(comp.templates())
        expanded = not (comp.repeat == 1 and not any("{i}" in t.name for t in templates))
        if expanded and comp.repeat < 1:
            continue
        digits = len(str(comp.start + comp.repeat - 1)) if expanded else 0
        for t in templates:
            name = len(t.name) + (t.name.count("{i}") * (digits - 3) if expanded else 0)
            name += len(f"  (tied to {t.tied_to})") if t.tied_to else 0
            name += len(TRAINS) if r.arch.adapted is not None and t.trainable else 0
            cells = (name, len(shape_text(displayed_shape(t, r.layout))), len(f"{t.parameters:,}"))
            widths[1:] = [max(a, b) for a, b in zip(widths[1:], cells, strict=True)]
    return widths


def shapes_view(r: Any) -> RenderableType:
    from ..listing import displayed_shape

    layout = "[in, out] (TensorFlow/Keras)" if r.layout == "tf" else "[out, in] (PyTorch)"
    shown = {k: v for k, v in r.config.items() if k not in r.arch.unused_fields}
    head = [_title(r.label, r.model_class, f"Linear weights {layout}"), _config_line(shown)]
    adapted = r.arch.adapted is not None
    if adapted:
        head.append(Text(r.arch.adapted.summary(), style="cyan"))

    def styled_rows() -> Any:
        for n, (name, spec, rep) in enumerate(r.tensors(), 1):
            label = Text(name)
            if spec.tied_to:
                label.append(f"  (tied to {spec.tied_to})", style="dim")
            params = Text(f"{spec.parameters:,}", style="dim" if spec.tied_to else "")
            total = Text(f"{spec.parameters * rep:,}", style="dim" if spec.tied_to else "")
            if adapted and spec.trainable:
                label.append(TRAINS, style="bold green")
            yield (str(n), label, shape_text(displayed_shape(spec, r.layout)), params,
                   f"× {rep}" if "{i}" in name else "", total)

    def plain_rows() -> Any:  # the table's four columns, as plain strings: what a pipe gets, row by row
        shapes = {}
        for n, (name, spec, _rep) in enumerate(r.tensors(), 1):
            cells = shapes.get(id(spec))
            if cells is None:  # a layer template's shape and figures are the same in every layer
                cells = shapes[id(spec)] = ((f"  (tied to {spec.tied_to})" if spec.tied_to else "")
                                            + (TRAINS if adapted and spec.trainable else ""),
                                            shape_text(displayed_shape(spec, r.layout)), f"{spec.parameters:,}")
            yield str(n), name + cells[0], cells[1], cells[2]

    count = r.arch.tensor_count()
    foot = Text(f"{count:,} tensors", style="bold")
    total_text = Text(f"{r.state_dict_parameters:,}", style="bold green")

    def table() -> Table:
        t = Table(box=SIMPLE_HEAD, pad_edge=False, header_style="bold")
        t.add_column("#", justify="right", style="dim")
        t.add_column("state-dict name", no_wrap=True)
        t.add_column("shape", no_wrap=True)
        t.add_column("parameters", justify="right", no_wrap=True)
        if r.collapse:
            t.add_column("×", justify="right", no_wrap=True)
            t.add_column("total", justify="right", no_wrap=True)
            for row in styled_rows():
                t.add_row(*row)
        elif count:
            t.add_rows(Rows(plain_rows, lambda: (row[:4] for row in styled_rows()), shapes_widths(r), count))
        t.add_section()
        t.add_row(*(["", foot, "", "", "", total_text] if r.collapse else ["", foot, "", total_text]))
        return t

    def stacked() -> Table:  # narrow terminals: each name whole on its line, its figures below it
        t = Table(box=SIMPLE_HEAD, pad_edge=False, header_style="bold")
        t.add_column("#", justify="right", style="dim")
        t.add_column("state-dict name / shape, parameters", overflow="fold")
        if count > MAX_TABLE_ROWS:
            raise DoesNotFit("too many rows to hold in a table")  # rich's path says so: TableTooLargeError
        for n, label, shp, params, rep, total in styled_rows():
            cell = label.copy()
            cell.append(f"\n    {shp}   ")
            cell.append_text(params)
            if r.collapse and rep:
                cell.append(f" {rep} = ")
                cell.append_text(total)
            t.add_row(n, cell)
        t.add_section()
        t.add_row("", Text.assemble(foot, "   ", total_text))
        return t

    t = FirstThatFits(table, stacked)
    parts: list[RenderableType] = [*head, t]
    if adapted:
        t_ = r.arch.trainable_parameters
        parts.append(Text(f"trainable params: {t_:,d} || all params: {r.total_parameters:,d} || trainable%: "
                          f"{100 * t_ / r.total_parameters if r.total_parameters else 0:.4f}", style="bold"))
    if r.state_dict_parameters != r.total_parameters:
        parts.append(Text(f"parameters: {r.total_parameters:,}; the rows add up to the state dict's "
                          f"{r.state_dict_parameters:,}, which counts each tied tensor (dim) again"))
    if r.activations is not None:
        flat = f", choices C={r.choices} (B·C = {r.batch * r.choices:,} rows)" if r.choices is not None else ""
        parts.append(Text(f"Activations for batch B={r.batch}, sequence S={r.seq}{flat}", style="bold cyan"))
        a = Table(box=SIMPLE_HEAD, pad_edge=False, header_style="bold")
        a.add_column("activation", overflow="fold")
        a.add_column("shape")
        a.add_column("=", justify="left")
        a.add_column("elements", justify="right")
        a.add_column("×", justify="right")
        a.add_column("what it is", style="dim")
        for act in r.activations:
            rep = f"× {act.repeat}" if "{i}" in act.name else ""
            a.add_row(act.name, shape_text(act.symbols), shape_text(act.shape), f"{act.elements:,}", rep,
                      act.description + (" (int64)" if act.dtype == "int64" else ""))
        parts.append(a)
    return Group(*parts)


# ------------------------------------------------------------------------------------------------- compare


def compare_view(r: Any) -> RenderableType:
    title = Text("compare", style="bold cyan")
    title.append(f"  ·  differences against {r.labels[0]}", style="cyan")
    return Group(title, FirstThatFits(lambda: _compare_table(r, stacked=False),
                                      lambda: _compare_table(r, stacked=True),
                                      lambda: [_compare_rows(r), Text("(widen the terminal, or use --format markdown, "
                                                                      "for every component)", style="dim")]))


def _compare_rows(r: Any) -> Table:
    """The narrowest layout: one row per config, its sizes and total, and the total against the first."""
    t = Table(box=SIMPLE_HEAD, pad_edge=False, header_style="bold")
    t.add_column("config", overflow="fold")
    for col in ("L", "H", "A", "total", f"vs {r.labels[0]}"):
        t.add_column(col, justify="right", no_wrap=True)
    total_row = next(row for row in r.rows if row.kind == "total")
    for j, rep in enumerate(r.reports):
        d = rep.dims or {}
        t.add_row(rep.label, str(d.get("L", "")), str(d.get("H", "")), str(d.get("A", "")),
                  f"{rep.total_parameters:,}", _delta(total_row, j) if j else Text("baseline", style="dim"))
    return t


def _compare_table(r: Any, stacked: bool) -> Table:
    labels = r.labels
    t = Table(box=SIMPLE_HEAD, pad_edge=False, header_style="bold")
    t.add_column("", no_wrap=True)
    for j, (lab, rep) in enumerate(zip(labels, r.reports, strict=True)):
        header = Text(lab, overflow="fold")
        header.append(f"\n{rep.model_class}", style="dim")
        t.add_column(header, justify="right", overflow="fold")
        if j and not stacked:
            t.add_column(f"vs {labels[0]}", justify="right", style="dim", overflow="fold")
    for row in r.rows:
        if row.kind == "total":
            t.add_section()
        style = "bold" if row.kind == "total" else None
        cells: list[Any] = [Text(row.name, style=style), _num(row.values[0], row.kind)]
        for j in range(1, len(labels)):
            if stacked:
                cell = Text(_num(row.values[j], row.kind))
                delta = _delta(row, j)
                if delta not in ("=", "—"):
                    cell.append(f"\n{delta}", style="dim")
                cells.append(cell)
            else:
                cells += [_num(row.values[j], row.kind), _delta(row, j)]
        t.add_row(*cells, style=style)
    return t


def _num(v: Any, kind: str) -> str:
    if v is None:
        return "—"
    return f"{v:,}"


def _delta(row: Any, j: int) -> str:
    d, ratio = row.delta(j), row.ratio(j)
    if d is None:
        return "—"
    if d == 0:
        return "="
    sign = "+" if d > 0 else "−"
    mag = abs(d)
    r = f"{ratio:.2f}×" if ratio is not None else "n/a"
    if row.kind == "config":
        return f"{sign}{mag:,} ({r})"
    return f"{sign}{human(mag) if mag >= 1000 else mag} ({r})"


# ------------------------------------------------------------------------------------------------- presets


def presets_view(r: Any) -> RenderableType:
    def table(describe: bool, wide: bool) -> Table:
        t = Table(box=SIMPLE_HEAD, pad_edge=False, header_style="bold")
        t.add_column("preset", no_wrap=True)
        cols = ("L", "H", "A", "I", "V", "parameters", "≈") if wide else ("L", "H", "A", "parameters")
        if wide:
            t.add_column("family", no_wrap=True)
        for col in cols:
            t.add_column(col, justify="right", no_wrap=True)
        if describe:
            t.add_column("description", overflow="fold")
        for p in r.rows:
            d = p.config.dims
            values = {"L": d.L, "H": d.H, "A": d.A, "I": d.I, "V": d.V}
            cells: list[Any] = [Text(p.name, style="bold")] + ([p.config.family] if wide else [])
            cells += [str(values[c]) for c in cols if c in values]
            cells += [f"{p.total_parameters:,}"] + ([human(p.total_parameters)] if wide else [])
            if describe:
                cells.append(Text(p.description, style="dim"))
            t.add_row(*cells)
        return t

    title = Text("Shipped presets  ·  use with --preset NAME", style="bold cyan")
    return Group(title, FirstThatFits(lambda: table(True, True), lambda: table(False, True),
                                      lambda: table(False, False)))


# ------------------------------------------------------------------------------------------------- inspect

_STATUS = {
    "matched": ("ok", "green"),
    "mismatched": ("SHAPE", "bold red"),
    "missing": ("MISSING", "bold red"),
    "unexpected": ("UNEXPECTED", "bold yellow"),
    "tied": ("tied", "dim"),
    "buffer": ("buffer", "dim"),
    "unused": ("unused", "dim"),
}


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n / 2**10:,.1f} KiB" if n >= 2**10 else f"{n} B"


def inspect_view(r: Any) -> RenderableType:
    verdict = Text("full match", style="bold green") if r.ok else Text(
        _plural(len(r.missing) + len(r.unexpected) + len(r.mismatched), "difference"), style="bold red")
    title = _title(r.path, r.model_class, ", ".join(r.files))
    title.append("  ·  ")
    title.append_text(verdict)
    rows = []
    for row in r.shown():
        word, style = _STATUS[row.status]
        expected = "" if row.expected is None or row.expected == row.shape else shape_text(row.expected)
        name = Text(row.name)
        if row.note:
            name.append(f"  ({row.note})", style="dim")
        rows.append((Text(word, style=style), name, row.dtype, shape_text(row.shape) if row.shape is not None else "—",
                     expected, _mib(row.nbytes) if row.nbytes else ""))

    def table() -> Table:
        t = Table(box=SIMPLE_HEAD, pad_edge=False, header_style="bold")
        t.add_column("status", no_wrap=True)
        t.add_column("state-dict name", no_wrap=True)
        t.add_column("dtype", no_wrap=True)
        t.add_column("shape", no_wrap=True)
        t.add_column("expected", no_wrap=True)
        t.add_column("bytes", justify="right", no_wrap=True)
        for cells in rows:
            t.add_row(*cells)
        return t

    def stacked() -> Table:  # narrow terminals: each name whole on its line, its figures below it
        t = Table(box=SIMPLE_HEAD, pad_edge=False, header_style="bold")
        t.add_column("status", no_wrap=True)
        t.add_column("state-dict name / dtype, shape (expected), bytes", overflow="fold")
        for word, name, dtype, shp, expected, size in rows:
            cell = name.copy()
            cell.append(f"\n    {dtype or ''}  {shp}" + (f"  (expected {expected})" if expected else "")
                        + (f"  {size}" if size else ""))
            t.add_row(word, cell)
        return t

    t = FirstThatFits(table, stacked)
    body: RenderableType = t if r.shown() else Text("(no differences)", style="green")
    counts = Text()
    counts.append(f"{r.matched} matched", style="green")
    for label, n in (("missing", len(r.missing)), ("unexpected", len(r.unexpected)),
                     ("shape mismatch", len(r.mismatched))):
        counts.append("  ·  ")
        counts.append(f"{n} {label}", style="bold red" if n else "")
    buffers = sum(x.status == "buffer" for x in r.rows)
    tied = sum(x.status == "tied" for x in r.rows)
    if buffers:
        counts.append(f"  ·  {buffers} buffer")
    if tied:
        counts.append(f"  ·  {tied} tied, stored once")
    unused = len(r.unused)
    if unused:
        counts.append(f"  ·  {unused} unused (task head)")
    in_heads = sum(math.prod(x.shape or ()) for x in r.rows if x.status == "unused")
    stored = r.stored_parameters - in_heads
    same = "=" if stored == r.expected_parameters else "≠"
    heads = f" (+ {in_heads:,} in unused task-head tensors)" if in_heads else ""
    params = Text(f"parameters: stored {stored:,} {same} predicted {r.expected_parameters:,}{heads}  ·  "
                  f"{_mib(r.stored_bytes)} on disk")
    extra: list[RenderableType] = []
    if r.stored_dtypes or r.declared:
        line = "stored dtype: " + ("  ·  ".join(f"{k} {_mib(v)}" for k, v in r.stored_dtypes.items()) or "—")
        if "dtype" in r.declared:
            line += f"  ·  config dtype: {r.declared['dtype']}"
        q = r.declared.get("quantization_config")
        if q:
            method = q.get("quant_method") or q.get("quant_type") or "?"
            bits = ", 4-bit" if q.get("load_in_4bit") is True else ", 8-bit" if q.get("load_in_8bit") is True else \
                f", {q['bits']}-bit" if isinstance(q.get("bits"), int) else ""
            line += f"  ·  quantization_config: {method}{bits} (changes bytes, not shapes)"
        extra.append(Text(line))
    if r.download is not None:
        extra.append(Text(f"downloaded: {r.download['bytes']:,} bytes" + _download_detail(r.download)))
    notes = [Text("note: " + n, style="yellow") for n in r.notes]
    return Group(title, body, counts, params, *extra, *notes)


def _download_detail(d: dict[str, Any]) -> str:
    """``(config.json 571 B; model.safetensors header 24,152 B in 2 range requests)``, or where it was read."""
    if not d["requests"]:
        return f" (read from the {d.get('source', 'local path')})"
    parts: dict[str, list[int]] = {}
    for q in d["requests"]:
        parts.setdefault(q["file"], []).append(q["bytes"])
    shown = []
    for file, sizes in parts.items():
        if file.endswith(".safetensors"):
            shown.append(f"{file} header {sum(sizes):,} B in {_plural(len(sizes), 'range request')}")
        else:
            shown.append(f"{file} {sum(sizes):,} B")
    if "config.json" not in parts:
        shown.insert(0, "config.json from the HF cache")
    return " (" + "; ".join(shown) + ")"


# -------------------------------------------------------------------------------------------------- verify


def verify_view(r: Any) -> RenderableType:
    verdict = Text("exact match", style="bold green") if r.ok else Text(
        _plural(len(r.differences), "difference"), style="bold red")
    title = _title(r.label, r.model_class, " ".join(f"{k} {v}" for k, v in r.versions.items()))
    title.append("  ·  ")
    title.append_text(verdict)
    t = Table(box=SIMPLE_HEAD, pad_edge=False, header_style="bold")
    t.add_column("check")
    t.add_column("bertcalc", justify="right")
    t.add_column("transformers", justify="right")
    t.add_column("")
    kinds = {d.what for d in r.differences}
    names_ok = not kinds & {"name", "shape", "order"}
    t.add_row("state-dict names, order and shapes", f"{r.tensors:,} tensors", "", _tick(names_ok))
    t.add_row("num_parameters()", f"{r.total_bertcalc:,}", f"{r.total_transformers:,}", _tick("total" not in kinds))
    t.add_row("state-dict parameters", f"{r.state_dict_bertcalc:,}", f"{r.state_dict_transformers:,}",
              _tick("state dict" not in kinds))
    t.add_row("tied pairs", "", "", _tick("tied" not in kinds))
    parts: list[RenderableType] = [title, t]
    if r.differences:
        d = Table(box=SIMPLE_HEAD, pad_edge=False, header_style="bold", title="differences", title_justify="left")
        d.add_column("what")
        d.add_column("name")
        d.add_column("bertcalc")
        d.add_column("transformers")
        for x in r.differences:
            d.add_row(x.what, x.name, "—" if x.bertcalc is None else str(x.bertcalc),
                      "—" if x.transformers is None else str(x.transformers))
        parts.append(d)
    return Group(*parts)


def _tick(ok: bool) -> Text:
    return Text("✓ same", style="green") if ok else Text("✗ differs", style="bold red")


# --------------------------------------------------------------------------------------------------- flops


def flop_units(n: float) -> str:
    """3092414201856 -> '3.09 TFLOP'."""
    if abs(n) >= 1e18:
        return f"{n:.3g} FLOP".replace("e+", "e")
    for size, unit in ((1e15, "PFLOP"), (1e12, "TFLOP"), (1e9, "GFLOP"), (1e6, "MFLOP"), (1e3, "KFLOP")):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} FLOP"


def _duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def flops_view(r: Any) -> RenderableType:
    choices = f"C={r.choices}  " if r.choices is not None else ""
    title = _title(r.label, r.model_class, f"B={r.batch}  {choices}S={r.seq}  ({_plural(r.tokens, 'token')})")
    total = r.forward_flops or 1

    def table(formula: bool, each: bool) -> Table:
        t = Table(box=SIMPLE_HEAD, pad_edge=False, header_style="bold")
        t.add_column("matmul", overflow="fold")
        if formula:
            t.add_column("formula", overflow="fold")
        if each:
            t.add_column("FLOPs", justify="right", no_wrap=True)
            t.add_column("×", justify="right", no_wrap=True)
        t.add_column("total", justify="right", no_wrap=True)
        if formula:
            t.add_column("≈", justify="right", no_wrap=True)
        t.add_column("share", justify="right", no_wrap=True)

        def cells(name: Any, f: Any, flops: str, rep: str, tot: Any, approx: Any, share: str) -> list[Any]:
            return [name] + ([f] if formula else []) + ([flops, rep] if each else []) + [tot] + \
                ([approx] if formula else []) + [share]

        for row in r.rows:
            t.add_row(*cells(row.name, Text(row.formula, style="dim"), f"{row.flops:,}",
                             f"× {row.repeat}" if row.repeat != 1 else "", f"{row.total:,}", flop_units(row.total),
                             _pct(row.total / total)))
        t.add_section()
        t.add_row(*cells(Text("forward", style="bold"), "", "", "", Text(f"{r.forward_flops:,}", style="bold green"),
                         Text(flop_units(r.forward_flops), style="bold green"), "100.0%"))
        t.add_row(*cells(Text(f"training step ({r.training_rule})", style="bold"),
                         Text("backward = 2 × forward", style="dim"),
                         "", "", f"{r.training_flops:,}", flop_units(r.training_flops), ""))
        return t

    t = FirstThatFits(lambda: table(True, True), lambda: table(False, True), lambda: table(False, False))
    per = Text(f"per token: forward {flop_units(r.forward_flops / r.tokens)}, "
               f"training {flop_units(r.training_flops / r.tokens)}")
    a = Table(box=SIMPLE_HEAD, pad_edge=False, header_style="bold", title="training FLOPs per token",
              title_justify="left", title_style="bold cyan")
    a.add_column("rule")
    a.add_column("FLOPs per token", justify="right")
    a.add_column("vs exact", justify="right")
    ap = r.approximations()
    exact = ap["exact"]
    for k, v in ap.items():
        a.add_row(k, f"{v:,.0f}", "" if k == "exact" else f"{100 * (v / exact - 1):+.1f}%".replace("-", "−"))
    parts: list[RenderableType] = [title, t, per, a]
    if r.shared_layers:
        parts.append(Text("note: the encoder's parameters run several times each (shared layers), so rules in N "
                          "under-count", style="yellow"))
    secs = r.seconds()
    if secs is not None:
        peak = f"{r.peak_tflops:g} TFLOP/s peak" + (" from --peak-tflops" if r.peak_given and r.gpu else "")
        where = f"on {r.gpu} ({r.precision}, {peak})" if r.gpu else f"at {peak}"
        parts.append(Text(f"time {where} at {100 * r.mfu:.0f}% MFU: forward {_duration(secs['forward'])}, "
                          f"training step {_duration(secs['training_step'])}", style="bold"))
    return Group(*parts)


# -------------------------------------------------------------------------------------------------- memory


def _gib(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):,.2f} GiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):,.1f} MiB"
    return f"{n / (1 << 10):,.1f} KiB"


def memory_view(r: Any) -> RenderableType:
    o = r.options
    choices = f"C={o.choices}  " if o.choices is not None else ""
    run = f"{o.mode}  B={o.batch}  {choices}S={o.seq}  {o.precision}  {o.attention}"
    if o.mode == "train":
        run += f"  {o.optimizer}" + ("  grad-checkpointing" if o.grad_checkpointing else "")
    head = [_title(r.label, r.model_class, run)]
    t = Table(box=SIMPLE_HEAD, pad_edge=False, header_style="bold")
    t.add_column("term")
    t.add_column("bytes", justify="right", no_wrap=True)
    t.add_column("≈", justify="right", no_wrap=True)
    t.add_column("how", style="dim")
    for term in r.terms:
        if term.role == "after":
            continue  # listed after the total: not one of its summands
        if term.role == "total":
            t.add_section()
            t.add_row(Text(term.name, style="bold"), Text(f"{term.bytes:,}", style="bold green"),
                      Text(_gib(term.bytes), style="bold green"), f"the sum of the rows above; at: {r.where}")
            if r.reserved is not None:
                t.add_row(Text("peak reserved", style="bold"), Text(f"{r.reserved.reserved:,}", style="bold yellow"),
                          Text(_gib(r.reserved.reserved), style="bold yellow"),
                          f"max_memory_reserved: the caching allocator replayed over this step ({r.reserved.layers}); "
                          f"the allocator's own allocated peak is {r.reserved.allocated:,}")
            for after in (x for x in r.terms if x.role == "after"):
                t.add_section()
                t.add_row(Text(f"{after.name} (all)", style="dim"), Text(f"{after.bytes:,}", style="dim"),
                          Text(_gib(after.bytes), style="dim"),
                          "all held after the backward; at the peak, those produced so far are in the transient")
            continue
        t.add_row(term.name, f"{term.bytes:,}", _gib(term.bytes), term.formula)
        if term.name in ("saved activations", "activations at peak"):
            for d in r.saved_detail:
                name, how = "  " + d.name, d.formula
                if d.role in ("candidate", "peak moment"):  # alternatives: the peak is the largest
                    name = f"  at {d.name}" + (" ◀ peak" if d.role == "peak moment" else "")
                elif d.role == "unit":
                    how = f"{how} (for reference; counted in all layers)"
                t.add_row(Text(name, style="dim"), Text(f"{d.bytes:,}", style="dim"),
                          Text(_gib(d.bytes), style="dim"), how)
    parts: list[RenderableType] = [*head, t]
    w = "  ·  ".join(f"{k} {_gib(v)}" for k, v in r.weights_only)
    parts.append(Text(f"weights alone: {w}", style="dim"))
    if r.budget is not None:
        on = f" ({r.gpu})" if r.gpu else ""
        verdict = Text()
        ctx = f", {_gib(r.context)} of it the CUDA context" if r.context else ""
        basis = " (reserved memory)" if r.reserved is not None else ""
        verdict.append(f"budget {_gib(r.budget)}{on}{ctx}: ", style="bold")
        verdict.append(f"batch {o.batch} {'fits' if r.fits else 'does not fit'}{basis}",
                       style="green" if r.fits else "red")
        if r.max_batch:
            at_least = "at least " if r.max_batch >= BATCH_CAP else ""  # the search stops at its cap
            verdict.append(f"; the largest batch that fits at S={o.seq} is {at_least}{r.max_batch:,}")
        else:
            fixed = r.model_states_bytes
            why = (f"the weights and optimizer states alone need {_gib(fixed)}" if fixed > r.budget else
                   f"batch 1 needs {_gib(r.min_batch_peak)}") if r.min_batch_peak else ""
            verdict.append(f"; not even batch 1 fits at S={o.seq}" + (f": {why}" if why else ""))
        parts.append(verdict)
    for z in r.zero:
        parts.append(Text(f"{z.name}: {_gib(z.bytes)}  = {z.formula}"))
    if r.distributed is not None:
        parts.append(distributed_view(r.distributed))
    parts.append(Text("not counted:\n" + "\n".join(f"  - {n}" for n in r.not_counted), style="dim"))
    return Group(*parts)


def distributed_view(d: Any) -> RenderableType:
    """Per-rank memory under DDP, ZeRO or FSDP2: GPU rows adding up to the GPU total, then CPU rows; DeepSpeed's
    estimate and the paper's figures beside; the communication; the settings that fit a budget."""
    s = d.setup
    title = Text(f"per rank: {s.label}, {s.world} ranks ({s.gpus} GPU{'s' if s.gpus > 1 else ''} × {s.nodes} "
                 f"node{'s' if s.nodes > 1 else ''}), rank {s.rank}, local batch {d.local_batch} "
                 f"(global {d.global_batch:,})", style="bold")
    t = Table(box=SIMPLE_HEAD, pad_edge=False, header_style="bold")
    t.add_column("term")
    t.add_column("where")
    t.add_column("bytes", justify="right", no_wrap=True)
    t.add_column("≈", justify="right", no_wrap=True)
    t.add_column("rule", style="dim")
    for dev, total in (("gpu", d.gpu_bytes), ("cpu", d.cpu_bytes)):
        rows = [x for x in d.terms if x.device == dev]
        if not rows:
            continue
        for x in rows:
            t.add_row(x.name, dev.upper(), f"{x.bytes:,}", _gib(x.bytes), x.rule)
        t.add_section()
        at = f"at: {d.peak_at}" if dev == "gpu" else "resident through the step"
        t.add_row(Text(f"{dev.upper()} per rank", style="bold"), dev.upper(), Text(f"{total:,}", style="bold green"),
                  Text(_gib(total), style="bold green"), f"the sum of the {dev.upper()} rows above; {at}")
        t.add_section()
    parts: list[RenderableType] = [title, t]
    if d.deepspeed is not None:
        gpu, cpu, why = d.deepspeed
        parts.append(Text(f"DeepSpeed's estimator: GPU {_gib(gpu)} ({gpu:,}), CPU {_gib(cpu)} ({cpu:,}) — {why}"))
    elif s.strategy == "zero":
        from ..distributed import NO_ESTIMATE

        parts.append(Text(NO_ESTIMATE, style="dim"))
    for z in d.paper:
        parts.append(Text(f"paper (Rajbhandari et al. 2020), {z.name}: {_gib(z.bytes)}  = {z.formula}"))
    comm = "  ·  ".join(f"{c.name} {_gib(c.bytes)}" for c in d.comm)
    line = f"communication per rank per step: {_gib(d.comm_bytes)} ({comm})"
    secs = d.comm_seconds()
    if secs is not None:
        line += f"; {_duration(secs)} at {s.link_gbps:g} Gbit/s, nothing overlapped"
    parts.append(Text(line))
    if d.fit:
        f = Table(box=SIMPLE_HEAD, pad_edge=False, header_style="bold",
                  title=f"on {s.world} ranks, {_gib(d.budget)} each for tensors (the budget less the CUDA context)",
                  title_justify="left")
        f.add_column("setting")
        f.add_column(f"GPU at batch {d.local_batch}", justify="right")
        f.add_column("CPU", justify="right")
        f.add_column("fits", justify="center")
        f.add_column("largest batch per GPU", justify="right")
        for row in d.fit:
            f.add_row(row.setting, _gib(row.gpu_bytes), _gib(row.cpu_bytes) if row.cpu_bytes else "—",
                      "yes" if row.fits else "no", f"{row.max_local_batch:,}")
        parts.append(f)
        parts.append(Text(f"the first setting that fits global batch {d.global_batch:,}: "
                          f"{d.smallest_fit or 'none'}", style="bold"))
    return Group(*parts)
