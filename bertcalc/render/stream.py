"""Output that is written while it is made: the shapes listing as JSON, CSV or a plain table, for models of
10^5 layers.

:func:`chunks` yields the same bytes as :func:`bertcalc.render.render` would return, a piece at a time: the
JSON through ``json``'s own incremental encoder over a lazily produced ``tensors`` list, the CSV a block of
rows at a time, the table a block of lines at a time (``text.text_chunks``: its column widths come from the
layer templates, so no row is held). Other reports and formats are small and are rendered whole.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Any

from .plain import blocks


def streams(report: Any, fmt: str) -> bool:
    return getattr(report, "kind", "") == "shapes" and fmt in ("json", "csv", "table")


def chunks(report: Any, fmt: str) -> Iterator[str]:
    """The rendered output of a report that :func:`streams`, in pieces of about :data:`BLOCK` characters."""
    if fmt == "table":
        from .text import text_chunks

        yield from text_chunks(report)
        return
    if fmt == "json":
        yield from _json_chunks(report)
        return
    from .flat import SHAPES_HEADERS, shapes_rows

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SHAPES_HEADERS)
    yield buf.getvalue()
    yield from blocks(_csv_tensor_lines(report))
    buf.seek(0)
    buf.truncate()
    for row in shapes_rows(report, tensors=False):
        w.writerow(row)
    yield buf.getvalue()


_MARK = "\ue000bertcalc\ue000"  # a private-use character: never in a name, nor anywhere in a document


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.:/{}\-]*")


def _plain_name(name: str) -> bool:
    """A name that JSON and CSV write as it is (letters, digits and ``_.:/{}-``: nothing to quote or escape)."""
    return _PLAIN_NAME.fullmatch(name) is not None


def _json_chunks(report: Any) -> Iterator[str]:
    """``json.dumps(document(report), indent=2)``, with the ``tensors`` list written row by row: each layer
    template's entry is encoded once, and each row is that text with its name in place."""
    from . import document

    doc = document(report, lazy=True)
    doc["tensors"] = _MARK
    text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)
    head, tail = text.split(json.dumps(_MARK, ensure_ascii=False), 1)
    yield head
    yield from blocks(_json_tensor_rows(report))
    yield tail + "\n"


def _json_tensor_rows(report: Any) -> Iterator[str]:
    # per layer template: its entry's text before and after the name, and whether its names need escaping (a
    # layer index is digits, so a template's expanded names are plain exactly when the template is)
    cache: dict[tuple[int, int], tuple[str, str, bool]] = {}
    quoted = json.dumps(_MARK, ensure_ascii=False)
    sep = "[\n"
    for name, t, rep in report.tensors():
        parts = cache.get((id(t), rep))
        if parts is None:
            entry = json.dumps(report.tensor_row(_MARK, t, rep), indent=2, ensure_ascii=False, allow_nan=False)
            before, after = "\n".join("    " + line for line in entry.split("\n")).split(quoted)
            parts = cache[(id(t), rep)] = (before + '"', '"' + after, _plain_name(t.name))
        if parts[2]:
            yield sep + parts[0] + name + parts[1]
        else:
            yield sep + parts[0][:-1] + json.dumps(name, ensure_ascii=False) + parts[1][1:]
        sep = ",\n"
    yield "[]" if sep == "[\n" else "\n  ]"


def _csv_tensor_lines(report: Any) -> Iterator[str]:
    """The tensor rows of the shapes CSV: each template's cells after the name written once by ``csv``."""
    from .flat import tensor_row

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cache: dict[tuple[int, int], str] = {}
    plain: dict[int, bool] = {}
    for name, t, rep in report.tensors():
        ok = plain.get(id(t))
        if ok is None:
            ok = plain[id(t)] = _plain_name(t.name)
        if not ok:
            buf.seek(0)
            buf.truncate()
            w.writerow(tensor_row(report, name, t, rep))
            yield buf.getvalue()
            continue
        tail = cache.get((id(t), rep))
        if tail is None:
            buf.seek(0)
            buf.truncate()
            w.writerow(tensor_row(report, _MARK, t, rep))
            tail = cache[(id(t), rep)] = buf.getvalue().split(_MARK, 1)[1]
        yield "tensor," + name + tail
