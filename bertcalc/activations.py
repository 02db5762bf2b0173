"""Activation shapes along the forward pass, for a batch of ``B`` sequences of ``S`` tokens.

The walk is driven by the parts of the :class:`~bertcalc.model.Architecture` and their roles: a Linear's
output width is its weight's first dimension, so activations and weights cannot disagree. The encoder layer
is one template (``encoder.layer.{i}``) whose activations repeat once per application (L times; for ALBERT's
shared group too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import UsageError
from .model import Architecture, Component, Dim, Part


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
    """The symbols of a forward pass: batch and sequence."""

    B: Dim
    S: Dim

    @classmethod
    def of(cls, batch: int, seq: int, max_seq: int, why: str = "max_position_embeddings") -> Batch:
        if batch < 1:
            raise UsageError("batch must be at least 1", param="batch")
        if seq < 1:
            raise UsageError("seq must be at least 1", param="seq")
        if max_seq < 1:
            raise UsageError(f"the position table leaves no room for a token ({why}); raise max_position_embeddings",
                             param="seq")
        if seq > max_seq:
            raise UsageError(
                f"sequence length {seq} exceeds what the position table allows ({max_seq}, from {why}): "
                f"use a sequence of at most {max_seq} tokens, or raise max_position_embeddings",
                param="seq",
            )
        return cls(Dim(batch, "B"), Dim(seq, "S"))


def _short(symbol: str | None) -> str | None:
    from .formula import SHORT

    return SHORT.get(symbol, symbol) if symbol else None


def out_dim(part: Part) -> Dim:
    """The width a Linear or Embedding produces: weight ``[out, in]`` or embedding ``[rows, dim]``."""
    w = part.tensors[0]
    d = w.dims[1] if part.kind == "embedding" else w.dims[0]
    return Dim(d.size, _short(d.symbol))


def in_dim(part: Part) -> Dim:
    d = part.tensors[0].dims[1]
    return Dim(d.size, _short(d.symbol))


def forward(arch: Architecture, heads: int, act: str, batch: Batch) -> list[Activation]:
    """The model's forward pass, step by step, as activation shapes in the order they are computed."""
    out: list[Activation] = []
    for comp in arch.components:
        roles = {p.role for p in comp.parts}
        if "word" in roles:
            out += _embeddings(comp, batch)
        elif "emb_project" in roles:
            p = comp.parts[0]
            out.append(Activation(p.module, (batch.B, batch.S, out_dim(p)), "embedding width -> hidden width"))
        elif "q" in roles:
            out += _layers(comp, heads, act, batch)
        elif "pooler" in roles:
            out += _pooler(comp.parts[0], batch)
        else:
            out += _head(comp, act, batch)
    return out


def _embeddings(comp: Component, batch: Batch) -> list[Activation]:
    B, S = batch.B, batch.S
    by = {p.role: p for p in comp.parts}
    acts = [Activation("input_ids", (B, S), "token ids", dtype="int64")]
    if "token_type" in by:
        acts.append(Activation("token_type_ids", (B, S), "segment ids (zeros when not given)", dtype="int64"))
    acts.append(Activation("position_ids", (B, S), "position of each token (HF broadcasts one [1, S] row)",
                           dtype="int64"))
    for role, what in (("word", "word lookup"), ("position", "position lookup"), ("token_type", "token-type lookup")):
        if role in by:
            acts.append(Activation(by[role].module, (B, S, out_dim(by[role])), what))
    E = out_dim(by["word"])
    summed = " + ".join(r for r in ("word", "position", "token_type") if r in by)
    base = by["word"].module.rsplit(".", 1)[0]
    acts.append(Activation(base, (B, S, E), f"embedding sum: {summed}"))
    acts.append(Activation(by["emb_norm"].module, (B, S, E), "LayerNorm of the sum"))
    return acts


def _layers(comp: Component, heads: int, act: str, batch: Batch) -> list[Activation]:
    """Every application of the layer template; ALBERT's group holds one or more inner layers."""
    B, S = batch.B, batch.S
    L = comp.times_applied
    sublayers: list[dict[str, Part]] = []
    for p in comp.parts:  # a role seen twice starts the next inner layer (ALBERT lists its LayerNorm first)
        if not sublayers or p.role in sublayers[-1]:
            sublayers.append({})
        sublayers[-1][p.role] = p
    acts: list[Activation] = []
    for by in sublayers:
        H = out_dim(by["q"])
        A = Dim(heads, "A")
        hd = Dim(H.size // heads, "H/A")
        attn = by["q"].module.rsplit(".", 1)[0]  # encoder.layer.{i}.attention.self
        for r in ("q", "k", "v"):
            acts.append(Activation(by[r].module, (B, S, out_dim(by[r])), f"{r.upper()} projection", L))
        for r in ("q", "k", "v"):
            # view(B, S, A, H/A).transpose(1, 2) -> (B, A, S, H/A)
            acts.append(Activation(f"{by[r].module}.heads", (B, A, S, hd), f"{r.upper()} split into heads", L))
        acts += [
            Activation(f"{attn}.scores", (B, A, S, S), "attention scores Q·Kᵀ/√(H/A) + mask", L),
            Activation(f"{attn}.probs", (B, A, S, S), "attention probabilities: softmax(scores)", L),
            Activation(f"{attn}.context.heads", (B, A, S, hd), "probs · V, per head", L),
            Activation(f"{attn}.context", (B, S, H), "context: heads merged back (B, S, A·H/A)", L),
            Activation(by["attn_out"].module, (B, S, out_dim(by["attn_out"])), "attention output projection", L),
            Activation(by["attn_norm"].module, (B, S, H), "LayerNorm(dense + residual)", L),
            Activation(by["ffn_in"].module, (B, S, out_dim(by["ffn_in"])), "FFN intermediate (up-projection)", L),
            Activation(f"{by['ffn_in'].module}.act", (B, S, out_dim(by["ffn_in"])), f"{act}(intermediate)", L),
            Activation(by["ffn_out"].module, (B, S, out_dim(by["ffn_out"])), "FFN down-projection", L),
            Activation(by["ffn_norm"].module, (B, S, H), "layer output: LayerNorm(ffn + residual)", L),
        ]
    return acts


def _pooler(dense: Part, batch: Batch) -> list[Activation]:
    B = batch.B
    H = out_dim(dense)
    pm = dense.module.rsplit(".", 1)[0] if dense.module.endswith(".dense") else dense.module
    return [
        Activation(f"{pm}.first_token", (B, in_dim(dense)), "hidden state of the first ([CLS]) token"),
        Activation(dense.module, (B, H), "pooler dense"),
        Activation(f"{pm}.activation", (B, H), "pooled [CLS] output: tanh(dense)"),
    ]


def _head(comp: Component, act: str, batch: Batch) -> list[Activation]:
    B, S = batch.B, batch.S
    by = {p.role: p for p in comp.parts}
    acts: list[Activation] = []
    if "mlm_decoder" in by:
        t = by.get("mlm_transform")
        if t is not None:
            acts.append(Activation(t.module, (B, S, out_dim(t)), "MLM transform dense"))
            acts.append(Activation(f"{t.module}.act", (B, S, out_dim(t)), f"{act}(transform)"))
        if "mlm_norm" in by:
            acts.append(Activation(by["mlm_norm"].module, (B, S, out_dim(t) if t else in_dim(by["mlm_decoder"])),
                                   "MLM transform LayerNorm"))
        d = by["mlm_decoder"]
        acts.append(Activation(d.module, (B, S, out_dim(d)), "MLM logits over the vocabulary"))
        return acts
    what = {
        "cls_dense": "classifier dense on [CLS]",
        "cls_out": "classification logits",
        "qa_out": "start/end logits per token",
        "seq_relationship": "sentence-pair logits from the pooled output",
        "disc_dense": "discriminator dense",
        "disc_pred": "replaced-token logit per token",
    }
    for p in comp.parts:
        rows = (B,) if p.tokens == "first" else (B, S)
        acts.append(Activation(p.module, (*rows, out_dim(p)), what.get(p.role, p.label)))
    return acts
