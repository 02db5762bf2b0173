"""BERT: ``transformers.models.bert.modeling_bert``, tensor by tensor.

Each function mirrors the ``__init__`` of the HF module it names; the state-dict names are HF's. RoBERTa and
ELECTRA reuse the encoder layer and pooler from here.
"""

from __future__ import annotations

from ..config import BertConfig
from ..model import Architecture, Component, Dim
from ._heads import HEAD_CLASSES, check_head, pooled_classifier, qa_head, token_classifier, unused
from ._parts import embedding, layernorm, linear, lone_bias

HEADS = ("model", "mlm", "pretraining", "seq-cls", "token-cls", "qa")


def dims(cfg: BertConfig) -> dict[str, Dim]:
    return {
        "V": Dim(cfg.vocab_size, "vocab_size"),
        "H": Dim(cfg.hidden_size, "hidden_size"),
        "I": Dim(cfg.intermediate_size, "intermediate_size"),
        "P": Dim(cfg.max_position_embeddings, "max_position_embeddings"),
        "T": Dim(cfg.type_vocab_size, "type_vocab_size"),
        "C": Dim(cfg.num_labels, "num_labels"),
    }


def embeddings(d: dict[str, Dim], prefix: str = "", width: Dim | None = None) -> Component:
    """BertEmbeddings: three lookups, summed, then one LayerNorm (at ``width``, H unless factorized).

    The buffers ``position_ids`` and ``token_type_ids`` are registered with ``persistent=False``, so they are
    not in the state dict and hold no parameters.
    """
    E = width or d["H"]
    m = f"{prefix}embeddings"
    return Component(
        "embeddings",
        (
            embedding("word_embeddings", f"{m}.word_embeddings", d["V"], E, "one row per token id", role="word"),
            embedding("position_embeddings", f"{m}.position_embeddings", d["P"], E, "one row per position",
                      role="position"),
            embedding("token_type_embeddings", f"{m}.token_type_embeddings", d["T"], E, "one row per segment",
                      role="token_type"),
            layernorm("LayerNorm", f"{m}.LayerNorm", E, "normalises the sum of the three lookups", role="emb_norm"),
        ),
    )


def encoder_layer(d: dict[str, Dim], layers: int, prefix: str = "") -> Component:
    """One BertLayer, as a template over ``{i}``: attention (Q, K, V, output, LayerNorm), then the FFN."""
    H, I = d["H"], d["I"]  # noqa: E741
    m = f"{prefix}encoder.layer.{{i}}"
    return Component(
        "encoder layer",
        (
            linear("query", f"{m}.attention.self.query", H, H, description="Q projection", role="q"),
            linear("key", f"{m}.attention.self.key", H, H, description="K projection", role="k"),
            linear("value", f"{m}.attention.self.value", H, H, description="V projection", role="v"),
            linear("attention output dense", f"{m}.attention.output.dense", H, H,
                   description="merges the heads back into H", role="attn_out"),
            layernorm("attention LayerNorm", f"{m}.attention.output.LayerNorm", H,
                      "after the attention residual", role="attn_norm"),
            linear("intermediate dense", f"{m}.intermediate.dense", H, I, description="FFN up-projection (w1, b1)",
                   role="ffn_in"),
            linear("output dense", f"{m}.output.dense", I, H, description="FFN down-projection (w2, b2)",
                   role="ffn_out"),
            layernorm("output LayerNorm", f"{m}.output.LayerNorm", H, "after the FFN residual", role="ffn_norm"),
        ),
        repeat=layers,
        repeat_symbol="num_hidden_layers",
    )


def pooler(H: Dim, prefix: str = "", module: str = "pooler.dense") -> Component:
    """BertPooler: a dense layer + tanh on the first ([CLS]) token only."""
    return Component(
        "pooler",
        (linear("dense", f"{prefix}{module}", H, H, tokens="first", description="tanh(W·h[CLS] + b)",
                role="pooler"),),
    )


def mlm_head(d: dict[str, Dim], word: str, tie: bool) -> Component:
    """BertOnlyMLMHead: transform (dense + act + LayerNorm), then the decoder to the vocabulary.

    The decoder weight is tied to the word embeddings and its bias to ``cls.predictions.bias``, unless the
    config sets ``tie_word_embeddings: false``.
    """
    H, V = d["H"], d["V"]
    m = "cls.predictions"
    return Component(
        "MLM head",
        (
            lone_bias("bias", f"{m}.bias", V, "output bias per token id", role="mlm_bias"),
            linear("transform dense", f"{m}.transform.dense", H, H, role="mlm_transform"),
            layernorm("transform LayerNorm", f"{m}.transform.LayerNorm", H, role="mlm_norm"),
            linear("decoder", f"{m}.decoder", H, V, role="mlm_decoder", description="logits over the vocabulary",
                   weight_tied_to=word if tie else None, bias_tied_to=f"{m}.bias" if tie else None),
        ),
    )


def nsp_head(H: Dim) -> Component:
    """BertOnlyNSPHead: next-sentence prediction, 2 logits from the pooled output."""
    return Component("NSP head", (
        linear("seq_relationship", "cls.seq_relationship", H, Dim(2), tokens="first", role="seq_relationship",
               description="is-next / not-next"),
    ))


def build(cfg: BertConfig, head: str = "model", pooler_: bool = True) -> Architecture:
    check_head(head, "BERT", HEADS)
    d = dims(cfg)
    prefix = "" if head == "model" else "bert."
    with_pooler = {"model": pooler_, "pretraining": True, "seq-cls": True}.get(head, False)
    comps = [embeddings(d, prefix), encoder_layer(d, cfg.num_hidden_layers, prefix)]
    if with_pooler:
        comps.append(pooler(d["H"], prefix))
    word = f"{prefix}embeddings.word_embeddings.weight"
    if head in ("mlm", "pretraining"):
        comps.append(mlm_head(d, word, cfg.tie_word_embeddings))
    if head == "pretraining":
        comps.append(nsp_head(d["H"]))
    if head == "seq-cls":
        comps.append(pooled_classifier(d["H"], d["C"]))
    if head == "token-cls":
        comps.append(token_classifier(d["H"], d["C"]))
    if head == "qa":
        comps.append(qa_head(d["H"], d["C"]))
    return Architecture(
        family="bert",
        model_class="Bert" + HEAD_CLASSES[head],
        head=head,
        components=tuple(comps),
        values=cfg.symbol_values(),
        prefix=prefix,
        unused_fields=unused(labels=head in ("seq-cls", "token-cls", "qa"), ties=head in ("mlm", "pretraining")),
    )
