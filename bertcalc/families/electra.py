"""ELECTRA: ``transformers.models.electra.modeling_electra``.

BERT's encoder behind embeddings of width ``embedding_size`` (E). When E differs from ``hidden_size``, a
Linear ``embeddings_project`` maps E to H; when they are equal it does not exist. There is no pooler.
``pretraining`` is ElectraForPreTraining, the discriminator: one logit per token. ``mlm`` is the generator's
ForMaskedLM head, whose ``generator_lm_head`` weight is tied to the word embeddings (its bias is its own).
"""

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from ..config import Dims, Prob, Size
from ..model import Architecture, Component, Dim
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
from ._parts import layernorm, linear
from .bert import BertConfig, buffers, forward

HF_CONFIG = "ElectraConfig"  # transformers' config class
HF_PREFIX = "Electra"  # transformers' model classes
BASE_PREFIX = "electra."  # the base model's name inside a task model
POOLER_ARG = False  # whether the bare model takes add_pooling_layer
ORDER = 5
HEADS = ("model", "mlm", "pretraining", "seq-cls", "token-cls", "qa", "multiple-choice", "causal-lm")
# peft.utils.constants.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING["electra"] (peft 0.21): LoRA's default
LORA_TARGETS = ("query", "value")


class ElectraConfig(BertConfig):
    """HuggingFace ``ElectraConfig``'s shape fields and defaults (electra-small-discriminator)."""

    family: ClassVar[str] = "electra"
    display: ClassVar[str] = "ELECTRA"
    SYMBOLS: ClassVar[dict[str, str]] = {**BertConfig.SYMBOLS, **{"embedding_size": "E"}}
    FLAGS: ClassVar[dict[str, str]] = {**BertConfig.FLAGS, "embedding_size": "embedding_size"}
    MEMORY_ONLY: ClassVar[tuple[str, ...]] = (*BertConfig.MEMORY_ONLY, "summary_first_dropout",
                                              "summary_last_dropout")
    # fields ElectraConfig does not define: ElectraSequenceSummary reads them with hasattr, so a config.json
    # may set them; the defaults here are what their absence means
    HF_ABSENT: ClassVar[tuple[str, ...]] = ("summary_proj_to_labels", "summary_first_dropout")

    embedding_size: Size = Field(128, description="Width of the embeddings (E).")
    hidden_size: Size = Field(256, description="Width of every hidden state (H).")
    num_attention_heads: Size = Field(4, description="Attention heads per layer (A); must divide H.")
    intermediate_size: Size = Field(1024, description="Width of the feed-forward layer (I).")
    # ElectraSequenceSummary, ElectraForMultipleChoice's pooling: the first (or last) token, a projection
    summary_type: Literal["first", "last"] = Field("first", description="Which token the multiple-choice summary "
                                                   "takes (HF's mean, cls_index and attn are not modelled).")
    summary_use_proj: Annotated[bool, Field(strict=True)] = Field(
        True, description="A Linear `sequence_summary.summary` after the summary token.")
    summary_proj_to_labels: Annotated[bool, Field(strict=True)] = Field(
        False, description="The summary projects to num_labels instead of hidden_size.")
    summary_activation: str = Field("gelu", description="Activation after the summary projection (\"\": none).")
    summary_first_dropout: Prob = Field(0.0, description="Dropout before the summary projection (memory).")
    summary_last_dropout: Prob = Field(0.1, description="Dropout after the summary activation (memory).")

    @property
    def dims(self) -> Dims:
        return super().dims._replace(E=self.embedding_size)


SUMMARY_FIELDS = ("summary_type", "summary_use_proj", "summary_proj_to_labels", "summary_activation")


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
    if head in ("mlm", "causal-lm"):  # ElectraForCausalLM has the generator's head too
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
    notes: tuple[str, ...] = qa_notes(cfg, HF_PREFIX + HEAD_CLASSES[head]) if head == "qa" else ()
    if head == "multiple-choice":
        to_labels = cfg.summary_proj_to_labels and cfg.num_labels > 0
        if cfg.summary_use_proj:
            comps.append(Component("sequence summary", (
                linear("summary", "sequence_summary.summary", H, d["C"] if to_labels else H, tokens="first",
                       role="summary", description="projection of the summary token"),
            )))
        if cfg.summary_use_proj and to_labels and cfg.num_labels != cfg.hidden_size:
            notes += (f"summary_proj_to_labels: the summary projects to num_labels {cfg.num_labels}, but the "
                      f"classifier takes hidden_size {cfg.hidden_size}: ElectraForMultipleChoice builds, and its "
                      "forward fails in transformers",)
        comps.append(choice_classifier(H))
    mc = dict(act=cfg.summary_activation, p_first=cfg.summary_first_dropout, p_last=cfg.summary_last_dropout)
    hidden = unused(cfg, labels=head in ("seq-cls", "token-cls", "qa") or (
        head == "multiple-choice" and cfg.summary_proj_to_labels), ties=head in ("mlm", "causal-lm"))
    if head != "multiple-choice":
        hidden += SUMMARY_FIELDS
    return Architecture("electra", HF_PREFIX + HEAD_CLASSES[head], head, tuple(comps), cfg.symbol_values(), prefix,
                        hidden,
                        forward=lambda: forward(cfg, comps, head, mlm_act="gelu", cls_act="gelu", mc=mc),
                        buffers=buffers(cfg, prefix), base_prefix="electra.", choices=head == "multiple-choice",
                        notes=notes)


CONFIG = ElectraConfig
