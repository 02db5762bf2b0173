"""RoBERTa-PreLayerNorm: ``transformers.models.roberta_prelayernorm.modeling_roberta_prelayernorm``.

RoBERTa's tensors and embeddings, with the LayerNorms moved in front of their sublayers (fairseq's
``--encoder-normalize-before``): ``attention.LayerNorm`` normalises the layer's input before Q, K and V,
``intermediate.LayerNorm`` the attention block's output before the FFN, and both residuals are plain sums. The
base model adds one ``LayerNorm`` after the encoder (listed between the encoder and the pooler), whose output
is the last hidden state the heads read. The heads are RoBERTa's, under the prefix ``roberta_prelayernorm.``;
multiple choice is the pooler and ``classifier [1, H]`` over ``B·C`` rows. (Its causal-LM class is not
counted here.)
"""

from typing import Any, ClassVar

from ..model import Architecture, Component, Dim
from . import bert, roberta
from ._heads import HEAD_CLASSES, check_head, dense_classifier, qa_head, token_classifier, unused
from ._parts import layernorm, linear
from .bert import buffers
from .roberta import RobertaConfig

HEADS = ("model", "mlm", "seq-cls", "token-cls", "qa", "multiple-choice")
HF_CONFIG = "RobertaPreLayerNormConfig"  # transformers' config class
HF_PREFIX = "RobertaPreLayerNorm"  # transformers' model classes
BASE_PREFIX = "roberta_prelayernorm."  # the base model's name inside a task model
POOLER_ARG = True  # RobertaPreLayerNormModel(config, add_pooling_layer=...)
ORDER = 9


class RobertaPreLayerNormConfig(RobertaConfig):
    """HuggingFace ``RobertaPreLayerNormConfig``'s shape fields and defaults (RoBERTa's)."""

    family: ClassVar[str] = "roberta_prelayernorm"
    display: ClassVar[str] = "RoBERTa-PreLayerNorm"


CONFIG = RobertaPreLayerNormConfig


# ------------------------------------------------------------------------------- __init__: the tensors


def encoder_layer(d: dict[str, Dim], layers: int, prefix: str) -> Component:
    """RobertaPreLayerNormLayer, in the order its modules register: attention (self, output, LayerNorm), then
    intermediate (LayerNorm, dense) and output (dense; no LayerNorm)."""
    H, I = d["H"], d["I"]  # noqa: E741
    m = f"{prefix}encoder.layer.{{i}}"
    return Component("encoder layer", (
        linear("query", f"{m}.attention.self.query", H, H, description="Q projection", role="q"),
        linear("key", f"{m}.attention.self.key", H, H, description="K projection", role="k"),
        linear("value", f"{m}.attention.self.value", H, H, description="V projection", role="v"),
        linear("attention output dense", f"{m}.attention.output.dense", H, H,
               description="merges the heads back into H", role="attn_out"),
        layernorm("attention LayerNorm", f"{m}.attention.LayerNorm", H, "before the attention (pre-norm)",
                  role="attn_norm"),
        layernorm("intermediate LayerNorm", f"{m}.intermediate.LayerNorm", H, "before the FFN (pre-norm)",
                  role="ffn_norm"),
        linear("intermediate dense", f"{m}.intermediate.dense", H, I, description="FFN up-projection",
               role="ffn_in"),
        linear("output dense", f"{m}.output.dense", I, H, description="FFN down-projection", role="ffn_out"),
    ), repeat=layers, repeat_symbol="num_hidden_layers")


def components(cfg: RobertaPreLayerNormConfig, head: str, prefix: str, pooler_: bool) -> list[Component]:
    d = bert.dims(cfg)
    H = d["H"]
    comps = [roberta.embeddings(d, prefix), encoder_layer(d, cfg.num_hidden_layers, prefix),
             Component("final LayerNorm", (layernorm("LayerNorm", f"{prefix}LayerNorm", H,
                                                     "after the last layer: the last hidden state",
                                                     role="final_norm"),))]
    if (head == "model" and pooler_) or head == "multiple-choice":
        comps.append(bert.pooler(H, prefix))
    if head == "mlm":
        comps.append(roberta.lm_head(d, f"{prefix}embeddings.word_embeddings.weight", cfg.tie_word_embeddings))
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


def prenorm_layer(t, x, parts: dict, *, heads: int, act: str, p_hidden: float, p_attn: float,
                  ffn_dropout: bool = True, hold_ffn_norm: bool = False):
    """RobertaPreLayerNormLayer: ``r = x + dropout(W_o · attn(LN1(x)))``, ``y = r + dropout(W_2 · act(W_1 ·
    LN2(r)))``. In a no-grad forward RobertaPreLayerNormAttention holds LN1's output, the context and its
    projection until its residual sum; the layer holds that sum, the FFN's intermediate and the attention
    weights (returned, bound to ``_``) until it returns. XLM-RoBERTa-XL's layer is the same with no dropout
    after the FFN (``ffn_dropout=False``) and LN2's output held by its caller until the activation is made
    (``hold_ffn_norm``)."""
    from ..program import Attention

    module = parts["q"].module.rsplit(".", 1)[0]
    t.moment("attention scores")
    n1 = t.norm(parts["attn_norm"], x, "pre-attention LayerNorm", listed=False)
    ctx = t.self_attention(parts["q"], parts["k"], parts["v"], n1, heads, p_attn, module)
    t.moment("attention output")
    o = t.linear(parts["attn_out"], ctx, "attention output projection")
    r = t.add(t.dropout(o, p_hidden), x, name=f"{module.rsplit('.', 1)[0]}.residual",
              description="attention block output: x + dropout(dense)", listed=True)
    n1.until = ctx.until = o.until = r
    t.moment("feed-forward")
    n2 = t.norm(parts["ffn_norm"], r, "pre-FFN LayerNorm", listed=False)
    i = t.linear(parts["ffn_in"], n2, "FFN intermediate (up-projection)")
    a = t.act(act, i, description=f"{act}(intermediate)")
    t.moment("FFN output")
    f = t.linear(parts["ffn_out"], a, "FFN down-projection")
    y = t.add(t.dropout(f, p_hidden) if ffn_dropout else f, r, name=f"{parts['ffn_out'].module}.residual",
              description="layer output: r + dropout(ffn)" if ffn_dropout else "layer output: r + ffn", listed=True)
    a.until = y  # (the residual sum and the down-projection are last read by the op that writes y)
    if hold_ffn_norm:
        n2.until = a
    next(op for op in t.ops if isinstance(op, Attention)).probs.until = y
    return y


def forward(cfg: RobertaPreLayerNormConfig, comps: list[Component], head: str):
    """Embeddings (RoBERTa's), the pre-norm layer × L, the final LayerNorm (its input, the encoder's output,
    stays referenced by the base model until it returns), the pooler, the head."""
    return prenorm_forward(cfg, comps, head, hidden_until="base",
                           final_label="last hidden state: LayerNorm of the encoder output")


def prenorm_forward(cfg: Any, comps: list[Component], head: str, *, hidden_until: str | None, final_label: str,
                    **layer: bool):
    """The forward of a pre-norm RoBERTa (this family and XLM-RoBERTa-XL): embeddings, ``prenorm_layer`` × L
    (``layer`` passes its flags), the final LayerNorm over the encoder's output (which stays alive until
    ``hidden_until``), the pooler and the head."""
    from ..program import B, Encoder, S, Value
    from . import _blocks as blocks

    c = {x.name: x for x in comps}
    p_h, p_a = cfg.hidden_dropout_prob, cfg.attention_probs_dropout_prob
    e = blocks.Trace()
    embedded = blocks.embeddings(e, c["embeddings"].parts, p_h)
    embedded.until = "base"
    comp = c["encoder layer"]
    parts = blocks.by_role(comp.parts)
    x = Value(f"{comp.name} input", (B, S, blocks.out_dim(parts["q"])), listed=False)
    t = blocks.Trace()
    y = prenorm_layer(t, x, parts, heads=cfg.num_attention_heads, act=cfg.hidden_act, p_hidden=p_h, p_attn=p_a,
                      **layer)
    enc = Encoder(comp.name, (t.layer(x, y),), comp.times_applied, comp.repeat)
    hidden = blocks.hidden_of(embedded, enc)
    if hidden is not embedded:
        hidden.until = hidden_until
    tail = blocks.Trace()
    tail.moment("final LayerNorm")
    seq = tail.norm(c["final LayerNorm"].parts[0], hidden, final_label)
    seq.until = "end"
    pooled = blocks.pooler(tail, c["pooler"].parts[0], seq) if "pooler" in c else None
    h = blocks.Trace()
    p_cls = cfg.classifier_dropout if cfg.classifier_dropout is not None else p_h
    blocks.roberta_heads(h, c, seq, pooled, head, p_cls, p_h)
    return blocks.program(e, embedded, enc, hidden, tail, h)


def build(cfg: RobertaPreLayerNormConfig, head: str = "model", pooler_: bool = True) -> Architecture:
    check_head(head, "RoBERTa-PreLayerNorm", HEADS)
    prefix = "" if head == "model" else BASE_PREFIX
    comps = components(cfg, head, prefix, pooler_)
    return Architecture("roberta_prelayernorm", HF_PREFIX + HEAD_CLASSES[head], head, tuple(comps),
                        cfg.symbol_values(), prefix,
                        unused(cfg, labels=head in ("seq-cls", "token-cls", "qa"), ties=head == "mlm", pad=True),
                        forward=lambda: forward(cfg, comps, head), buffers=buffers(cfg, prefix),
                        base_prefix=BASE_PREFIX, choices=head == "multiple-choice")
