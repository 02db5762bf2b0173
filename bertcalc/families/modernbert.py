"""ModernBERT: ``transformers.models.modernbert.modeling_modernbert`` (5.x), tensors and forward side by side.

What differs from BERT, in shapes: one fused ``Wqkv [3H, H]`` per layer; a GLU feed-forward whose ``Wi`` is
``[2I, H]`` (input and gate, chunked); no biases unless ``attention_bias``, ``mlp_bias``, ``norm_bias`` say
so (the head's dense has ``classifier_bias``, the decoder ``decoder_bias``; the classifiers always have one);
pre-norm layers, and layer 0 has no attention norm (``nn.Identity``); rotary positions, so no position
table; a ``final_norm``; a prediction head (dense + act + norm) before every task layer; the decoder tied
to ``tok_embeddings``.

Layer 0 is its own component (``layers.0.…``); layers 1..L-1 are one template (``start=1``, repeated L-1
times). In the program, layer 0's ops follow the embeddings' and the template is applied L-1 times.

Global and local (sliding-window) layers (``layer_types``, or ``global_attn_every_n_layers``) share every
tensor and every matmul: transformers 5.x runs a local layer as full attention over ``[B, A, S, S]`` scores
under a window mask (eager adds it; sdpa takes it), so FlopCounterMode counts the same FLOPs for both. The
mask is made once per forward (``[B, 1, S, S]``: additive in eager, boolean in sdpa) and held by the base
model; that is what local attention adds to memory. transformers 5.x does not unpad ModernBERT's inputs for
any attention implementation (4.48's ``_unpad_modernbert_input`` path is gone): eager and sdpa are modelled
as HF runs them, padded.
"""

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from ..config import Count, Dims, Eps, ModelConfig, Prob, Size
from ..model import Architecture, Buffer, Component, Dim
from ._heads import HEAD_CLASSES, check_head, unused
from ._parts import embedding, layernorm, linear

HEADS = ("model", "mlm", "seq-cls", "token-cls", "qa")
HF_CONFIG = "ModernBertConfig"  # transformers' config class
HF_PREFIX = "ModernBert"  # transformers' model classes: ModernBertModel, ModernBertForMaskedLM, ...
BASE_PREFIX = "model."  # the base model's name inside a task model
POOLER_ARG = False  # ModernBertModel takes no add_pooling_layer
ORDER = 6

Flag = Annotated[bool, Field(strict=True)]
LayerType = Literal["full_attention", "sliding_attention"]


class ModernBertConfig(ModelConfig):
    """HuggingFace ``ModernBertConfig``'s shape fields and defaults (answerdotai/ModernBERT-base)."""

    family: ClassVar[str] = "modernbert"
    display: ClassVar[str] = "ModernBERT"
    SYMBOLS: ClassVar[dict[str, str]] = {
        "num_hidden_layers": "L", "vocab_size": "V", "hidden_size": "H", "intermediate_size": "I",
        "num_labels": "C", "num_attention_heads": "A",
    }
    MEMORY_ONLY: ClassVar[tuple[str, ...]] = ("embedding_dropout", "attention_dropout", "mlp_dropout",
                                              "classifier_dropout")
    FLAGS: ClassVar[dict[str, str]] = {
        "layers": "num_hidden_layers",
        "hidden": "hidden_size",
        "heads": "num_attention_heads",
        "intermediate": "intermediate_size",
        "vocab": "vocab_size",
        "max_positions": "max_position_embeddings",
        "labels": "num_labels",
    }

    vocab_size: Size = Field(50368, description="Tokens in the vocabulary (rows of tok_embeddings).")
    hidden_size: Size = Field(768, description="Width of every hidden state (H).")
    intermediate_size: Size = Field(1152, description="GLU width (I): Wi is [2I, H], Wo [H, I].")
    num_hidden_layers: Size = Field(22, description="Encoder layers (L ≥ 1); layer 0 has no attention norm.")
    num_attention_heads: Size = Field(12, description="Attention heads per layer (A); must divide H.")
    hidden_activation: str = Field("gelu", description="GLU activation. Shown, not counted.")
    max_position_embeddings: Size = Field(8192, description="Longest sequence (rotary: no position table).")
    norm_eps: Eps = Field(1e-5, description="LayerNorm epsilon. Shown, not counted.")
    norm_bias: Flag = Field(False, description="LayerNorms have a bias.")
    attention_bias: Flag = Field(False, description="Wqkv and the attention's Wo have a bias.")
    mlp_bias: Flag = Field(False, description="The GLU's Wi and Wo have a bias.")
    decoder_bias: Flag = Field(True, description="The MLM decoder has a bias.")
    classifier_bias: Flag = Field(False, description="The prediction head's dense has a bias.")
    classifier_pooling: Literal["cls", "mean"] = Field("cls", description="Sequence classifier pooling: the "
                                                       "first token or the mean over the sequence.")
    classifier_activation: str = Field("gelu", description="Prediction head activation. Shown, not counted.")
    local_attention: Size = Field(128, description="Sliding window of local layers (tokens). Shapes no tensor.")
    global_attn_every_n_layers: Size = Field(3, description="Without layer_types: every n-th layer (from 0) is "
                                             "global, the others local.")
    layer_types: tuple[LayerType, ...] | None = Field(None, description="full_attention or sliding_attention "
                                                      "per layer (HF 5.x writes it); one per layer.")
    pad_token_id: Count | None = Field(50283, description="Padding token id: the word table's padding row.")
    embedding_dropout: Prob = Field(0.0, description="Dropout after the embeddings' norm (memory: masks).")
    attention_dropout: Prob = Field(0.0, description="Dropout on attention probabilities and output (memory).")
    mlp_dropout: Prob = Field(0.0, description="Dropout inside the GLU (memory).")
    classifier_dropout: Prob = Field(0.0, description="Dropout before a classifier (memory).")

    @model_validator(mode="after")
    def _one_type_per_layer(self) -> "ModernBertConfig":
        if self.num_hidden_layers == 0:  # ModernBertConfig derives its rotary parameters from the layer types
            raise ValueError("num_hidden_layers 0: transformers cannot build a ModernBertConfig without layers; "
                             "use at least 1")
        if self.layer_types is not None and len(self.layer_types) != self.num_hidden_layers:
            raise ValueError(f"layer_types has {len(self.layer_types)} entries; num_hidden_layers is "
                             f"{self.num_hidden_layers}: give one per layer (or leave layer_types out)")
        return self

    @property
    def dims(self) -> Dims:
        # no position table (rotary): P is 0, as T is; max_position_embeddings still bounds the sequence
        return Dims(self.num_hidden_layers, self.hidden_size, self.num_attention_heads, self.intermediate_size,
                    self.vocab_size, 0, 0, self.hidden_size, self.num_labels, self.max_position_embeddings)

    def types_present(self) -> tuple[str, ...]:
        """The layer types the layers use, as HF's ``set(config.layer_types)``: one rotary table pair each.
        Without ``layer_types``, layer i is global when i % n == 0 (decided without listing the layers)."""
        if self.layer_types is not None:
            return tuple(t for t in ("full_attention", "sliding_attention") if t in self.layer_types)
        L, n = self.num_hidden_layers, self.global_attn_every_n_layers
        out = ("full_attention",) if L else ()
        return out + (("sliding_attention",) if L > 1 and n > 1 else ())


CONFIG = ModernBertConfig


# ------------------------------------------------------------------------------- __init__: the tensors


def components(cfg: ModernBertConfig, head: str, prefix: str) -> list[Component]:
    V, H = Dim(cfg.vocab_size, "vocab_size"), Dim(cfg.hidden_size, "hidden_size")
    I, C = Dim(cfg.intermediate_size, "intermediate_size"), Dim(cfg.num_labels, "num_labels")  # noqa: E741
    H3, I2 = Dim(3 * cfg.hidden_size, "3·hidden_size"), Dim(2 * cfg.intermediate_size, "2·intermediate_size")
    L = cfg.num_hidden_layers
    ab, mb, nb = cfg.attention_bias, cfg.mlp_bias, cfg.norm_bias
    e = f"{prefix}embeddings"

    def layer(m: str, first: bool) -> tuple:
        parts = [] if first else [layernorm("attn_norm", f"{m}.attn_norm", H, "pre-attention norm",
                                            role="attn_norm", bias=nb)]
        return (*parts,
                linear("Wqkv", f"{m}.attn.Wqkv", H, H3, bias=ab, description="fused Q, K, V projection", role="qkv"),
                linear("attn.Wo", f"{m}.attn.Wo", H, H, bias=ab, description="attention output", role="attn_out"),
                layernorm("mlp_norm", f"{m}.mlp_norm", H, "pre-GLU norm", role="mlp_norm", bias=nb),
                linear("Wi", f"{m}.mlp.Wi", H, I2, bias=mb, description="GLU input and gate", role="ffn_in"),
                linear("mlp.Wo", f"{m}.mlp.Wo", I, H, bias=mb, description="GLU down-projection", role="ffn_out"))

    comps = [Component("embeddings", (
        embedding("tok_embeddings", f"{e}.tok_embeddings", V, H, "one row per token id", role="word"),
        layernorm("norm", f"{e}.norm", H, "normalises the lookup", role="emb_norm", bias=nb),
    ))]
    if L >= 1:
        comps.append(Component("first layer", layer(f"{prefix}layers.0", True)))
    if L >= 2:
        comps.append(Component("encoder layer", layer(f"{prefix}layers.{{i}}", False), repeat=L - 1, start=1))
    comps.append(Component("final norm", (layernorm("final_norm", f"{prefix}final_norm", H,
                                                    "after the last layer", role="final_norm", bias=nb),)))
    if head == "model":
        return comps
    comps.append(Component("prediction head", (
        linear("head.dense", "head.dense", H, H, bias=cfg.classifier_bias, role="head_dense",
               tokens="first" if head == "seq-cls" else "all", description="prediction head dense"),
        layernorm("head.norm", "head.norm", H, "prediction head norm", role="head_norm", bias=nb),
    )))
    if head == "mlm":
        tied = f"{e}.tok_embeddings.weight" if cfg.tie_word_embeddings else None
        comps.append(Component("MLM head", (
            linear("decoder", "decoder", H, V, bias=cfg.decoder_bias, role="mlm_decoder",
                   description="logits over the vocabulary", weight_tied_to=tied),
        )))
    else:
        name = {"seq-cls": "sequence classifier", "token-cls": "token classifier", "qa": "QA head"}[head]
        role = "qa_out" if head == "qa" else "cls_out"
        comps.append(Component(name, (
            linear("classifier", "classifier", H, C, tokens="first" if head == "seq-cls" else "all", role=role,
                   description="start/end logits per token" if head == "qa" else "logits"),
        )))
    return comps


# -------------------------------------------------------------------------------- forward: the program


def _layer(t, x, parts: dict, cfg: ModernBertConfig, tables: tuple, first: bool):
    """ModernBertEncoderLayer: ``h = x + Wo(attn(attn_norm(x)))``, ``y = h + mlp(mlp_norm(h))``; attention:
    Wqkv, unbind into Q, K, V heads, rotary on Q and K, eager/sdpa attention (a local layer's window is a mask
    over the same scores), Wo; mlp: ``Wo(drop(act(a) · g))`` with ``a, g = Wi(·).chunk(2)``. The ``until``
    marks are HF's local variables in a no-grad forward."""
    from ..program import Attention, B, Glu, Rotary, S, Unbind, Value

    A = cfg.num_attention_heads
    Ad, hd = Dim(A, "A"), Dim(cfg.hidden_size // A, "H/A")
    mod = parts["qkv"].module.rsplit(".", 1)[0]
    cos, sin = tables
    t.moment("attention scores")
    h = x if first else t.norm(parts["attn_norm"], x, "pre-attention LayerNorm")
    qkv = t.linear(parts["qkv"], h, "fused Q, K, V projection [B, S, 3H]")
    pieces = [t.emit(Unbind(Value(f"{mod}.{r}", (B, Ad, S, hd), f"{r.upper()} heads: a view of Wqkv's output",
                                  view_of=qkv, listed=False), x=qkv, index=i, parts=3))
              for i, r in enumerate("qkv")]
    q, k = (t.emit(Rotary(Value(f"{mod}.{r}_rotary", (B, Ad, S, hd), f"{r.upper()} with rotary positions"),
                          x=p, cos=cos, sin=sin)) for r, p in zip("qk", pieces[:2], strict=True))
    scores = Value(f"{mod}.scores", (B, Ad, S, S), "attention scores Q·Kᵀ/√(H/A) (+ window mask: local layers)")
    probs = Value(f"{mod}.probs", (B, Ad, S, S), "attention probabilities: softmax(scores)")
    ctx_h = Value(f"{mod}.context.heads", (B, Ad, S, hd), "probs · V, per head")
    ctx = t.emit(Attention(Value(f"{mod}.context", x.dims, "context: heads merged back"), q=q, k=k, v=pieces[2],
                           p=cfg.attention_dropout, scores=scores, probs=probs, context=ctx_h))
    t.moment("attention output")
    o = t.dropout(t.linear(parts["attn_out"], ctx, "attention output projection"), cfg.attention_dropout)
    for v in (qkv, q, k) if first else (h, qkv, q, k):
        v.until = o  # attn_norm's output, qkv and the rotated Q, K: ModernBertAttention's locals
    hs = t.add(x, o, name=f"{mod}.residual", description="x + attention")
    t.moment("feed-forward")
    m = t.norm(parts["mlp_norm"], hs, "pre-GLU LayerNorm")
    wi = t.linear(parts["ffn_in"], m, "GLU input and gate [B, S, 2I]")
    glu = t.emit(Glu(Value(f"{parts['ffn_in'].module.rsplit('.', 1)[0]}.glu", (*wi.dims[:-1], out_dim_of(parts)),
                           f"{cfg.hidden_activation}(input) · gate"), x=wi, fn=cfg.hidden_activation))
    f = t.linear(parts["ffn_out"], t.dropout(glu, cfg.mlp_dropout), "GLU down-projection")
    m.until = wi.until = f  # mlp_norm's output (ModernBertMLP's argument) and Wi's output (input, gate views)
    y = t.add(hs, f, name=f"{parts['ffn_out'].module}.residual", description="layer output: h + GLU")
    o.until = y  # attn_output: a local of the layer's forward
    probs.until = y  # eager: the attention weights, returned to the layer as `_`
    return y


def out_dim_of(parts: dict) -> Dim:
    """The GLU's output width: the input width of ``mlp.Wo`` (I)."""
    from ..formula import short

    d = parts["ffn_out"].tensors[0].dims[1]
    return Dim(d.size, short(d.symbol))


def forward(cfg: ModernBertConfig, comps: list[Component], head: str):
    """ModernBertModel's forward and the task head's: tok_embeddings → norm → dropout; the window mask and
    the rotary tables (cos, sin per layer type), held by the base model; layer 0; the template × (L - 1);
    final_norm; then ModernBertPredictionHead (dense, act, norm) and the task layer, with its loss (a bare
    model: the sum of last_hidden_state)."""
    from ..program import B, Mask, Mean, Rope, S, Value
    from . import _blocks as blocks

    c = {x.name: x for x in comps}
    prefix = "" if head == "model" else BASE_PREFIX
    e = blocks.Trace()
    emb = blocks.by_role(c["embeddings"].parts)
    e.moment("embeddings")
    ids = e.ids("input_ids", "token ids")
    x = e.lookup(emb["word"], ids, "token lookup")
    h = e.norm(emb["emb_norm"], x, "LayerNorm of the lookup")
    embedded = e.dropout(h, cfg.embedding_dropout)
    embedded.until = "base"  # the mask's keyword arguments (inputs_embeds) hold it for the whole forward
    hd = Dim(cfg.hidden_size // cfg.num_attention_heads, "H/A")
    tables = {}
    if cfg.num_hidden_layers:
        e.emit(Mask(Value("sliding_window_mask", (B, Dim(1), S, S), "window mask of the local layers "
                          "(made whether or not a layer is local)", until="base")))
        for kind in cfg.types_present():
            tables[kind] = tuple(e.emit(Rope(Value(f"{prefix}rotary_emb.{kind}.{trig}", (Dim(1), S, hd),
                                                   f"{trig} of the rotary angles, {kind}", until="base")))
                                 for trig in ("cos", "sin"))
    types = cfg.layer_types or ()
    first_type = types[0] if types else "full_attention"
    if "first layer" in c:
        embedded = _layer(e, embedded, blocks.by_role(c["first layer"].parts), cfg, tables[first_type], True)
    enc = None
    if "encoder layer" in c:
        from ..program import Encoder

        comp = c["encoder layer"]
        t = blocks.Trace()
        inp = Value(f"{comp.name} input", embedded.dims, listed=False)
        # the template's rotary reads one type's tables; every type's have the same shape and lifetime
        kind = types[1] if len(types) > 1 else next(iter(tables))
        y = _layer(t, inp, blocks.by_role(comp.parts), cfg, tables[kind], False)
        enc = Encoder(comp.name, (t.layer(inp, y),), comp.times_applied, comp.repeat)
    hidden = embedded if enc is None else Value("last layer output", enc.out.dims, listed=False)
    tail = blocks.Trace()
    tail.moment("final norm")
    last = tail.norm(c["final norm"].parts[0], hidden, "last_hidden_state: final_norm(last layer output)")
    last.until = "end"
    hd_ = blocks.Trace()
    if head == "model":
        hd_.loss("sum", last)
        return blocks.program(e, embedded, enc, hidden, tail, hd_)
    ph = blocks.by_role(c["prediction head"].parts)
    hd_.moment("head")
    z = last
    if head == "seq-cls":
        if cfg.classifier_pooling == "cls":
            z = hd_.first(last, "first_token", "last_hidden_state[:, 0]", listed=False)
        else:
            z = hd_.emit(Mean(Value("mean_pooled", (B, last.width), "masked mean over the sequence"), x=last))
    z = hd_.linear(ph["head_dense"], z, "prediction head dense")
    z = hd_.act(cfg.classifier_activation, z, listed=False)
    z = hd_.norm(ph["head_norm"], z, "prediction head LayerNorm")
    if head == "mlm":
        hd_.moment("MLM logits")
        logits = hd_.linear(c["MLM head"].parts[0], z, "MLM logits over the vocabulary")
        hd_.loss("vocab", logits)
    else:
        out = next(x for x in comps if x.name in ("sequence classifier", "token classifier", "QA head")).parts[0]
        blocks.classify(hd_, out, z, cfg.classifier_dropout, loss="spans" if head == "qa" else "classes")
    return blocks.program(e, embedded, enc, hidden, tail, hd_)


def build(cfg: ModernBertConfig, head: str = "model", pooler_: bool = True) -> Architecture:
    check_head(head, "ModernBERT", HEADS)
    prefix = "" if head == "model" else BASE_PREFIX
    comps = components(cfg, head, prefix)
    return Architecture("modernbert", HF_PREFIX + HEAD_CLASSES[head], head, tuple(comps), cfg.symbol_values(), prefix,
                        unused(cfg, labels=head in ("seq-cls", "token-cls", "qa"), ties=head == "mlm", pad=True),
                        forward=lambda: forward(cfg, comps, head), buffers=buffers(cfg, prefix),
                        base_prefix=BASE_PREFIX)


def buffers(cfg: ModernBertConfig, prefix: str) -> tuple[Buffer, ...]:
    """ModernBertRotaryEmbedding: ``{type}_inv_freq`` and ``{type}_original_inv_freq``, float ``[H/A / 2]``
    (rounded up), per layer type the layers use; registered with ``persistent=False``."""
    n = -(-(cfg.hidden_size // cfg.num_attention_heads) // 2)
    return tuple(Buffer(f"{prefix}rotary_emb.{kind}_{what}", (n,), "float32")
                 for kind in sorted(cfg.types_present()) for what in ("inv_freq", "original_inv_freq"))
