"""Two or more count reports side by side, each against the first."""

from __future__ import annotations

from typing import Any, ClassVar

from .counting import CountReport
from .records import frozen

CONFIG_ROWS = (  # family-neutral size, its row label
    ("L", "layers"),
    ("H", "hidden"),
    ("A", "heads"),
    ("I", "intermediate"),
    ("V", "vocab"),
    ("E", "embedding width"),
    ("P", "positions"),
    ("T", "token types"),
)


@frozen
class CompareRow:
    name: str
    values: tuple[int | None, ...]  # one per config; None where the config has no such component
    kind: str = "component"  # "config", "component", "total"
    field: str | None = None  # for config rows: the family-neutral size (L, H, A, ...)

    def delta(self, j: int) -> int | None:
        a, b = self.values[0], self.values[j]
        return None if a is None or b is None else b - a

    def ratio(self, j: int) -> float | None:
        a, b = self.values[0], self.values[j]
        return None if a is None or b is None or a == 0 else b / a


@frozen
class CompareReport:
    """Two or more count reports side by side, each against the first."""
    kind: ClassVar[str] = "compare"


    reports: tuple[CountReport, ...]
    rows: tuple[CompareRow, ...]

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.reports]

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.reports[0].label,
            "configs": [r.to_dict() for r in self.reports],
            "rows": [
                {
                    "name": row.field or row.name,
                    "kind": row.kind,
                    "values": list(row.values),
                    "delta": [row.delta(j) for j in range(len(row.values))],
                    "ratio": [row.ratio(j) for j in range(len(row.values))],
                }
                for row in self.rows
            ],
        }


def compare(reports: list[CountReport]) -> CompareReport:
    """Line up components by name; a component one config lacks (no pooler) shows as None."""
    from .errors import UsageError

    if len(reports) < 2:
        raise UsageError("compare needs at least two configs, e.g. 'bertcalc compare base large'")
    rows: list[CompareRow] = []
    for key, word in CONFIG_ROWS:
        values = tuple((r.dims or {}).get(key) for r in reports)
        if key in ("P", "T"):  # 0: the family has no such table (rotary or relative positions, no segments)
            values = tuple(v or None for v in values)
        if key == "E" and all(r.dims and r.dims["E"] == r.dims["H"] for r in reports):
            continue  # no factorized embeddings anywhere: the row would repeat H
        rows.append(CompareRow(f"{key}  {word}", values, "config", key))
    names: list[str] = []
    for r in reports:
        for c in r.components:
            if c.name not in names:
                names.append(c.name)
    for name in names:
        per = []
        total = []
        symbols = set()
        for r in reports:
            c = next((c for c in r.components if c.name == name), None)
            per.append(None if c is None else c.parameters)
            total.append(None if c is None else c.total_parameters)
            if c is not None:
                symbols.add(c.repeat_symbol)
        if any(symbols):
            from .formula import SHORT

            # × L when every config repeats it L times (ModernBERT's template runs L - 1 times, after layer 0)
            letters = {SHORT.get(s, s) if s else None for s in symbols}  # n_layers and num_hidden_layers: L
            times = next(iter(letters)) if len(letters) == 1 else "repeat"
            rows.append(CompareRow(f"{name} (each)", tuple(per)))
            rows.append(CompareRow(f"{name} (× {times})", tuple(total)))
        else:
            rows.append(CompareRow(name, tuple(total)))
    rows.append(CompareRow("total", tuple(r.total_parameters for r in reports), "total"))
    return CompareReport(tuple(reports), tuple(rows))
