"""Activation shapes along the forward pass, for a batch of ``B`` sequences of ``S`` tokens.

Shapes are built from the parts of the :class:`~bertcalc.model.Architecture`: a Linear's output width is its
weight's first dimension, so activations and weights cannot disagree. As with tensors, the encoder layer is
one template (``encoder.layer.{i}``) with ``repeat = L``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import UsageError
from .model import Dim, Part


@dataclass(frozen=True)
class Activation:
    """One tensor the forward pass produces. ``dims`` keep their symbols (``B``, ``S``, ``H/A``...)."""

    name: str
    dims: tuple[Dim, ...]
    description: str = ""
    repeat: int = 1
    dtype: str = "float"  # "float" for hidden states, "int64" for ids

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(d.size for d in self.dims)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(d.symbol or str(d.size) for d in self.dims)

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Batch:
    """The symbols of a forward pass: batch, sequence, and the model's widths."""

    B: Dim
    S: Dim

    @classmethod
    def of(cls, batch: int, seq: int, max_positions: int) -> Batch:
        if batch < 1:
            raise UsageError("batch must be at least 1", param="batch")
        if seq < 1:
            raise UsageError("seq must be at least 1", param="seq")
        if seq > max_positions:
            raise UsageError(
                f"sequence length {seq} exceeds max_position_embeddings ({max_positions}): "
                f"use a sequence of at most {max_positions} tokens, or raise max_position_embeddings",
                param="seq",
            )
        return cls(Dim(batch, "B"), Dim(seq, "S"))


def out_dim(part: Part) -> Dim:
    """The width a Linear or Embedding produces: weight ``[out, in]`` or embedding ``[rows, dim]``."""
    w = part.tensors[0]
    d = w.dims[1] if part.kind == "embedding" else w.dims[0]
    return Dim(d.size, _short(d.symbol))


def _short(symbol: str | None) -> str | None:
    from .formula import SHORT

    return SHORT.get(symbol, symbol) if symbol else None
