"""DeBERTa-v2 and v3: ``transformers.models.deberta_v2.modeling_deberta_v2``, tensors and forward side by side.

``model_type`` ``deberta-v2`` (the family ``deberta_v2``). What differs from BERT:

- disentangled attention: besides ``Q·Kᵀ``, each layer scores content against relative positions
  (``c2p``: ``Q · (key_proj(rel))ᵀ``) and relative positions against content (``p2c``: ``K · (query_proj(rel))ᵀ``),
  over one table ``encoder.rel_embeddings [2·span, H]`` shared by all layers (span: ``position_buckets``, or
  ``max_relative_positions``, or ``max_position_embeddings``), normalised once by ``encoder.LayerNorm`` when
  ``norm_rel_ebd`` says ``layer_norm``. With ``share_att_key`` the layer's own ``query_proj``/``key_proj``
  project the table; otherwise it has ``pos_key_proj`` (c2p) and ``pos_query_proj`` (p2c). The scores are
  gathered by relative distance and scaled by ``√(head size × (1 + number of terms))``;
- ``position_biased_input`` false: no absolute position table (v3); ``type_vocab_size`` 0: no token types;
  ``embedding_size`` ≠ H: ``embed_proj`` (no bias);
- ``conv_kernel_size`` > 0: a ConvLayer after the first layer (v2-xlarge). Its tensors are counted; its FLOPs
  and memory are not modelled, and ``flops``/``memory`` say so;
- the sequence classifier is ContextPooler (``pooler.dense`` on [CLS] with ``pooler_hidden_act``) +
  ``classifier``; multiple choice the same with one logit per choice; the MLM head is ``cls.predictions.*``
  (``legacy``, the default) or ``lm_predictions.lm_head.*`` (``legacy: false``: no decoder of its own, the
  logits are ``matmul(h, word_embeddings.weightᵀ) + bias``).
"""

from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field, field_validator, model_validator

from ..config import MAX_SIZE, Count, Dims, Eps, ModelConfig, Prob, Size
from ..errors import UsageError
from ..model import Architecture, Buffer, Component, Dim, Part, TensorSpec
from ._heads import HEAD_CLASSES, check_head, qa_head, token_classifier, unused
from ._parts import embedding, layernorm, linear, lone_bias

if TYPE_CHECKING:
    from ..program import Value

HEADS = ("model", "mlm", "seq-cls", "token-cls", "qa", "multiple-choice")
# peft.utils.constants.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING["deberta-v2"] (peft 0.21): LoRA's default
LORA_TARGETS = ("query_proj", "value_proj")
HF_CONFIG = "DebertaV2Config"  # transformers' config class
HF_PREFIX = "DebertaV2"  # transformers' model classes: DebertaV2Model, DebertaV2ForMaskedLM, ...
BASE_PREFIX = "deberta."  # the base model's name inside a task model
POOLER_ARG = False  # DebertaV2Model takes no add_pooling_layer (it has no pooler; the task heads do)
ORDER = 6
TERMS = ("c2p", "p2c")  # the relative score terms transformers implements


class DebertaV2Config(ModelConfig):
    """The shape fields of HuggingFace's ``DebertaV2Config``, with its defaults (deberta-v2-xlarge's), and the
    fields its modules read with ``getattr`` (``position_buckets``, ``share_att_key``, ``norm_rel_ebd``,
    ``embedding_size``, ``conv_*``, ``cls_dropout``) with the defaults those ``getattr`` calls give."""

    family: ClassVar[str] = "deberta_v2"
    display: ClassVar[str] = "DeBERTa-v2"
    SYMBOLS: ClassVar[dict[str, str]] = {
        "num_hidden_layers": "L", "vocab_size": "V", "max_position_embeddings": "P", "type_vocab_size": "T",
        "hidden_size": "H", "intermediate_size": "I", "num_labels": "C", "num_attention_heads": "A",
        "embedding_size": "E",
    }
    MEMORY_ONLY: ClassVar[tuple[str, ...]] = ("hidden_dropout_prob", "attention_probs_dropout_prob",
                                              "pooler_dropout", "cls_dropout")
    FLAGS: ClassVar[dict[str, str]] = {
        "layers": "num_hidden_layers",
        "hidden": "hidden_size",
        "heads": "num_attention_heads",
        "intermediate": "intermediate_size",
        "vocab": "vocab_size",
        "max_positions": "max_position_embeddings",
        "type_vocab": "type_vocab_size",
        "embedding_size": "embedding_size",
        "labels": "num_labels",
    }

    vocab_size: Size = Field(128100, description="Tokens in the vocabulary (rows of word_embeddings).")
    hidden_size: Size = Field(1536, description="Width of every hidden state (H).")
    num_hidden_layers: Count = Field(24, description="Encoder layers (L).")
    num_attention_heads: Size = Field(24, description="Attention heads per layer (A); must divide H.")
    intermediate_size: Size = Field(6144, description="Width of the feed-forward layer (I).")
    hidden_act: str = Field("gelu", description="Feed-forward activation. Shown, not counted.")
    hidden_dropout_prob: Prob = Field(0.1, description="Dropout after embeddings, sublayers and on the relative "
                                      "embeddings in each layer (memory: masks).")
    attention_probs_dropout_prob: Prob = Field(0.1, description="Dropout on attention probabilities (memory).")
    max_position_embeddings: Size = Field(512, description="Rows of position_embeddings (when position_biased_input);"
                                          " the relative span when neither position_buckets nor "
                                          "max_relative_positions is set.")
    type_vocab_size: Count = Field(0, description="Segment ids: rows of token_type_embeddings (0: none).")
    layer_norm_eps: Eps = Field(1e-7, description="LayerNorm epsilon. Shown, not counted.")
    relative_attention: Annotated[bool, Field(strict=True)] = Field(False, description="Disentangled attention "
                                                                    "over rel_embeddings.")
    max_relative_positions: int = Field(-1, ge=-MAX_SIZE, le=MAX_SIZE, strict=True,
                                        description="Relative span; below 1: max_position_embeddings.")
    position_buckets: int = Field(-1, ge=-MAX_SIZE, le=MAX_SIZE, strict=True,
                                  description="Log-bucketed relative span (v3: 256); below 1: no buckets.")
    position_biased_input: Annotated[bool, Field(strict=True)] = Field(True, description="An absolute position "
                                                                       "table added to the word embeddings.")
    pos_att_type: tuple[str, ...] = Field((), description="Relative score terms: c2p, p2c (config.json may write "
                                          "\"p2c|c2p\").")
    share_att_key: Annotated[bool, Field(strict=True)] = Field(False, description="Project rel_embeddings with the "
                                                               "layer's query_proj/key_proj (no pos_*_proj).")
    norm_rel_ebd: str = Field("none", description="\"layer_norm\": encoder.LayerNorm over rel_embeddings.")
    embedding_size: Size | None = Field(None, description="Width of the embeddings (E); hidden_size when unset.")
    conv_kernel_size: Count = Field(0, description="ConvLayer after the first layer when > 0 (v2-xlarge: 3).")
    conv_groups: Size = Field(1, description="Groups of the ConvLayer's Conv1d.")
    conv_act: str = Field("tanh", description="ConvLayer activation. Shown, not counted.")
    pooler_dropout: Prob = Field(0.0, description="Dropout before the ContextPooler's dense (memory).")
    pooler_hidden_act: str = Field("gelu", description="ContextPooler activation.")
    cls_dropout: Prob | None = Field(None, description="Dropout before the classifier; hidden_dropout_prob when "
                                     "unset (memory).")
    legacy: Annotated[bool, Field(strict=True)] = Field(True, description="MLM head as cls.predictions.* (true) or "
                                                        "lm_predictions.lm_head.* (false).")

    @field_validator("pos_att_type", mode="before")
    @classmethod
    def _terms(cls, v: Any) -> Any:
        if v is None:
            return ()
        if isinstance(v, str):  # what DebertaV2Config.__post_init__ does with "p2c|c2p"
            v = [x.strip() for x in v.lower().split("|")]
        if isinstance(v, (list, tuple)):
            v = tuple(x.strip().lower() if isinstance(x, str) else x for x in v)
            bad = [x for x in v if x not in TERMS and x != ""]
            if bad:
                raise ValueError(f"unknown relative attention term {bad[0]!r}; transformers knows c2p and p2c")
            return tuple(x for x in v if x)
        return v

    def fields(self) -> dict[str, Any]:
        """HF's field names; ``embedding_size`` only when set (its modules read ``getattr(config,
        "embedding_size", hidden_size)``, which a None would defeat), ``pos_att_type`` as a list (None when
        empty, as HF's default)."""
        out = super().fields()
        if out.get("embedding_size") is None:
            out.pop("embedding_size", None)
        out["pos_att_type"] = list(out["pos_att_type"]) or None  # HF's default: None
        return out

    @model_validator(mode="after")
    def _conv_groups_divide_hidden(self) -> "DebertaV2Config":
        if self.conv_kernel_size > 0 and self.hidden_size % self.conv_groups:
            raise ValueError(f"conv_groups {self.conv_groups} does not divide hidden_size {self.hidden_size} "
                             "(nn.Conv1d refuses it); use a conv_groups that divides it")
        return self

    @property
    def span(self) -> int:
        """``pos_ebd_size``: position_buckets, else max_relative_positions, else max_position_embeddings."""
        if self.position_buckets > 0:
            return self.position_buckets
        return self.max_relative_positions if self.max_relative_positions >= 1 else self.max_position_embeddings

    @property
    def width(self) -> int:
        return self.embedding_size or self.hidden_size

    @property
    def dims(self) -> Dims:
        P = self.max_position_embeddings if self.position_biased_input else 0
        # Without an absolute table nothing bounds the sequence (relative positions are bucketed or clamped).
        max_seq = self.max_position_embeddings if self.position_biased_input else MAX_SIZE
        return Dims(self.num_hidden_layers, self.hidden_size, self.num_attention_heads, self.intermediate_size,
                    self.vocab_size, P, self.type_vocab_size, self.width, self.num_labels, max_seq)


CONFIG = DebertaV2Config


# ------------------------------------------------------------------------------- __init__: the tensors


def _dims(cfg: DebertaV2Config) -> dict[str, Dim]:
    return {
        "V": Dim(cfg.vocab_size, "vocab_size"),
        "H": Dim(cfg.hidden_size, "hidden_size"),
        "E": Dim(cfg.width, "embedding_size" if cfg.embedding_size else "hidden_size"),
        "I": Dim(cfg.intermediate_size, "intermediate_size"),
        "P": Dim(cfg.max_position_embeddings, "max_position_embeddings"),
        "T": Dim(cfg.type_vocab_size, "type_vocab_size"),
        "C": Dim(cfg.num_labels, "num_labels"),
        "R": Dim(2 * cfg.span),  # rows of rel_embeddings: 2 × pos_ebd_size
    }


def _conv(label: str, module: str, H: Dim, groups: int, k: int) -> Part:
    """``nn.Conv1d(H, H, k, groups=g)``: weight ``[H, H/g, k]``, bias ``[H]``."""
    return Part(label, module, "linear", (
        TensorSpec(f"{module}.weight", (H, Dim(H.size // groups), Dim(k)), "weight"),
        TensorSpec(f"{module}.bias", (H,), "bias"),
    ), description=f"Conv1d, kernel {k}", role="conv")


def components(cfg: DebertaV2Config, head: str, prefix: str) -> list[Component]:
    d = _dims(cfg)
    V, H, E, I, C = d["V"], d["H"], d["E"], d["I"], d["C"]  # noqa: E741
    e, m = f"{prefix}embeddings", f"{prefix}encoder.layer.{{i}}"
    emb = [embedding("word_embeddings", f"{e}.word_embeddings", V, E, "one row per token id", role="word")]
    if cfg.position_biased_input:
        emb.append(embedding("position_embeddings", f"{e}.position_embeddings", d["P"], E, "one row per position",
                             role="position"))
    if cfg.type_vocab_size > 0:
        emb.append(embedding("token_type_embeddings", f"{e}.token_type_embeddings", d["T"], E, "one row per segment",
                             role="token_type"))
    if cfg.width != cfg.hidden_size:
        emb.append(linear("embed_proj", f"{e}.embed_proj", E, H, bias=False, role="emb_project",
                          description="embedding width E -> hidden width H"))
    emb.append(layernorm("LayerNorm", f"{e}.LayerNorm", H, "normalises the embeddings", role="emb_norm"))
    rel = cfg.relative_attention
    s = f"{m}.attention.self"
    layer = [
        linear("query_proj", f"{s}.query_proj", H, H, description="Q projection (and p2c's of rel_embeddings when "
               "shared)", role="q"),
        linear("key_proj", f"{s}.key_proj", H, H, description="K projection (and c2p's of rel_embeddings when "
               "shared)", role="k"),
        linear("value_proj", f"{s}.value_proj", H, H, description="V projection", role="v"),
    ]
    if rel and not cfg.share_att_key:
        if "c2p" in cfg.pos_att_type:
            layer.append(linear("pos_key_proj", f"{s}.pos_key_proj", H, H, role="pos_k",
                                description="projects rel_embeddings for content->position"))
        if "p2c" in cfg.pos_att_type:
            layer.append(linear("pos_query_proj", f"{s}.pos_query_proj", H, H, role="pos_q",
                                description="projects rel_embeddings for position->content"))
    layer += [
        linear("attention output dense", f"{m}.attention.output.dense", H, H,
               description="merges the heads back into H", role="attn_out"),
        layernorm("attention LayerNorm", f"{m}.attention.output.LayerNorm", H, "after the attention residual",
                  role="attn_norm"),
        linear("intermediate dense", f"{m}.intermediate.dense", H, I, description="FFN up-projection",
               role="ffn_in"),
        linear("output dense", f"{m}.output.dense", I, H, description="FFN down-projection", role="ffn_out"),
        layernorm("output LayerNorm", f"{m}.output.LayerNorm", H, "after the FFN residual", role="ffn_norm"),
    ]
    comps = [Component("embeddings", tuple(emb)),
             Component("encoder layer", tuple(layer), repeat=cfg.num_hidden_layers,
                       repeat_symbol="num_hidden_layers")]
    enc = []
    if rel:
        enc.append(embedding("rel_embeddings", f"{prefix}encoder.rel_embeddings", d["R"], H,
                             "one row per relative distance (bucket), both signs; shared by every layer",
                             role="rel"))
    if "layer_norm" in _norms(cfg):
        enc.append(layernorm("LayerNorm", f"{prefix}encoder.LayerNorm", H, "normalises rel_embeddings once",
                             role="rel_norm"))
    if cfg.conv_kernel_size > 0:
        enc.append(_conv("conv", f"{prefix}encoder.conv.conv", H, cfg.conv_groups, cfg.conv_kernel_size))
        enc.append(layernorm("conv LayerNorm", f"{prefix}encoder.conv.LayerNorm", H, "after the ConvLayer's "
                             "residual", role="conv_norm"))
    if enc:
        comps.append(Component("relative embeddings", tuple(enc)))
    if head == "mlm" and cfg.legacy:
        word = f"{e}.word_embeddings.weight"
        tie = cfg.tie_word_embeddings
        p = "cls.predictions"
        comps.append(Component("MLM head", (
            lone_bias("bias", f"{p}.bias", V, "output bias per token id", role="mlm_bias"),
            linear("transform dense", f"{p}.transform.dense", H, E, role="mlm_transform"),
            layernorm("transform LayerNorm", f"{p}.transform.LayerNorm", E, role="mlm_norm"),
            linear("decoder", f"{p}.decoder", E, V, role="mlm_decoder", description="logits over the vocabulary",
                   weight_tied_to=word if tie else None, bias_tied_to=f"{p}.bias" if tie else None),
        )))
    elif head == "mlm":
        p = "lm_predictions.lm_head"
        comps.append(Component("MLM head", (
            lone_bias("bias", f"{p}.bias", V, "output bias per token id", role="mlm_bias"),
            linear("dense", f"{p}.dense", H, H, role="mlm_transform"),
            layernorm("LayerNorm", f"{p}.LayerNorm", H, role="mlm_norm"),
        )))
    elif head in ("seq-cls", "multiple-choice"):
        out = C if head == "seq-cls" else Dim(1)
        comps.append(Component("pooler", (
            linear("dense", "pooler.dense", H, H, tokens="first", role="pooler",
                   description=f"ContextPooler: {cfg.pooler_hidden_act}(W·h[CLS] + b)"),
        )))
        comps.append(Component("sequence classifier" if head == "seq-cls" else "choice classifier", (
            linear("classifier", "classifier", H, out, tokens="first", role="cls_out",
                   description="logits per sequence" if head == "seq-cls" else "one logit per choice"),
        )))
    elif head == "token-cls":
        comps.append(token_classifier(H, C))
    elif head == "qa":
        comps.append(qa_head(H, C))
    return comps


def _norms(cfg: DebertaV2Config) -> list[str]:
    return [x.strip() for x in cfg.norm_rel_ebd.lower().split("|")]


# -------------------------------------------------------------------------------- forward: the program


def _attention(t, x: "Value", parts: dict[str, Part], rel: "Value | None", cfg: DebertaV2Config,
               mod: str) -> "Value":
    """DisentangledSelfAttention.forward: Q, K, V projections copied into heads (``transpose_for_scores``
    ends in ``.contiguous()``), ``Q · (Kᵀ/scale)``, the relative terms (the table projected by this layer's
    weights, repeated over the batch, multiplied with Q or K, gathered by relative distance and scaled), the
    masked softmax, dropout, ``probs · V``, merged back. Returns the context [B, S, H]."""
    from ..program import Add, B, Gather, Heads, Make, MaskFill, Matmul, Repeat, S, Scale, Softmax, Value

    H = Dim(cfg.hidden_size, "H")
    A, hd = Dim(cfg.num_attention_heads, "A"), Dim(cfg.hidden_size // cfg.num_attention_heads, "H/A")
    R = Dim(2 * cfg.span, "R")

    def split(y: Value, what: str, lead: tuple[Dim, ...], rows: Dim) -> Value:
        return t.emit(Heads(Value(f"{y.name}.heads", (*lead, A, rows, hd), f"{what} copied into heads",
                                  listed=False), x=y))

    q, k, v = (t.linear(parts[r], x, f"{r.upper()} projection") for r in ("q", "k", "v"))
    qh, kh, vh = (split(y, r, (B,), S) for y, r in ((q, "Q"), (k, "K"), (v, "V")))
    kt = t.emit(Scale(Value(f"{mod}.key_scaled", (B, A, hd, S), "Kᵀ / √(H/A · (1 + terms))", listed=False),
                      x=kh))
    scores = t.emit(Matmul(Value(f"{mod}.scores", (B, A, S, S), "content scores Q · Kᵀ/scale"), a=qh, b=kt))
    terms = cfg.pos_att_type if cfg.relative_attention else ()
    held = [qh, kh, vh]
    if cfg.relative_attention:
        assert rel is not None
        r = t.dropout(rel, cfg.hidden_dropout_prob)
        proj = {}
        want = {"c2p": "k", "p2c": "q"}
        roles = ("q", "k") if cfg.share_att_key else tuple(f"pos_{want[x]}" for x in TERMS if x in terms)
        for role in roles:
            y = t.linear(parts[role], r, f"relative embeddings through {parts[role].label}",
                         name=f"{parts[role].module}.rel", listed=False)
            y = split(y, f"projected relative embeddings ({parts[role].label})", (), R)
            proj[role[-1]] = t.emit(Repeat(Value(f"{y.name}.batch", (B, A, R, hd), "repeated over the batch",
                                                 listed=False), x=y))
        score = None
        local = list(proj.values())  # locals of disentangled_attention_bias, until it returns
        for term in TERMS:
            if term not in terms:
                continue
            a, pos = (qh, proj["k"]) if term == "c2p" else (kh, proj["q"])
            m = t.emit(Matmul(Value(f"{mod}.{term}", (B, A, S, R), f"{term}: {'Q' if term == 'c2p' else 'K'} · "
                                    "projected relative embeddingsᵀ"), a=a, b=pos, transpose_b=True))
            idx = t.emit(Make(Value(f"{mod}.{term}_pos", (Dim(1), S, S), f"{term} index: clamp(±relative_pos "
                                    "+ span, 0, 2·span - 1)", listed=False), nbytes=8))
            g = t.emit(Gather(Value(f"{mod}.{term}.gathered", (B, A, S, S), f"{term} gathered by relative "
                                    "distance", listed=False), x=m, index=idx))
            s_ = t.emit(Scale(Value(f"{mod}.{term}.scaled", (B, A, S, S), listed=False), x=g))
            local += [idx, g]
            if score is None:  # score = 0; score += ...: a new tensor (0 + x)
                score = t.add(s_, name=f"{mod}.rel_att")
            else:  # then in place
                score = t.emit(Add(Value(f"{mod}.rel_att", (B, A, S, S), listed=False, view_of=score.storage),
                                   xs=(score, s_)))
        for val in local:
            val.until = score if score is not None else None
        if score is None:  # no terms: rel_att is the integer 0
            scores = t.add(scores, name=f"{mod}.scores.plus_rel")
        else:
            held.append(score)
            scores = t.add(scores, score, name=f"{mod}.scores.plus_rel", description="content + relative scores",
                           listed=True)
    masked = t.emit(MaskFill(Value(f"{mod}.scores.masked", (B, A, S, S), listed=False), x=scores,
                             mask=(B, Dim(1), S, S)))
    probs = t.emit(Softmax(Value(f"{mod}.probs", (B, A, S, S), "attention probabilities"), x=masked))
    dropped = t.dropout(probs, cfg.attention_probs_dropout_prob)
    ctx = t.emit(Matmul(Value(f"{mod}.context.heads", (B, A, S, hd), "probs · V, per head"), a=dropped, b=vh))
    out = t.emit(Heads(Value(f"{mod}.context", (B, S, H), "context: heads merged back (B, S, A·H/A)"), x=ctx))
    for val in (*held, masked, probs):  # locals of DisentangledSelfAttention.forward, until it returns
        val.until = out
    return out


def _layer(t, x: "Value", parts: dict[str, Part], rel: "Value | None", cfg: DebertaV2Config) -> "Value":
    """DebertaV2Layer: attention, SelfOutput (dense, dropout, LayerNorm of the residual), Intermediate,
    Output (dense, dropout, LayerNorm of the residual)."""
    p = cfg.hidden_dropout_prob
    mod = parts["q"].module.rsplit(".", 1)[0]
    t.moment("attention scores")
    ctx = _attention(t, x, parts, rel, cfg, mod)
    t.moment("attention output")
    o = t.dropout(t.linear(parts["attn_out"], ctx, "attention output projection"), p)
    h = t.norm(parts["attn_norm"], t.add(o, x, name=f"{parts['attn_out'].module}.residual"),
               "LayerNorm(dense + residual)")
    ctx.until = h
    t.moment("feed-forward")
    i = t.linear(parts["ffn_in"], h, "FFN intermediate (up-projection)")
    a = t.act(cfg.hidden_act, i, description=f"{cfg.hidden_act}(intermediate)")
    t.moment("FFN output LayerNorm")
    f = t.dropout(t.linear(parts["ffn_out"], a, "FFN down-projection"), p)
    y = t.norm(parts["ffn_norm"], t.add(f, h, name=f"{parts['ffn_out'].module}.residual"),
               "layer output: LayerNorm(ffn + residual)")
    a.until = h.until = f.until = y  # the FFN's locals (hidden_states is held through the LayerNorm call)
    o.until = h
    y.until = "base"  # DebertaV2Model asks the encoder for all_hidden_states: every layer's output is held
    return y


def forward(cfg: DebertaV2Config, comps: list[Component], head: str):
    """DebertaV2Model's forward and the head's, as a program: the embeddings (word lookup, the other tables
    where they exist, LayerNorm, times the attention mask, dropout); the encoder's relative table through its
    LayerNorm, once; the layer template × L; then the head and its loss."""
    from ..program import B, Encoder, Make, Mul, Param, S, Value
    from . import _blocks as blocks

    if cfg.conv_kernel_size > 0:
        raise UsageError("conv_kernel_size > 0 (DeBERTa-v2-xlarge's ConvLayer) is counted in parameters and "
                         "shapes, but its FLOPs and memory are not modelled; set conv_kernel_size: 0 to see the "
                         "rest")
    c = {x.name: x for x in comps}
    e = blocks.by_role(c["embeddings"].parts)
    p_h = cfg.hidden_dropout_prob
    t = blocks.Trace()
    t.moment("embeddings")
    ids = t.ids("input_ids", "token ids")
    mask = t.emit(Make(Value("attention_mask", (B, S), "all ones when not given", listed=False, until="base"),
                       nbytes=4))
    tt = t.emit(Make(Value("token_type_ids", (B, S), "zeros when not given", listed=False, until="base"),
                     nbytes=8))
    x = t.lookup(e["word"], ids, "word lookup")
    looks = [x]
    zeros = None
    if "position" in e:
        pos = t.ids("position_ids", "position of each token")
        looks.append(t.lookup(e["position"], pos, "position lookup"))
    else:  # torch.zeros_like(inputs_embeds), a local of the embeddings' forward
        zeros = t.emit(Make(Value("position_embeddings.zeros", x.dims, listed=False), nbytes=4))
    if "token_type" in e:
        looks.append(t.lookup(e["token_type"], tt, "token-type lookup"))
    s = t.add(*looks, name="embeddings.sum", description="embedding sum") if len(looks) > 1 else x
    if "emb_project" in e:
        s = t.linear(e["emb_project"], s, "embedding width -> hidden width")
    h = t.norm(e["emb_norm"], s, "LayerNorm of the embeddings")
    h = t.emit(Mul(Value(f"{e['emb_norm'].module.rsplit('.', 1)[0]}.masked", h.dims, "times the attention mask",
                         listed=False), x=h, factor=mask))
    for v in (*looks, *((zeros,) if zeros is not None else ())):  # locals of the embeddings' forward
        v.until = h
    embedded = t.dropout(h, p_h)
    embedded.until = "base"  # embedding_output, held by DebertaV2Model.forward
    rel = None
    r = blocks.by_role(c["relative embeddings"].parts) if "relative embeddings" in c else {}
    t.moment("relative embeddings")
    t.emit(Make(Value("encoder.attention_mask", (B, Dim(1), S, S), "the mask extended to [B, 1, S, S]",
                      listed=False, until="base"), nbytes=4))
    if cfg.relative_attention:
        t.emit(Make(Value("encoder.relative_pos", (Dim(1), S, S), "relative positions (bucketed)", dtype="float",
                          listed=False, until="base"), nbytes=8))
        rows = (Dim(2 * cfg.span, "R"), Dim(cfg.hidden_size, "H"))
        rel = t.emit(Param(Value(r["rel"].module, rows, "the relative embedding table",
                                 dtype="param", listed=False), part=r["rel"]))
        if "rel_norm" in r:
            rel = t.norm(r["rel_norm"], rel, "LayerNorm of the relative embeddings (once, for every layer)")
        rel.until = "base"
    layers = c["encoder layer"]
    x_in = Value(f"{layers.name} input", (B, S, Dim(cfg.hidden_size, "H")), listed=False)
    lt = blocks.Trace()
    y = _layer(lt, x_in, blocks.by_role(layers.parts), rel, cfg)
    enc = Encoder(layers.name, (lt.layer(x_in, y),), layers.times_applied, layers.repeat)
    hidden = blocks.hidden_of(embedded, enc)
    hd = blocks.Trace()
    if head == "mlm":
        m = blocks.by_role(c["MLM head"].parts)
        hd.moment("MLM logits")
        z = hd.linear(m["mlm_transform"], hidden, "MLM transform dense")
        z = hd.act(cfg.hidden_act, z, description=f"{cfg.hidden_act}(transform)")
        z = hd.norm(m["mlm_norm"], z, "MLM transform LayerNorm")
        if "mlm_decoder" in m:
            logits = hd.linear(m["mlm_decoder"], z, "MLM logits over the vocabulary")
        else:  # matmul(h, word_embeddings.weight.t()) + bias: a Linear over the word table
            from ..program import Linear

            logits = hd.emit(Linear(Value("lm_predictions.logits", (*z.dims[:-1], Dim(cfg.vocab_size, "V")),
                                          "MLM logits: h · word_embeddingsᵀ + bias"), part=e["word"], x=z))
        hd.loss("vocab", logits)
    elif head in ("seq-cls", "multiple-choice"):
        pool = c["pooler"].parts[0]
        hd.moment("pooler")
        f = hd.first(hidden, "pooler.first_token", "hidden state of the first ([CLS]) token")
        z = hd.linear(pool, hd.dropout(f, cfg.pooler_dropout), "ContextPooler dense")
        z = hd.act(cfg.pooler_hidden_act, z, name="pooler.activation",
                   description=f"pooled [CLS] output: {cfg.pooler_hidden_act}(dense)")
        p_cls = cfg.cls_dropout if cfg.cls_dropout is not None else p_h
        cls = c["sequence classifier" if head == "seq-cls" else "choice classifier"].parts[0]
        blocks.classify(hd, cls, z, p_cls)
    elif head == "token-cls":
        blocks.classify(hd, c["token classifier"].parts[0], hidden, p_h)
    elif head == "qa":
        blocks.classify(hd, c["QA head"].parts[0], hidden, loss="spans")
    else:
        hd.loss("sum", hidden)
    return blocks.program(t, embedded, enc, hidden, None, hd)


def build(cfg: DebertaV2Config, head: str = "model", pooler_: bool = True) -> Architecture:
    check_head(head, "DeBERTa-v2", HEADS)
    prefix = "" if head == "model" else BASE_PREFIX
    comps = components(cfg, head, prefix)
    return Architecture(
        "deberta_v2", HF_PREFIX + HEAD_CLASSES[head], head, tuple(comps), cfg.symbol_values(), prefix,
        unused(cfg, labels=head in ("seq-cls", "token-cls", "qa"), ties=head == "mlm" and cfg.legacy),
        forward=lambda: forward(cfg, comps, head),
        buffers=(Buffer(f"{prefix}embeddings.position_ids", (1, cfg.max_position_embeddings)),),
        base_prefix=BASE_PREFIX,
        choices=head == "multiple-choice",
    )
