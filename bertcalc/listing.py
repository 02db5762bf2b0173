"""Every weight tensor by state-dict name, and the activations of a forward pass."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from .activations import Activation
from .config import ModelConfig
from .model import Architecture, ModelReport, TensorSpec, identify
from .records import frozen

Layout = Literal["pt", "tf"]


def displayed_shape(t: TensorSpec, layout: Layout) -> tuple[int, ...]:
    """PyTorch stores a Linear's weight as ``[out, in]``; TensorFlow and Keras store the kernel ``[in, out]``.

    Embedding tables are ``[rows, dim]`` in both, and vectors have one layout. A tied weight (the MLM decoder)
    is the embedding table itself, used transposed: it keeps the table's shape in both layouts.
    """
    if layout == "tf" and t.role == "weight" and len(t.dims) == 2 and t.tied_to is None:
        return t.shape[::-1]
    return t.shape


class Streamed(list):
    """A list that ``json`` can encode without holding it: its items are made while they are written."""

    def __init__(self, make: Any, n: int) -> None:
        super().__init__()
        self._make, self._n = make, n

    def __iter__(self) -> Iterator[Any]:
        return iter(self._make())

    def __len__(self) -> int:
        return self._n

    def __bool__(self) -> bool:
        return self._n > 0


@frozen
class ShapesReport(ModelReport):
    kind: ClassVar[str] = "shapes"

    layout: Layout
    arch: Architecture
    activations: tuple[Activation, ...] | None = None
    batch: int | None = None
    seq: int | None = None
    collapse: bool = False
    choices: int | None = None  # a multiple-choice input [B, C, S]: the activations run over B·C rows

    def tensors(self) -> Iterator[tuple[str, TensorSpec, int]]:
        """``(name, spec, repeat)``: expanded per layer, or one template row per layer when collapsed."""
        if self.collapse:
            for comp in self.arch.components:
                for t in comp.templates():
                    yield t.name, t, comp.repeat
        else:
            for name, t in self.arch.tensors():
                yield name, t, 1

    @property
    def total_parameters(self) -> int:
        return self.arch.total_parameters

    @property
    def state_dict_parameters(self) -> int:
        return self.arch.state_dict_parameters

    def tensor_rows(self) -> Iterator[dict[str, Any]]:
        for name, t, rep in self.tensors():
            yield self.tensor_row(name, t, rep)

    def tensor_row(self, name: str, t: TensorSpec, rep: int) -> dict[str, Any]:
        """One entry of the JSON ``tensors`` list."""
        return ({"name": name, "shape": list(displayed_shape(t, self.layout)), "parameters": t.parameters}
                | ({"repeat": rep} if self.collapse else {}) | ({"tied_to": t.tied_to} if t.tied_to else {})
                | ({} if self.arch.adapted is None else {"trainable": t.trainable}))

    def to_dict(self, lazy: bool = False) -> dict[str, Any]:
        """The JSON contract. ``lazy``: ``tensors`` is produced while it is written (one row per layer
        template expanded on demand), so a model of 10^5 layers streams instead of filling memory."""
        if lazy:
            n = sum(len(tuple(c.templates())) for c in self.arch.components) if self.collapse \
                else self.arch.tensor_count()
            rows: Any = Streamed(self.tensor_rows, n)
        else:
            rows = list(self.tensor_rows())
        out: dict[str, Any] = {
            "label": self.label,
            "family": self.family,
            "model_class": self.model_class,
            "head": self.head,
            "layout": self.layout,
            "config": dict(self.config),
            "total_parameters": self.arch.total_parameters,
            "state_dict_parameters": self.arch.state_dict_parameters,
            **({} if self.arch.adapted is None else {"trainable_parameters": self.arch.trainable_parameters,
                                                     "adapter": self.arch.adapted.to_dict()}),
            "tensors": rows,
        }
        if self.activations is not None:
            out["batch"] = self.batch
            out["seq"] = self.seq
            if self.choices is not None:
                out["choices"] = self.choices
            out["activations"] = [
                {
                    "name": a.name,
                    "shape": list(a.shape),
                    "symbols": list(a.symbols),
                    "elements": a.elements,
                    "repeat": a.repeat,
                    "dtype": a.dtype,
                    "description": a.description,
                }
                for a in self.activations
            ]
        return out


def report(
    arch: Architecture,
    cfg: ModelConfig,
    *,
    label: str = "",
    layout: Layout = "pt",
    activations: list[Activation] | None = None,
    batch: int | None = None,
    seq: int | None = None,
    collapse: bool = False,
    choices: int | None = None,
) -> ShapesReport:
    return ShapesReport(
        **identify(arch, label, cfg.fields()),
        layout=layout,
        arch=arch,
        activations=tuple(activations) if activations is not None else None,
        batch=batch,
        seq=seq,
        collapse=collapse,
        choices=choices,
    )
