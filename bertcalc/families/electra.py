"""ELECTRA: ``transformers.models.electra.modeling_electra``.

BERT's encoder behind embeddings of width ``embedding_size`` (E). When E differs from ``hidden_size``, a
Linear ``embeddings_project`` maps E to H; when they are equal it does not exist. There is no pooler.
``pretraining`` is ElectraForPreTraining, the discriminator: one logit per token. ``mlm`` is the generator's
ForMaskedLM head, whose ``generator_lm_head`` weight is tied to the word embeddings (its bias is its own).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from ..config import Dims, Size
from ..model import Architecture, Component, Dim
from . import bert
from ._heads import HEAD_CLASSES, check_head, dense_classifier, qa_head, token_classifier, unused
from ._parts import layernorm, linear
from .bert import BertConfig, buffers, forward

HF_CONFIG = "ElectraConfig"  # transformers' config class
HF_PREFIX = "Electra"  # transformers' model classes
BASE_PREFIX = "electra."  # the base model's name inside a task model
POOLER_ARG = False  # whether the bare model takes add_pooling_layer
ORDER = 5
HEADS = ("model", "mlm", "pretraining", "seq-cls", "token-cls", "qa")


class ElectraConfig(BertConfig):
    """HuggingFace ``ElectraConfig``'s shape fields and defaults (electra-small-discriminator)."""

    family: ClassVar[str] = "electra"
    display: ClassVar[str] = "ELECTRA"
    SYMBOLS: ClassVar[dict[str, str]] = {**BertConfig.SYMBOLS, **{"embedding_size": "E"}}
    FLAGS: ClassVar[dict[str, str]] = {**BertConfig.FLAGS, "embedding_size": "embedding_size"}

    embedding_size: Size = Field(128, description="Width of the embeddings (E).")
    hidden_size: Size = Field(256, description="Width of every hidden state (H).")
    num_attention_heads: Size = Field(4, description="Attention heads per layer (A); must divide H.")
    intermediate_size: Size = Field(1024, description="Width of the feed-forward layer (I).")

    @property
    def dims(self) -> Dims:
        return super().dims._replace(E=self.embedding_size)


def build(cfg: ElectraConfig, head: str = "model", pooler_: bool = True) -> Architecture:
    check_head(head, "ELECTRA", HEADS)
    d = bert.dims(cfg)
    E, H, V = Dim(cfg.embedding_size, "embedding_size"), d["H"], d["V"]
    prefix = "" if head == "model" else "electra."
    comps = [bert.embeddings(d, prefix, width=E)]
    if cfg.embedding_size != cfg.hidden_size:
        comps.append(Component("embeddings project", (
            linear("embeddings_project", f"{prefix}embeddings_project", E, H, role="emb_project",
                   description="embedding width E -> hidden width H"),
        )))
    comps.append(bert.encoder_layer(d, cfg.num_hidden_layers, prefix))
    if head == "mlm":
        tie = cfg.tie_word_embeddings
        comps.append(Component("generator head", (
            layernorm("LayerNorm", "generator_predictions.LayerNorm", E, role="mlm_norm"),
            linear("dense", "generator_predictions.dense", H, E, role="mlm_transform"),
            linear("generator_lm_head", "generator_lm_head", E, V, role="mlm_decoder",
                   description="logits over the vocabulary",
                   weight_tied_to=f"{prefix}embeddings.word_embeddings.weight" if tie else None),
        )))
    elif head == "pretraining":
        comps.append(Component("discriminator head", (
            linear("dense", "discriminator_predictions.dense", H, H, role="disc_dense"),
            linear("dense_prediction", "discriminator_predictions.dense_prediction", H, Dim(1), role="disc_pred",
                   description="replaced or original, per token"),
        )))
    elif head == "seq-cls":
        comps.append(dense_classifier(H, d["C"]))
    elif head == "token-cls":
        comps.append(token_classifier(H, d["C"]))
    elif head == "qa":
        comps.append(qa_head(H, d["C"]))
    return Architecture("electra", HF_PREFIX + HEAD_CLASSES[head], head, tuple(comps), cfg.symbol_values(), prefix,
                        unused(cfg, labels=head in ("seq-cls", "token-cls", "qa"), ties=head == "mlm"),
                        forward=lambda: forward(cfg, comps, head, mlm_act="gelu", cls_act="gelu"),
                        buffers=buffers(cfg, prefix), base_prefix="electra.")


CONFIG = ElectraConfig
