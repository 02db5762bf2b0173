"""Output that is written while it is made: the shapes listing as JSON or CSV, for models of 10^5 layers.

:func:`chunks` yields the same bytes as :func:`bertcalc.render.render` would return, a piece at a time: the
JSON through ``json``'s own incremental encoder over a lazily produced ``tensors`` list, the CSV a block of
rows at a time. Other reports and formats are small and are rendered whole.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

BLOCK = 1 << 16  # characters per piece written


def streams(report: Any, fmt: str) -> bool:
    return getattr(report, "kind", "") == "shapes" and fmt in ("json", "csv")


def chunks(report: Any, fmt: str) -> Iterator[str]:
    """The rendered output of a report that :func:`streams`, in pieces of about :data:`BLOCK` characters."""
    if fmt == "json":
        from . import document

        doc = document(report, lazy=True)
        enc = json.JSONEncoder(indent=2, ensure_ascii=False, allow_nan=False)
        yield from _blocks(enc.iterencode(doc))
        yield "\n"
        return
    from .flat import SHAPES_HEADERS, shapes_rows

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SHAPES_HEADERS)
    for i, row in enumerate(shapes_rows(report)):
        w.writerow(row)
        if i % 1024 == 1023:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _blocks(pieces: Iterable[str]) -> Iterator[str]:
    out: list[str] = []
    n = 0
    for p in pieces:
        out.append(p)
        n += len(p)
        if n >= BLOCK:
            yield "".join(out)
            out, n = [], 0
    if out:
        yield "".join(out)
