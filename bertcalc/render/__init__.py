"""Rendering: a report object in, text out. Nothing here computes a figure.

Formats: ``table`` (rich), ``json``, ``yaml``, ``csv``, ``markdown``, and ``svg`` (the table in colour, as an
image). Non-table formats carry no decoration.
"""

from __future__ import annotations

from typing import Any

FORMATS = ("table", "json", "yaml", "csv", "markdown", "svg")

# Every JSON and YAML document opens with this key. It changes only when a key of the JSON contract
# (docs/usage.md) is renamed, removed or changes meaning; added keys keep it.
SCHEMA_VERSION = 1


def document(report: Any, lazy: bool = False) -> dict[str, Any]:
    """What the JSON and YAML formats write: ``schema_version`` first, then the report's ``to_dict()``
    (``lazy``: with its long lists made while they are written, where the report can; see ``stream``)."""
    return {"schema_version": SCHEMA_VERSION, **(report.to_dict(lazy=True) if lazy else report.to_dict())}


def shape_text(shape: tuple[int, ...] | list[int]) -> str:
    """(3072, 768) -> '[3072, 768]', as every format shows a shape."""
    return "[" + ", ".join(str(s) for s in shape) + "]"


def human(n: int | float) -> str:
    """109482240 -> '109.5 M'. For display only; the exact integer is always shown beside it."""
    a = abs(n)
    if a >= 10**15:
        return f"{n:.3g}".replace("e+", "e")
    units = ((10**3, "K"), (10**6, "M"), (10**9, "B"), (10**12, "T"))
    if isinstance(n, int):
        sign = "-" if n < 0 else ""
        for i, (size, suffix) in enumerate(units):
            if a < size * 1000 or i == len(units) - 1:
                if a < size:
                    break
                tenths = (10 * a + size // 2) // size  # exact, half up: 622,650 -> 622.7 K (floats say 622.6)
                if tenths >= 10000 and i < len(units) - 1:  # 999,950 is 1.0 M, not 1000.0 K
                    size, suffix = units[i + 1]
                    tenths = (10 * a + size // 2) // size
                return f"{sign}{tenths // 10}.{tenths % 10} {suffix}"
        return f"{n:,}"
    for size, suffix in reversed(units):
        if a >= size:
            return f"{n / size:.1f} {suffix}"
    return f"{n:.1f}"


def render(report: Any, fmt: str, *, explain: bool = False, width: int | None = None) -> str:
    """The whole output as a string. ``table`` is plain text (no colour) at ``width`` or its natural width."""
    if fmt == "table":
        from .text import to_text

        return to_text(report, explain=explain, width=width)
    if fmt == "json":
        import json

        # strict JSON: NaN and Infinity are not JSON (JavaScript, Go and serde refuse them); the core never
        # produces them, so one here is a bug, not bad input
        return json.dumps(document(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt in ("yaml", "markdown"):  # built whole in memory (YAML at about 4,000 rows a second): bounded
        from .text import _check_size

        _check_size(report, f"the {'YAML' if fmt == 'yaml' else 'Markdown'} output")
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(document(report), sort_keys=False, allow_unicode=True, width=120)
    if fmt == "svg":
        from .text import to_svg

        return to_svg(report, explain=explain, width=width)
    if fmt in ("csv", "markdown"):
        from .flat import rows_of, to_csv, to_markdown

        headers, rows = rows_of(report, explain=explain)
        return to_csv(headers, rows) if fmt == "csv" else to_markdown(headers, rows)
    raise ValueError(f"unknown format {fmt!r}")
