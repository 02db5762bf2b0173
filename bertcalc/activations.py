"""Activation shapes along the forward pass, for a batch of ``B`` sequences of ``S`` tokens.

Read from the model's forward program (:mod:`bertcalc.program`): every value it lists, in the order the ops
compute them. A Linear's output width is its weight's first dimension, so activations and weights cannot
disagree. The encoder layer is one template (``encoder.layer.{i}``) whose activations repeat once per
application (L times; for ALBERT's shared group too).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .errors import UsageError
from .model import Architecture, Dim
from .records import frozen

if TYPE_CHECKING:  # the program is read only when there is a forward pass to list (shapes --batch --seq)
    from .program import Value


@frozen
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


@frozen
class Batch:
    """The symbols of a forward pass: batch and sequence."""

    B: Dim
    S: Dim

    @classmethod
    def of(cls, batch: int, seq: int, max_seq: int, why: str = "max_position_embeddings",
           limit: str = "the position table") -> Batch:
        """``limit`` is what bounds the sequence: ``the position table``, or for a model without one (rotary or
        relative positions) the length its config declares."""
        for name, v in (("batch", batch), ("seq", seq)):  # a library caller's 2.5, True or "8"
            if isinstance(v, bool) or not isinstance(v, int):
                raise UsageError(f"{name} must be a whole number, got {repr(v)[:60]}", param=name)
        if batch < 1:
            raise UsageError("batch must be at least 1", param="batch")
        if seq < 1:
            raise UsageError("seq must be at least 1", param="seq")
        if max_seq < 1:
            raise UsageError(f"{limit} leaves no room for a token ({why}); raise max_position_embeddings",
                             param="seq")
        if seq > max_seq:
            raise UsageError(
                f"sequence length {seq} exceeds what {limit} allows ({max_seq}, from {why}): "
                f"use a sequence of at most {max_seq} tokens, or raise max_position_embeddings",
                param="seq",
            )
        return cls(Dim(batch, "B"), Dim(seq, "S"))


def forward(arch: Architecture, batch: Batch, per_row: str | None = None) -> list[Activation]:
    """The model's forward pass, step by step, as the shapes of the values its program lists, in the order
    they are computed. The encoder's layer template is listed once, repeated L times (ALBERT's shared group
    too). ``per_row`` renames the batch symbol where a row is not a sequence of the batch (``B·C``: the
    choices of a multiple-choice input, flattened)."""
    from .program import Attention, Input, resolve
    from .program import B as B_DIM

    p = arch.program
    B, S = batch.B.size, batch.S.size
    out: list[Activation] = []

    def dims(v: Value) -> tuple[Dim, ...]:
        got = resolve(v.dims, B, S)
        if per_row is None:
            return got
        return tuple(Dim(r.size, per_row) if d == B_DIM else r for d, r in zip(v.dims, got, strict=True))

    def listed(v: Value, repeat: int) -> None:
        if v.listed:
            out.append(Activation(v.name, dims(v), v.description, repeat,
                                  "int64" if v.dtype == "int64" else "float"))

    def walk(ops: tuple, repeat: int) -> None:
        for op in ops:
            if isinstance(op, Attention):
                for v in (op.scores, op.probs, op.context, op.out):
                    listed(v, repeat)
            elif isinstance(op, Input) or op.out.dims:
                listed(op.out, repeat)

    walk(p.embeddings, 1)
    if p.encoder is not None:
        walk(p.encoder.ops, p.encoder.times)
    walk(p.tail, 1)
    walk(p.head, 1)
    return out
