"""RoBERTa: ``transformers.models.roberta.modeling_roberta``.

BERT's encoder with three differences that show in shapes: ``roberta.`` names; position ids start after the
padding index, so ``max_position_embeddings`` is 514 for 512 usable positions; and released checkpoints have
one token type. The embeddings register ``position_embeddings`` after the LayerNorm, so the state dict lists
it last. The MLM head is ``lm_head``; the sequence classifier is a dense + ``out_proj`` head on [CLS].
"""

from typing import ClassVar

from pydantic import Field, model_validator

from ..config import Count, Dims, Size
from ..model import Architecture, Component
from . import bert
from ._heads import (
    HEAD_CLASSES,
    check_head,
    choice_classifier,
    dense_classifier,
    qa_head,
    qa_notes,
    token_classifier,
    unused,
)
from ._parts import embedding, layernorm, linear, lone_bias
from .bert import BertConfig, buffers, forward

HF_CONFIG = "RobertaConfig"  # transformers' config class
HF_PREFIX = "Roberta"  # transformers' model classes
BASE_PREFIX = "roberta."  # the base model's name inside a task model
POOLER_ARG = True  # whether the bare model takes add_pooling_layer
ORDER = 2
HEADS = ("model", "mlm", "seq-cls", "token-cls", "qa", "multiple-choice", "causal-lm")
# peft.utils.constants.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING["roberta"] (peft 0.21): LoRA's default
LORA_TARGETS = ("query", "value")


class RobertaConfig(BertConfig):
    """HuggingFace ``RobertaConfig``'s shape fields and defaults."""

    family: ClassVar[str] = "roberta"
    display: ClassVar[str] = "RoBERTa"

    vocab_size: Size = Field(50265, description="Tokens in the vocabulary (rows of word_embeddings).")
    pad_token_id: Count = Field(1, description="Padding index: positions start after it.")

    @model_validator(mode="after")
    def _padding_position_exists(self) -> "RobertaConfig":
        if self.pad_token_id >= self.max_position_embeddings:  # position_embeddings has padding_idx too
            raise ValueError(
                f"pad_token_id {self.pad_token_id} is not a row of the position table (max_position_embeddings "
                f"{self.max_position_embeddings}); positions start at pad_token_id + 1"
            )
        return self

    @property
    def dims(self) -> Dims:
        d = super().dims
        return d._replace(max_seq=max(0, self.max_position_embeddings - self.pad_token_id - 1))


def embeddings(d: dict, prefix: str) -> Component:
    m = f"{prefix}embeddings"
    H = d["H"]
    return Component("embeddings", (
        embedding("word_embeddings", f"{m}.word_embeddings", d["V"], H, "one row per token id", role="word"),
        embedding("token_type_embeddings", f"{m}.token_type_embeddings", d["T"], H, "one row per segment",
                  role="token_type"),
        layernorm("LayerNorm", f"{m}.LayerNorm", H, "normalises the sum of the three lookups", role="emb_norm"),
        embedding("position_embeddings", f"{m}.position_embeddings", d["P"], H,
                  "one row per position, offset by padding_idx + 1", role="position"),
    ))


def lm_head(d: dict, word: str, tie: bool) -> Component:
    """RobertaLMHead: dense + gelu + layer_norm, then the decoder (tied to the word embeddings)."""
    H, V = d["H"], d["V"]
    return Component("MLM head", (
        lone_bias("bias", "lm_head.bias", V, "output bias per token id", role="mlm_bias"),
        linear("dense", "lm_head.dense", H, H, role="mlm_transform"),
        layernorm("layer_norm", "lm_head.layer_norm", H, role="mlm_norm"),
        linear("decoder", "lm_head.decoder", H, V, role="mlm_decoder", description="logits over the vocabulary",
               weight_tied_to=word if tie else None, bias_tied_to="lm_head.bias" if tie else None),
    ))


def build(cfg: RobertaConfig, head: str = "model", pooler_: bool = True) -> Architecture:
    return build_as(cfg, head, pooler_, family="roberta", display="RoBERTa", class_prefix=HF_PREFIX, heads=HEADS)


def build_as(cfg: RobertaConfig, head: str, pooler_: bool, *, family: str, display: str, class_prefix: str,
             heads: tuple[str, ...], head_first: bool = False) -> Architecture:
    """RoBERTa's classes under another family's names (XLM-RoBERTa, CamemBERT run RoBERTa's modules):
    ``head_first`` where the task model registers its head before ``self.roberta``, so the state dict lists
    the head's tensors first (HF 5's XLM-RoBERTa and CamemBERT)."""
    check_head(head, display, heads)
    d = bert.dims(cfg)
    prefix = "" if head == "model" else "roberta."
    base = [embeddings(d, prefix), bert.encoder_layer(d, cfg.num_hidden_layers, prefix)]
    if (head == "model" and pooler_) or head == "multiple-choice":
        base.append(bert.pooler(d["H"], prefix))
    top: list[Component] = []
    if head in ("mlm", "causal-lm"):
        top.append(lm_head(d, f"{prefix}embeddings.word_embeddings.weight", cfg.tie_word_embeddings))
    elif head == "seq-cls":
        top.append(dense_classifier(d["H"], d["C"]))
    elif head == "token-cls":
        top.append(token_classifier(d["H"], d["C"]))
    elif head == "qa":
        top.append(qa_head(d["H"], d["C"]))
    elif head == "multiple-choice":
        top.append(choice_classifier(d["H"]))
    comps = [*top, *base] if head_first else [*base, *top]
    model_class = class_prefix + HEAD_CLASSES[head]
    # RobertaForMultipleChoice's dropout is hidden_dropout_prob, not classifier_dropout
    return Architecture(family, model_class, head, tuple(comps), cfg.symbol_values(), prefix,
                        unused(cfg, labels=head in ("seq-cls", "token-cls", "qa"), ties=head in ("mlm", "causal-lm"),
                               pad=True),
                        forward=lambda: forward(cfg, comps, head, mlm_act="gelu", cls_act="tanh",
                                                p_choice=cfg.hidden_dropout_prob),
                        buffers=buffers(cfg, prefix), base_prefix="roberta.", choices=head == "multiple-choice",
                        notes=qa_notes(cfg, model_class) if head == "qa" else ())


CONFIG = RobertaConfig
