"""BERT: ``transformers.models.bert.modeling_bert``, tensor by tensor.

Each function mirrors the ``__init__`` of the HF module it names; the state-dict names are HF's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import BertConfig
from ..model import Architecture, Component, Dim
from ._parts import embedding, layernorm, linear

if TYPE_CHECKING:
    from ..activations import Activation, Batch


def dims(cfg: BertConfig) -> dict[str, Dim]:
    return {
        "V": Dim(cfg.vocab_size, "vocab_size"),
        "H": Dim(cfg.hidden_size, "hidden_size"),
        "I": Dim(cfg.intermediate_size, "intermediate_size"),
        "P": Dim(cfg.max_position_embeddings, "max_position_embeddings"),
        "T": Dim(cfg.type_vocab_size, "type_vocab_size"),
    }


def embeddings(cfg: BertConfig, prefix: str = "") -> Component:
    """BertEmbeddings: three lookups, summed, then one LayerNorm.

    The buffers ``position_ids`` and ``token_type_ids`` are registered with ``persistent=False``, so they are
    not in the state dict and hold no parameters.
    """
    d = dims(cfg)
    m = f"{prefix}embeddings"
    return Component(
        "embeddings",
        (
            embedding("word_embeddings", f"{m}.word_embeddings", d["V"], d["H"], "one row per token id"),
            embedding("position_embeddings", f"{m}.position_embeddings", d["P"], d["H"], "one row per position"),
            embedding("token_type_embeddings", f"{m}.token_type_embeddings", d["T"], d["H"], "one row per segment"),
            layernorm("LayerNorm", f"{m}.LayerNorm", d["H"], "normalises the sum of the three lookups"),
        ),
    )


def encoder_layer(cfg: BertConfig, prefix: str = "") -> Component:
    """One BertLayer, as a template over ``{i}``: attention (Q, K, V, output, LayerNorm), then the FFN."""
    d = dims(cfg)
    H, I = d["H"], d["I"]  # noqa: E741
    m = f"{prefix}encoder.layer.{{i}}"
    return Component(
        "encoder layer",
        (
            linear("query", f"{m}.attention.self.query", H, H, description="Q projection"),
            linear("key", f"{m}.attention.self.key", H, H, description="K projection"),
            linear("value", f"{m}.attention.self.value", H, H, description="V projection"),
            linear("attention output dense", f"{m}.attention.output.dense", H, H,
                   description="merges the heads back into H"),
            layernorm("attention LayerNorm", f"{m}.attention.output.LayerNorm", H,
                      "after the attention residual"),
            linear("intermediate dense", f"{m}.intermediate.dense", H, I, description="FFN up-projection (w1, b1)"),
            linear("output dense", f"{m}.output.dense", I, H, description="FFN down-projection (w2, b2)"),
            layernorm("output LayerNorm", f"{m}.output.LayerNorm", H, "after the FFN residual"),
        ),
        repeat=cfg.num_hidden_layers,
        repeat_symbol="num_hidden_layers",
    )


def pooler(cfg: BertConfig, prefix: str = "") -> Component:
    """BertPooler: a dense layer + tanh on the first ([CLS]) token only."""
    H = dims(cfg)["H"]
    return Component(
        "pooler",
        (linear("dense", f"{prefix}pooler.dense", H, H, tokens="first", description="tanh(W·h[CLS] + b)"),),
    )


def bert_model(cfg: BertConfig, prefix: str = "", add_pooling_layer: bool = True) -> list[Component]:
    """BertModel(config, add_pooling_layer)."""
    parts = [embeddings(cfg, prefix), encoder_layer(cfg, prefix)]
    if add_pooling_layer:
        parts.append(pooler(cfg, prefix))
    return parts


def build(cfg: BertConfig, head: str = "model", pooler: bool = True) -> Architecture:
    if head != "model":
        raise ValueError(f"unknown head {head!r}")
    return Architecture(
        family="bert",
        model_class="BertModel",
        head=head,
        components=tuple(bert_model(cfg, "", pooler)),
        values=values(cfg),
    )


def values(cfg: BertConfig) -> dict[str, int]:
    """Every symbol a formula may use, with its size."""
    return {
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "intermediate_size": cfg.intermediate_size,
        "max_position_embeddings": cfg.max_position_embeddings,
        "type_vocab_size": cfg.type_vocab_size,
    }


def forward(arch: Architecture, cfg: BertConfig, batch: Batch) -> list[Activation]:
    """BertModel.forward, step by step: the activations it creates, in order.

    Widths come from the weights of ``arch`` (a Linear's output is its weight's first dimension).
    """
    from ..activations import Activation, out_dim

    B, S = batch.B, batch.S
    comps = {c.name: c for c in arch.components}
    emb = {p.label: p for p in comps["embeddings"].parts}
    layer = comps["encoder layer"]
    lp = {p.label: p for p in layer.parts}
    H = out_dim(emb["word_embeddings"])  # (B, S, H)
    A = Dim(cfg.num_attention_heads, "A")
    hd = Dim(cfg.head_dim, "H/A")
    I = out_dim(lp["intermediate dense"])  # noqa: E741
    L = layer.repeat
    e = emb["word_embeddings"].module.rsplit(".", 1)[0]  # "embeddings" (with any prefix)
    acts = [
        Activation("input_ids", (B, S), "token ids", dtype="int64"),
        Activation("token_type_ids", (B, S), "segment ids (zeros when not given)", dtype="int64"),
        Activation("position_ids", (B, S), "0..S-1 per row (HF broadcasts one [1, S] row)", dtype="int64"),
        Activation(emb["word_embeddings"].module, (B, S, H), "word lookup"),
        Activation(emb["position_embeddings"].module, (B, S, H), "position lookup"),
        Activation(emb["token_type_embeddings"].module, (B, S, H), "token-type lookup"),
        Activation(e, (B, S, H), "embedding sum: word + position + token_type"),
        Activation(emb["LayerNorm"].module, (B, S, H), "LayerNorm of the sum: the encoder's input"),
    ]
    attn = lp["query"].module.rsplit(".", 1)[0]  # encoder.layer.{i}.attention.self
    for qkv in ("query", "key", "value"):
        acts.append(Activation(lp[qkv].module, (B, S, out_dim(lp[qkv])), f"{qkv[0].upper()} projection", L))
    for qkv in ("query", "key", "value"):
        # view(B, S, A, H/A).transpose(1, 2) -> (B, A, S, H/A)
        acts.append(Activation(f"{lp[qkv].module}.heads", (B, A, S, hd), f"{qkv[0].upper()} split into heads", L))
    acts += [
        Activation(f"{attn}.scores", (B, A, S, S), "attention scores Q·Kᵀ/√(H/A) + mask", L),
        Activation(f"{attn}.probs", (B, A, S, S), "attention probabilities: softmax(scores)", L),
        Activation(f"{attn}.context.heads", (B, A, S, hd), "probs · V, per head", L),
        Activation(f"{attn}.context", (B, S, H), "context: heads merged back (B, S, A·H/A)", L),
        Activation(lp["attention output dense"].module, (B, S, out_dim(lp["attention output dense"])),
                   "attention output projection", L),
        Activation(lp["attention LayerNorm"].module, (B, S, H), "LayerNorm(dense + residual)", L),
        Activation(lp["intermediate dense"].module, (B, S, I), "FFN intermediate (up-projection)", L),
        Activation(lp["intermediate dense"].module.rsplit(".", 1)[0] + ".intermediate_act_fn", (B, S, I),
                   f"{cfg.hidden_act}(intermediate)", L),
        Activation(lp["output dense"].module, (B, S, out_dim(lp["output dense"])), "FFN down-projection", L),
        Activation(lp["output LayerNorm"].module, (B, S, H), "layer output: LayerNorm(dense + residual)", L),
    ]
    if "pooler" in comps:
        dense = comps["pooler"].parts[0]
        pm = dense.module.rsplit(".", 1)[0]
        acts += [
            Activation(f"{pm}.first_token", (B, H), "hidden state of the first ([CLS]) token"),
            Activation(dense.module, (B, out_dim(dense)), "pooler dense"),
            Activation(f"{pm}.activation", (B, H), "pooled [CLS] output: tanh(dense)"),
        ]
    return acts
