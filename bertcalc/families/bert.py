"""BERT: ``transformers.models.bert.modeling_bert``, tensor by tensor.

Each function mirrors the ``__init__`` of the HF module it names; the state-dict names are HF's. RoBERTa and
ELECTRA reuse the encoder layer and pooler from here.
"""

from typing import Annotated, ClassVar

from pydantic import Field

from ..config import Count, Dims, Eps, ModelConfig, Prob, Size
from ..model import Architecture, Buffer, Component, Dim
from ._heads import (
    HEAD_CLASSES,
    check_head,
    choice_classifier,
    pooled_classifier,
    qa_head,
    qa_notes,
    token_classifier,
    unused,
)
from ._parts import embedding, layernorm, linear, lone_bias

HEADS = ("model", "mlm", "pretraining", "seq-cls", "token-cls", "qa", "multiple-choice", "causal-lm", "nsp")
# peft.utils.constants.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING["bert"] (peft 0.21): LoRA's default
LORA_TARGETS = ("query", "value")
CLASS_NAMES = {"causal-lm": "BertLMHeadModel"}  # HF's name where it is not "Bert" + the head's suffix
HF_CONFIG = "BertConfig"  # transformers' config class
HF_PREFIX = "Bert"  # transformers' model classes: BertModel, BertForMaskedLM, ...
BASE_PREFIX = "bert."  # the base model's name inside a task model
POOLER_ARG = True  # BertModel(config, add_pooling_layer=...)
ORDER = 1


class BertConfig(ModelConfig):
    """The shape-relevant fields of HuggingFace's ``BertConfig``, with its defaults (BERT-base)."""

    family: ClassVar[str] = "bert"
    display: ClassVar[str] = "BERT"
    SYMBOLS: ClassVar[dict[str, str]] = {
        "num_hidden_layers": "L", "vocab_size": "V", "max_position_embeddings": "P", "type_vocab_size": "T",
        "hidden_size": "H", "intermediate_size": "I", "num_labels": "C", "num_attention_heads": "A",
    }
    MEMORY_ONLY: ClassVar[tuple[str, ...]] = ("hidden_dropout_prob", "attention_probs_dropout_prob",
                                              "classifier_dropout", "is_decoder", "use_cache")
    FLAGS: ClassVar[dict[str, str]] = {
        "layers": "num_hidden_layers",
        "hidden": "hidden_size",
        "heads": "num_attention_heads",
        "intermediate": "intermediate_size",
        "vocab": "vocab_size",
        "max_positions": "max_position_embeddings",
        "type_vocab": "type_vocab_size",
        "labels": "num_labels",
    }

    vocab_size: Size = Field(30522, description="Tokens in the vocabulary (rows of word_embeddings).")
    hidden_size: Size = Field(768, description="Width of every hidden state (H).")
    num_hidden_layers: Count = Field(12, description="Encoder layers (L).")
    num_attention_heads: Size = Field(12, description="Attention heads per layer (A); must divide H.")
    intermediate_size: Size = Field(3072, description="Width of the feed-forward layer (I), usually 4H.")
    max_position_embeddings: Size = Field(512, description="Longest sequence: rows of position_embeddings.")
    type_vocab_size: Size = Field(2, description="Segment (token type) ids: rows of token_type_embeddings.")
    hidden_act: str = Field("gelu", description="Feed-forward activation. Shown, not counted.")
    layer_norm_eps: Eps = Field(1e-12, description="LayerNorm epsilon. Shown, not counted.")
    hidden_dropout_prob: Prob = Field(0.1, description="Dropout after embeddings and sublayers (memory: masks).")
    attention_probs_dropout_prob: Prob = Field(0.1, description="Dropout on attention probabilities (memory).")
    classifier_dropout: Prob | None = Field(None, description="Dropout before a classifier; hidden_dropout_prob "
                                            "when unset (memory).")
    is_decoder: Annotated[bool, Field(strict=True)] = Field(
        False, description="Causal attention (a causal LM). With use_cache, a no-grad forward keeps K and V (memory).")
    use_cache: Annotated[bool, Field(strict=True)] = Field(
        True, description="A decoder's no-grad forward returns a K/V cache (memory; training passes labels: none).")

    @property
    def dims(self) -> Dims:
        return Dims(self.num_hidden_layers, self.hidden_size, self.num_attention_heads, self.intermediate_size,
                    self.vocab_size, self.max_position_embeddings, self.type_vocab_size, self.hidden_size,
                    self.num_labels, self.max_position_embeddings)



CONFIG = BertConfig


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


def buffers(cfg: BertConfig, prefix: str) -> tuple[Buffer, ...]:
    """``position_ids`` and ``token_type_ids``, ``[1, P]`` int64, registered with ``persistent=False``."""
    P = cfg.max_position_embeddings
    return (Buffer(f"{prefix}embeddings.position_ids", (1, P)), Buffer(f"{prefix}embeddings.token_type_ids", (1, P)))


def forward(cfg: BertConfig, comps: list[Component], head: str, *, mlm_act: str | None = None,
            cls_act: str = "tanh", p_cls: float | None = None, p_choice: float | None = None,
            mc: dict | None = None, **layer: bool):
    """BertModel's forward and the task head's, as a program over the parts in ``comps``: embeddings (and a
    projection from E to H where there is one), the layer template × L, the pooler, then the head and its loss
    (a bare model: the sum of its output). RoBERTa, ALBERT and ELECTRA run the same modules under their names:
    ``mlm_act`` is the MLM head's activation, ``cls_act`` that of a dense [CLS] classifier, ``p_cls`` the
    classifier's dropout, ``p_choice`` the multiple-choice classifier's (``p_cls`` unless given); ``mc`` the
    arguments of ELECTRA's sequence summary; ``layer`` goes to :func:`~bertcalc.families._blocks.encoder`."""
    from . import _blocks as blocks
    from ._blocks import Trace

    c = {x.name: x for x in comps}
    act = cfg.hidden_act
    p_h, p_a = cfg.hidden_dropout_prob, cfg.attention_probs_dropout_prob
    e = Trace()
    embedded = blocks.embeddings(e, c["embeddings"].parts, p_h)
    embedded.until = "base"  # embedding_output: held by the base model's forward for the whole encoder call
    project = c.get("embeddings project") or c.get("embedding mapping")
    if project is not None:  # a Linear from the embedding width E to H
        embedded = e.linear(project.parts[0], embedded, "embedding width -> hidden width")
        if "embeddings project" in c:  # ELECTRA rebinds hidden_states: the projection is what the model holds
            embedded.until, e.ops[-2].out.until = "base", None
    layers = next(x for x in comps if x.repeat_symbol is not None)
    # a causal LM with is_decoder: a causal mask; and a no-grad forward keeps a DynamicCache of K and V (HF:
    # use_cache, unless labels are given)
    causal = head == "causal-lm" and bool(getattr(cfg, "is_decoder", False))
    cache = causal and bool(getattr(cfg, "use_cache", False))
    enc = blocks.encoder(layers, heads=cfg.num_attention_heads, act=act, p_hidden=p_h, p_attn=p_a, cache=cache,
                         causal=causal, **layer)
    hidden = blocks.hidden_of(embedded, enc)
    tail = Trace()
    pooled = blocks.pooler(tail, c["pooler"].parts[0], hidden) if "pooler" in c else None
    h = Trace()
    if p_cls is None:
        p_cls = cfg.classifier_dropout if cfg.classifier_dropout is not None else p_h
    mlm = c.get("MLM head") or c.get("generator head")
    if head in ("mlm", "pretraining", "causal-lm") and mlm is not None:  # a causal LM: the same head, causal mask
        blocks.mlm(h, mlm.parts, hidden, mlm_act or act)
    if head == "pretraining" and "discriminator head" in c:
        d = blocks.by_role(c["discriminator head"].parts)
        h.moment("head")
        x = h.linear(d["disc_dense"], hidden, blocks.HEAD_WORDS["disc_dense"])
        x = h.act(act, x, listed=False)
        h.loss("binary", h.linear(d["disc_pred"], x, blocks.HEAD_WORDS["disc_pred"]))
    elif head == "pretraining":
        sentence = c.get("NSP head") or c["SOP head"]
        blocks.classify(h, sentence.parts[0], pooled, p_cls if "SOP head" in c else 0.0)
    elif head == "seq-cls":
        parts = c["sequence classifier"].parts
        if len(parts) > 1:
            blocks.dense_classifier(h, parts, hidden, p_cls, cls_act)
        else:
            blocks.classify(h, parts[0], pooled, p_cls)
    elif head == "token-cls":
        blocks.classify(h, c["token classifier"].parts[0], hidden, p_cls)
    elif head == "qa":
        blocks.classify(h, c["QA head"].parts[0], hidden, loss="spans")
    elif head == "nsp":  # BertOnlyNSPHead: no dropout
        blocks.classify(h, c["NSP head"].parts[0], pooled)
    elif head == "multiple-choice":  # one logit per B·C row; the loss is over the C logits of each example
        p_mc = p_cls if p_choice is None else p_choice
        if mc is not None:  # ELECTRA: SequenceSummary on the first token instead of a pooler, then no dropout
            pooled, p_mc = blocks.sequence_summary(h, c.get("sequence summary"), hidden, **mc), 0.0
        blocks.classify(h, c["multiple-choice classifier"].parts[0], pooled, p_mc)
    elif head == "model":
        h.loss("sum", pooled if pooled is not None else hidden)
    return blocks.program(e, embedded, enc, hidden, tail, h)


def build(cfg: BertConfig, head: str = "model", pooler_: bool = True) -> Architecture:
    check_head(head, "BERT", HEADS)
    d = dims(cfg)
    prefix = "" if head == "model" else "bert."
    with_pooler = {"model": pooler_, "pretraining": True, "seq-cls": True, "multiple-choice": True,
                   "nsp": True}.get(head, False)
    comps = [embeddings(d, prefix), encoder_layer(d, cfg.num_hidden_layers, prefix)]
    if with_pooler:
        comps.append(pooler(d["H"], prefix))
    word = f"{prefix}embeddings.word_embeddings.weight"
    if head in ("mlm", "pretraining", "causal-lm"):
        comps.append(mlm_head(d, word, cfg.tie_word_embeddings))
    if head in ("pretraining", "nsp"):
        comps.append(nsp_head(d["H"]))
    if head == "multiple-choice":
        comps.append(choice_classifier(d["H"]))
    if head == "seq-cls":
        comps.append(pooled_classifier(d["H"], d["C"]))
    if head == "token-cls":
        comps.append(token_classifier(d["H"], d["C"]))
    if head == "qa":
        comps.append(qa_head(d["H"], d["C"]))
    model_class = CLASS_NAMES.get(head, HF_PREFIX + HEAD_CLASSES[head])
    return Architecture(
        family="bert",
        model_class=model_class,
        head=head,
        components=tuple(comps),
        values=cfg.symbol_values(),
        prefix=prefix,
        unused_fields=unused(cfg, labels=head in ("seq-cls", "token-cls", "qa"),
                             ties=head in ("mlm", "pretraining", "causal-lm")),
        forward=lambda: forward(cfg, comps, head),
        buffers=buffers(cfg, prefix),
        base_prefix="bert.",
        choices=head == "multiple-choice",
        notes=qa_notes(cfg, model_class) if head == "qa" else (),
    )
