"""The one data structure: a model is a list of named tensors.

Every tensor carries its HuggingFace state-dict name and its shape, and each dimension of the shape keeps the
config field it came from (``hidden_size``), so formulas can be shown without being written twice.

Per-layer tensors are written once, as a template whose name holds ``{i}``
(``encoder.layer.{i}.attention.self.query.weight``), inside a :class:`Component` with ``repeat = L``.
Totals multiply by ``repeat``; only :meth:`Architecture.tensors` expands the template, and only when asked,
so a model of 10^7 layers costs the same to count as one of 12.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import field
from functools import cached_property
from typing import Any, Literal, NamedTuple

from .formula import Monomial, Polynomial, factor, monomial
from .records import frozen


class cached:
    """``functools.cached_property`` without its lock (Python 3.11 takes one on every first read): computed on
    first read and stored in the instance's ``__dict__``, which then answers every later read. Works on frozen
    dataclasses without slots, as they have a ``__dict__``."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, cls: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


Role = Literal["embedding", "weight", "bias", "norm_weight", "norm_bias", "lora"]
PartKind = Literal["embedding", "linear", "layernorm", "bias"]
TokenScope = Literal["all", "first"]


class Dim(NamedTuple):
    """One dimension: its size, and the config field it comes from (``None`` for a literal like 2).

    A named tuple, not a dataclass: parts are memoised on their dimensions (``families/_parts.py``), so a Dim is
    hashed and compared on every build, which a tuple does in C."""

    size: int
    symbol: str | None = None


@frozen
class TensorSpec:
    """One entry of the state dict. ``name`` may hold ``{i}``, the index of the layer it repeats in."""

    name: str
    dims: tuple[Dim, ...]
    role: Role
    tied_to: str | None = None  # the state-dict name of the tensor this one shares storage with
    trainable: bool = True  # requires_grad: False where a freeze or an adapter (PEFT) leaves it frozen

    # cached on the instance (see :class:`cached`): every
    # total reads them many times
    @cached
    def shape(self) -> tuple[int, ...]:
        return tuple(d.size for d in self.dims)

    @cached
    def parameters(self) -> int:
        return math.prod(self.shape)

    def term(self) -> tuple[Monomial, int]:
        """This tensor's size as one polynomial term: coefficient × product of symbols."""
        coef = 1
        symbols = []
        for d in self.dims:
            if d.symbol is None:
                coef *= d.size
            else:
                k, name = factor(d.symbol)  # 3·hidden_size: 3 × hidden_size
                coef *= k
                symbols.append(name)
        return monomial(symbols), coef

    def at(self, i: int) -> str:
        return self.name.replace("{i}", str(i))


@frozen
class Part:
    """One module with parameters: a Linear, an Embedding, a LayerNorm, or a lone bias.

    ``module`` is its HF module path (``encoder.layer.{i}.attention.self.query``). ``tokens`` says which
    positions a Linear sees: ``all`` of them, or only the ``first`` ([CLS]) one, like the pooler.
    """

    label: str
    module: str
    kind: PartKind
    tensors: tuple[TensorSpec, ...]
    tokens: TokenScope = "all"
    description: str = ""
    role: str = ""  # what it does in the forward pass: "q", "ffn_in", "mlm_decoder"... (see activations.py)

    @cached
    def _sizes(self) -> tuple[int, int]:
        """(unique, state-dict) parameters, in one pass over the tensors' dims (the hot path of every total)."""
        unique = every = 0
        for t in self.tensors:
            n = 1
            for d in t.dims:
                n *= d.size
            every += n
            if t.tied_to is None:
                unique += n
        return unique, every

    @property
    def parameters(self) -> int:
        """Unique parameters: a tensor tied to another is stored once, in the other."""
        return self._sizes[0]

    @property
    def state_dict_parameters(self) -> int:
        return self._sizes[1]

    def polynomial(self) -> Polynomial:
        return Polynomial.of(t.term() for t in self.tensors if t.tied_to is None)


@frozen
class Component:
    """A group of parts reported together: the embeddings, one encoder layer (× L), the pooler, a head.

    ``repeat`` is how many instances of the parameters exist (L for BERT's layers). ``repeat_symbol`` names
    the config field behind it, for formulas. ``applied`` is how many times the forward pass runs it; it
    differs from ``repeat`` only when instances are shared (ALBERT applies one layer L times).
    """

    name: str
    parts: tuple[Part, ...]
    repeat: int = 1
    repeat_symbol: str | None = None
    applied: int | None = None
    start: int = 0  # the ``{i}`` of the first instance (ModernBERT's layers 1..L-1 follow a distinct layer 0)

    @property
    def times_applied(self) -> int:
        return self.repeat if self.applied is None else self.applied

    @cached
    def _sizes(self) -> tuple[int, int]:
        """(unique, state-dict) parameters of one instance: the sums of Part.parameters and
        Part.state_dict_parameters (the hot path of every total)."""
        unique = every = 0
        for p in self.parts:  # a part's sizes are cached on it, and parts are shared between models
            u, e = p._sizes
            unique += u
            every += e
        return unique, every

    @property
    def parameters(self) -> int:
        """Unique parameters of one instance."""
        return self._sizes[0]

    @property
    def total_parameters(self) -> int:
        return self._sizes[0] * self.repeat

    @property
    def state_dict_parameters(self) -> int:
        return self._sizes[1] * self.repeat

    def polynomial(self) -> Polynomial:
        """One instance's parameters as a polynomial in the config's fields."""
        poly = Polynomial()
        for p in self.parts:
            poly = poly + p.polynomial()
        return poly

    def templates(self) -> Iterator[TensorSpec]:
        for p in self.parts:
            yield from p.tensors


@frozen
class Buffer:
    """A buffer the model registers that a checkpoint may hold but that is no parameter (``position_ids``)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "int64"
    persistent: bool = False  # non-persistent buffers are not in today's state dict (older versions saved them)


@frozen
class Architecture:
    """A whole model: its components in state-dict order, plus what it was built from."""

    family: str  # its module in families/
    model_class: str  # "BertModel"
    head: str  # "model"
    components: tuple[Component, ...]
    values: dict[str, int] = field(default_factory=dict)  # symbol -> size, for formulas
    prefix: str = ""  # "bert." when the base model sits inside a task model
    unused_fields: tuple[str, ...] = ()  # config fields this model class ignores (num_labels for BertModel)
    forward: Any = None  # builds the forward pass (a :class:`bertcalc.program.Program`) when first asked
    buffers: tuple[Buffer, ...] = ()
    base_prefix: str = ""  # the base model's prefix inside a task model ("bert."), whether or not this one has it
    choices: bool = False  # the input is [B, C, S], flattened to B·C rows (a ForMultipleChoice class)
    notes: tuple[str, ...] = ()  # what the family says about this class as built (a forward that fails...)
    adapted: Any = None  # an adapters.Adaptation: a LoRA adapter or a freeze applied (names and trainable flags)

    @cached_property
    def program(self) -> Any:
        """The forward pass, built on first use (``count`` never needs it)."""
        return self.forward() if self.forward is not None else None

    @cached
    def total_parameters(self) -> int:
        """Unique parameters: what ``model.num_parameters()`` reports."""
        return sum([c._sizes[0] * c.repeat for c in self.components])

    @cached
    def state_dict_parameters(self) -> int:
        """What a saved state dict holds, counting every tied name."""
        return sum([c._sizes[1] * c.repeat for c in self.components])

    def tensors(self) -> Iterator[tuple[str, TensorSpec]]:
        """Every state-dict entry, expanded per layer, in state-dict order: ``(name, spec)``."""
        for comp in self.components:
            if comp.repeat == 1 and not any("{i}" in t.name for t in comp.templates()):
                for t in comp.templates():
                    yield t.name, t
                continue
            for i in range(comp.start, comp.start + comp.repeat):
                for t in comp.templates():
                    yield t.at(i), t

    def tied(self) -> list[tuple[str, str]]:
        """``[name, tied_to]`` pairs, expanded (only components that hold a tied tensor are walked)."""
        out = []
        for comp in self.components:
            tied = [t for t in comp.templates() if t.tied_to is not None]
            for t in tied:
                if "{i}" in t.name:
                    out += [(t.at(i), t.tied_to.replace("{i}", str(i)))
                            for i in range(comp.start, comp.start + comp.repeat)]
                else:
                    out.append((t.name, t.tied_to))
        return out

    @property
    def trainable_parameters(self) -> int:
        """Unique parameters with ``requires_grad``: all of them unless a freeze or an adapter says otherwise."""
        return sum(t.parameters * c.repeat for c in self.components for p in c.parts for t in p.tensors
                   if t.tied_to is None and t.trainable)

    def tensor_count(self) -> int:
        return sum(len(tuple(c.templates())) * c.repeat for c in self.components)

    def polynomial(self) -> Polynomial:
        """The whole model's unique parameters as one polynomial, layers included as a symbol."""
        poly = Polynomial()
        for c in self.components:
            if c.repeat_symbol is not None:
                poly = poly + c.polynomial().scale(c.repeat_symbol)
            else:
                poly = poly + c.polynomial().scale(None, c.repeat)
        return poly


@frozen
class ModelReport:
    """What every report opens with: which model it describes. Reports add their own fields after these."""

    label: str
    family: str
    model_class: str
    head: str
    config: dict[str, Any]

    def __rich__(self) -> Any:
        """``rich.print(report)``, and notebooks with rich's extension: the same table as the terminal's."""
        from .render.text import renderable

        return renderable(self)

    def _repr_html_(self) -> str | None:
        """Jupyter: the table in colour, as the terminal shows it (None, so plain repr, when the table would be
        too large to draw: ``shapes`` of 10^5 layers)."""
        from .errors import BertcalcError
        from .render.text import to_html

        try:
            return to_html(self)
        except BertcalcError:
            return None

    def identity(self) -> dict[str, Any]:
        """These fields as JSON keys, in the order every report's JSON starts with."""
        return {"label": self.label, "family": self.family, "model_class": self.model_class, "head": self.head,
                "config": dict(self.config)}


def identify(arch: Architecture, label: str, config: dict[str, Any]) -> dict[str, Any]:
    """The :class:`ModelReport` fields for a report on ``arch``: ``Report(**identify(...), ...)``."""
    return {"label": label, "family": arch.family, "model_class": arch.model_class, "head": arch.head,
            "config": config}
