"""The forward program: a model's forward pass as typed ops over named activations.

A family describes its forward pass once, beside its tensors, as a :class:`Program`: the embeddings' ops, one
encoder layer template (applied ``times``, cycling through ``groups`` parameter sets), and the ops after the
encoder (pooler, task head, loss). Each op names the :class:`~bertcalc.model.Part` it uses and the
:class:`Value` it reads and writes. Generic code reads the program and nothing else:

- ``activations.py``: each listed value's shape, in order;
- ``flopcount.py``: each op's matmul FLOPs, by the ``torch.utils.flop_counter`` convention;
- ``memsim.py``: per-op rules for what autograd saves and in which dtype, the backward replayed in reverse over
  the same ops, and a no-grad forward's live set op by op.

Shapes are symbolic: :data:`B` and :data:`S` stand for the batch and the sequence, resolved per run, so one
program serves every batch size, and an encoder of 10^9 layers is still one template.
"""

from __future__ import annotations

from dataclasses import field, fields
from typing import Literal

from .model import Dim, Part, cached
from .records import frozen, record

B = Dim(0, "B")  # the batch: a placeholder, resolved by :func:`size`
S = Dim(0, "S")  # the sequence length

Scope = Literal["base", "end"]


def size(d: Dim, batch: int, seq: int) -> int:
    if d.size == 0:  # B and S are the only zero-size dims with these symbols: d == B, without dataclass __eq__
        if d.symbol == "B":
            return batch
        if d.symbol == "S":
            return seq
    return d.size


def resolve(dims: tuple[Dim, ...], batch: int, seq: int) -> tuple[Dim, ...]:
    """The dims with B and S given their sizes (``Dim(8, "B")``)."""
    return tuple(Dim(size(d, batch, seq), d.symbol) for d in dims)


@record
class Value:
    """One activation. ``view_of`` shares its storage (a reshape, a [CLS] slice); ``hold`` says how long Python
    keeps it alive in a no-grad forward beyond its last use: until the op that writes another value of the same
    layer has run (a local variable of an HF module), to the end of the ``base`` model, or to the ``end`` of the
    forward (the model's outputs)."""

    name: str
    dims: tuple[Dim, ...]
    description: str = ""
    dtype: str = "float"  # "int64" for ids
    listed: bool = True  # shown by ``shapes --batch --seq``
    view_of: Value | None = None
    until: Value | Scope | None = None

    def elements(self, batch: int, seq: int) -> int:
        # the product of the dims is c × B^b × S^s: found once per value (memory replays ask it thousands of
        # times per step), then three multiplications
        f = self.__dict__.get("_factors")
        if f is None or f[0] is not self.dims:
            c, b, s = 1, 0, 0
            for d in self.dims:
                if d.size == 0 and d.symbol == "B":
                    b += 1
                elif d.size == 0 and d.symbol == "S":
                    s += 1
                else:
                    c *= d.size
            f = self._factors = (self.dims, c, b, s)
        _, c, b, s = f
        return c * (batch if b == 1 else batch ** b) * (seq if s == 1 else seq ** s)

    @property
    def storage(self) -> Value:
        v = self
        while v.view_of is not None:
            v = v.view_of
        return v

    @property
    def width(self) -> Dim:
        return self.dims[-1]


# ------------------------------------------------------------------------------------------------------ ops


@record(show=False)
class Op:
    """One step of the forward pass, writing ``out``. Ops are built once per program and never changed after:
    they are :func:`~bertcalc.records.record` dataclasses (no ``frozen``, no ``__repr__`` per class: both cost
    import time, the start-up of every command that reads a program) with this one ``__repr__``, the one
    dataclasses writes."""

    out: Value

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
        return f"{type(self).__qualname__}({shown})"

    @property
    def inputs(self) -> tuple[Value, ...]:  # pragma: no cover - every op overrides
        return ()


@record(show=False)
class Input(Op):
    """Integer ids fed to the model (``input_ids [B, S]``). Not counted in memory, like the other inputs."""

    @property
    def inputs(self) -> tuple[Value, ...]:
        return ()


@record(show=False)
class Unary(Op):
    """An op of one input, ``x``."""

    x: Value = field(kw_only=True)

    @property
    def inputs(self) -> tuple[Value, ...]:
        return (self.x,)


@record(show=False)
class Lookup(Op):
    """``nn.Embedding``: one row of ``table`` per id."""

    table: Part = field(kw_only=True)
    ids: Value = field(kw_only=True)

    @property
    def inputs(self) -> tuple[Value, ...]:
        return (self.ids,)


@record(show=False)
class Linear(Unary):
    """``nn.Linear`` over the last dimension of ``x``: ``2 × rows × in × out`` FLOPs."""

    part: Part = field(kw_only=True)


@record(show=False)
class Norm(Unary):
    """``nn.LayerNorm`` over the last dimension: saves its input and two statistics per row."""

    part: Part = field(kw_only=True)


@record(show=False)
class Add(Op):
    """An elementwise sum (the embeddings' lookups, a residual). Type promotion: fp32 + bf16 is fp32."""

    xs: tuple[Value, ...] = field(kw_only=True)

    @property
    def inputs(self) -> tuple[Value, ...]:
        return self.xs


@record(show=False)
class Dropout(Unary):
    """``nn.Dropout(p)`` in training: a one-byte mask per element. Only emitted for ``p > 0`` (ATen returns the
    input itself at p = 0); the identity in a no-grad forward."""

    p: float = field(kw_only=True)


@record(show=False)
class Act(Unary):
    """An activation function by its HF name (``gelu``, ``gelu_new``, ``relu``, ``tanh``...)."""

    fn: str = field(kw_only=True)


@record(show=False)
class Heads(Unary):
    """``view(B, S, A, H/A).transpose(1, 2)``: a view, split into attention heads (or merged back). When its
    value is no view (``.contiguous()`` after the transpose), it is a copy."""


@record(show=False)
class Attention(Op):
    """Scaled dot-product attention over head-split ``q``, ``k``, ``v`` (``[B, A, S, H/A]``), with dropout ``p``
    on the probabilities, merged back into ``out`` (``[B, S, H]``). ``scores``, ``probs`` and ``context`` are
    the intermediate values of the eager implementation, for the listing.

    ``bias``, where there is one, is a ``[B, A, S, S]`` value added to the scaled scores before the softmax
    (``scores += bias``, in place): made once, before the encoder (:class:`PositionBias`), and read by every
    layer, so its gradient is summed over the layers. ``sdpa`` is False where the HF module has no sdpa path
    (it always computes the scores with matmuls). A ``scores.until`` that is set keeps the scores alive past
    the softmax in a no-grad forward (a local variable of the HF module)."""

    q: Value = field(kw_only=True)
    k: Value = field(kw_only=True)
    v: Value = field(kw_only=True)
    p: float = field(kw_only=True)
    scores: Value = field(kw_only=True)
    probs: Value = field(kw_only=True)
    context: Value = field(kw_only=True)
    # a decoder's no-grad forward with use_cache: K and V are concatenated into the layer's DynamicCache
    # (contiguous copies, held to the end of the forward), and attention reads those
    cache: bool = field(default=False, kw_only=True)
    # a decoder (is_decoder): eager attention adds a causal mask, made once by the base model as a float
    # [B, 1, S, S] tensor (sdpa uses is_causal and makes none)
    causal: bool = field(default=False, kw_only=True)
    bias: Value | None = field(default=None, kw_only=True)
    sdpa: bool = field(default=True, kw_only=True)

    @property
    def inputs(self) -> tuple[Value, ...]:
        return (self.q, self.k, self.v)

    @property
    def heads(self) -> Dim:
        return self.q.dims[1]

    @property
    def head_dim(self) -> Dim:
        return self.q.dims[-1]


@record(show=False)
class PositionBias(Op):
    """A learned additive attention bias ``[B, A, S, S]``: ``table`` (``[buckets, A]``) looked up by the
    relative-position bucket of every (query, key) pair (an int64 ``[S, S]``), permuted to ``[A, S, S]`` and
    expanded over the batch into a contiguous tensor. No input but the sequence length; 0 FLOPs (bucketing
    is integer arithmetic, the lookup a gather). Read by :class:`Attention` as ``bias``."""

    table: Part = field(kw_only=True)

    @property
    def inputs(self) -> tuple[Value, ...]:
        return ()


@record(show=False)
class Unbind(Unary):
    """One of ``parts`` equal pieces of the last dimension of a fused projection, split into heads:
    ``x.view(B, S, parts, A, H/A).unbind(-3)[index].transpose(1, 2)``, a view ``[B, A, S, H/A]``. The backward
    stacks the pieces' gradients into one new tensor of ``x``'s size once all of them have arrived."""

    index: int = field(kw_only=True)
    parts: int = field(kw_only=True)


@record(show=False)
class Rope(Op):
    """A rotary table (``cos`` or ``sin`` of the angles, ``[1, S, H/A]``), made once per forward for a layer
    type from ``position_ids``; no parameter, no gradient."""

    @property
    def inputs(self) -> tuple[Value, ...]:
        return ()


@record(show=False)
class Rotary(Unary):
    """Rotary position embedding of head-split ``x``: ``x·cos + rotate_half(x)·sin``, a new contiguous tensor
    of ``x``'s shape (HF computes it in fp32 and casts back to ``x``'s dtype). The products save only the
    tables, which are counted where they are made."""

    cos: Value = field(kw_only=True)
    sin: Value = field(kw_only=True)

    @property
    def inputs(self) -> tuple[Value, ...]:
        return (self.x, self.cos, self.sin)


@record(show=False)
class Glu(Unary):
    """A gated linear unit over the last dimension: ``a, g = x.chunk(2, -1)``, then ``fn(a) * g`` (half of
    ``x``'s width). Saves ``x`` (the activation's input and the gate are views of it) and ``fn(a)``."""

    fn: str = field(kw_only=True)


@record(show=False)
class Mask(Op):
    """An attention mask built once per forward from the shapes alone (a sliding window, ``[B, 1, S, S]``):
    additive, in the hidden states' dtype, for eager attention; boolean for sdpa. No gradient."""

    @property
    def inputs(self) -> tuple[Value, ...]:
        return ()


@record(show=False)
class Mean(Unary):
    """The mean over the sequence, ``[B, S, W]`` -> ``[B, W]``, as a masked mean with an all-ones mask:
    ``(x · mask[..., None]).sum(1) / mask.sum(1)``. Saves the ``[B, S]`` boolean mask and the ``[B, 1]``
    integer count."""


@record(show=False)
class First(Unary):
    """``hidden_states[:, 0]``: a view of the first ([CLS]) token of every sequence."""


@record(show=False)
class Param(Op):
    """A parameter tensor used as an activation (a table fed straight to a LayerNorm): no FLOPs and no
    activation memory (it is counted in the weights); the gradient it receives is the parameter's."""

    part: Part = field(kw_only=True)

    @property
    def inputs(self) -> tuple[Value, ...]:
        return ()


@record(show=False)
class Make(Op):
    """A tensor the forward makes from the input's shape alone (an all-ones attention mask, its [B, 1, S, S]
    extension, relative-position ids): ``nbytes`` per element, never differentiated, nothing saved."""

    nbytes: int = field(kw_only=True)

    @property
    def inputs(self) -> tuple[Value, ...]:
        return ()


@record(show=False)
class Matmul(Op):
    """A batched matmul of two activations, ``a [..., m, k] @ b [..., k, n]`` (``b`` given as ``[..., n, k]`` with
    ``transpose_b``): ``2 × elements(out) × k`` FLOPs; autograd saves both operands."""

    a: Value = field(kw_only=True)
    b: Value = field(kw_only=True)
    transpose_b: bool = field(default=False, kw_only=True)

    @property
    def inputs(self) -> tuple[Value, ...]:
        return (self.a, self.b)


@record(show=False)
class Scale(Unary):
    """Division by a 0-dim tensor (``x / √d``): a new tensor; autograd saves the scalar."""


@record(show=False)
class Scalar(Unary):
    """``x * c`` with a Python number ``c`` (LoRA's ``scaling``): a new tensor; autograd saves nothing."""


@record(show=False)
class Gather(Unary):
    """``torch.gather(x, -1, index)`` with an integer ``index`` value (made by a :class:`Make`): saves its input
    and the index; the backward scatters the gradient into zeros of ``x``'s size."""

    index: Value = field(kw_only=True)

    @property
    def inputs(self) -> tuple[Value, ...]:
        return (self.x, self.index)


@record(show=False)
class Repeat(Unary):
    """``x.repeat(B, ...)``: ``x`` copied once per sequence of the batch; saves nothing; the backward sums."""


@record(show=False)
class MaskFill(Unary):
    """``masked_fill(~mask, min)`` with a one-byte mask of dims ``mask`` made inside the op (from the attention
    mask): a new tensor; saves the mask."""

    mask: tuple[Dim, ...] = field(kw_only=True)


@record(show=False)
class Softmax(Unary):
    """Softmax over the last dimension (fp32 under autocast): saves its output."""


@record(show=False)
class Mul(Unary):
    """``x * factor`` with a non-differentiated ``factor`` (a padding mask [B, S, 1], made by a :class:`Make`):
    a new tensor; saves the factor."""

    factor: Value = field(kw_only=True)

    @property
    def inputs(self) -> tuple[Value, ...]:
        return (self.x, self.factor)


LossKind = Literal["vocab", "classes", "spans", "binary", "sum"]


@record(show=False)
class Loss(Unary):
    """The loss the training step differentiates: ``vocab`` (cross-entropy over the vocabulary, per token),
    ``classes`` (cross-entropy over the labels, per row of ``x``), ``spans`` (QA: start and end cross-entropy
    over the sequence), ``binary`` (BCE with logits, per token), or ``sum`` (a bare model: the sum of its
    output)."""

    kind: LossKind = field(kw_only=True)


# --------------------------------------------------------------------------------------------- structure


@frozen
class Layer:
    """One encoder layer's forward: ``inp`` [B, S, H] to ``out`` [B, S, H]. ``moments`` labels the ops for the
    no-grad forward's report (the label of an op holds until the next labelled op)."""

    ops: tuple[Op, ...]
    inp: Value
    out: Value
    moments: dict[int, str] = field(default_factory=dict)  # op index -> label


@frozen
class Encoder:
    """The layer template (one or more layers: ALBERT's inner group), applied ``times`` in all, cycling through
    ``groups`` distinct parameter sets (``times`` of them, unless layers are shared). ``checkpointing`` is
    False where HF cannot checkpoint the layers (``supports_gradient_checkpointing`` is False)."""

    component: str
    layers: tuple[Layer, ...]
    times: int
    groups: int
    checkpointing: bool = True

    @property
    def inp(self) -> Value:
        return self.layers[0].inp

    @property
    def out(self) -> Value:
        return self.layers[-1].out

    @cached  # read by every pass over the program (flops, memory, shapes): the same tuple each time
    def ops(self) -> tuple[Op, ...]:
        return tuple(op for layer in self.layers for op in layer.ops)


@frozen
class Program:
    """A model's forward pass. ``embeddings`` ends at the encoder's input; ``tail`` runs after the encoder inside
    the base model (the pooler); ``head`` is the task head with its loss. ``hidden`` is the last hidden state.
    ``moments`` labels ops of ``embeddings``, ``tail`` and ``head`` (by op) for the no-grad forward."""

    embeddings: tuple[Op, ...]
    embedded: Value  # what the embeddings hand the encoder
    encoder: Encoder | None
    hidden: Value  # the last hidden state (``embedded`` when there are no layers)
    tail: tuple[Op, ...] = ()
    head: tuple[Op, ...] = ()
    moments: dict[int, str] = field(default_factory=dict)  # id(op) -> label

    def all_ops(self) -> tuple[Op, ...]:
        """Every op, the encoder's template once even when it is applied zero times."""
        enc = self.encoder.ops if self.encoder is not None else ()
        return (*self.embeddings, *enc, *self.tail, *self.head)

    def ops(self) -> tuple[Op, ...]:
        """Every op of one pass, the encoder's template once."""
        enc = self.encoder.ops if self.encoder is not None and self.encoder.times else ()
        return (*self.embeddings, *enc, *self.tail, *self.head)
