"""RoBERTa: ``transformers.models.roberta.modeling_roberta``.

BERT's encoder with three differences that show in shapes: ``roberta.`` names; position ids start after the
padding index, so ``max_position_embeddings`` is 514 for 512 usable positions; and released checkpoints have
one token type. The embeddings register ``position_embeddings`` after the LayerNorm, so the state dict lists
it last. The MLM head is ``lm_head``; the sequence classifier is a dense + ``out_proj`` head on [CLS].
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from ..config import Count, Dims, Size
from ..model import Architecture, Component
from . import bert
from ._heads import HEAD_CLASSES, check_head, dense_classifier, qa_head, token_classifier, unused
from ._parts import embedding, layernorm, linear, lone_bias
from .bert import BertConfig, buffers, forward

HF_CONFIG = "RobertaConfig"  # transformers' config class
HF_PREFIX = "Roberta"  # transformers' model classes
BASE_PREFIX = "roberta."  # the base model's name inside a task model
POOLER_ARG = True  # whether the bare model takes add_pooling_layer
ORDER = 2
HEADS = ("model", "mlm", "seq-cls", "token-cls", "qa")


class RobertaConfig(BertConfig):
    """HuggingFace ``RobertaConfig``'s shape fields and defaults."""

    family: ClassVar[str] = "roberta"
    display: ClassVar[str] = "RoBERTa"

    vocab_size: Size = Field(50265, description="Tokens in the vocabulary (rows of word_embeddings).")
    pad_token_id: Count = Field(1, description="Padding index: positions start after it.")

    @model_validator(mode="after")
    def _padding_position_exists(self) -> RobertaConfig:
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
    check_head(head, "RoBERTa", HEADS)
    d = bert.dims(cfg)
    prefix = "" if head == "model" else "roberta."
    comps = [embeddings(d, prefix), bert.encoder_layer(d, cfg.num_hidden_layers, prefix)]
    if head == "model" and pooler_:
        comps.append(bert.pooler(d["H"], prefix))
    if head == "mlm":
        comps.append(lm_head(d, f"{prefix}embeddings.word_embeddings.weight", cfg.tie_word_embeddings))
    elif head == "seq-cls":
        comps.append(dense_classifier(d["H"], d["C"]))
    elif head == "token-cls":
        comps.append(token_classifier(d["H"], d["C"]))
    elif head == "qa":
        comps.append(qa_head(d["H"], d["C"]))
    return Architecture("roberta", HF_PREFIX + HEAD_CLASSES[head], head, tuple(comps), cfg.symbol_values(), prefix,
                        unused(cfg, labels=head in ("seq-cls", "token-cls", "qa"), ties=head == "mlm", pad=True),
                        forward=lambda: forward(cfg, comps, head, mlm_act="gelu", cls_act="tanh"),
                        buffers=buffers(cfg, prefix), base_prefix="roberta.")


CONFIG = RobertaConfig
