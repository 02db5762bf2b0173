"""ALBERT: ``transformers.models.albert.modeling_albert``.

Two ideas change the shapes. Factorized embeddings: the tables have width ``embedding_size`` (E), and
``encoder.embedding_hidden_mapping_in`` maps E to H. Cross-layer sharing: the encoder holds
``num_hidden_groups`` layer groups of ``inner_group_num`` layers each, and the forward pass runs the groups
``num_hidden_layers`` times in all. Parameters are counted once per group, not once per application:
albert-base-v2 has one group, shared × 12.
"""

from typing import ClassVar

from pydantic import Field

from ..config import Dims, Prob, Size
from ..model import Architecture, Component, Dim
from . import bert
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
from ._parts import layernorm, linear, lone_bias
from .bert import BertConfig, buffers, forward

HF_CONFIG = "AlbertConfig"  # transformers' config class
HF_PREFIX = "Albert"  # transformers' model classes
BASE_PREFIX = "albert."  # the base model's name inside a task model
POOLER_ARG = True  # whether the bare model takes add_pooling_layer
ORDER = 4
HEADS = ("model", "mlm", "pretraining", "seq-cls", "token-cls", "qa", "multiple-choice")


class AlbertConfig(BertConfig):
    """HuggingFace ``AlbertConfig``'s shape fields and defaults (albert-xxlarge)."""

    family: ClassVar[str] = "albert"
    display: ClassVar[str] = "ALBERT"
    SYMBOLS: ClassVar[dict[str, str]] = {**BertConfig.SYMBOLS, **{"num_hidden_groups": "G", "embedding_size": "E"}}
    MEMORY_ONLY: ClassVar[tuple[str, ...]] = (*BertConfig.MEMORY_ONLY, *("classifier_dropout_prob",))
    FLAGS: ClassVar[dict[str, str]] = {**BertConfig.FLAGS, "embedding_size": "embedding_size"}

    vocab_size: Size = Field(30000, description="Tokens in the vocabulary.")
    embedding_size: Size = Field(128, description="Width of the embeddings (E).")
    hidden_size: Size = Field(4096, description="Width of every hidden state (H).")
    num_hidden_groups: Size = Field(1, description="Distinct layer groups; the L layers share them.")
    num_attention_heads: Size = Field(64, description="Attention heads per layer (A); must divide H.")
    intermediate_size: Size = Field(16384, description="Width of the feed-forward layer (I).")
    inner_group_num: Size = Field(1, description="Layers inside each group.")
    hidden_act: str = Field("gelu_new", description="Feed-forward activation. Shown, not counted.")
    hidden_dropout_prob: Prob = Field(0.0, description="Dropout after embeddings and sublayers (memory: masks).")
    attention_probs_dropout_prob: Prob = Field(0.0, description="Dropout on attention probabilities (memory).")
    classifier_dropout_prob: Prob = Field(0.1, description="Dropout before the classifiers (memory).")
    classifier_dropout: None = Field(None, exclude=True)  # BERT's field; ALBERT's is classifier_dropout_prob
    is_decoder: None = Field(None, exclude=True)  # BERT's fields, which AlbertConfig does not have
    use_cache: None = Field(None, exclude=True)

    @property
    def dims(self) -> Dims:
        return super().dims._replace(E=self.embedding_size)


def layer_group(d: dict, groups: int, inner: int, layers: int, prefix: str) -> Component:
    """AlbertLayerGroup ``{i}`` of ``inner_group_num`` AlbertLayers; run ``num_hidden_layers`` times in all."""
    H, I = d["H"], d["I"]  # noqa: E741
    parts = []
    for j in range(inner):
        m = f"{prefix}encoder.albert_layer_groups.{{i}}.albert_layers.{j}"
        tag = f"[{j}] " if inner > 1 else ""
        parts += [
            layernorm(f"{tag}full_layer_layer_norm", f"{m}.full_layer_layer_norm", H, "after the FFN residual",
                      role="ffn_norm"),
            linear(f"{tag}query", f"{m}.attention.query", H, H, description="Q projection", role="q"),
            linear(f"{tag}key", f"{m}.attention.key", H, H, description="K projection", role="k"),
            linear(f"{tag}value", f"{m}.attention.value", H, H, description="V projection", role="v"),
            linear(f"{tag}attention dense", f"{m}.attention.dense", H, H, description="attention output",
                   role="attn_out"),
            layernorm(f"{tag}attention LayerNorm", f"{m}.attention.LayerNorm", H, "after the attention residual",
                      role="attn_norm"),
            linear(f"{tag}ffn", f"{m}.ffn", H, I, description="FFN up-projection", role="ffn_in"),
            linear(f"{tag}ffn_output", f"{m}.ffn_output", I, H, description="FFN down-projection", role="ffn_out"),
        ]
    return Component("shared layer group", tuple(parts), repeat=groups,
                     repeat_symbol="num_hidden_groups", applied=layers)


def build(cfg: AlbertConfig, head: str = "model", pooler_: bool = True) -> Architecture:
    check_head(head, "ALBERT", HEADS)
    d = bert.dims(cfg)
    E, H, V = Dim(cfg.embedding_size, "embedding_size"), d["H"], d["V"]
    prefix = "" if head == "model" else "albert."
    with_pooler = {"model": pooler_, "pretraining": True, "seq-cls": True, "multiple-choice": True}.get(head, False)
    comps = [
        bert.embeddings(d, prefix, width=E),
        Component("embedding mapping", (
            linear("embedding_hidden_mapping_in", f"{prefix}encoder.embedding_hidden_mapping_in", E, H,
                   role="emb_project", description="embedding width E -> hidden width H"),
        )),
        layer_group(d, cfg.num_hidden_groups, cfg.inner_group_num, cfg.num_hidden_layers, prefix),
    ]
    if with_pooler:
        comps.append(bert.pooler(H, prefix, module="pooler"))
    if head in ("mlm", "pretraining"):
        tie = cfg.tie_word_embeddings
        comps.append(Component("MLM head", (
            lone_bias("bias", "predictions.bias", V, "output bias per token id", role="mlm_bias"),
            layernorm("LayerNorm", "predictions.LayerNorm", E, role="mlm_norm"),
            linear("dense", "predictions.dense", H, E, role="mlm_transform"),
            linear("decoder", "predictions.decoder", E, V, role="mlm_decoder", description="logits over the vocabulary",
                   weight_tied_to=f"{prefix}embeddings.word_embeddings.weight" if tie else None,
                   bias_tied_to="predictions.bias" if tie else None),
        )))
    if head == "pretraining":
        comps.append(Component("SOP head", (
            linear("classifier", "sop_classifier.classifier", H, d["C"], tokens="first", role="seq_relationship",
                   description="sentence-order logits from the pooled output"),
        )))
    elif head == "seq-cls":
        comps.append(pooled_classifier(H, d["C"]))
    elif head == "token-cls":
        comps.append(token_classifier(H, d["C"]))
    elif head == "qa":
        comps.append(qa_head(H, d["C"]))
    elif head == "multiple-choice":
        comps.append(choice_classifier(H))
    return Architecture("albert", HF_PREFIX + HEAD_CLASSES[head], head, tuple(comps), cfg.symbol_values(), prefix,
                        unused(cfg, labels=head in ("seq-cls", "token-cls", "qa", "pretraining"),
                               ties=head in ("mlm", "pretraining")),
                        # AlbertLayer's ff_chunk rebinds its intermediate (BertOutput's hold does not apply),
                        # and AlbertLayer applies no dropout after the FFN
                        forward=lambda: forward(cfg, comps, head, p_cls=cfg.classifier_dropout_prob,
                                                hold_intermediate=False, ffn_out_dropout=False),
                        buffers=buffers(cfg, prefix), base_prefix="albert.", choices=head == "multiple-choice",
                        notes=qa_notes(cfg, HF_PREFIX + HEAD_CLASSES[head]) if head == "qa" else ())


CONFIG = AlbertConfig
