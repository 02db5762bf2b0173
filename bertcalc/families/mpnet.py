"""MPNet: ``transformers.models.mpnet.modeling_mpnet``, tensors and forward side by side.

BERT's post-norm layer under other module names (``attention.attn.q``/``k``/``v``/``o``, ``attention.LayerNorm``),
no token types, and one tensor more: ``encoder.relative_attention_bias`` (an Embedding of
``relative_attention_num_buckets`` rows × ``num_attention_heads``), listed after the layers. MPNetEncoder turns
it into an additive attention bias ``[B, A, S, S]`` once per forward (T5's bucketing of the relative position
``key - query``: 16 buckets each way, 8 exact, then logarithmic up to a distance of 128) and hands the same
tensor to every layer, which adds it to its scaled scores in place.

Positions start after ``padding_idx``, which MPNetEmbeddings fixes at 1 whatever ``pad_token_id`` says (as
RoBERTa's offset): ``max_position_embeddings`` 514 holds 512 tokens. ``compute_position_bias`` buckets into
32 whatever ``relative_attention_num_buckets`` says (its default argument), so a table of fewer rows breaks
transformers' forward at longer sequences, and rows past 32 are never read; the shapes are the config's.

The heads: ``lm_head`` (dense, gelu, layer_norm, decoder tied to the word embeddings, its bias to
``lm_head.bias``), a classifier of dense + tanh + ``out_proj`` on the first token, ``classifier`` per token,
``qa_outputs``, and for multiple choice the pooler and ``classifier [1, H]``, one logit per choice (the
input ``[B, C, S]`` is run as ``B·C`` rows). transformers gives MPNet no sdpa attention and no gradient
checkpointing (``supports_gradient_checkpointing`` is False): ``memory`` refuses both.
"""

from typing import Annotated, ClassVar

from pydantic import Field

from ..config import MAX_SIZE, Count, Dims, Eps, ModelConfig, Prob, Size
from ..model import Architecture, Buffer, Component, Dim
from ._heads import HEAD_CLASSES, check_head, dense_classifier, qa_head, token_classifier, unused
from ._parts import embedding, layernorm, linear, lone_bias

HEADS = ("model", "mlm", "seq-cls", "token-cls", "qa", "multiple-choice")
HF_CONFIG = "MPNetConfig"  # transformers' config class
HF_PREFIX = "MPNet"  # transformers' model classes: MPNetModel, MPNetForMaskedLM, ...
BASE_PREFIX = "mpnet."  # the base model's name inside a task model
POOLER_ARG = True  # MPNetModel(config, add_pooling_layer=...)
ORDER = 8
PADDING_IDX = 1  # MPNetEmbeddings.padding_idx, fixed: positions start at 2
Rows = Annotated[int, Field(ge=PADDING_IDX + 1, le=MAX_SIZE, strict=True)]  # a table with a padding row


class MPNetConfig(ModelConfig):
    """HuggingFace ``MPNetConfig``'s shape fields and defaults (mpnet-base, but ``max_position_embeddings``
    512 where the released checkpoints have 514)."""

    family: ClassVar[str] = "mpnet"
    display: ClassVar[str] = "MPNet"
    SYMBOLS: ClassVar[dict[str, str]] = {
        "num_hidden_layers": "L", "vocab_size": "V", "max_position_embeddings": "P", "hidden_size": "H",
        "intermediate_size": "I", "num_labels": "C", "num_attention_heads": "A", "relative_attention_num_buckets": "R",
    }
    MEMORY_ONLY: ClassVar[tuple[str, ...]] = ("hidden_dropout_prob", "attention_probs_dropout_prob")
    FLAGS: ClassVar[dict[str, str]] = {
        "layers": "num_hidden_layers",
        "hidden": "hidden_size",
        "heads": "num_attention_heads",
        "intermediate": "intermediate_size",
        "vocab": "vocab_size",
        "max_positions": "max_position_embeddings",
        "labels": "num_labels",
    }

    # both tables have padding_idx 1 (nn.Embedding asserts a row 1)
    vocab_size: Rows = Field(30527, description="Tokens in the vocabulary (rows of word_embeddings).")
    hidden_size: Size = Field(768, description="Width of every hidden state (H).")
    num_hidden_layers: Count = Field(12, description="Encoder layers (L).")
    num_attention_heads: Size = Field(12, description="Attention heads per layer (A); must divide H.")
    intermediate_size: Size = Field(3072, description="Width of the feed-forward layer (I).")
    max_position_embeddings: Rows = Field(512, description="Rows of position_embeddings; positions start at 2.")
    relative_attention_num_buckets: Size = Field(32, description="Rows of encoder.relative_attention_bias (R); "
                                                 "transformers' forward reads buckets 0-31 whatever the value.")
    hidden_act: str = Field("gelu", description="Feed-forward activation. Shown, not counted.")
    layer_norm_eps: Eps = Field(1e-12, description="LayerNorm epsilon. Shown, not counted.")
    hidden_dropout_prob: Prob = Field(0.1, description="Dropout after embeddings, sublayers and before the heads "
                                      "(memory: masks).")
    attention_probs_dropout_prob: Prob = Field(0.1, description="Dropout on attention probabilities (memory).")
    pad_token_id: Count | None = Field(1, description="Padding token id (the embeddings use padding_idx 1 "
                                       "whatever it is).")

    @property
    def dims(self) -> Dims:
        P = self.max_position_embeddings
        return Dims(self.num_hidden_layers, self.hidden_size, self.num_attention_heads, self.intermediate_size,
                    self.vocab_size, P, 0, self.hidden_size, self.num_labels, max(0, P - PADDING_IDX - 1))


CONFIG = MPNetConfig


# ------------------------------------------------------------------------------- __init__: the tensors


def components(cfg: MPNetConfig, head: str, prefix: str, pooler_: bool) -> list[Component]:
    V, P = Dim(cfg.vocab_size, "vocab_size"), Dim(cfg.max_position_embeddings, "max_position_embeddings")
    H, I = Dim(cfg.hidden_size, "hidden_size"), Dim(cfg.intermediate_size, "intermediate_size")  # noqa: E741
    A, R = Dim(cfg.num_attention_heads, "num_attention_heads"), Dim(cfg.relative_attention_num_buckets,
                                                                     "relative_attention_num_buckets")
    C = Dim(cfg.num_labels, "num_labels")
    e, m = f"{prefix}embeddings", f"{prefix}encoder.layer.{{i}}"
    comps = [
        Component("embeddings", (
            embedding("word_embeddings", f"{e}.word_embeddings", V, H, "one row per token id", role="word"),
            embedding("position_embeddings", f"{e}.position_embeddings", P, H,
                      "one row per position, offset by padding_idx + 1", role="position"),
            layernorm("LayerNorm", f"{e}.LayerNorm", H, "normalises word + position", role="emb_norm"),
        )),
        Component("encoder layer", (
            linear("q", f"{m}.attention.attn.q", H, H, description="Q projection", role="q"),
            linear("k", f"{m}.attention.attn.k", H, H, description="K projection", role="k"),
            linear("v", f"{m}.attention.attn.v", H, H, description="V projection", role="v"),
            linear("o", f"{m}.attention.attn.o", H, H, description="merges the heads back into H", role="attn_out"),
            layernorm("attention LayerNorm", f"{m}.attention.LayerNorm", H, "after the attention residual",
                      role="attn_norm"),
            linear("intermediate dense", f"{m}.intermediate.dense", H, I, description="FFN up-projection",
                   role="ffn_in"),
            linear("output dense", f"{m}.output.dense", I, H, description="FFN down-projection", role="ffn_out"),
            layernorm("output LayerNorm", f"{m}.output.LayerNorm", H, "after the FFN residual", role="ffn_norm"),
        ), repeat=cfg.num_hidden_layers, repeat_symbol="num_hidden_layers"),
        Component("relative attention bias", (
            embedding("relative_attention_bias", f"{prefix}encoder.relative_attention_bias", R, A,
                      "one bias per relative-position bucket and head, shared by every layer", role="position_bias"),
        )),
    ]
    if (head == "model" and pooler_) or head == "multiple-choice":
        comps.append(Component("pooler", (
            linear("dense", f"{prefix}pooler.dense", H, H, tokens="first", description="tanh(W·h[CLS] + b)",
                   role="pooler"),
        )))
    if head == "mlm":
        word, tie = f"{e}.word_embeddings.weight", cfg.tie_word_embeddings
        comps.append(Component("MLM head", (
            lone_bias("bias", "lm_head.bias", V, "output bias per token id", role="mlm_bias"),
            linear("dense", "lm_head.dense", H, H, role="mlm_transform"),
            layernorm("layer_norm", "lm_head.layer_norm", H, role="mlm_norm"),
            linear("decoder", "lm_head.decoder", H, V, role="mlm_decoder", description="logits over the vocabulary",
                   weight_tied_to=word if tie else None, bias_tied_to="lm_head.bias" if tie else None),
        )))
    elif head == "seq-cls":
        comps.append(dense_classifier(H, C))
    elif head == "token-cls":
        comps.append(token_classifier(H, C))
    elif head == "qa":
        comps.append(qa_head(H, C))
    elif head == "multiple-choice":
        comps.append(Component("multiple-choice classifier", (
            linear("classifier", "classifier", H, Dim(1), tokens="first", role="cls_out",
                   description="one logit per choice"),
        )))
    return comps


# -------------------------------------------------------------------------------- forward: the program


def forward(cfg: MPNetConfig, comps: list[Component], head: str):
    """MPNetModel: embeddings (word + position, LayerNorm, dropout); the position bias, made once
    (``compute_position_bias``); MPNetLayer × L, each adding that bias to its scores; the pooler; the head.

    MPNetSelfAttention computes the output projection ``o`` itself, so its locals (Q, K, V, the scaled scores,
    the probabilities and the context) live until ``o`` is made; it returns no attention weights, and
    MPNetAttention holds ``o`` until its LayerNorm. A multiple-choice input runs as ``B·C`` rows: ``B`` here
    is the number of rows."""
    from ..program import Attention, B, Linear, PositionBias, S, Value
    from . import _blocks as blocks

    c = {x.name: x for x in comps}
    p = cfg.hidden_dropout_prob
    e = blocks.Trace()
    embedded = blocks.embeddings(e, c["embeddings"].parts, p)
    embedded.until = "base"  # embedding_output: held by MPNetModel.forward for the whole encoder call
    table = c["relative attention bias"].parts[0]
    e.moment("position bias")
    A = Dim(cfg.num_attention_heads, "A")
    bias = e.emit(PositionBias(Value(table.module, (B, A, S, S), "relative position bias, made once and added to "
                                     "every layer's scores", until="base"), table=table))
    enc = blocks.encoder(c["encoder layer"], heads=cfg.num_attention_heads, act=cfg.hidden_act, p_hidden=p,
                         p_attn=cfg.attention_probs_dropout_prob, hold_context=False, bias=bias, sdpa=False,
                         checkpointing=False)
    for layer in enc.layers:
        att = next(op for op in layer.ops if isinstance(op, Attention))
        o = next(op.out for op in layer.ops if isinstance(op, Linear) and op.part.role == "attn_out")
        for v in (att.q, att.k, att.v, att.scores, att.probs):
            v.until = o
    hidden = blocks.hidden_of(embedded, enc)
    tail = blocks.Trace()
    pooled = blocks.pooler(tail, c["pooler"].parts[0], hidden) if "pooler" in c else None
    h = blocks.Trace()
    blocks.roberta_heads(h, c, hidden, pooled, head, p, p)
    return blocks.program(e, embedded, enc, hidden, tail, h)


def build(cfg: MPNetConfig, head: str = "model", pooler_: bool = True) -> Architecture:
    check_head(head, "MPNet", HEADS)
    prefix = "" if head == "model" else BASE_PREFIX
    comps = components(cfg, head, prefix, pooler_)
    return Architecture("mpnet", HF_PREFIX + HEAD_CLASSES[head], head, tuple(comps), cfg.symbol_values(), prefix,
                        unused(cfg, labels=head in ("seq-cls", "token-cls", "qa"), ties=head == "mlm"),
                        forward=lambda: forward(cfg, comps, head),
                        buffers=(Buffer(f"{prefix}embeddings.position_ids", (1, cfg.max_position_embeddings)),),
                        base_prefix=BASE_PREFIX, choices=head == "multiple-choice")
