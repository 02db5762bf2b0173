"""DistilBERT: ``transformers.models.distilbert.modeling_distilbert``, tensors and forward side by side.

Its own field names (``dim``, ``n_layers``, ``n_heads``, ``hidden_dim``), its own module names (``q_lin``,
``k_lin``, ``v_lin``, ``out_lin``, ``sa_layer_norm``, ``ffn.lin1``/``lin2``, ``output_layer_norm``), no token
types and no pooler. With ``sinusoidal_pos_embds`` the position table is filled with fixed values, but it is
still a parameter of the same shape, so it still counts.
"""

from typing import Annotated, ClassVar

from pydantic import Field

from ..config import Count, Dims, ModelConfig, Prob, Size
from ..errors import UsageError
from ..model import Architecture, Buffer, Component, Dim
from ._heads import HEAD_CLASSES, check_head, qa_head, token_classifier, unused
from ._parts import embedding, layernorm, linear

HEADS = ("model", "mlm", "seq-cls", "token-cls", "qa", "multiple-choice")
HF_CONFIG = "DistilBertConfig"  # transformers' config class
HF_PREFIX = "DistilBert"  # transformers' model classes: DistilBertModel, DistilBertForMaskedLM, ...
BASE_PREFIX = "distilbert."  # the base model's name inside a task model
POOLER_ARG = False  # DistilBertModel takes no add_pooling_layer
ORDER = 3


class DistilBertConfig(ModelConfig):
    """HuggingFace ``DistilBertConfig``'s shape fields and defaults (distilbert-base-uncased)."""

    family: ClassVar[str] = "distilbert"
    display: ClassVar[str] = "DistilBERT"
    SYMBOLS: ClassVar[dict[str, str]] = {"n_layers": "L", "vocab_size": "V", "max_position_embeddings": "P",
                                         "dim": "H", "hidden_dim": "I", "num_labels": "C", "n_heads": "A"}
    MEMORY_ONLY: ClassVar[tuple[str, ...]] = ("dropout", "attention_dropout", "seq_classif_dropout", "qa_dropout")
    FLAGS: ClassVar[dict[str, str]] = {
        "layers": "n_layers",
        "hidden": "dim",
        "heads": "n_heads",
        "intermediate": "hidden_dim",
        "vocab": "vocab_size",
        "max_positions": "max_position_embeddings",
        "labels": "num_labels",
    }
    HIDDEN: ClassVar[str] = "dim"
    HEADS: ClassVar[str] = "n_heads"
    INTERMEDIATE: ClassVar[str] = "hidden_dim"

    vocab_size: Size = Field(30522, description="Tokens in the vocabulary.")
    max_position_embeddings: Size = Field(512, description="Rows of position_embeddings.")
    sinusoidal_pos_embds: Annotated[bool, Field(strict=True)] = Field(False, description="Fixed position table.")
    n_layers: Count = Field(6, description="Transformer blocks (L).")
    n_heads: Size = Field(12, description="Attention heads (A); must divide dim.")
    dim: Size = Field(768, description="Hidden width (H).")
    hidden_dim: Size = Field(3072, description="Feed-forward width (I).")
    activation: str = Field("gelu", description="Feed-forward activation. Shown, not counted.")
    dropout: Prob = Field(0.1, description="Dropout after embeddings and the FFN (memory: masks).")
    attention_dropout: Prob = Field(0.1, description="Dropout on attention probabilities (memory).")
    seq_classif_dropout: Prob = Field(0.2, description="Dropout before the sequence classifier (memory).")
    qa_dropout: Prob = Field(0.1, description="Dropout before the QA head (memory).")

    @property
    def dims(self) -> Dims:
        return Dims(self.n_layers, self.dim, self.n_heads, self.hidden_dim, self.vocab_size,
                    self.max_position_embeddings, 0, self.dim, self.num_labels, self.max_position_embeddings)


# ------------------------------------------------------------------------------- __init__: the tensors


def components(cfg: DistilBertConfig, head: str, prefix: str) -> list[Component]:
    V, P = Dim(cfg.vocab_size, "vocab_size"), Dim(cfg.max_position_embeddings, "max_position_embeddings")
    H, I = Dim(cfg.dim, "dim"), Dim(cfg.hidden_dim, "hidden_dim")  # noqa: E741
    C = Dim(cfg.num_labels, "num_labels")
    e, m = f"{prefix}embeddings", f"{prefix}transformer.layer.{{i}}"
    comps = [
        Component("embeddings", (
            embedding("word_embeddings", f"{e}.word_embeddings", V, H, "one row per token id", role="word"),
            embedding("position_embeddings", f"{e}.position_embeddings", P, H, "one row per position",
                      role="position"),
            layernorm("LayerNorm", f"{e}.LayerNorm", H, "normalises word + position", role="emb_norm"),
        )),
        Component("encoder layer", (
            linear("q_lin", f"{m}.attention.q_lin", H, H, description="Q projection", role="q"),
            linear("k_lin", f"{m}.attention.k_lin", H, H, description="K projection", role="k"),
            linear("v_lin", f"{m}.attention.v_lin", H, H, description="V projection", role="v"),
            linear("out_lin", f"{m}.attention.out_lin", H, H, description="attention output", role="attn_out"),
            layernorm("sa_layer_norm", f"{m}.sa_layer_norm", H, "after the attention residual", role="attn_norm"),
            linear("ffn.lin1", f"{m}.ffn.lin1", H, I, description="FFN up-projection", role="ffn_in"),
            linear("ffn.lin2", f"{m}.ffn.lin2", I, H, description="FFN down-projection", role="ffn_out"),
            layernorm("output_layer_norm", f"{m}.output_layer_norm", H, "after the FFN residual", role="ffn_norm"),
        ), repeat=cfg.n_layers, repeat_symbol="n_layers"),
    ]
    if head == "mlm":
        tied = f"{e}.word_embeddings.weight" if cfg.tie_word_embeddings else None
        comps.append(Component("MLM head", (
            linear("vocab_transform", "vocab_transform", H, H, role="mlm_transform"),
            layernorm("vocab_layer_norm", "vocab_layer_norm", H, role="mlm_norm"),
            linear("vocab_projector", "vocab_projector", H, V, role="mlm_decoder",
                   description="logits over the vocabulary", weight_tied_to=tied),
        )))
    elif head in ("seq-cls", "multiple-choice"):  # the same two Linears; one logit per choice
        out = C if head == "seq-cls" else Dim(1)
        comps.append(Component("sequence classifier" if head == "seq-cls" else "multiple-choice classifier", (
            linear("pre_classifier", "pre_classifier", H, H, tokens="first", role="cls_dense", description="on [CLS]"),
            linear("classifier", "classifier", H, out, tokens="first", role="cls_out", description="logits"),
        )))
    elif head == "token-cls":
        comps.append(token_classifier(H, C))
    elif head == "qa":
        if cfg.num_labels != 2:  # DistilBertForQuestionAnswering refuses any other value
            raise UsageError(f"DistilBertForQuestionAnswering needs num_labels 2 (start and end), got {cfg.num_labels}",
                             param="labels")
        comps.append(qa_head(H, C))
    return comps


# -------------------------------------------------------------------------------- forward: the program


def forward(cfg: DistilBertConfig, comps: list[Component], head: str):
    """Embeddings (word + position, LayerNorm, dropout); TransformerBlock × L, which has no dropout after
    ``out_lin`` and whose attention and FFN rebind their intermediates (nothing held past its use but the
    sublayer outputs beside each LayerNorm); then the head."""
    from . import _blocks as blocks

    c = {x.name: x for x in comps}
    e = blocks.Trace()
    embedded = blocks.embeddings(e, c["embeddings"].parts, cfg.dropout)
    embedded.until = "base"  # DistilBertModel holds `embeddings` for the whole transformer call
    enc = blocks.encoder(c["encoder layer"], heads=cfg.n_heads, act=cfg.activation, p_hidden=cfg.dropout,
                         p_attn=cfg.attention_dropout, attn_out_dropout=False, hold_context=False,
                         hold_intermediate=False)
    hidden = blocks.hidden_of(embedded, enc)
    h = blocks.Trace()
    if head == "mlm":
        blocks.mlm(h, c["MLM head"].parts, hidden, cfg.activation)
    elif head in ("seq-cls", "multiple-choice"):  # hidden[:, 0] -> pre_classifier -> ReLU -> dropout -> classifier
        pre, out = (c.get("sequence classifier") or c["multiple-choice classifier"]).parts
        h.moment("head")
        x = h.first(hidden, f"{pre.module}.first_token", listed=False)
        x = h.act("relu", h.linear(pre, x, blocks.HEAD_WORDS["cls_dense"]), listed=False)
        blocks.classify(h, out, x, cfg.seq_classif_dropout)
    elif head == "token-cls":
        blocks.classify(h, c["token classifier"].parts[0], hidden, cfg.dropout)
    elif head == "qa":
        blocks.classify(h, c["QA head"].parts[0], hidden, cfg.qa_dropout, loss="spans")
    else:
        h.loss("sum", hidden)
    return blocks.program(e, embedded, enc, hidden, None, h)


def build(cfg: DistilBertConfig, head: str = "model", pooler_: bool = True) -> Architecture:
    check_head(head, "DistilBERT", HEADS)
    prefix = "" if head == "model" else BASE_PREFIX
    comps = components(cfg, head, prefix)
    return Architecture("distilbert", HF_PREFIX + HEAD_CLASSES[head], head, tuple(comps), cfg.symbol_values(), prefix,
                        unused(cfg, labels=head in ("seq-cls", "token-cls", "qa"), ties=head == "mlm"),
                        forward=lambda: forward(cfg, comps, head),
                        buffers=(Buffer(f"{prefix}embeddings.position_ids", (1, cfg.max_position_embeddings)),),
                        base_prefix=BASE_PREFIX, choices=head == "multiple-choice")


CONFIG = DistilBertConfig
