"""Tensor list -> components, subtotals and totals.

Every figure here is a sum of products of shapes taken from :class:`~bertcalc.model.Architecture`; the
formulas next to them are rendered from the same shapes, for people to read.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any, ClassVar

from .config import ModelConfig
from .model import Architecture, Component, ModelReport, Part, cached, identify
from .records import frozen


@frozen
class TensorRow:
    name: str  # template: may hold {i}
    shape: tuple[int, ...]
    symbols: tuple[str, ...]
    parameters: int
    tied_to: str | None = None
    trainable: bool = True


class _Formulas:
    """``formula`` (``vocab_size × hidden_size``) and ``formula_values`` (``30522 × 768``) of a row, rendered from
    its part's or component's polynomial when first read: only ``--explain`` and JSON show them, and building
    the polynomials is most of what counting would otherwise cost."""

    _source: Any  # the Part or Component the row describes
    _values: dict[str, int]

    @cached
    def _polynomial(self) -> Any:
        return self._source.polynomial()

    @cached
    def formula(self) -> str:
        return self._polynomial.render()

    @cached
    def formula_values(self) -> str:
        return self._polynomial.render(self._values)


@frozen
class PartRow(_Formulas):
    label: str
    module: str
    kind: str
    tensors: tuple[TensorRow, ...]
    parameters: int
    _source: Part = field(repr=False, compare=False)
    _values: dict[str, int] = field(repr=False, compare=False)
    trainable_parameters: int = 0  # of one instance


@frozen
class ComponentRow(_Formulas):
    name: str
    parts: tuple[PartRow, ...]
    parameters: int  # one instance
    repeat: int
    repeat_symbol: str | None
    applied: int  # times the forward pass runs it (differs from repeat when instances are shared)
    total_parameters: int
    share: float
    _source: Component = field(repr=False, compare=False)
    _values: dict[str, int] = field(repr=False, compare=False)
    trainable_parameters: int = 0  # all instances


@frozen
class CountReport(ModelReport):
    """What ``bertcalc count`` shows, computed once; renderers only read it."""

    kind: ClassVar[str] = "count"

    total_parameters: int
    state_dict_parameters: int
    notes: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    description: str = ""
    dims: dict[str, int] | None = None  # family-neutral sizes: L, H, A, I, V, P, T, E, C
    unused_fields: tuple[str, ...] = ()  # config fields this model class ignores (hidden in the table header)
    _arch: Architecture | None = field(default=None, repr=False, compare=False)  # see _architecture
    trainable_parameters: int | None = None  # with an adapter or a freeze: PEFT's get_nb_trainable_parameters()[0]
    adapter: dict[str, Any] | None = None  # what was applied (adapters.Adaptation.to_dict())
    adapter_summary: str = ""

    @property
    def frozen_parameters(self) -> int | None:
        return None if self.trainable_parameters is None else self.total_parameters - self.trainable_parameters

    def peft_line(self) -> str:
        """``print_trainable_parameters()``'s line, figure for figure."""
        t, n = self.trainable_parameters or 0, self.total_parameters
        return f"trainable params: {t:,d} || all params: {n:,d} || trainable%: {100 * t / n if n else 0:.4f}"

    # What the totals don't need is derived from the architecture when first read: a caller that asks for
    # total_parameters never pays for the rows, the tied pairs or the formulas (--explain, JSON, tables do).

    _build: Any = field(default=None, repr=False, compare=False)  # makes _arch when it was not built up front

    def _architecture(self) -> Architecture:
        """The tensor list the rows come from: built on first read when the totals came from a template
        (:mod:`bertcalc.symbolic`), which is exact for them but holds no tensors."""
        arch = self._arch
        if arch is None:
            arch = self.__dict__["_arch"] = self._build()
        return arch

    @cached
    def components(self) -> tuple[ComponentRow, ...]:
        arch, total = self._architecture(), self.total_parameters
        return tuple(_component_row(c, arch.values, total) for c in arch.components)

    @cached
    def tied(self) -> tuple[tuple[str, str], ...]:
        return tuple(self._architecture().tied())

    @cached
    def total_formula(self) -> str:
        """``embeddings + num_hidden_layers × encoder layer + pooler``."""
        return self._total_formulas[0]

    @cached
    def total_formula_values(self) -> str:
        return self._total_formulas[1]

    @cached
    def _total_formulas(self) -> tuple[str, str]:
        sym, num = [], []
        for c in self._architecture().components:
            if c.repeat_symbol is not None:
                sym.append(f"{c.repeat_symbol} × {c.name}")
                num.append(f"{c.repeat} × {c.parameters:,}")
            elif c.repeat != 1:
                sym.append(f"{c.repeat} × {c.name}")
                num.append(f"{c.repeat} × {c.parameters:,}")
            else:
                sym.append(c.name)
                num.append(f"{c.parameters:,}")
        return " + ".join(sym), " + ".join(num)

    @cached
    def closed_form(self) -> str:
        """``(V + P + T + 2)·H + L·(...) + ...``."""
        return _closed_form(self._architecture())

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (and copied) with everything derived now and without the architecture, whose forward is a
        closure: a report pickles as it did when every field was computed up front."""
        for name in ("components", "tied", "total_formula", "total_formula_values", "closed_form"):
            getattr(self, name)
        for c in self.components:
            for row in (c, *c.parts):
                row.formula, row.formula_values  # noqa: B018
        return {**self.__dict__, "_arch": None, "_build": None}

    @property
    def has_pooler(self) -> bool:
        return any(c.name == "pooler" for c in self.components)

    def component(self, name: str) -> ComponentRow:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(f"no component {name!r}; this model has {', '.join(repr(c.name) for c in self.components)}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of ``count --format json``. Keys read by tools are kept stable."""
        return {
            "label": self.label,
            "description": self.description,
            "family": self.family,
            "model_class": self.model_class,
            "head": self.head,
            "pooler": self.has_pooler,
            "config": dict(self.config),
            "total_parameters": self.total_parameters,
            **({} if self.trainable_parameters is None else {
                "trainable_parameters": self.trainable_parameters,
                "frozen_parameters": self.frozen_parameters,
                "adapter": self.adapter}),
            "state_dict_parameters": self.state_dict_parameters,
            "tied": [list(pair) for pair in self.tied],
            "components": [
                {
                    "name": c.name,
                    "parameters": c.parameters,
                    "repeat": c.repeat,
                    "applied": c.applied,
                    "total_parameters": c.total_parameters,
                    **({} if self.trainable_parameters is None else
                       {"trainable_parameters": c.trainable_parameters}),
                    "share": c.share,
                    "formula": c.formula,
                    "parts": [
                        {
                            "name": p.label,
                            "module": p.module,
                            "parameters": p.parameters,
                            "formula": p.formula,
                            "tensors": [
                                {"name": t.name, "shape": list(t.shape), "parameters": t.parameters}
                                | ({"tied_to": t.tied_to} if t.tied_to else {})
                                | ({} if self.trainable_parameters is None else {"trainable": t.trainable})
                                for t in p.tensors
                            ],
                        }
                        for p in c.parts
                    ],
                }
                for c in self.components
            ],
            "closed_form": self.closed_form,
            "dims": dict(self.dims or {}),
            "notes": list(self.notes),
            "sources": list(self.sources),
        }


def _part_row(p: Part, values: dict[str, int]) -> PartRow:
    return PartRow(
        label=p.label,
        module=p.module,
        kind=p.kind,
        tensors=tuple(
            TensorRow(t.name, t.shape, tuple(d.symbol or str(d.size) for d in t.dims), t.parameters, t.tied_to,
                      t.trainable)
            for t in p.tensors
        ),
        parameters=p.parameters,
        _source=p,
        _values=values,
        trainable_parameters=sum(t.parameters for t in p.tensors if t.tied_to is None and t.trainable),
    )


def _component_row(c: Component, values: dict[str, int], total: int) -> ComponentRow:
    return ComponentRow(
        name=c.name,
        parts=tuple(_part_row(p, values) for p in c.parts),
        parameters=c.parameters,
        repeat=c.repeat,
        repeat_symbol=c.repeat_symbol,
        applied=c.times_applied,
        total_parameters=c.total_parameters,
        share=(c.total_parameters / total) if total else 0.0,
        _source=c,
        _values=values,
        trainable_parameters=c.repeat * sum(t.parameters for p in c.parts for t in p.tensors
                                            if t.tied_to is None and t.trainable),
    )


def report(
    arch: Architecture | Any,
    cfg: ModelConfig,
    *,
    label: str = "",
    notes: tuple[str, ...] = (),
    sources: tuple[str, ...] = (),
    description: str = "",
    build: Any = None,
) -> CountReport:
    """The count of ``arch``: an :class:`Architecture`, or a :class:`bertcalc.symbolic.Totals` of one with
    ``build`` to make the architecture when the rows are read."""
    return CountReport(
        **identify(arch, label, cfg.fields()),
        total_parameters=arch.total_parameters,
        state_dict_parameters=arch.state_dict_parameters,
        notes=notes,
        sources=sources,
        description=description,
        dims=cfg.dims._asdict(),
        unused_fields=arch.unused_fields,
        _arch=arch if build is None else None,
        _build=build,
        trainable_parameters=None if arch.adapted is None else arch.trainable_parameters,
        adapter=None if arch.adapted is None else arch.adapted.to_dict(),
        adapter_summary="" if arch.adapted is None else arch.adapted.summary(),
    )


def _closed_form(arch: Architecture) -> str:
    """The whole model in short symbols: repeated components as ``L·(...)``, everything else merged into one
    polynomial, with any common factor pulled out: ``(V + P + T + 2)·H + L·(4H² + ...) + ...``."""
    from .formula import Polynomial, short

    once = Polynomial()
    parts: list[str] = []
    for c in arch.components:
        if c.repeat_symbol is not None:
            parts.append(f"{short(c.repeat_symbol)}·({c.polynomial().render(short=True)})")
        else:
            once = once + c.polynomial().scale(None, c.repeat)
    emb = next((c for c in arch.components if c.name == "embeddings"), None)
    head = [] if emb is None else [emb.polynomial().render_factored(short=True)]
    rest = once + (Polynomial() if emb is None else emb.polynomial().scale(None, -1))
    tail = [rest.render_factored(short=True)] if rest.terms else []
    return " + ".join(head + parts + tail)
