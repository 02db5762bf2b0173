"""Reports as flat rows, for CSV and Markdown. Numbers stay exact integers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from . import shape_text

Row = list[Any]


def rows_of(report: Any, explain: bool = False) -> tuple[list[str], list[Row]]:
    if report.kind == "count":
        return _count(report, explain)
    if report.kind == "shapes":
        return _shapes(report)
    if report.kind == "compare":
        return _compare(report)
    if report.kind == "presets":
        return _presets(report)
    if report.kind == "inspect":
        return _inspect(report)
    if report.kind == "verify":
        return _verify(report)
    if report.kind == "flops":
        return _flops(report)
    if report.kind == "memory":
        return _memory(report)
    if report.kind == "sweep":
        from .grid import sweep_rows

        return sweep_rows(report)
    raise TypeError(f"no flat rendering for {type(report).__name__}")


def _count(r: Any, explain: bool) -> tuple[list[str], list[Row]]:
    headers = ["component", "part", "tensors", "shape", "parameters", "repeat", "total_parameters", "share"]
    trains = r.trainable_parameters is not None
    if trains:
        headers.append("trainable_parameters")
    if explain:
        headers.append("formula")
    rows: list[Row] = []
    for c in r.components:
        row: Row = [c.name, "", "", "", c.parameters, c.repeat, c.total_parameters, f"{c.share:.6f}"]
        if trains:
            row.append(c.trainable_parameters)
        if explain:
            row.append(f"{c.formula} = {c.formula_values}")
        rows.append(row)
        for p in c.parts:
            row = [
                c.name,
                p.label,
                " ".join(t.name for t in p.tensors),
                " + ".join(shape_text(t.shape) for t in p.tensors),
                p.parameters,
                c.repeat,
                p.parameters * c.repeat,
                "",
            ]
            if trains:
                row.append(p.trainable_parameters * c.repeat)
            if explain:
                row.append(f"{p.formula} = {p.formula_values}")
            rows.append(row)
    total: Row = ["total", "", "", "", "", "", r.total_parameters, "1.000000"]
    if trains:
        total.append(r.trainable_parameters)
    if explain:
        total.append(f"{r.total_formula} = {r.total_formula_values}")
    rows.append(total)
    return headers, rows


SHAPES_HEADERS = ["kind", "name", "shape", "parameters_or_elements", "repeat", "description"]


def tensor_row(r: Any, name: str, t: Any, rep: int) -> Row:
    from ..listing import displayed_shape

    what = f"tied to {t.tied_to}" if t.tied_to else ""
    if r.arch.adapted is not None:
        what = "; ".join(filter(None, ("trainable" if t.trainable else "frozen", what)))
    return ["tensor", name, shape_text(displayed_shape(t, r.layout)), t.parameters, rep, what]


def shapes_rows(r: Any, tensors: bool = True) -> Iterator[Row]:
    """The shapes report's rows, made one at a time (a model of 10^5 layers streams); ``tensors=False``: the
    activations' only."""
    if tensors:
        for name, t, rep in r.tensors():
            yield tensor_row(r, name, t, rep)
    for a in r.activations or ():
        yield ["activation", a.name, shape_text(a.shape), a.elements, a.repeat, a.description]


def _shapes(r: Any) -> tuple[list[str], list[Row]]:
    return SHAPES_HEADERS, list(shapes_rows(r))


def _compare(r: Any) -> tuple[list[str], list[Row]]:
    labels = r.labels
    headers = ["row", "kind", labels[0]]
    for lab in labels[1:]:
        headers += [lab, f"delta ({lab} - {labels[0]})", f"ratio ({lab} / {labels[0]})"]
    rows: list[Row] = []
    for row in r.rows:
        out: Row = [row.field or row.name, row.kind, _blank(row.values[0])]  # the names JSON uses
        for j in range(1, len(labels)):
            ratio = row.ratio(j)
            out += [_blank(row.values[j]), _blank(row.delta(j)), "" if ratio is None else f"{ratio:.6f}"]
        rows.append(out)
    return headers, rows


def _presets(r: Any) -> tuple[list[str], list[Row]]:
    headers = ["name", "family", "L", "H", "A", "I", "V", "total_parameters", "description"]
    rows = []
    for p in r.rows:
        d = p.config.dims
        rows.append([p.name, p.config.family, d.L, d.H, d.A, d.I, d.V, p.total_parameters, p.description])
    return headers, rows


def _inspect(r: Any) -> tuple[list[str], list[Row]]:
    headers = ["status", "name", "dtype", "shape", "expected", "bytes", "note"]
    rows: list[Row] = []
    for x in r.shown():
        rows.append([x.status, x.name, x.dtype, shape_text(x.shape) if x.shape is not None else "",
                     shape_text(x.expected) if x.expected is not None else "", x.nbytes, x.note])
    return headers, rows


def _verify(r: Any) -> tuple[list[str], list[Row]]:
    headers = ["check", "name", "bertcalc", "transformers"]
    rows: list[Row] = [
        ["tensors", "", r.tensors, ""],
        ["total", "num_parameters()", r.total_bertcalc, r.total_transformers],
        ["state dict", "sum of state-dict sizes", r.state_dict_bertcalc, r.state_dict_transformers],
    ]
    rows += [[d.what, d.name, _blank(d.bertcalc), _blank(d.transformers)] for d in r.differences]
    return headers, rows


def _flops(r: Any) -> tuple[list[str], list[Row]]:
    headers = ["component", "matmul", "formula", "flops", "repeat", "total_flops"]
    rows: list[Row] = [[x.component, x.name, x.formula, x.flops, x.repeat, x.total] for x in r.rows]
    rows.append(["forward", "", "", "", "", r.forward_flops])
    rows.append(["training", "", r.training_rule, "", "", r.training_flops])
    return headers, rows


def _memory(r: Any) -> tuple[list[str], list[Row]]:
    """One row per figure; ``role`` says how it adds up: the ``summand`` rows sum to the ``total`` row, the
    ``part`` rows to the term they follow; ``unit``, ``candidate``, ``after`` and the rest are for reference."""
    headers = ["term", "role", "bytes", "formula"]
    rows: list[Row] = []
    for t in r.terms:
        rows.append([t.name, t.role, t.bytes, t.formula])
        if t.name in ("saved activations", "activations at peak"):
            rows += [[f"{t.name}: {d.name}", d.role, d.bytes, d.formula] for d in r.saved_detail]
    if r.reserved is not None:
        rows.append(["peak reserved", "reserved", r.reserved.reserved,
                     f"max_memory_reserved, the caching allocator replayed ({r.reserved.layers})"])
    if r.budget is not None:
        rows.append(["budget", "budget", r.budget, f"max batch {r.max_batch} at S={r.options.seq}"])
        if r.context is not None:
            rows.append(["CUDA context", "budget", r.context, "left out of the budget for the CUDA context"])
    rows += [[z.name, "zero", z.bytes, z.formula] for z in r.zero]
    d = r.distributed
    if d is not None:  # per rank: the "rank gpu" rows add up to the "rank gpu total" row
        rows += [[f"per rank: {x.name}", f"rank {x.device}", x.bytes, x.rule] for x in d.terms]
        rows += [["per rank: GPU", "rank gpu total", d.gpu_bytes, d.peak_at],
                 ["per rank: CPU", "rank cpu total", d.cpu_bytes, ""]]
        if d.deepspeed is not None:
            rows += [["DeepSpeed estimate: GPU", "deepspeed", d.deepspeed[0], d.deepspeed[2]],
                     ["DeepSpeed estimate: CPU", "deepspeed", d.deepspeed[1], d.deepspeed[2]]]
        rows += [[f"paper: {z.name}", "paper", z.bytes, z.formula] for z in d.paper]
        rows += [[f"communication: {c.name}", "comm", c.bytes, c.rule] for c in d.comm]
    return headers, rows


def _blank(v: Any) -> Any:
    return "" if v is None else v


def to_csv(headers: list[str], rows: list[Row]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(headers)
    w.writerows(rows)
    return buf.getvalue()


def to_markdown(headers: list[str], rows: list[Row]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return str(v).replace("|", "\\|")

    numeric = [all(isinstance(r[i], int) or r[i] == "" for r in rows) and any(isinstance(r[i], int) for r in rows)
               for i in range(len(headers))]
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
             "| " + " | ".join("---:" if n else "---" for n in numeric) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"
