"""Forward-program building blocks shared by the families: the ``forward`` of common modules, as ops.

A family's ``__init__`` side is its :class:`~bertcalc.model.Component` list (``_parts``); its ``forward`` side
calls these on a :class:`Trace`, which records the ops in execution order. Each helper returns the value it
writes, whose width comes from the part's weight, so activations and weights cannot disagree.
"""

from ..formula import short
from ..model import Dim, Part
from ..program import (
    Act,
    Add,
    Attention,
    B,
    Dropout,
    First,
    Heads,
    Input,
    Layer,
    Linear,
    Lookup,
    Loss,
    LossKind,
    Norm,
    Op,
    S,
    Value,
)


def out_dim(part: Part) -> Dim:
    """The width a Linear or Embedding writes: weight ``[out, in]`` or table ``[rows, dim]``, in short symbols."""
    w = part.tensors[0]
    d = w.dims[1] if part.kind == "embedding" else w.dims[0]
    return Dim(d.size, short(d.symbol))


class Trace:
    """Records ops in the order the forward runs them, and labels for the no-grad forward's report."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.moments: dict[int, str] = {}

    def moment(self, label: str) -> None:
        """Label the ops from here on (until the next label)."""
        self.moments[len(self.ops)] = label

    def emit(self, op: Op) -> Value:
        self.ops.append(op)
        return op.out

    def layer(self, inp: Value, out: Value) -> Layer:
        return Layer(tuple(self.ops), inp, out, dict(self.moments))

    # -------------------------------------------------------------------------------------- the modules

    def ids(self, name: str, description: str) -> Value:
        return self.emit(Input(Value(name, (B, S), description, dtype="int64")))

    def lookup(self, table: Part, ids: Value, description: str) -> Value:
        return self.emit(Lookup(Value(table.module, (*ids.dims, out_dim(table)), description), table=table, ids=ids))

    def linear(self, part: Part, x: Value, description: str = "", name: str | None = None,
               listed: bool = True) -> Value:
        out = Value(name or part.module, (*x.dims[:-1], out_dim(part)), description, listed=listed)
        return self.emit(Linear(out, part=part, x=x))

    def norm(self, part: Part, x: Value, description: str = "", listed: bool = True) -> Value:
        return self.emit(Norm(Value(part.module, x.dims, description, listed=listed), part=part, x=x))

    def add(self, *xs: Value, name: str, description: str = "", listed: bool = False) -> Value:
        return self.emit(Add(Value(name, xs[0].dims, description, listed=listed), xs=xs))

    def dropout(self, x: Value, p: float) -> Value:
        """Dropout(p) in training; at p = 0 the op does not exist (ATen returns its input)."""
        if p <= 0:
            return x
        return self.emit(Dropout(Value(f"{x.name}.dropout", x.dims, listed=False), x=x, p=p))

    def act(self, fn: str, x: Value, name: str | None = None, description: str = "", listed: bool = True) -> Value:
        return self.emit(Act(Value(name or f"{x.name}.act", x.dims, description, listed=listed), fn=fn, x=x))

    def first(self, x: Value, name: str, description: str = "", listed: bool = True) -> Value:
        out = Value(name, (x.dims[0], x.dims[-1]), description, listed=listed, view_of=x)
        return self.emit(First(out, x=x))

    def loss(self, kind: LossKind, x: Value) -> Value:
        return self.emit(Loss(Value(f"{x.name}.loss", (), listed=False), kind=kind, x=x))

    def self_attention(self, q: Part, k: Part, v: Part, x: Value, heads: int, p: float, module: str,
                       cache: bool = False, causal: bool = False, bias: Value | None = None,
                       sdpa: bool = True) -> Value:
        """Q, K, V projections of ``x``, split into heads, eager/sdpa attention, merged back: HF's
        ``eager_attention_forward`` and ``BertSelfAttention``. Returns the context [B, S, H]. ``bias``: a
        [B, A, S, S] value added to the scores; ``sdpa``: whether the module has an sdpa path."""
        proj = [self.linear(part, x, f"{r} projection") for r, part in zip("QKV", (q, k, v), strict=True)]
        H = out_dim(q)
        A, hd = Dim(heads, "A"), Dim(H.size // heads, "H/A")
        split = []
        for r, y in zip("QKV", proj, strict=True):
            # view(B, S, A, H/A).transpose(1, 2) -> (B, A, S, H/A)
            split.append(self.emit(Heads(Value(f"{y.name}.heads", (B, A, S, hd), f"{r} split into heads",
                                               view_of=y), x=y)))
        scores = Value(f"{module}.scores", (B, A, S, S), "attention scores Q·Kᵀ/√(H/A) + mask")
        probs = Value(f"{module}.probs", (B, A, S, S), "attention probabilities: softmax(scores)")
        ctx = Value(f"{module}.context.heads", (B, A, S, hd), "probs · V, per head")
        out = Value(f"{module}.context", (B, S, H), "context: heads merged back (B, S, A·H/A)")
        return self.emit(Attention(out, q=split[0], k=split[1], v=split[2], p=p, scores=scores, probs=probs,
                                   context=ctx, cache=cache, causal=causal, bias=bias, sdpa=sdpa))


def transformer_layer(t: Trace, x: Value, parts: dict[str, Part], *, heads: int, act: str, p_hidden: float,
                      p_attn: float, attn_module: str, attn_out_dropout: bool = True, ffn_out_dropout: bool = True,
                      hold_context: bool = True, hold_intermediate: bool = True, cache: bool = False,
                      causal: bool = False, bias: Value | None = None, sdpa: bool = True) -> Value:
    """BertLayer's forward (BertSelfAttention, BertSelfOutput, BertIntermediate, BertOutput), post-norm:

    ``h = LN1(dropout(W_o · attn(x)) + x)``, ``y = LN2(dropout(W_2 · act(W_1 · h)) + h)``. ``parts`` by role:
    q, k, v, attn_out, attn_norm, ffn_in, ffn_out, ffn_norm. DistilBERT has no dropout after the attention
    output (``attn_out_dropout=False``), ALBERT none after the FFN (``ffn_out_dropout=False``). The
    ``until`` marks are HF's local variables: in a no-grad forward,
    the context and its projection live to the end of BertAttention (``hold_context``), the FFN's intermediate
    (``hold_intermediate``: BertOutput takes it as an argument) and down-projection to the end of BertOutput,
    and the attention probabilities (returned as attn_weights) to the end of the layer. ``bias`` and ``sdpa``
    go to the attention (:meth:`Trace.self_attention`).
    """
    t.moment("attention scores")
    ctx = t.self_attention(parts["q"], parts["k"], parts["v"], x, heads, p_attn, parts["q"].module.rsplit(".", 1)[0],
                           cache, causal, bias, sdpa)
    t.moment("attention output")
    o = t.linear(parts["attn_out"], ctx, "attention output projection")
    o = t.dropout(o, p_hidden) if attn_out_dropout else o
    h = t.norm(parts["attn_norm"], t.add(o, x, name=f"{attn_module}.residual"), "LayerNorm(dense + residual)")
    o.until = h
    if hold_context:
        ctx.until = h
    t.moment("feed-forward")
    i = t.linear(parts["ffn_in"], h, "FFN intermediate (up-projection)")
    a = t.act(act, i, description=f"{act}(intermediate)")
    t.moment("FFN output LayerNorm")
    f = t.linear(parts["ffn_out"], a, "FFN down-projection")
    d = t.dropout(f, p_hidden) if ffn_out_dropout else f
    y = t.norm(parts["ffn_norm"], t.add(d, h, name=f"{parts['ffn_out'].module}.residual"),
               "layer output: LayerNorm(ffn + residual)")
    f.until = h.until = y
    if hold_intermediate:
        a.until = y
    attn = next(op for op in t.ops if isinstance(op, Attention) and op.out is ctx)
    attn.probs.until = y
    return y


def by_role(parts: tuple[Part, ...]) -> dict[str, Part]:
    return {p.role: p for p in parts}


def layers_of(comp_parts: tuple[Part, ...]) -> list[dict[str, Part]]:
    """A layer template's parts, one dict per inner layer (a role seen again starts the next one)."""
    out: list[dict[str, Part]] = []
    for p in comp_parts:
        if not out or p.role in out[-1]:
            out.append({})
        out[-1][p.role] = p
    return out


def encoder(comp, *, heads: int, act: str, p_hidden: float, p_attn: float, attn_out_dropout: bool = True,
            ffn_out_dropout: bool = True, hold_context: bool = True, hold_intermediate: bool = True,
            cache: bool = False, causal: bool = False, bias: Value | None = None, sdpa: bool = True,
            checkpointing: bool = True):
    """The layer template of ``comp`` (one or more inner layers), applied ``comp.times_applied`` times over
    ``comp.repeat`` parameter sets. ``bias``: an attention bias made before the encoder and read by every
    layer; ``sdpa``, ``checkpointing``: whether HF's modules can run sdpa and be checkpointed."""
    from ..program import Encoder

    inner = layers_of(comp.parts)
    H = out_dim(inner[0]["q"])
    x = Value(f"{comp.name} input", (B, S, H), listed=False)
    layers = []
    for parts in inner:
        t = Trace()
        y = transformer_layer(t, x, parts, heads=heads, act=act, p_hidden=p_hidden, p_attn=p_attn,
                              attn_module=parts["q"].module.rsplit(".", 2)[0], attn_out_dropout=attn_out_dropout,
                              ffn_out_dropout=ffn_out_dropout, hold_context=hold_context,
                              hold_intermediate=hold_intermediate, cache=cache, causal=causal, bias=bias,
                              sdpa=sdpa)
        layers.append(t.layer(x, y))
        x = y
    return Encoder(comp.name, tuple(layers), comp.times_applied, comp.repeat, checkpointing)


def hidden_of(embedded: Value, enc) -> Value:
    """The last hidden state: the last layer's output, or the embeddings' when there are no layers."""
    if enc is None or enc.times == 0:
        return embedded
    return Value("last_hidden_state", enc.out.dims, listed=False, until="end")


def embeddings(t: Trace, parts: tuple[Part, ...], p: float) -> Value:
    """BertEmbeddings.forward: word, position and (where the family has them) token-type lookups, summed, then
    LayerNorm (where the family has one: XLM-RoBERTa-XL has none) and dropout. The lookups are local variables
    until the module returns."""
    e = by_role(parts)
    t.moment("embeddings")
    ids = t.ids("input_ids", "token ids")
    tt = t.ids("token_type_ids", "segment ids (zeros when not given)") if "token_type" in e else None
    pos = t.ids("position_ids", "position of each token (HF broadcasts one [1, S] row)")
    looks = [t.lookup(e["word"], ids, "word lookup"), t.lookup(e["position"], pos, "position lookup")]
    if tt is not None:
        looks.append(t.lookup(e["token_type"], tt, "token-type lookup"))
    names = " + ".join(r for r in ("word", "position", "token_type") if r in e)
    s = t.add(*looks, name=e["word"].module.rsplit(".", 1)[0], description=f"embedding sum: {names}", listed=True)
    if "emb_norm" not in e:
        return t.dropout(s, p)
    h = t.norm(e["emb_norm"], s, "LayerNorm of the sum")
    for v in looks:
        v.until = h
    return t.dropout(h, p)


def pooler(t: Trace, dense: Part, hidden: Value) -> Value:
    """BertPooler: tanh(W · h[CLS] + b), on the first token only."""
    pm = dense.module.rsplit(".", 1)[0] if dense.module.endswith(".dense") else dense.module
    t.moment("pooler")
    f = t.first(hidden, f"{pm}.first_token", "hidden state of the first ([CLS]) token")
    d = t.linear(dense, f, "pooler dense")
    return t.act("tanh", d, name=f"{pm}.activation", description="pooled [CLS] output: tanh(dense)")


def mlm(t: Trace, parts: tuple[Part, ...], hidden: Value, act: str) -> Value:
    """An MLM head: transform dense, activation, LayerNorm, decoder to the vocabulary; cross-entropy."""
    m = by_role(parts)
    t.moment("MLM logits")
    x = t.linear(m["mlm_transform"], hidden, "MLM transform dense")
    x = t.act(act, x, description=f"{act}(transform)")
    x = t.norm(m["mlm_norm"], x, "MLM transform LayerNorm")
    logits = t.linear(m["mlm_decoder"], x, "MLM logits over the vocabulary")
    t.loss("vocab", logits)
    return logits


HEAD_WORDS = {
    "cls_dense": "classifier dense on [CLS]",
    "cls_out": "classification logits",
    "qa_out": "start/end logits per token",
    "seq_relationship": "sentence-pair logits from the pooled output",
    "disc_dense": "discriminator dense",
    "disc_pred": "replaced-token logit per token",
}


def classify(t: Trace, part: Part, x: Value, p: float = 0.0, loss: str = "classes") -> Value:
    """dropout(p), then a Linear to logits, then its loss: the classifier of a task head."""
    t.moment("head")
    logits = t.linear(part, t.dropout(x, p), HEAD_WORDS.get(part.role, part.label))
    t.loss(loss, logits)  # type: ignore[arg-type]
    return logits


def sequence_summary(t: Trace, comp, hidden: Value, *, act: str | None, p_first: float, p_last: float) -> Value:
    """ELECTRA's SequenceSummary (summary_type first): ``hidden[:, 0]`` -> dropout -> the ``summary`` Linear
    (where ``summary_use_proj``; ``comp`` is None without it) -> activation (if any) -> dropout."""
    t.moment("head")
    x = t.first(hidden, "sequence_summary.first_token", "hidden state of the first token")
    x = t.dropout(x, p_first)
    if comp is not None:
        x = t.linear(comp.parts[0], x, "sequence summary projection")
    if act:
        x = t.act(act, x, name="sequence_summary.activation", description=f"{act}(summary)")
    return t.dropout(x, p_last)


def dense_classifier(t: Trace, parts: tuple[Part, ...], hidden: Value, p: float, act: str) -> Value:
    """RoBERTa's and ELECTRA's ClassificationHead: [CLS] -> dropout -> dense -> act -> dropout -> out_proj."""
    m = by_role(parts)
    t.moment("head")
    x = t.first(hidden, f"{m['cls_dense'].module}.first_token", listed=False)
    x = t.linear(m["cls_dense"], t.dropout(x, p), HEAD_WORDS["cls_dense"])
    x = t.act(act, x, listed=False)
    logits = t.linear(m["cls_out"], t.dropout(x, p), HEAD_WORDS["cls_out"])
    t.loss("classes", logits)
    return logits


def roberta_heads(h: Trace, c: dict, hidden: Value, pooled: Value | None, head: str, p_cls: float,
                  p_choice: float) -> None:
    """The task heads as RoBERTa writes them (and MPNet and the pre-norm RoBERTas copy): RobertaLMHead (dense,
    gelu, LayerNorm, decoder), RobertaClassificationHead (dropout, dense, tanh, dropout, out_proj over [CLS]), a
    token or span classifier over every token, a one-logit classifier over the pooled [CLS] of each choice; the
    base model's loss is over the pooled output where there is a pooler. ``c`` maps component names to
    components."""
    if head == "mlm":
        mlm(h, c["MLM head"].parts, hidden, "gelu")
    elif head == "seq-cls":
        dense_classifier(h, c["sequence classifier"].parts, hidden, p_cls, "tanh")
    elif head == "token-cls":
        classify(h, c["token classifier"].parts[0], hidden, p_cls)
    elif head == "qa":
        classify(h, c["QA head"].parts[0], hidden, loss="spans")
    elif head == "multiple-choice":
        classify(h, c["multiple-choice classifier"].parts[0], pooled, p_choice)
    else:
        h.loss("sum", pooled if pooled is not None else hidden)


def program(emb: Trace, embedded: Value, enc, hidden: Value, tail: Trace | None, head: Trace):
    """Assemble a :class:`~bertcalc.program.Program` from the traces of its parts."""
    from ..program import Program

    moments: dict[int, str] = {}
    for tr in (emb, tail, head):
        if tr is None:
            continue
        label = ""
        for i, op in enumerate(tr.ops):
            label = tr.moments.get(i, label)
            if label:
                moments[id(op)] = label
    return Program(tuple(emb.ops), embedded, enc, hidden, tuple(tail.ops) if tail else (), tuple(head.ops), moments)
