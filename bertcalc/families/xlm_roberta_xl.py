"""XLM-RoBERTa-XL: ``transformers.models.xlm_roberta_xl.modeling_xlm_roberta_xl``.

RoBERTa's names (``roberta.``, ``lm_head``, the dense + ``out_proj`` classifier) on a pre-norm encoder:
the embeddings have no LayerNorm (word + token type + position, then dropout); each layer normalises its
input (``attention.self_attn_layer_norm``) before Q, K and V and the attention block's output
(``LayerNorm``, listed last in the layer) before the FFN, whose output has no dropout; both residuals are
plain sums; ``encoder.LayerNorm`` after the last layer gives the last hidden state (the encoder rebinds its
input, so that is freed at once). Multiple choice is the pooler and ``classifier [1, H]`` over ``B·C`` rows.
(Its causal-LM class is not counted here.)
"""

from typing import ClassVar

from pydantic import Field

from ..config import Count, Eps, Size
from ..model import Architecture, Component, Dim
from . import bert, roberta
from ._heads import HEAD_CLASSES, check_head, dense_classifier, qa_head, token_classifier, unused
from ._parts import embedding, layernorm, linear
from .bert import buffers
from .roberta import RobertaConfig

HEADS = ("model", "mlm", "seq-cls", "token-cls", "qa", "multiple-choice")
HF_CONFIG = "XLMRobertaXLConfig"  # transformers' config class
HF_PREFIX = "XLMRobertaXL"  # transformers' model classes
BASE_PREFIX = "roberta."  # the base model's name inside a task model
POOLER_ARG = True  # XLMRobertaXLModel(config, add_pooling_layer=...)
ORDER = 10


class XLMRobertaXLConfig(RobertaConfig):
    """HuggingFace ``XLMRobertaXLConfig``'s shape fields and defaults (facebook/xlm-roberta-xl)."""

    family: ClassVar[str] = "xlm_roberta_xl"
    display: ClassVar[str] = "XLM-RoBERTa-XL"

    vocab_size: Size = Field(250880, description="Tokens in the vocabulary (rows of word_embeddings).")
    hidden_size: Size = Field(2560, description="Width of every hidden state (H).")
    num_hidden_layers: Count = Field(36, description="Encoder layers (L).")
    num_attention_heads: Size = Field(32, description="Attention heads per layer (A); must divide H.")
    intermediate_size: Size = Field(10240, description="Width of the feed-forward layer (I).")
    max_position_embeddings: Size = Field(514, description="Rows of position_embeddings; positions start after "
                                          "pad_token_id.")
    type_vocab_size: Size = Field(1, description="Segment (token type) ids: rows of token_type_embeddings.")
    layer_norm_eps: Eps = Field(1e-5, description="LayerNorm epsilon. Shown, not counted.")


CONFIG = XLMRobertaXLConfig


# ------------------------------------------------------------------------------- __init__: the tensors


def components(cfg: XLMRobertaXLConfig, head: str, prefix: str, pooler_: bool) -> list[Component]:
    d = bert.dims(cfg)
    H, I = d["H"], d["I"]  # noqa: E741
    e, m = f"{prefix}embeddings", f"{prefix}encoder.layer.{{i}}"
    comps = [
        Component("embeddings", (
            embedding("word_embeddings", f"{e}.word_embeddings", d["V"], H, "one row per token id", role="word"),
            embedding("token_type_embeddings", f"{e}.token_type_embeddings", d["T"], H, "one row per segment",
                      role="token_type"),
            embedding("position_embeddings", f"{e}.position_embeddings", d["P"], H,
                      "one row per position, offset by padding_idx + 1", role="position"),
        )),
        Component("encoder layer", (
            linear("query", f"{m}.attention.self.query", H, H, description="Q projection", role="q"),
            linear("key", f"{m}.attention.self.key", H, H, description="K projection", role="k"),
            linear("value", f"{m}.attention.self.value", H, H, description="V projection", role="v"),
            linear("attention output dense", f"{m}.attention.output.dense", H, H,
                   description="merges the heads back into H", role="attn_out"),
            layernorm("self_attn_layer_norm", f"{m}.attention.self_attn_layer_norm", H,
                      "before the attention (pre-norm)", role="attn_norm"),
            linear("intermediate dense", f"{m}.intermediate.dense", H, I, description="FFN up-projection",
                   role="ffn_in"),
            linear("output dense", f"{m}.output.dense", I, H, description="FFN down-projection", role="ffn_out"),
            layernorm("LayerNorm", f"{m}.LayerNorm", H, "before the FFN (pre-norm)", role="ffn_norm"),
        ), repeat=cfg.num_hidden_layers, repeat_symbol="num_hidden_layers"),
        Component("final LayerNorm", (layernorm("LayerNorm", f"{prefix}encoder.LayerNorm", H,
                                                "after the last layer: the last hidden state", role="final_norm"),)),
    ]
    if (head == "model" and pooler_) or head == "multiple-choice":
        comps.append(bert.pooler(H, prefix))
    if head == "mlm":
        comps.append(roberta.lm_head(d, f"{e}.word_embeddings.weight", cfg.tie_word_embeddings))
    elif head == "seq-cls":
        comps.append(dense_classifier(H, d["C"]))
    elif head == "token-cls":
        comps.append(token_classifier(H, d["C"]))
    elif head == "qa":
        comps.append(qa_head(H, d["C"]))
    elif head == "multiple-choice":
        comps.append(Component("multiple-choice classifier", (
            linear("classifier", "classifier", H, Dim(1), tokens="first", role="cls_out",
                   description="one logit per choice"),
        )))
    return comps


# -------------------------------------------------------------------------------- forward: the program


def forward(cfg: XLMRobertaXLConfig, comps: list[Component], head: str):
    """Embeddings without LayerNorm, the pre-norm layer × L (RoBERTa-PreLayerNorm's, with no FFN dropout), the
    encoder's final LayerNorm, the pooler, the head."""
    from .roberta_prelayernorm import prenorm_forward

    # XLMRobertaXLEncoder rebinds hidden_states to its LayerNorm's output, so the encoder's output dies there
    return prenorm_forward(cfg, comps, head, hidden_until=None,
                           final_label="last hidden state: LayerNorm of the last layer",
                           ffn_dropout=False, hold_ffn_norm=True)


def build(cfg: XLMRobertaXLConfig, head: str = "model", pooler_: bool = True) -> Architecture:
    check_head(head, "XLM-RoBERTa-XL", HEADS)
    prefix = "" if head == "model" else BASE_PREFIX
    comps = components(cfg, head, prefix, pooler_)
    return Architecture("xlm_roberta_xl", HF_PREFIX + HEAD_CLASSES[head], head, tuple(comps), cfg.symbol_values(),
                        prefix,
                        unused(cfg, labels=head in ("seq-cls", "token-cls", "qa"), ties=head == "mlm", pad=True),
                        forward=lambda: forward(cfg, comps, head), buffers=buffers(cfg, prefix),
                        base_prefix=BASE_PREFIX, choices=head == "multiple-choice")
