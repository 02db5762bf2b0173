"""GPU memory of a training step or an inference pass, from the tensor list and the forward program.

What is modelled is what ``torch.cuda.max_memory_allocated()`` sees: every tensor PyTorch allocates, rounded
as the CUDA caching allocator rounds blocks. The CUDA context (several hundred MiB, outside the allocator)
and fragmentation (reserved but unallocated memory) are not counted.

Terms, each derived from shapes:

- **weights**: every unique parameter, plus the integer index buffers (``position_ids``...).
- **gradients**: one per parameter, same dtype, alive from the backward to ``zero_grad(set_to_none=True)``.
- **optimizer states**: per optimizer, from the parameter shapes (Adafactor's factored moments included).
- **saved activations**: what autograd keeps for the backward, by one rule per op kind of the family's
  program (:func:`saved_of`), keyed by storage so that a tensor several ops keep is counted once.
- **transient peak**: the backward is replayed allocation by allocation over the same ops in reverse
  (:class:`Backward` on a strict ledger, :class:`Sim`) through the loss, the head, one layer template (the
  others repeat it, in closed form), and the embeddings; its highest point over the saved set.

Inference is the program's no-grad forward, simulated op by op with HF's Python lifetimes (:class:`Forward`).
No family or head is named here: everything comes from the ops.

Every byte count is an integer. Nothing here is fitted to measurements; ``docs/memory.md`` compares the
predictions with peaks measured on an H100 and on the CPU.
"""

from __future__ import annotations

import enum
import itertools
import math
from typing import Any, ClassVar, Literal

from .choices import ATTENTIONS, MODES, OPTIMIZERS, PRECISIONS  # noqa: F401 (read as memsim.PRECISIONS...)
from .config import ModelConfig
from .errors import UsageError, arg
from .model import Architecture, Dim, ModelReport, Part, identify
from .program import (
    Act,
    Add,
    Dropout,
    First,
    Gather,
    Glu,
    Heads,
    Input,
    Linear,
    Lookup,
    Loss,
    Make,
    Mask,
    MaskFill,
    Matmul,
    Mean,
    Mul,
    Norm,
    Op,
    Param,
    PositionBias,
    Program,
    Repeat,
    Rope,
    Rotary,
    Scalar,
    Scale,
    Softmax,
    Unbind,
    Value,
    size,
)
from .program import Attention as AttentionOp
from .records import frozen
from .symbolic import TRACING, Sym, largest, opaque, top

Mode = Literal["train", "infer"]
Precision = Literal["fp32", "fp16", "bf16", "amp-bf16", "amp-fp16"]
Optimizer = Literal["adamw", "adam", "sgd", "sgd-momentum", "adafactor", "adamw-8bit"]
Attention = Literal["eager", "sdpa"]

MiB = 1 << 20
CUDA_CONTEXT = 512 * MiB  # what a budget leaves to the CUDA context by default: an assumption (docs/memory.md)


def alloc(nbytes: int) -> int:
    """Bytes the CUDA caching allocator reports for one tensor of ``nbytes``.

    Requests are rounded up to 512 bytes. A request of 10 MiB or more gets a segment rounded up to 2 MiB, and
    the block is not split when less than 1 MiB would be left over, so the whole rounded size is counted.
    """
    if type(nbytes) is Sym:  # a size under a trace (bertcalc.symbolic): the template does the rounding
        return opaque(alloc, nbytes, nonneg=True)
    if nbytes <= 0:
        return 0
    n = -(-nbytes // 512) * 512
    if n >= 10 * MiB:
        seg = -(-n // (2 * MiB)) * (2 * MiB)
        if seg - n <= MiB:
            return seg
    return n


@frozen
class Options:
    mode: Mode = "train"
    precision: Precision = "fp32"
    optimizer: Optimizer = "adamw"
    attention: Attention = "eager"
    grad_checkpointing: bool = False
    batch: int = 8
    seq: int = 128
    choices: int | None = None  # a multiple-choice input [B, C, S]: the model runs over batch × choices rows

    @property
    def rows(self) -> int:
        """The rows the model runs over: the batch, times the choices of a multiple-choice input."""
        return self.batch * (self.choices or 1)

    @property
    def amp(self) -> bool:
        return self.precision.startswith("amp")

    @property
    def weight_bytes(self) -> int:
        """Bytes per parameter element: fp32 master weights unless the model itself is cast to half."""
        return 2 if self.precision in ("fp16", "bf16") else 4

    @property
    def act_bytes(self) -> int:
        """Bytes per element of activations outside autocast (fp32 model: 4; half model: 2)."""
        return 4 if self.precision == "fp32" or self.amp else 2


# ------------------------------------------------------------------------------------------ the program


@frozen
class Ctx:
    """The dtypes of one run: bytes per element of activations (``a``), of matmul outputs (``c``: bf16 under
    autocast), and of gradients of the residual stream and LayerNorms (``r``: fp32 under autocast)."""

    amp: bool
    a: int
    c: int
    r: int
    wb: int
    attention: str
    batch: int
    seq: int
    gc: bool = False

    @classmethod
    def of(cls, o: Options) -> Ctx:
        a = o.act_bytes
        return cls(o.amp, a, 2 if o.amp else a, 4 if o.amp else a, o.weight_bytes, o.attention, o.rows, o.seq,
                   o.grad_checkpointing)

    @property
    def tokens(self) -> int:
        return self.batch * self.seq

    def n(self, v: Value) -> int:
        return v.elements(self.batch, self.seq)


def part_bytes(part: Part, elem_bytes: int) -> int:
    """What one part's unique tensors occupy at ``elem_bytes`` per element, as the allocator counts them."""
    return sum(alloc(t.parameters * elem_bytes) for t in part.tensors if t.tied_to is None)


class DTypes(dict):
    """:func:`dtypes`' answer: value -> bytes per element, for one program and one :class:`Ctx`. It also
    carries what :func:`saved_of` found for each op under that context and a batch, so that a step's replay
    (which asks for each op's saved set several times: the saved totals, each layer run, each backward) derives
    it once."""

    __slots__ = ("saved",)

    def __init__(self) -> None:
        super().__init__()
        self.saved: dict[tuple[Op, int, int], tuple[tuple[Key, int], ...]] = {}


def dtypes(p: Program, x: Ctx) -> dict[Value, int]:
    """Bytes per element of every value of the forward, by the producing op: autocast runs Linear and attention
    matmuls in bf16 and LayerNorm and softmax in fp32; lookups stay fp32; a sum promotes to the wider dtype."""
    dt: dict[Value, int] = DTypes()

    def of(v: Value) -> int:
        return dt[v.storage] if v.storage in dt else dt.get(v, x.a)

    def walk(ops: tuple[Op, ...]) -> None:
        for op in ops:
            if isinstance(op, Input):
                dt[op.out] = 8
            elif isinstance(op, (Lookup, Norm, PositionBias)):
                dt[op.out] = 4 if x.amp else x.a
            elif isinstance(op, (Linear, AttentionOp, Matmul)):
                dt[op.out] = x.c
            elif isinstance(op, Param):
                dt[op.out] = x.wb
            elif isinstance(op, Make):
                dt[op.out] = op.nbytes
            elif isinstance(op, Softmax):
                dt[op.out] = 4 if x.amp else x.a
            elif isinstance(op, (Scale, Scalar, Gather, Repeat, MaskFill, Mul)):
                dt[op.out] = of(op.x)
            elif isinstance(op, Add):
                dt[op.out] = max(of(v) for v in op.xs)
            elif isinstance(op, (Dropout, Act, Heads, First, Unbind, Rotary, Glu, Mean)):
                dt[op.out] = of(op.inputs[0])
            elif isinstance(op, Rope):  # made in the hidden states' dtype
                dt[op.out] = 4 if x.amp else x.a
            elif isinstance(op, Mask):  # boolean for sdpa, additive in the hidden states' dtype for eager
                dt[op.out] = 1 if x.attention == "sdpa" else (4 if x.amp else x.a)
            elif isinstance(op, Loss):
                dt[op.out] = 4

    walk(p.embeddings)
    if p.encoder is not None:
        dt[p.encoder.inp] = 4 if x.amp else x.a  # a layer's input: the previous layer's LayerNorm output
        walk(p.encoder.ops)
        dt[p.hidden] = dt[p.encoder.out] if p.encoder.times else of(p.embedded)
    walk(p.tail)
    walk(p.head)
    return dt


# How HF's ACT2FN implements each activation, as autograd sees it: which tensor the backward keeps ("input"
# or "output"), how many more tensors of its size a Python-composed formula saves, how many more are alive
# at once in a no-grad forward, and how many more its backward holds at its highest point (the product rule:
# both factors' gradients exist while the incoming one does). ``gelu_new`` is
# 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) written out in
# Python: pow, tanh and two products each keep a tensor.
ACTIVATIONS: dict[str, tuple[str, int, int, int]] = {
    "gelu": ("input", 0, 0, 0),
    "gelu_pytorch_tanh": ("input", 0, 0, 0),
    "silu": ("input", 0, 0, 0),
    "swish": ("input", 0, 0, 0),
    "relu": ("output", 0, 0, 0),
    "tanh": ("output", 0, 0, 0),
    "gelu_new": ("input", 3, 2, 1),
    "gelu_python": ("input", 3, 2, 1),
    "quick_gelu": ("input", 1, 1, 1),
    "gelu_fast": ("input", 6, 3, 1),
}


def activation_profile(name: str) -> tuple[str, int, int, int]:
    """Unknown activations are modelled as a fused kernel that keeps its input (like F.gelu)."""
    return ACTIVATIONS.get(name, ("input", 0, 0, 0))


def _ceil(x: int, m: int) -> int:
    return -(-x // m) * m


def _memo(obj: Any, key: Any, make: Any) -> Any:
    """What ``make()`` derives from ``obj`` (an Architecture or its Program: frozen, built once per model), kept
    on the object itself under ``key``: never a global cache, so a rebuilt model (a family patched in a test)
    is derived afresh."""
    if TRACING[0]:  # sizes are symbols, which a key would pin
        return make()
    memo = obj.__dict__.get("_memsim")
    if memo is None:
        memo = obj.__dict__["_memsim"] = {}
    if key not in memo:
        memo[key] = make()
    return memo[key]


Key = Any  # a Value (its storage), or (op, tag) for a tensor only that op holds


def sdpa(op: AttentionOp, x: Ctx) -> bool:
    """Whether ``op`` runs as sdpa: asked for, and the HF module has an sdpa path (else it is matmuls)."""
    return x.attention == "sdpa" and op.sdpa


def saved_of(op: Op, x: Ctx, dt: dict[Value, int]) -> list[tuple[Key, int]] | tuple[tuple[Key, int], ...]:
    """:func:`_saved_of`, once per op for a ``dt`` made by :func:`dtypes` (it is made for one ``x``)."""
    memo = getattr(dt, "saved", None)
    if memo is None or TRACING[0]:
        return _saved_of(op, x, dt)
    key = (op, x.batch, x.seq)  # a DTypes is made for one context but the batch (a fit asks several)
    out = memo.get(key)
    if out is None:
        out = memo[key] = tuple(_saved_of(op, x, dt))
    return out


def _saved_of(op: Op, x: Ctx, dt: dict[Value, int]) -> list[tuple[Key, int]]:
    """What autograd keeps from ``op`` for the backward: (storage key, bytes). Storage keys are shared, so a
    tensor saved by several ops (the layer input, by Q, K and V) is counted once.

    - Linear: its input; under autocast, its own bf16 cast of it (Q, K and V each cast the layer input). A
      weight tied to another tensor is cast under autocast here too (the other weights' casts are counted once,
      in :func:`weight_casts`).
    - LayerNorm: its input (cast to fp32 under autocast) and the mean and rstd of each row, in fp32.
    - Dropout: a one-byte mask. Activations: their input or output, and a composed formula's intermediates.
    - Eager attention: ``matmul`` folds [B, A, S, H/A] into a batch, which copies a transposed view of
      q, k or v (a tensor of its own, like a rotary output, folds as a view): the copies, or the tensors
      themselves, are what ``bmm`` saves; softmax saves its output (fp32 under autocast), dropout a mask, and
      ``probs @ v`` the dropped-out probabilities (their bf16 cast under autocast). sdpa saves q, k, v, its
      output and a log-sum-exp.
    - Rotary tables: kept by every rotary product's backward; counted once, with the op that makes them.
      Rotary and unbind: nothing more (the products keep only the tables; a view keeps nothing).
    - GLU: its input (the activation's input and the gate are views of it) and the activation's output.
    - A mean over the sequence: the boolean mask and the integer count.
    - Losses: the log-softmax (fp32); under CUDA autocast the bf16 logits over the vocabulary are held to the
      backward as well (measured on an H100).
    - A position bias: the bucket ids of its lookup (int64 ``[S, S]``), which the embedding backward keeps;
      nothing of the bias itself (the in-place add that reads it saves nothing).
    """
    def n(v: Value) -> int:
        return x.n(v)

    def kept(v: Value) -> tuple[Key, int]:
        s = v.storage
        return s, 0 if s.dtype == "param" else n(s) * dt[s]  # a parameter is counted in the weights

    def elems(dims) -> int:
        return math.prod(size(d, x.batch, x.seq) for d in dims)

    if isinstance(op, Linear):
        out: list[tuple[Key, int]] = []
        if x.amp and dt[op.x.storage] != 2:
            out.append(((op, "in"), n(op.x) * 2))
        else:
            out.append(kept(op.x))
        w = op.part.tensors[0]
        if x.amp and w.tied_to is not None:
            out.append(((op, "w"), w.parameters * 2))
        return out
    if isinstance(op, Norm):
        rows = n(op.x) // op.x.width.size
        inp = ((op, "in"), n(op.x) * 4) if x.amp and dt[op.x.storage] != 4 else kept(op.x)
        return [inp, ((op, "mean"), rows * 4), ((op, "rstd"), rows * 4)]
    if isinstance(op, Dropout):
        return [((op, "mask"), n(op.x))]
    if isinstance(op, Rope):
        return [kept(op.out)]
    if isinstance(op, Glu):  # the activation keeps its input (a view of x) or its output, and a formula's parts
        extra = activation_profile(op.fn)[1]
        out = [kept(op.x), ((op, "act"), n(op.out) * dt[op.x.storage])]
        return out + ([((op, "extra"), extra * n(op.out) * dt[op.x.storage])] if extra else [])
    if isinstance(op, Mean):
        return [((op, "mask"), n(op.x) // op.x.width.size), ((op, "count"), 8 * x.batch)]
    if isinstance(op, Act):
        keeps, extra, _, _ = activation_profile(op.fn)
        out = [kept(op.x) if keeps == "input" else kept(op.out)]
        if extra:
            out.append(((op, "extra"), extra * n(op.x) * dt[op.x.storage]))
        return out
    if isinstance(op, PositionBias):
        return [((op, "buckets"), x.seq * x.seq * 8)]
    if isinstance(op, AttentionOp):
        th, bass = n(op.q), n(op.scores)
        c = dt[op.q.storage]
        if sdpa(op, x):
            A = op.heads.size
            return [kept(op.q), kept(op.k), kept(op.v), kept(op.out),
                    ((op, "lse"), x.batch * A * _ceil(x.seq, 32) * 4)]
        out = [((op, "qc"), th * c) if op.q.view_of is not None else kept(op.q),
               ((op, "kc"), th * c) if op.k.view_of is not None else kept(op.k),
               ((op, "probs"), bass * (4 if x.amp else x.a))]
        if op.p > 0:
            out.append(((op, "mask"), bass))
        if x.amp:
            out.append(((op, "probs_bf16"), bass * 2))
        elif op.p > 0:
            out.append(((op, "dropped"), bass * x.a))
        out.append(((op, "vc"), n(op.v) * c) if op.v.view_of is not None else kept(op.v))
        return out
    if isinstance(op, Matmul):  # bmm keeps both operands (its own bf16 casts under autocast)
        return [((op, r), n(v) * 2) if x.amp and dt[v.storage] != 2 else kept(v)
                for r, v in (("a", op.a), ("b", op.b))]
    if isinstance(op, Scale):  # DivBackward keeps the 0-dim divisor
        return [((op, "scalar"), 4)]
    if isinstance(op, Gather):  # gather_backward keeps its input (for its size) and the int64 index
        return [kept(op.x), kept(op.index)]
    if isinstance(op, MaskFill):  # the one-byte mask
        return [((op, "mask"), elems(op.mask))]
    if isinstance(op, Softmax):
        return [kept(op.out)]
    if isinstance(op, Mul):
        return [kept(op.factor)]
    if isinstance(op, Loss):
        if op.kind == "sum":
            return []
        if op.kind == "vocab":
            lsm = 4 if (x.amp or x.a == 4) else 2
            out = [((op, "lsm"), n(op.x) * lsm)]
            if x.amp:
                out.append(kept(op.x))
            return out
        return [((op, "lsm"), n(op.x) * 4)]
    return []


def saved_set(ops: tuple[Op, ...], x: Ctx, dt: dict[Value, int]) -> dict[Key, int]:
    """Everything ``ops`` keep for the backward, each storage once: key -> bytes (before rounding)."""
    out: dict[Key, int] = {}
    for op in ops:
        for k, nbytes in saved_of(op, x, dt):
            out.setdefault(k, nbytes)
    return out


def saved_bytes(d: dict[Key, int]) -> int:
    return sum(alloc(n) for n in d.values())


def weight_casts(arch: Architecture, p: Program, x: Ctx) -> int:
    """Under autocast every Linear weight is cast to bf16 once per forward (autocast caches the cast) and saved
    for its backward: once per distinct weight, even for ALBERT's shared layer. Tied weights are counted with
    the op that uses them."""
    if not x.amp:
        return 0
    repeat = {id(part): c.repeat for c in arch.components for part in c.parts}
    seen: dict[int, int] = {}
    for op in p.ops():
        if isinstance(op, Linear) and op.part.tensors[0].tied_to is None:
            seen[id(op.part)] = op.part.tensors[0].parameters * repeat.get(id(op.part), 1)
    return 2 * sum(seen.values())


# ------------------------------------------------------------------------------------------------ the ledger


_KEYS = itertools.count()


class Sim:
    """A ledger of live allocations, with its high-water mark. Buffers are reference-counted (a gradient
    handed to both sides of a residual is one tensor); freeing a buffer the ledger does not hold is an error."""

    def __init__(self, start: int = 0) -> None:
        self.live = start
        self.peak = start
        self.bufs: dict[Any, list[int]] = {}  # key -> [bytes, references]
        self._n = 0
        self._keys = _KEYS  # the temporaries' numbers (reserved.py's recorder numbers its own from 0)

    def alloc(self, nbytes: int, key: Any = None) -> Any:
        if key is None:
            key = ("tmp", next(self._keys))
        if key in self.bufs:
            raise KeyError(f"buffer {key!r} allocated twice")
        n = alloc(nbytes)
        self.bufs[key] = [n, 1]
        live = self.live = self.live + n
        if type(live) is int:
            if live > self.peak:
                self.peak = live
        else:  # under a trace: the high-water mark as a symbol, not a guard on which moment is highest
            self.peak = top(self.peak, live)
        return key

    def ref(self, key: Any) -> Any:
        self.bufs[key][1] += 1
        return key

    def free(self, key: Any) -> None:
        entry = self.bufs.get(key)
        if entry is None:
            raise KeyError(f"freeing {key!r}, which the ledger does not hold")
        entry[1] -= 1
        if entry[1] == 0:
            del self.bufs[key]
            self.live -= entry[0]

    def has(self, key: Any) -> bool:
        return key in self.bufs


class Backward:
    """The backward of a list of ops, replayed in reverse: each op consumes the gradient of its output and
    hands one to each input. A value reached twice (a residual, a tied table) keeps the first gradient to
    arrive; later ones are added into it in place and freed. Each op frees its saved tensors when it is done.

    ``first`` says whether this pass allocates the gradients of ``shared`` parameters (ALBERT's layers, run
    several times: later runs add theirs through a temporary)."""

    def __init__(self, sim: Sim, x: Ctx, dt: dict[Value, int], saved: dict[Op, list[Key]], *,
                 owners: dict[str, Part], shared: frozenset[int] = frozenset(), first: bool = True,
                 params: dict[int, Any] | None = None, needs: set[Value] | None = None) -> None:
        self.sim, self.x, self.dt, self.saved = sim, x, dt, saved
        # with frozen parameters (bertcalc.tuned): the values whose gradient autograd computes (requires_grad);
        # None: every value (full fine-tuning)
        self.needs = needs
        self.owners, self.shared, self.first = owners, shared, first
        self.grads: dict[Value, Any] = {}
        self.params: dict[int, Any] = {} if params is None else params  # id(part) -> its gradient's buffer
        self.via_linear: set[int] = set()
        self.ran: set[int] = set()  # parts given their gradient in this pass
        self.pending: dict[Value, list[Any]] = {}  # a fused tensor -> its pieces' gradients so far (unbind)

    # --------------------------------------------------------------------------------------- plumbing

    def n(self, v: Value) -> int:
        return self.x.n(v)

    def wants(self, v: Value) -> bool:
        """Whether autograd computes ``v``'s gradient (it requires grad)."""
        return self.needs is None or v in self.needs

    def deliver(self, v: Value, key: Any) -> None:
        if v.dtype == "int64" or (self.needs is not None and v not in self.needs):
            self.sim.free(key)
        elif v in self.grads:
            old = self.grads[v]
            if self.needs is not None and old in self.sim.bufs:
                # autograd's input buffer sums two gradients out of place (old + new: neither is a tensor it may
                # overwrite, as the CPU storage trace shows); then both go
                total = self.sim.alloc(self.n(v) * self.dt[v.storage])
                self.sim.free(old)
                self.grads[v] = total
            self.sim.free(key)
        else:
            self.grads[v] = key

    def release(self, op: Op) -> None:
        for k in self.saved.pop(op, ()):
            self.sim.free(k)

    def grad_w(self, part: Part, nbytes: int) -> None:
        """A parameter's gradient: allocated on first use and kept; a shared parameter's later uses add into
        it through a temporary. Under autocast the bf16 gradient of the cast weight comes first, then its
        fp32 copy."""
        if nbytes == 0:
            return
        sim, amp = self.sim, self.x.amp
        first = self.first or id(part) not in self.shared
        half = sim.alloc(nbytes // 2) if amp else None
        if id(part) in self.params and id(part) in self.ran:
            # used twice in this pass (a layer's query_proj on the hidden states and on the relative table):
            # autograd sums the two gradients out of place (the first is a transposed view), then frees both
            tmp = sim.alloc(nbytes)
            total = sim.alloc(nbytes)
            sim.free(tmp)
            sim.free(self.params[id(part)])
            self.params[id(part)] = total
        elif first:
            self.params[id(part)] = sim.alloc(nbytes)
            self.ran.add(id(part))
        else:
            sim.free(sim.alloc(nbytes))
        if half is not None:
            sim.free(half)

    def part_grad_bytes(self, part: Part) -> int:
        """A part's gradients: every unique tensor's, or the trainable ones' only when some are frozen."""
        if self.needs is None:
            return part_bytes(part, self.x.wb)
        return sum(alloc(t.parameters * self.x.wb) for t in part.tensors if t.tied_to is None and t.trainable)

    def weight_grads(self, part: Part) -> None:
        """The gradients a Linear's backward produces: its own tensors', then those of tensors it is tied to
        (the MLM decoder's weight is the word embeddings')."""
        self.grad_w(part, self.part_grad_bytes(part))
        owners = {id(o): o for o in (self.owners[t.tied_to] for t in part.tensors  # each part once (by identity:
                                     if t.tied_to and (self.needs is None or t.trainable))}  # a hash reads sizes)
        for owner in owners.values():
            self.grad_w(owner, self.part_grad_bytes(owner))
            self.via_linear.add(id(owner))

    # ------------------------------------------------------------------------------------------ the ops

    def run(self, ops: tuple[Op, ...]) -> None:
        for op in reversed(ops):
            if isinstance(op, Loss):
                self._loss(op)
                continue
            g = self.grads.pop(op.out, None)
            if g is None:  # not on the loss's path (ids), or an input: nothing flows back
                self.release(op)
                continue
            getattr(self, "_" + type(op).__name__.lower())(op, g)

    def _input(self, op: Input, g: Any) -> None:
        self.sim.free(g)

    def _grad_in(self, op: Op, g: Any, x: Value, nbytes: int) -> None:
        if not self.wants(x):
            self.sim.free(g)
            self.release(op)
            return
        gi = self.sim.alloc(nbytes)
        self.sim.free(g)
        self.release(op)
        self.deliver(x, gi)

    def _linear(self, op: Linear, g: Any) -> None:
        sim, x = self.sim, self.x
        gi = sim.alloc(self.n(op.x) * x.c) if self.wants(op.x) else None
        self.weight_grads(op.part)
        sim.free(g)
        self.release(op)
        if gi is not None:
            self.deliver(op.x, self._uncast(op.x, gi, 2))

    def _norm(self, op: Norm, g: Any) -> None:
        sim, x = self.sim, self.x
        gi = sim.alloc(self.n(op.x) * x.r) if self.wants(op.x) else None
        self.grad_w(op.part, self.part_grad_bytes(op.part))
        sim.free(g)
        self.release(op)
        if gi is not None:
            self.deliver(op.x, self._uncast(op.x, gi, 4))

    def _uncast(self, x: Value, gi: Any, ran_in: int) -> Any:
        """Under autocast an op that ran in another dtype (``ran_in`` bytes) than its input cast the input
        first; that cast's backward turns the gradient back into the input's dtype: a new tensor."""
        src = self.dt[x.storage]
        if not self.x.amp or src == ran_in:
            return gi
        back = self.sim.alloc(self.n(x) * src)
        self.sim.free(gi)
        return back

    def _add(self, op: Add, g: Any) -> None:
        sim, x = self.sim, self.x
        for v in op.xs:
            if not self.wants(v):
                continue
            if x.amp and self.dt[v.storage] != self.dt[op.out]:
                self.deliver(v, sim.alloc(self.n(v) * self.dt[v.storage]))  # cast for the narrower branch
            else:
                self.deliver(v, sim.ref(g))
        sim.free(g)

    def _dropout(self, op: Dropout, g: Any) -> None:
        self._grad_in(op, g, op.x, self.n(op.x) * self.dt[op.x.storage])

    def _act(self, op: Act, g: Any) -> None:
        nbytes = self.n(op.x) * self.dt[op.x.storage]
        more = [self.sim.alloc(nbytes) for _ in range(activation_profile(op.fn)[3])]
        gi = self.sim.alloc(nbytes)
        for k in more:
            self.sim.free(k)
        self.sim.free(g)
        self.release(op)
        self.deliver(op.x, gi)

    def _heads(self, op: Heads, g: Any) -> None:
        # back through transpose and view: a reshape of a transposed gradient copies it
        self._grad_in(op, g, op.x, self.n(op.x) * self.dt[op.x.storage])

    def _unbind(self, op: Unbind, g: Any) -> None:
        # the pieces' gradients wait in the node's input buffer; once all have come, stack makes x's gradient
        waiting = self.pending.setdefault(op.x, [])
        waiting.append(g)
        self.release(op)
        if len(waiting) == op.parts:
            full = self.sim.alloc(self.n(op.x) * self.dt[op.x.storage])
            for k in self.pending.pop(op.x):
                self.sim.free(k)
            self.deliver(op.x, full)

    def _rotary(self, op: Rotary, g: Any) -> None:
        # x·cos + cat(-x2, x1)·sin, backward in the engine's order: g·sin, neg of its first half, the two
        # slices' zero-padded gradients (added in place), then g·cos (added in place)
        sim = self.sim
        src = self.dt[op.x.storage]
        wide = self.x.amp and src != 4  # HF rotates in fp32 (q.float()) and casts back: the casts' backwards
        f = self.n(op.x) * (4 if wide else src)
        half = f * (op.x.width.size - op.x.width.size // 2) // op.x.width.size
        if wide:
            g32 = sim.alloc(f)
            sim.free(g)
            g = g32
        gr = sim.alloc(f)
        neg = sim.alloc(half)
        acc = sim.alloc(f)
        sim.free(neg)
        s1 = sim.alloc(f)
        sim.free(gr)
        sim.free(s1)
        sim.free(sim.alloc(f))
        sim.free(g)
        self.release(op)
        if wide:
            back = sim.alloc(self.n(op.x) * src)
            sim.free(acc)
            acc = back
        self.deliver(op.x, acc)

    def _glu(self, op: Glu, g: Any) -> None:
        # mul: both factors' gradients; the activation's backward; chunk's backward concatenates the halves
        sim = self.sim
        half = self.n(op.out) * self.dt[op.x.storage]
        ga, gg = sim.alloc(half), sim.alloc(half)
        sim.free(g)
        self._release_one(op, "act")
        more = [sim.alloc(half) for _ in range(activation_profile(op.fn)[3])]
        gi = sim.alloc(half)
        for k in more:
            sim.free(k)
        sim.free(ga)
        self.release(op)
        full = sim.alloc(self.n(op.x) * self.dt[op.x.storage])
        sim.free(gi)
        sim.free(gg)
        self.deliver(op.x, full)

    def _mean(self, op: Mean, g: Any) -> None:
        # the division's gradient, then the product's over [B, S, W] (the sum's backward is a view)
        gd = self.sim.alloc(self.n(op.out) * self.dt[op.x.storage])
        self.sim.free(g)
        self._grad_in(op, gd, op.x, self.n(op.x) * self.dt[op.x.storage])

    def _first(self, op: First, g: Any) -> None:
        # select backward materialises a zero [B, S, H] gradient with the first rows set
        self._grad_in(op, g, op.x, self.n(op.x) * self.dt[op.x.storage])

    def _lookup(self, op: Lookup, g: Any) -> None:
        sim, x = self.sim, self.x
        n = self.part_grad_bytes(op.table)
        partials = None
        if x.tokens > 3072:  # CUDA's embedding backward sorts the indices and reduces through [T, E] partials
            partials = sim.alloc(2 * x.tokens * op.table.tensors[0].dims[1].size * 4)
        if id(op.table) in self.params and id(op.table) in self.via_linear:
            # The decoder's gradient for the shared table arrived first, as a transposed view (from W.t()), and
            # waits in autograd's input buffer. A non-contiguous buffer cannot be added to in place, so the sum
            # with the lookups' gradient is a third [V, E] tensor.
            tmp = sim.alloc(n)
            total = sim.alloc(n)
            sim.free(tmp)
            sim.free(self.params[id(op.table)])
            self.params[id(op.table)] = total
        elif n:
            self.params[id(op.table)] = sim.alloc(n)
        if partials is not None:
            sim.free(partials)
        sim.free(g)
        self.release(op)

    def _attention(self, op: AttentionOp, g: Any) -> None:
        sim, x = self.sim, self.x
        th, bass, c = self.n(op.out), self.n(op.scores), x.c
        if not sdpa(op, x) and not (self.wants(op.q) or self.wants(op.k)):
            # only V needs a gradient (LoRA on value over a frozen input): probs^T @ grad, nothing before
            gc = sim.alloc(th * c)
            sim.free(g)
            gv = sim.alloc(th * c)
            sim.free(gc)
            self.release(op)
            self.deliver(op.v, gv)
            return
        if not sdpa(op, x):
            gc = sim.alloc(th * c)  # [B, S, H] -> [B·A, S, H/A] for bmm: a copy
            sim.free(g)
            gp = sim.alloc(bass * c)  # probs @ V
            gv = sim.alloc(th * c) if self.wants(op.v) else None
            sim.free(gc)
            for tag in ("dropped", "probs_bf16", "vc"):
                self._release_one(op, tag)
            if x.amp:
                g32 = sim.alloc(bass * 4)
                sim.free(gp)
                gp = g32
            if op.p > 0:
                gd = sim.alloc(bass * (4 if x.amp else x.a))
                sim.free(gp)
                gp = gd
                self._release_one(op, "mask")
            gs = sim.alloc(bass * (4 if x.amp else x.a))  # softmax
            sim.free(gp)
            self._release_one(op, "probs")
            if x.amp:
                gb = sim.alloc(bass * 2)
                sim.free(gs)
                gs = gb
            if op.bias is not None:  # scores += bias: the same gradient, cast where the bias has another dtype
                b = op.bias.storage
                self.deliver(op.bias, sim.ref(gs) if self.dt[b] == c else sim.alloc(bass * self.dt[b]))
            graw = sim.alloc(bass * c)  # * scaling
            sim.free(gs)
            gq = sim.alloc(th * c) if self.wants(op.q) else None  # q @ k^T
            gk = sim.alloc(th * c) if self.wants(op.k) else None
            sim.free(graw)
            self.release(op)
        else:
            go = sim.alloc(th * c)  # the output gradient in sdpa's layout
            sim.free(g)
            dq = sim.alloc(th * 4) if (x.amp or x.a == 2) else None  # flash attention accumulates dq in fp32
            A = op.heads.size
            delta = sim.alloc(x.batch * A * _ceil(x.seq, 32) * 4)
            gq, gk, gv = sim.alloc(th * c), sim.alloc(th * c), sim.alloc(th * c)
            for k in (go, dq, delta):
                if k is not None:
                    sim.free(k)
            if op.bias is not None:  # an attn_mask that needs a gradient: the kernel writes one [B, A, S, S]
                self.deliver(op.bias, sim.alloc(bass * self.dt[op.bias.storage]))
            self.release(op)
        for v, k in ((op.v, gv), (op.k, gk), (op.q, gq)):
            if k is not None:
                self.deliver(v, k)

    def _positionbias(self, op: PositionBias, g: Any) -> None:
        """The bias's gradient (summed over the layers) back through expand (a sum over the batch: ``[1, A, S, S]``),
        the permute (a view) and the lookup: the embedding backward makes the permuted gradient contiguous
        (``[S·S, A]``) and, past 3072 indices on CUDA, sorts them through partials as for the word table."""
        sim, x = self.sim, self.x
        e = self.dt[op.out.storage]
        one = self.n(op.out) // x.batch  # A·S·S
        summed = sim.alloc(one * e)
        sim.free(g)
        dense = sim.alloc(one * e)
        partials = sim.alloc(2 * x.seq * x.seq * op.table.tensors[0].dims[1].size * 4) if x.seq ** 2 > 3072 else None
        self.params[id(op.table)] = sim.alloc(self.part_grad_bytes(op.table))
        for k in (partials, dense, summed):
            if k is not None:
                sim.free(k)
        self.release(op)

    def _param(self, op: Param, g: Any) -> None:
        self.params[id(op.part)] = g  # AccumulateGrad takes the incoming gradient as the parameter's

    def _matmul(self, op: Matmul, g: Any) -> None:
        sim, x = self.sim, self.x
        ga = sim.alloc(self.n(op.a) * x.c) if self.wants(op.a) else None
        gb = sim.alloc(self.n(op.b) * x.c) if self.wants(op.b) else None
        sim.free(g)
        self.release(op)
        if gb is not None:
            self.deliver(op.b, self._uncast(op.b, gb, 2))
        if ga is not None:
            self.deliver(op.a, self._uncast(op.a, ga, 2))

    def _same_size(self, op: Op, g: Any) -> None:
        """One gradient of the input's size: division, gather (scattered into zeros), repeat (summed),
        masked_fill, softmax, a product with a constant."""
        x = op.inputs[0]
        self._grad_in(op, g, x, self.n(x) * self.dt[x.storage])

    _scale = _gather = _repeat = _maskfill = _softmax = _mul = _scalar = _same_size

    def _release_one(self, op: Op, tag: str) -> None:
        keys = self.saved.get(op, [])
        if (op, tag) in keys:
            keys.remove((op, tag))
            self.sim.free((op, tag))

    def _loss(self, op: Loss) -> None:
        sim, x = self.sim, self.x
        n = self.n(op.x)
        if op.kind == "vocab":  # cross-entropy over [T, V]
            lsm = 4 if (x.amp or x.a == 4) else 2
            gn = sim.alloc(n * lsm)
            if x.amp:  # measured on H100: the loss backward tops out one [T, V] fp32 buffer above the saved set
                self.release(op)
            gl = sim.alloc(n * lsm)
            sim.free(gn)
            self.release(op)
            if x.amp:
                gb = sim.alloc(n * 2)
                sim.free(gl)
                gl = gb
            self.deliver(op.x, gl)
            return
        gl = sim.alloc(n * self.dt[op.x.storage])  # the logits' gradient (a materialised one for a sum)
        self.release(op)
        self.deliver(op.x, gl)


def owners_of(arch: Architecture) -> dict[str, Part]:
    return _memo(arch, "owners", lambda: {t.name: p for c in arch.components for p in c.parts for t in p.tensors
                                          if t.tied_to is None})


def _register(sim: Sim, d: dict[Key, int]) -> None:
    """Put already-counted saved tensors into the ledger by key, so the backward can free them."""
    for k, n in d.items():
        sim.bufs[k] = [alloc(n), 0]


def _savers(ops: tuple[Op, ...], x: Ctx, dt: dict[Value, int], sim: Sim) -> dict[Op, list[Key]]:
    """Which saved keys each op holds; each op's hold is one reference on the key's buffer."""
    out: dict[Op, list[Key]] = {}
    for op in ops:
        keys = list(dict.fromkeys(k for k, _ in saved_of(op, x, dt)))
        for k in keys:
            sim.bufs[k][1] += 1
        out[op] = keys
    return out


# ------------------------------------------------------------------------------------------------ the step


@frozen
class TrainingPeak:
    """A training step, term by term (bytes). ``peak`` is weights + optimizer + saved + transient."""

    weights: int
    optimizer: int
    gradients: int
    steady: int
    saved: int
    saved_layer: int  # one application of the layer template
    saved_embeddings: int
    saved_head: int
    weight_casts: int
    layers: int  # applications of the layer template
    peak: int
    where: str
    end: int  # live after the backward (steady + gradients, when nothing saved is left)
    saved_left: int  # saved bytes still in the ledger after the backward (0: every op freed what it kept)
    # the backward's moments, for engines that change what is resident (bertcalc.distributed): the head's
    # highest point; live when the first layer run starts and after the last; one run's rise above its start and
    # its net change (the first application of its parameters); the embeddings' highest point
    head_peak: int = 0
    encoder_start: int = 0
    layer_rise: int = 0
    layer_net: int = 0
    encoder_end: int = 0
    embeddings_peak: int = 0

    @property
    def transient(self) -> int:
        return self.peak - self.steady - self.saved


def shared_inputs(p: Program) -> list[Value]:
    """Values the layer template reads that are made before it, besides its input, and that a parameter's
    gradient flows through: a table every layer uses (DeBERTa's normalised relative embeddings), an attention
    bias made once per forward (MPNet's position bias). Each receives one gradient over all applications: the
    last layer's backward makes it, the others add into it, and it is handed to the op that made the value."""
    return _memo(p, "shared_inputs", lambda: _shared_inputs(p))


def _shared_inputs(p: Program) -> list[Value]:
    enc = p.encoder
    if enc is None:
        return []
    made = {op.out for op in enc.ops}
    grad: set[Value] = set()  # values a parameter's gradient flows through (not masks, tables of constants)
    for op in p.embeddings:
        if isinstance(op, (Param, Lookup, Linear, Norm, PositionBias)) or any(v in grad for v in op.inputs):
            grad.add(op.out)
    # an attention's additive bias is read beside its q, k and v (not among its inputs: nothing saves it)
    reads = [v for op in enc.ops
             for v in (*op.inputs, *((op.bias,) if isinstance(op, AttentionOp) and op.bias is not None else ()))]
    return list(dict.fromkeys(v for v in reads if v not in made and v is not enc.inp and v in grad))


def _layer_run(arch: Architecture, p: Program, x: Ctx, dt: dict[Value, int], first: bool,
               accumulate: bool = False) -> tuple[int, int, int]:
    """One application of the layer template: (peak rise, net change, saved bytes left), measured from its
    start with its saved tensors and the incoming gradient live. With gradient checkpointing, only the layer's
    input was kept; the forward runs again first, saving as usual (the input itself is that same storage).
    ``accumulate``: the gradients of the shared inputs exist already (a later application adds into them)."""
    enc = p.encoder
    assert enc is not None
    sim = Sim()
    ops = enc.ops
    saved = saved_set(ops, x, dt)
    once = {v.storage for v in shared_inputs(p)} & saved.keys()
    for k in once:  # a shared input kept by the layer (the relative table without dropout): counted once, outside
        del saved[k]
        sim.bufs[k] = [0, 0]
    g = sim.alloc(x.n(enc.out) * dt[enc.out])
    start = sim.live
    if x.gc:  # the checkpointed input is already counted (L × the inputs): carry it, and do not count it twice
        kept = enc.inp.storage
        sim.bufs[kept] = [alloc(x.n(kept) * dt[kept]), 1]
        sim.live += sim.bufs[kept][0]
        start = sim.live
        for k, n in saved.items():
            if k is kept:
                continue
            sim.alloc(n, key=k)
            sim.bufs[k][1] = 0
    else:
        _register(sim, saved)
        sim.live += saved_bytes(saved)
        start = sim.live
    sim.peak = start
    savers = _savers(ops, x, dt, sim)
    shared = frozenset(id(part) for c in arch.components if c.name == enc.component for part in c.parts)
    bw = Backward(sim, x, dt, savers, owners=owners_of(arch), shared=shared if enc.groups < enc.times else frozenset(),
                  first=first)
    bw.grads[enc.out] = g
    if accumulate:
        for v in shared_inputs(p):
            bw.grads[v] = ("held", v)  # counted in an earlier application: this one's is added and freed
    bw.run(ops)
    if x.gc and sim.has(enc.inp.storage):
        sim.free(enc.inp.storage)
    left = sum(sim.bufs[k][0] for k in saved if sim.has(k))
    return sim.peak - start, sim.live - start, left


MAX_GROUPS = 1_000_000  # distinct layer parameter sets the replay walks one by one (ALBERT's num_hidden_groups)


def _runs(times: int, groups: int) -> list[tuple[int, int]]:
    """ALBERT's layer ``i`` uses group ``int(i / (L / G))``: (applications per group, how many such groups),
    in the order the backward meets them (the last group first). Every group runs L // G or L // G + 1
    times; when they all run equally often this is one entry, whatever G is."""
    if times % groups == 0:
        return [(times // groups, groups)]
    if groups > MAX_GROUPS:
        raise UsageError(f"memory replays each of num_hidden_groups separately when they run unequally often; "
                         f"{groups:,} groups is past the limit of {MAX_GROUPS:,}: use fewer groups, or a "
                         "num_hidden_layers that is a multiple of num_hidden_groups")
    sizes: list[int] = []
    for g in reversed(range(groups)):
        lo = -(-g * times // groups)
        hi = -(-(g + 1) * times // groups)
        sizes.append(hi - lo)
    out: list[tuple[int, int]] = []
    for n in sizes:
        if out and out[-1][0] == n:
            out[-1] = (n, out[-1][1] + 1)
        else:
            out.append((n, 1))
    return out


def _step_constants(arch: Architecture, cfg: ModelConfig, o: Options, x: Ctx) -> tuple[Any, ...]:
    """What a training step's replay needs that does not depend on the batch: the dtypes, the weights, the
    optimizer states, the gradients, the bf16 weight casts. Derived once per model and options other than the
    batch (a fit evaluates several batches; every field of Options but the batch is in the key)."""
    key = ("step", *(v for k, v in vars(o).items() if k != "batch"))

    def make() -> tuple[Any, ...]:
        p = arch.program
        dt = dtypes(p, x)
        weights = weights_bytes(arch, cfg, x.wb)
        opt, formula = optimizer_bytes(arch, o)
        casts = 0 if o.grad_checkpointing else weight_casts(arch, p, x)
        return dt, weights, opt, weights - buffer_bytes(arch, x.wb), casts, formula

    return _memo(arch, key, make)


def training_peak(arch: Architecture, cfg: ModelConfig, o: Options) -> TrainingPeak:
    if arch.adapted is not None:  # frozen parts or a LoRA adapter: autograd's rules with the trainable flags
        from .tuned import training_peak as tuned_peak

        return tuned_peak(arch, cfg, o)
    x = Ctx.of(o)
    p = arch.program
    dt, weights, opt, grads_total, casts, _ = _step_constants(arch, cfg, o, x)
    steady = weights + opt
    enc = p.encoder
    times = enc.times if enc is not None else 0
    emb_saved = saved_set(p.embeddings, x, dt)
    head_ops = (*p.tail, *p.head)
    head_saved = saved_set(head_ops, x, dt)
    layer_saved = saved_set(enc.ops, x, dt) if enc is not None else {}
    once = {v.storage for v in shared_inputs(p)} & layer_saved.keys()  # kept by every layer, stored once
    once_bytes = saved_bytes({k: layer_saved.pop(k) for k in once}) if times else 0
    if o.grad_checkpointing and enc is not None:
        per_app = alloc(x.n(enc.inp) * dt[enc.inp])
    else:
        per_app = saved_bytes(layer_saved)
    saved = saved_bytes(emb_saved) + times * per_app + saved_bytes(head_saved) + casts + once_bytes
    owners = owners_of(arch)
    # the backward: loss, head and pooler
    sim = Sim(steady + saved)
    _register(sim, head_saved)
    bw = Backward(sim, x, dt, _savers(head_ops, x, dt, sim), owners=owners)
    bw.run(head_ops)
    head_peak = sim.peak
    left = sum(sim.bufs[k][0] for k in head_saved if sim.has(k))
    hidden_grad = bw.grads.pop(p.hidden, None)
    live = sim.live
    encoder_start = live
    rise1 = net1 = 0
    # the layers, last applied first; each application frees its saved set and adds its gradients once
    best = live
    shared = shared_inputs(p)
    if times:
        rise1, net1, l1 = _layer_run(arch, p, x, dt, True)
        rise2, net2, _ = _layer_run(arch, p, x, dt, False) if enc.groups < times else (rise1, net1, l1)
        left += l1
        if enc.groups >= times and shared:  # the first application (the last layer) makes the shared gradients
            riseb, netb, _ = _layer_run(arch, p, x, dt, True, accumulate=True)
            best = live + top(rise1, net1 + top(0, (times - 2) * netb) + riseb if times > 1 else 0)
            live += net1 + (times - 1) * netb
        elif enc.groups >= times:  # one application per parameter set: closed form
            best = live + top(0, (times - 1) * net1) + rise1
            live += times * net1
        else:
            for n, count in _runs(times, enc.groups):
                if n == 0:
                    continue
                step = net1 + (n - 1) * net2
                # the first group of this size starts at `live`, the last at live + (count - 1)·step
                high = top(rise1, net1 + rise2 if n > 1 else 0)
                best = top(best, live + high, live + (count - 1) * step + high)
                live += count * step
        live -= casts  # the bf16 weight copies go with the last backward that used them
        live -= once_bytes  # and what every layer kept of a shared input, with the first layer's
    encoder_end = live
    # the embeddings
    emb = Sim(live)
    _register(emb, emb_saved)
    ebw = Backward(emb, x, dt, _savers(p.embeddings, x, dt, emb), owners=owners, params=bw.params)
    ebw.via_linear = bw.via_linear
    for part_id in bw.via_linear:  # a tied table's gradient from the decoder: counted in `live`, held here
        emb.bufs[bw.params[part_id]] = [sim.bufs[bw.params[part_id]][0], 1]
    incoming = x.n(p.embedded) * dt[p.embedded]
    if hidden_grad is not None or times:
        emb.bufs["incoming"] = [alloc(incoming), 1]  # the gradient of the encoder's input, counted in `live`
        ebw.grads[p.embedded] = "incoming"
    for v in shared if times else ():  # the shared inputs' gradients, summed over the layers, counted in `live`
        emb.bufs[("shared", v)] = [alloc(x.n(v) * dt[v.storage]), 1]
        ebw.grads[v] = ("shared", v)
    ebw.run(p.embeddings)
    left += sum(emb.bufs[k][0] for k in emb_saved if emb.has(k))
    # the training forward's highest point, in its last layer or the head: one rule for every family (what each
    # op makes and saves, Python's holds, the values every layer reads). Under autocast the weights' bf16 casts
    # are live through the forward (autocast's cache)
    forward_end = _forward_top(p, x, dt, steady + saved_bytes(emb_saved) + top(0, times - 1) * per_app + once_bytes
                               + casts,
                               {**emb_saved, **layer_saved, **head_saved, **dict.fromkeys(once, 0)}, shared) \
        if not o.grad_checkpointing \
        else 0
    peak = top(head_peak, best, emb.peak, steady + grads_total, forward_end)
    where = largest(((head_peak, "loss and head backward"), (best, "encoder backward"),
                     (emb.peak, "embeddings backward"), (steady + grads_total, "optimizer step"),
                     (forward_end, "forward, last layer and head")))
    return TrainingPeak(weights, opt, grads_total, steady, saved, per_app, saved_bytes(emb_saved),
                        saved_bytes(head_saved), casts, times, peak, where, emb.live, left,
                        head_peak, encoder_start, rise1, net1, encoder_end, emb.peak)


def _forward_top(p: Program, x: Ctx, dt: dict[Value, int], start: int, saved: dict[Key, int],
                 shared: list[Value], layer_ops: tuple[Op, ...] | None = None,
                 head_ops: tuple[Op, ...] | None = None, saves: Any = None,
                 holds: dict[Value, Value] | None = None, temps: Any = None) -> int:
    """The training forward's highest point in its last layer and the head: ``start`` (the model states, the
    embeddings' and the earlier layers' saved tensors) plus what the base model holds that nothing saves (its
    masks and shared tables), then op by op: each output and each tensor an op saves is allocated; a value is
    freed after its last use unless it is saved or Python still holds it (``until``). A lower bound: an op's
    own temporaries are not counted."""
    if p.encoder is None or not p.encoder.times:
        return 0
    live = start
    held = {op.out.storage for op in p.embeddings if op.out.until == "base" and not isinstance(op, Input)}
    held |= {v.storage for v in shared}
    held.discard(p.embedded.storage)  # the first layer's input: counted with the layers' saved tensors
    base_only = sum(alloc(x.n(v) * dt[v]) for v in held if v not in saved and v.dtype != "param")
    live += base_only
    # ``layer_ops``, ``head_ops`` and ``saves`` (an op's saved set): a model with frozen parts (bertcalc.tuned)
    layer_ops = p.encoder.ops if layer_ops is None else layer_ops
    ops = (*layer_ops, *((*p.tail, *p.head) if head_ops is None else head_ops))
    base_end = len(layer_ops) + len(p.tail)  # the base model returns: what only it held is freed
    saves = saved_of if saves is None else saves
    uses: dict[Value, int] = {}
    for op in ops:
        for v in op.inputs:
            uses[v.storage] = uses.get(v.storage, 0) + 1
    inp = p.encoder.inp.storage
    store = {inp: alloc(x.n(inp) * dt[inp])}
    live += store[inp]
    high = live
    waiting: dict[Value, list[Value]] = {}
    # ``until`` marks HF's locals, written for the no-grad forward, where dropout is its input itself. In
    # training dropout makes a new tensor and the local is rebound to it (h = dropout(dense(h))): the hold
    # passes to dropout's output, and dropout's input goes after its last use.
    until: dict[Value, Any] = {}
    for op in ops:
        if isinstance(op, Dropout) and op.x.until is not None:
            until[op.x.storage] = None
            until.setdefault(op.out.storage, op.x.until)
    until.update(holds or {})  # Python's references that full fine-tuning never sees (the saved set holds them)

    def drop(v: Value) -> None:
        nonlocal live
        hold = until.get(v, v.until)
        if v in store and v not in saved and hold is None:
            live -= store.pop(v)
        elif v in store and isinstance(hold, Value) and v not in saved:
            waiting.setdefault(hold, []).append(v)

    for i, op in enumerate(ops):
        if i == base_end:
            live -= base_only
        if isinstance(op, Input):
            continue
        out = op.out.storage
        if out not in store and out not in held and out.dtype != "param" and op.out.dims:
            store[out] = alloc(x.n(out) * dt[out])
            live += store[out]
        for k, n in saves(op, x, dt):
            if not isinstance(k, Value) and k not in store:
                store[k] = alloc(n)
                live += store[k]
        high = top(high, live + (temps(op) if temps is not None else 0))
        for v in waiting.pop(op.out, []):
            if v in store:
                live -= store.pop(v)
        for v in {v.storage for v in op.inputs}:
            uses[v] -= 1
            if uses[v] == 0:
                drop(v)
        if uses.get(out, 0) == 0:
            drop(out)
    return high


# ---------------------------------------------------------------------------------------------- inference


def no_grad_extra(op: Op, x: Ctx, dt: dict[Value, int]) -> tuple[int, tuple[str, ...]]:
    """What an op holds beside its output while it runs in a no-grad forward (freed when it returns): a
    LayerNorm's statistics, a composed activation's parts, the rotary products, the GLU's fn(a)...; with what
    each is."""
    extra, what = 0, ()
    if isinstance(op, Norm):  # native_layer_norm returns its statistics too
        rows = x.n(op.x) // op.x.width.size
        extra, what = 2 * alloc(rows * 4), ("LayerNorm statistics",)
    elif isinstance(op, Act):
        more = activation_profile(op.fn)[2]
        if more:
            extra = more * alloc(x.n(op.x) * dt[op.x.storage])
            what = (f"{more} more from the composed {op.fn}",)
    elif isinstance(op, PositionBias):  # the [S, S] bucket ids and the [S, S, A] lookup, until it returns
        ss = x.seq * x.seq
        extra = alloc(ss * 8) + alloc(ss * op.table.tensors[0].dims[1].size * dt[op.out])
        what = ("bucket ids", "bias lookup")
    elif isinstance(op, Rotary):  # x·cos and rotate_half(x)·sin beside their sum (in fp32 under autocast)
        wide = x.amp and dt[op.x.storage] != 4
        extra = (3 if wide else 2) * alloc(x.n(op.x) * (4 if wide else dt[op.x.storage]))
        what = ("x·cos", "rotate_half(x)·sin") + (("their fp32 sum",) if wide else ())
    elif isinstance(op, Glu):  # beside the product: fn(a); before it, fn(a) and a composed formula's parts
        extra = max(1, activation_profile(op.fn)[2]) * alloc(x.n(op.out) * dt[op.x.storage])
        what = (f"{op.fn}(input)",)
    elif isinstance(op, Mean):  # the masked product over [B, S, W]
        extra, what = alloc(x.n(op.x) * dt[op.x.storage]), ("hidden · mask",)
    return extra, what


@frozen
class Moment:
    label: str
    bytes: int  # live above the weights
    what: str  # the live tensors


@frozen
class InferencePeak:
    weights: int
    moments: tuple[Moment, ...]  # the largest live set of each labelled part of the forward
    peak: int
    where: str

    @property
    def activations(self) -> int:
        return self.peak - self.weights


class Forward:
    """A no-grad forward, op by op. A value is freed after its last use unless Python still holds it (its
    ``until``: a local variable of an HF module, or the base model's and the caller's references); a view or
    an eval-mode dropout shares its input's storage. Each labelled part of the forward keeps its highest
    live set."""

    def __init__(self, x: Ctx, dt: dict[Value, int]) -> None:
        self.x, self.dt = x, dt
        self.live = 0
        self.alias: dict[Value, Value] = {}  # value -> the storage it lives on
        self.store: dict[Value, list[int]] = {}  # storage -> [bytes, live values on it]
        self.best: dict[str, tuple[int, list[str]]] = {}
        self.label = ""
        self.held: list[Value] = []  # values held to the end of the base model or of the forward

    def key(self, v: Value) -> Value:
        v = self.alias.get(v, v)
        return self.alias.get(v.storage, v.storage)

    def produce(self, v: Value, nbytes: int | None = None) -> None:
        k = self.key(v)
        if k not in self.store:
            n = alloc(self.x.n(k) * self.dt[k]) if nbytes is None else nbytes
            n = 0 if k.dtype == "param" else n  # a parameter used as an activation: counted in the weights
            self.store[k] = [n, 0]
            self.live += n
        self.store[k][1] += 1

    def release(self, v: Value) -> None:
        k = self.key(v)
        entry = self.store[k]
        entry[1] -= 1
        if entry[1] == 0:
            del self.store[k]
            self.live -= entry[0]

    def mark(self, extra: int = 0, what: tuple[str, ...] = (), label: str | None = None) -> None:
        label = label or self.label
        total = self.live + extra
        if total > self.best.get(label, (-1, []))[0]:
            self.best[label] = (total, [k.name for k in self.store] + list(what))

    def run(self, ops: tuple[Op, ...], labels: dict[int, str], keep: frozenset[Value] = frozenset(),
            base_end: int | None = None) -> None:
        """``keep``: values whose lifetime the caller manages. At op ``base_end`` the base model has returned:
        what only it held is freed."""
        uses: dict[Value, int] = {}
        for op in ops:
            for v in op.inputs:
                uses[v] = uses.get(v, 0) + 1
        waiting: dict[Value, list[Value]] = {}  # a value -> those Python holds until it has been written

        def retire(v: Value) -> None:
            if v in keep or v.dtype == "int64":
                return
            if isinstance(v.until, Value):
                waiting.setdefault(v.until, []).append(v)
            elif v.until is not None:
                self.held.append(v)
            else:
                self.release(v)

        for i, op in enumerate(ops):
            if i == base_end:
                for v in [v for v in self.held if v.until == "base"]:
                    self.held.remove(v)
                    self.release(v)
            if i in labels:
                self.label = labels[i]
            if isinstance(op, (Input, Loss)):
                continue
            self._op(op)
            for v in waiting.pop(op.out, []):
                self.release(v)
            for v in op.inputs:
                uses[v] -= 1
                if uses[v] == 0:
                    retire(v)
            if isinstance(op, AttentionOp) and not sdpa(op, self.x):
                retire(op.probs)
                if op.scores.until is not None:
                    retire(op.scores)
            if op.out not in uses:
                retire(op.out)

    def _op(self, op: Op) -> None:
        x, dt = self.x, self.dt
        if isinstance(op, Dropout):  # the identity in eval mode
            self.alias[op.out] = self.key(op.x)
        if isinstance(op, (Heads, First, Dropout, Unbind)):
            self.produce(op.out)
            self.mark()
            return
        if isinstance(op, AttentionOp):
            self._attention(op)
            return
        extra, what = no_grad_extra(op, x, dt)
        self.produce(op.out)
        self.mark(extra, what)

    def _attention(self, op: AttentionOp) -> None:
        x = self.x
        th = alloc(x.n(op.q) * x.c)
        if op.cache:
            # DynamicCache.update: torch.cat([empty, k]) and the same for v, held by the cache to the end of the
            # forward; the projections' own storages go when key_layer/value_layer are rebound. Same sizes: the
            # projections stand for their cached copies, held (one more reference each, never released).
            self.produce(op.k)
            self.produce(op.v)
        if sdpa(op, x):
            self.produce(op.out)
            self.mark(label="attention (sdpa)")
            return
        bass = alloc(x.n(op.scores) * x.c)
        # bmm folds a view by copying it; a decoder's cached K is a contiguous copy already
        copies = sum(th for v in (op.q, op.k) if v.view_of is not None and not (op.cache and v is op.k))
        self.mark(copies + bass, ("copies of Q and K for bmm", "Q·Kᵀ"), "attention scores")
        self.mark(2 * bass, ("Q·Kᵀ", "its scaled copy"), "attention scores")
        sm = alloc(x.n(op.probs) * (4 if x.amp else x.a))
        if op.scores.until is not None:  # the module keeps its scaled scores past the softmax
            self.produce(op.scores, bass)
            self.mark(sm, ("probabilities",), "softmax")
        else:
            self.mark(bass + sm, ("scaled scores", "probabilities"), "softmax")
        self.produce(op.probs, sm)
        v_copy = op.v.view_of is not None and not op.cache  # a decoder's cached V is contiguous: no copy
        self.mark((2 if v_copy else 1) * th, ("V copy", "probs · V"), "probs · V")
        self.produce(op.out)
        self.mark(th, ("probs · V, per head",), "probs · V")


def inference_peak(arch: Architecture, cfg: ModelConfig, o: Options) -> InferencePeak:
    x = Ctx.of(o)
    p = arch.program
    dt = dtypes(p, x)
    dt.setdefault(p.encoder.inp if p.encoder is not None else p.embedded, 4 if x.amp else x.a)
    weights = weights_bytes(arch, cfg, x.wb)
    f = Forward(x, dt)

    def labels(ops: tuple[Op, ...]) -> dict[int, str]:
        return {i: p.moments[id(op)] for i, op in enumerate(ops) if id(op) in p.moments}

    f.label = "embeddings"
    f.run(p.embeddings, labels(p.embeddings), frozenset({p.embedded}))
    enc = p.encoder
    if enc is not None and enc.times:
        # From the second layer on, the embeddings' output (held by the base model) and the layer's input are
        # two tensors; with one layer they are one.
        if enc.times == 1:
            f.alias[enc.inp] = f.key(p.embedded)
        f.produce(enc.inp)
        if p.embedded.until is None and p.embedded is not p.hidden:
            f.release(p.embedded)
        # a decoder's K/V cache from the applications before the one simulated, held to the end (closed in L)
        carry = sum(2 * alloc(x.n(op.q) * x.c) for op in enc.ops if isinstance(op, AttentionOp) and op.cache)
        f.live += (enc.times - 1) * carry
        causal = next((op for op in enc.ops if isinstance(op, AttentionOp) and op.causal), None)
        if causal is not None and x.attention == "eager":  # the base model's causal mask, until it returns
            mask = Value("causal mask", (causal.scores.dims[0], Dim(1), causal.scores.dims[2], causal.scores.dims[3]),
                         until="base")
            f.produce(mask, alloc(x.n(mask) * x.a))
            f.held.append(mask)
        for i, layer in enumerate(enc.layers):  # the template's input is held for all its inner layers
            made = {op.out for op in layer.ops}
            outside = {v for op in layer.ops for v in op.inputs if v not in made}  # held by their makers
            f.run(layer.ops, layer.moments, frozenset({layer.inp, layer.out, enc.inp, *outside}))
            if i:
                f.release(layer.inp)
        f.release(enc.inp)
        f.alias[p.hidden] = f.key(enc.out)
        if enc.out.until == "base" and enc.times > 2:
            # every layer's output is held to the end of the base model (all_hidden_states): the last layer
            # runs beside the outputs of all but the one before it (its input)
            more = (enc.times - 2) * alloc(x.n(enc.out) * dt[enc.out])
            for label in {lab for layer in enc.layers for lab in layer.moments.values()}:
                if label in f.best:
                    b, names = f.best[label]
                    f.best[label] = (b + more, [*names, f"{enc.times - 2} earlier layer outputs"])
    if p.embedded.until == "base" and p.embedded is not p.hidden:
        f.held.append(p.embedded)
    rest = (*p.tail, *p.head)
    # the last hidden state is held to the end when it is the model's output (until "end", or the embeddings'
    # output when there are no layers); a final norm's input is freed when nothing holds it (until None: the
    # encoder rebinds it) or when the base model returns (until "base": the base model's encoder_outputs)
    end = p.hidden.until == "end" or p.hidden is p.embedded
    f.run(rest, labels(rest), frozenset({p.hidden}) if end else frozenset(), base_end=len(p.tail))
    moments = tuple(Moment(k, b, ", ".join(dict.fromkeys(names))) for k, (b, names) in f.best.items())
    top = max(moments, key=lambda m: m.bytes)
    return InferencePeak(weights, moments, weights + top.bytes, top.label)


# ------------------------------------------------------------------------------------- weights and states


def buffer_bytes(arch: Architecture, elem: int = 4) -> int:
    """The buffers the family registers: integer index buffers (``position_ids``, ``token_type_ids``: int64),
    and float ones (rotary frequencies), which ``model.to(dtype)`` casts with the weights (``elem`` bytes)."""
    return sum(alloc((8 if b.dtype == "int64" else elem) * math.prod(b.shape)) for b in arch.buffers)


def weights_bytes(arch: Architecture, cfg: ModelConfig, elem: int) -> int:
    return sum(part_bytes(p, elem) * c.repeat for c in arch.components for p in c.parts) + buffer_bytes(arch, elem)


def optimizer_bytes(arch: Architecture, o: Options, exact: bool = False,
                    params: list[tuple[Any, int]] | None = None) -> tuple[int, str]:
    """Optimizer state, from each parameter's shape, and the formula behind it. ``exact``: the states'
    own bytes, without allocator rounding or Adam's step counters (what the ZeRO formulas count).
    ``params``: (tensor, repeat) pairs to use instead of the model's own (a rank's shards: anything with
    ``shape`` and ``parameters``)."""
    wb = o.weight_bytes
    total = 0
    rnd = (lambda nbytes: nbytes) if exact else alloc
    if params is None:
        params = [(t, c.repeat) for c in arch.components for p in c.parts for t in p.tensors if t.tied_to is None]
    n_tensors = sum(rep for _, rep in params)
    if o.optimizer in ("adamw", "adam"):
        for t, rep in params:
            total += rep * 2 * rnd(t.parameters * wb)
        total += 0 if exact else n_tensors * rnd(4)  # fused Adam keeps each tensor's step count on the device
        return total, f"2 × {wb} B × N (exp_avg, exp_avg_sq) + one 4-byte step tensor per parameter tensor"
    if o.optimizer == "sgd":
        return 0, "none (plain SGD keeps no state)"
    if o.optimizer == "sgd-momentum":
        return sum(rep * rnd(t.parameters * wb) for t, rep in params), f"{wb} B × N (momentum buffer)"
    if o.optimizer == "adafactor":
        for t, rep in params:
            shape = t.shape
            if len(shape) >= 2:  # factored second moment: one row vector and one column vector
                total += rep * (rnd(math.prod(shape[:-1]) * 4) + rnd(shape[-1] * 4))
            else:
                total += rep * rnd(t.parameters * 4)
        return total, "4 B × (rows + cols) per matrix, 4 B × n per vector (factored second moment, no momentum)"
    if o.optimizer == "adamw-8bit":
        for t, rep in params:
            n = t.parameters
            if n >= 4096:  # bitsandbytes keeps two uint8 states and one fp32 absmax per 256-element block
                total += rep * 2 * (rnd(n) + rnd(4 * -(-n // 256)))
            else:
                total += rep * 2 * rnd(4 * n)
        return total, "2 × (1 B × n + 4 B × n/256) per tensor of ≥ 4096 elements; 2 × 4 B × n below that"
    raise UsageError(f"unknown optimizer {o.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}", param="optimizer")


# -------------------------------------------------------------------------------------------------- report


NOT_COUNTED = (
    "the CUDA context (several hundred MiB per process, outside PyTorch's allocator)",
    "allocator fragmentation: memory reserved in cached segments but not allocated to a tensor",
    "block slack when the allocator reuses a larger cached block (up to 1 MiB per large tensor; "
    "about 12 MiB after model.to(bfloat16) for BERT-base)",
    "cuBLAS/cuDNN workspaces and the inputs (input_ids, labels)",
)


class Role(str, enum.Enum):
    """How a figure relates to the peak. Top-level terms: ``summand`` (the summands add up to the peak),
    ``total`` (the peak), ``after`` (not part of the sum: gradients, of which only those produced so far are
    live at the peak, inside the transient). Detail rows: ``part`` (the parts add up to their term), ``unit``
    (one of L identical parts, shown for reference), ``candidate`` (one moment of a no-grad forward; the peak is
    the largest), ``peak moment`` (that largest one)."""

    SUMMAND = "summand"
    TOTAL = "total"
    AFTER = "after"
    PART = "part"
    UNIT = "unit"
    CANDIDATE = "candidate"
    PEAK_MOMENT = "peak moment"

    def __str__(self) -> str:
        return self.value


@frozen
class Term:
    name: str
    bytes: int
    formula: str
    note: str = ""
    role: Role = Role.SUMMAND


@frozen
class MemoryReport(ModelReport):
    kind: ClassVar[str] = "memory"

    options: Options
    terms: tuple[Term, ...]
    peak_bytes: int
    where: str
    parameters: int
    weights_only: tuple[tuple[str, int], ...]
    saved_detail: tuple[Term, ...] = ()
    budget: int | None = None
    max_batch: int | None = None
    fits: bool | None = None
    min_batch_peak: int | None = None  # the peak at batch 1, when even that does not fit
    gpu: str | None = None
    zero: tuple[Term, ...] = ()
    not_counted: tuple[str, ...] = NOT_COUNTED
    reserved: Any = None  # bertcalc.reserved.Reserved: the caching allocator's replay (training)
    context: int | None = None  # bytes of the card a budget leaves to the CUDA context
    distributed: Any = None  # a bertcalc.distributed.DistReport: per-rank memory under DDP, ZeRO or FSDP

    @property
    def breakdown(self) -> dict[str, int]:
        return {t.name: t.bytes for t in self.terms}

    @property
    def summands(self) -> tuple[Term, ...]:
        """The terms that add up to ``peak_bytes``."""
        return tuple(t for t in self.terms if t.role is Role.SUMMAND)

    @property
    def model_states_bytes(self) -> int:
        """Weights and optimizer states: what no batch size can make smaller."""
        return sum(t.bytes for t in self.terms if t.name in ("weights", "optimizer states"))

    def to_dict(self) -> dict[str, Any]:
        o = self.options
        out: dict[str, Any] = {
            **self.identity(),
            "options": {"mode": o.mode, "precision": o.precision, "optimizer": o.optimizer if o.mode == "train"
                        else None, "attention": o.attention, "grad_checkpointing": o.grad_checkpointing,
                        "batch": o.batch, "seq": o.seq,
                        **({"choices": o.choices} if o.choices is not None else {})},
            "peak_bytes": self.peak_bytes,
            "peak_at": self.where,
            "breakdown": self.breakdown,
            "peak_terms": [t.name for t in self.summands],
            "formulas": {t.name: t.formula for t in self.terms},
            "saved_activations_detail": {t.name: t.bytes for t in self.saved_detail},
            "weights_only": dict(self.weights_only),
            "not_counted": list(self.not_counted),
        }
        if self.reserved is not None:
            out.update(reserved_bytes=self.reserved.reserved, reserved_allocated_bytes=self.reserved.allocated,
                       reserved_layers=self.reserved.layers)
        if self.budget is not None:
            out.update(budget_bytes=self.budget, max_batch=self.max_batch, fits=self.fits)
            if self.context is not None:
                out.update(context_bytes=self.context, fit_on="reserved" if self.reserved is not None else "allocated")
            if self.gpu:
                out["gpu"] = self.gpu
        if self.zero:
            out["zero"] = {t.name: t.bytes for t in self.zero}
            out["zero_formulas"] = {t.name: t.formula for t in self.zero}
        if self.distributed is not None:
            out.update(self.distributed.to_dict())
        return out


def _weights_only(n: int) -> tuple[tuple[str, int], ...]:
    return (("fp32", 4 * n), ("fp16/bf16", 2 * n), ("int8", n), ("int4", -(-n // 2)))


def peak(arch: Architecture, cfg: ModelConfig, o: Options) -> int:
    return (training_peak if o.mode == "train" else inference_peak)(arch, cfg, o).peak


def max_batch(arch: Architecture, cfg: ModelConfig, o: Options, budget: int, limit: int = 1 << 40,
              known: dict[int, int] | None = None) -> int:
    """The largest batch whose peak fits in ``budget`` bytes at this sequence length (0 if none does): a secant
    search with a local check (:mod:`bertcalc.fitting`), exact for a peak that grows with the batch."""
    from dataclasses import replace

    from .fitting import largest

    return largest(lambda b: peak(arch, cfg, replace(o, batch=b)), budget, limit, known)


def zero_terms(arch: Architecture, o: Options, stage: int, gpus: int) -> tuple[Term, ...]:
    """Per-GPU model states under ZeRO, by the paper's formulas (Rajbhandari et al., 2020): (W + G + K)·Ψ
    bytes for Ψ parameters, with stage 1 sharding the optimizer's K·Ψ over N GPUs, stage 2 also the
    gradients, stage 3 also the parameters.

    Mixed precision (``amp-*``) is the paper's setting: 2Ψ bf16/fp16 parameters, 2Ψ gradients, and K = 4
    (the fp32 master copy) + the optimizer's fp32 states (8 for Adam: K = 12). Otherwise the weights are their
    own master copy: W = G = 4 (fp32) or 2 (bf16/fp16), and K is the optimizer's states alone."""
    if gpus < 1:
        raise UsageError(f"{arg('gpus')} must be at least 1", param="gpus")
    if stage not in (1, 2, 3):
        raise UsageError(f"{arg('zero')} takes 1, 2 or 3, got {stage}", param="zero")
    n = arch.total_parameters
    states = optimizer_bytes(arch, o, exact=True)[0]
    wc = 2 if o.amp else o.weight_bytes  # bytes per parameter: weights, and their gradients
    w = g = wc * n
    opt = (4 * n if o.amp else 0) + states

    def coef(x: int) -> str:
        return f"{x // n}" if n and x % n == 0 else f"{x / n:.2f}" if n else "0"

    k = coef(opt)
    per = {
        1: (w + g + -(-opt // gpus), f"{wc}Ψ + {wc}Ψ + {k}Ψ/N"),
        2: (w + -(-(g + opt) // gpus), f"{wc}Ψ + ({wc} + {k})Ψ/N"),
        3: (-(-(w + g + opt) // gpus), f"({wc} + {wc} + {k})Ψ/N"),
    }
    why = ("fp32 master weights + the optimizer's fp32 states" if o.amp else "the optimizer's states")
    psi = f"Ψ = {n:,}, K = {k} ({why})"
    return (
        Term("model states, no ZeRO (per GPU)", w + g + opt, f"({wc} + {wc} + {k})Ψ; {psi}"),
        Term(f"model states, ZeRO-{stage} (per GPU, N = {gpus})", per[stage][0], f"{per[stage][1]}, N = {gpus}"),
    )


def unsupported(arch: Architecture, cfg: ModelConfig, o: Options) -> None:
    """Refuse what transformers cannot run for this model: sdpa where its attention module has no sdpa path,
    gradient checkpointing where its layers cannot be checkpointed."""
    p = arch.program
    name = cfg.display or arch.model_class
    if o.attention == "sdpa" and any(isinstance(op, AttentionOp) and not op.sdpa for op in p.all_ops()):
        raise UsageError(f"{name}'s attention has no sdpa implementation in transformers (it computes the scores "
                         "with matmuls, whatever attn_implementation asks); use "
                         f"{arg('attention', 'eager', repr('eager'))}", param="attention")
    if o.mode == "train" and o.grad_checkpointing and p.encoder is not None and not p.encoder.checkpointing:
        raise UsageError(f"transformers cannot checkpoint {name}'s layers (supports_gradient_checkpointing is "
                         f"False); leave out {arg('grad_checkpointing')}", param="grad_checkpointing")


@frozen
class Step:
    """What a memory report reads of the model for one training step: the model's identity and size, and the
    step term by term. :func:`step` derives it from the architecture; ``bertcalc.api.memory`` gets it from a
    template of the config's structure (:mod:`bertcalc.symbolic`), which is that derivation, traced once."""

    family: str
    model_class: str
    head: str
    parameters: int
    vocab_loss: bool  # the head's loss is over the vocabulary (an MLM)
    optimizer_formula: str
    peak: TrainingPeak


def check(cfg: ModelConfig, o: Options) -> None:
    """The options and the batch, before anything is derived from them."""
    from .architecture import check_batch

    if o.precision not in PRECISIONS:
        raise UsageError(f"unknown precision {o.precision!r}; choose one of {', '.join(PRECISIONS)}", param="precision")
    if o.attention not in ATTENTIONS:
        raise UsageError(f"unknown attention {o.attention!r}; choose eager or sdpa", param="attention")
    check_batch(cfg, o.batch, o.seq)


def step(arch: Architecture, cfg: ModelConfig, o: Options) -> Step:
    """A training step of ``arch``, for :func:`estimate`, once the run is checked (:func:`check`,
    :func:`unsupported`)."""
    if arch.adapted is None:
        formula = _step_constants(arch, cfg, o, Ctx.of(o))[5]  # optimizer_bytes(arch, o)[1], derived once
    else:
        from .tuned import optimizer as tuned_optimizer

        formula = tuned_optimizer(arch, o)[1]
    vocab = any(isinstance(op, Loss) and op.kind == "vocab" for op in arch.program.head)
    return Step(arch.family, arch.model_class, arch.head, arch.total_parameters, vocab, formula,
                training_peak(arch, cfg, o))


def estimate(arch: Architecture | None, cfg: ModelConfig, o: Options, *, label: str = "", budget: int | None = None,
             gpu: str | None = None, zero: int | None = None, gpus: int = 1, reserved: bool | None = None,
             context: int | None = None, allocator: Any = None, known: Step | None = None,
             peak_at: Any = None) -> MemoryReport:
    """The memory report for one configuration. ``budget``: the card's total memory; the step must fit in it
    with the CUDA context (``context`` bytes, default :data:`CUDA_CONTEXT`). ``reserved``: replay the caching
    allocator (:mod:`bertcalc.reserved`) for ``max_memory_reserved`` and fit on it (training; the default
    when a budget is given); ``False``: fit on the allocated peak. ``allocator``: its options
    (:class:`bertcalc.allocator.AllocatorConfig`, ``PYTORCH_CUDA_ALLOC_CONF``'s).

    ``known``: the training step, derived already (a template's), with ``peak_at(batch)`` the peak at another
    batch; ``arch`` is then None, and the report one that needs no more of it (no reserved figure, no ZeRO).
    A known step was checked where it was derived (:func:`check`, in the run a template was traced from)."""
    if known is not None:
        if reserved or zero is not None or o.mode != "train":
            raise ValueError("a known step reports the allocated peak of a training step only")
        return _report(known, cfg, o, label=label, budget=budget, gpu=gpu, context=context, peak_at=peak_at)
    from dataclasses import replace

    check(cfg, o)
    assert arch is not None
    unsupported(arch, cfg, o)
    if arch.adapted is not None:
        from .tuned import check as check_tuned

        check_tuned(arch, o)
        if reserved:
            raise UsageError(f"{arg('reserved')} with an adapter or a freeze is not modelled (the allocator replay "
                             "follows full fine-tuning's allocations); leave it out", param="reserved")
        if zero is not None or gpus > 1:
            raise UsageError("distributed memory with an adapter or a freeze is not modelled", param="zero")
        reserved = False
    train = o.mode == "train"
    s = step(arch, cfg, o) if train else None
    res = None
    if train and (reserved or (reserved is None and budget is not None)):  # (an adapter's reserved is False)
        from .reserved import training_reserved

        res = training_reserved(arch, o, allocator)
    return _report(s, cfg, o, label=label, budget=budget, gpu=gpu, zero=zero, gpus=gpus, reserved=res,
                   context=context, allocator=allocator, arch=arch,
                   peak_at=lambda b: peak(arch, cfg, replace(o, batch=b)))


def _report(s: Step | None, cfg: ModelConfig, o: Options, *, label: str, budget: int | None, gpu: str | None,
            peak_at: Any, zero: int | None = None, gpus: int = 1, reserved: Any = None, context: int | None = None,
            allocator: Any = None, arch: Architecture | None = None) -> MemoryReport:
    """The report on a training step ``s`` (or, for inference, on ``arch``): its terms, and with a ``budget``
    the largest batch that fits (``peak_at(batch)``: the allocated peak at another batch). ``reserved``: the
    replayed reserved figure, which the fit then uses (``arch`` is needed for it, and for ZeRO)."""
    adapted = arch is not None and arch.adapted is not None
    wb = o.weight_bytes
    terms: list[Term] = []
    detail: list[Term] = []
    if s is not None:
        t = s.peak
        n = s.parameters
        opt_formula = s.optimizer_formula
        terms += [
            Term("weights", t.weights, f"{wb} B × N, N = {n:,} (+ index buffers)"),
            Term("gradients", t.gradients, f"{wb} B × N" if not adapted else
                 f"{wb} B × N_trainable, N_trainable = {arch.trainable_parameters:,}", role=Role.AFTER),
            Term("optimizer states", t.optimizer, opt_formula),
            Term("saved activations", t.saved, "embeddings + L × layer + head and loss"
                 + (" + bf16 weight copies" if o.amp else "") + (" (checkpointed: layer inputs only)"
                                                                   if o.grad_checkpointing else "")),
            Term("transient peak", t.transient, f"gradients so far + backward temporaries, at the highest point "
                 f"({t.where})"),
        ]
        kept = "its input only; the rest is recomputed in the backward" if o.grad_checkpointing else \
            "Linear inputs, attention operands and probabilities, masks, LayerNorm inputs"
        vocab = s.vocab_loss
        detail += [
            Term("embeddings", t.saved_embeddings, "LayerNorm input and statistics, dropout mask", role=Role.PART),
            Term("one layer" if not adapted else "last layer", t.saved_layer, kept, role=Role.UNIT),
            Term(f"all layers (× {t.layers})", t.layers * t.saved_layer, "L × one layer", role=Role.PART)
            if not adapted else
            Term(f"all layers (× {t.layers})", t.saved - t.saved_embeddings - t.saved_head - t.weight_casts,
                 "layer by layer: frozen layers below the lowest trainable tensor save nothing", role=Role.PART),
            Term("head and loss", t.saved_head, "MLM: transform, decoder input, log-softmax [B·S, V]"
                 if vocab else "the head's inputs and the loss", role=Role.PART),
        ]
        if t.weight_casts:
            detail.append(Term("bf16 weight copies", t.weight_casts, "2 B × Linear weights, cast once per forward",
                               role=Role.PART))
        peak_bytes, where = t.peak, t.where
        if o.grad_checkpointing and where == "encoder backward":
            where += " (one layer recomputed)"
    else:
        assert arch is not None
        n = arch.total_parameters
        r = inference_peak(arch, cfg, o)
        terms += [
            Term("weights", r.weights, f"{wb} B × N, N = {n:,} (+ index buffers)"),
            Term("activations at peak", r.activations, f"live tensors at the largest moment: {r.where}"),
        ]
        detail += [Term(m.label, m.bytes, m.what, role=Role.PEAK_MOMENT if m.label == r.where else Role.CANDIDATE)
                   for m in r.moments]
        peak_bytes, where = r.peak, r.where
    terms.append(Term("peak allocated", peak_bytes, "the sum of the terms above, at the step's highest point",
                      role=Role.TOTAL))
    best = fits = floor = None
    res = reserved
    if budget is not None:
        from .fitting import largest

        context = CUDA_CONTEXT if context is None else context
        if context < 0:
            raise UsageError(f"the CUDA context must be 0 bytes or more, got {context}", param="context")
        room = budget - context
        if room <= 0:
            raise UsageError(f"a budget of {budget:,} bytes leaves nothing once the CUDA context ({context:,} bytes) "
                             "is set aside; give the card's whole memory (e.g. 24GiB), or a smaller context",
                             param="fit")
        best = largest(peak_at, room, 1 << 40, {o.batch: peak_bytes})  # memsim.max_batch
        fits = peak_bytes <= room
        if res is not None:
            fits = res.reserved <= room
            if best:
                from .reserved import max_batch as reserved_max_batch

                best = reserved_max_batch(arch, cfg, o, room, best, allocator)
        if best == 0:
            floor = peak_at(1)
    zero_t: tuple[Term, ...] = ()
    if zero is not None:
        if o.mode != "train":
            raise UsageError(f"{arg('zero')} shards training state (parameters, gradients, optimizer); use "
                             f"{arg('mode', 'train', repr('train'))}",
                             param="zero")
        assert arch is not None
        zero_t = zero_terms(arch, o, zero, gpus)
    who = {"label": label, "family": s.family, "model_class": s.model_class, "head": s.head, "config": cfg.fields()} \
        if s is not None else identify(arch, label, cfg.fields())
    return MemoryReport(
        **who, options=o, terms=tuple(terms), peak_bytes=peak_bytes, where=where,
        parameters=n,
        weights_only=_weights_only(n), saved_detail=tuple(detail), budget=budget, max_batch=best, fits=fits,
        min_batch_peak=floor,
        gpu=gpu, zero=zero_t, reserved=res, context=context if budget is not None else None,
        **({} if budget is None else {"not_counted": _not_counted_within(context)}),
    )


def _not_counted_within(context: int) -> tuple[str, ...]:
    """What a report with a budget leaves out: the CUDA context is out of the peak but in the fit."""
    return tuple(f"the CUDA context in the peak (the fit sets {context / MiB:,.0f} MiB of the budget aside for it)"
                 if n.startswith("the CUDA context") else n for n in NOT_COUNTED)


MAX_MEMORY = 1 << 70  # 1 ZiB: a memory size past it is a typo, and a batch that fits in it is past the search's cap
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


def parse_size(text: str, param: str = "fit") -> int:
    """``80GiB`` -> 85899345920, ``24GB`` -> 24000000000, ``81920MiB``, ``1.5 TiB``. ``param``: the option
    named in errors."""
    import re

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        if m and not unit:
            hint = "a unit is needed"
        elif m:
            hint = f"unknown unit {m.group(2)!r}"
        elif re.fullmatch(r"\s*-\s*[0-9.]+\s*[a-zA-Z]*\s*", text):
            hint = "a memory size is positive"
        elif re.fullmatch(r"\s*[0-9.]+[eE][-+]?[0-9]+\s*[a-zA-Z]*\s*", text):
            hint = "exponents are not read"
        else:
            hint = "cannot read it"
        raise UsageError(f"memory size {text!r}: {hint}; write e.g. 80GiB, 24GB or 81920MiB", param=param)
    from decimal import Decimal

    digits = m.group(1)
    if len(digits) > 40:  # 10^40 bytes is past any memory; refuse before any arithmetic on it
        raise UsageError(f"memory size {text[:40]!r}...: too large to be a memory size; write e.g. 80GiB",
                         param=param)
    from decimal import localcontext

    with localcontext() as ctx:
        ctx.prec = 80  # exact for every size of up to 40 digits times a unit (the default 28 digits round)
        value = int(Decimal(digits) * _UNITS[unit])  # exact: 1.5 TiB is 1649267441664, not a float's rounding
    if value <= 0:
        raise UsageError(f"memory size must be positive, got {text!r}", param=param)
    if value > MAX_MEMORY:
        raise UsageError(f"memory size {text!r} is past any memory (the limit is 1 ZiB); write e.g. 80GiB",
                         param=param)
    return value
