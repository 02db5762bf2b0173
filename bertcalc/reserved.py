"""Reserved memory of a training step: memsim's ledger, emitted as an event stream and replayed through the
caching allocator's rules (:mod:`bertcalc.allocator`).

The stream is the one memsim replays, in its order: the weights (state-dict order), then two training steps.
Each step's forward keeps the embeddings' saved set, each layer's, the head's (and the bf16 weight copies
under autocast); its backward is memsim's :class:`~bertcalc.memsim.Backward` over the head, the layers (last
first) and the embeddings, on one ledger that records every allocation and free; the first step ends by
allocating the optimizer states (fused AdamW: per parameter a step counter, ``exp_avg``, ``exp_avg_sq``), and
each ends with ``zero_grad(set_to_none=True)``. Forward temporaries that are not saved are not in memsim's
ledger and not in the stream either.

O(1) in layers, bounded work: the stream of a model of ``n`` layers differs from that of ``n + 1`` layers by one
more layer's saves, weights and backward, the same sizes in the same order, but the allocator's state does
not in general reach a per-layer fixed point: cached blocks of one layer are reused, split or not, by
requests of another, and the reserved total grows by a different amount from one layer to the next (for
BERT-base between 100 and 200 MiB per layer, with no period; docs/memory.md). So:

- up to ``EXACT_LAYERS`` (48) layers the whole step is replayed: exact;
- beyond, it replays ``n = 8 … 26`` layers; where the figures repeat with a period ``P ≤ 6`` over two
  periods (equal steps ``f(n + P) - f(n)``: each ``P`` more layers add the same segments), that is
  extrapolated to ``L`` exactly as a periodic sequence;
- otherwise the figure is a line through those probes, raised to lie above all of them, and the report says
  it is an extrapolation, not exact.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import Any

from . import allocator as _alloc
from . import memsim
from .config import ModelConfig
from .errors import UsageError
from .model import Architecture
from .program import Linear
from .records import frozen

EXACT_LAYERS = 48
PROBE_FROM = 8
MAX_PERIOD = 6


class _Recorder(memsim.Sim):
    """memsim's ledger, also writing each allocation and each last free as an event. Keys other than memsim's
    temporaries are tagged with the piece of the step they belong to (a layer's saved tensors are one
    template's keys, applied once per layer)."""

    def __init__(self, events: list[Any]) -> None:
        super().__init__()
        self.events = events
        self.tag: Any = None
        self._keys = itertools.count()  # numbered from 0 in every stream, so two streams of one shape are equal

    def name(self, key: Any) -> Any:
        return key if isinstance(key, tuple) and key and key[0] == "tmp" else (self.tag, key)

    def alloc(self, nbytes: int, key: Any = None) -> Any:
        key = super().alloc(nbytes, key)
        self.events.append(("+", self.name(key), nbytes))
        return key

    def free(self, key: Any) -> None:
        entry = self.bufs.get(key)
        if entry is not None and entry[1] == 1:
            self.events.append(("-", self.name(key)))
        super().free(key)


def state_tensors(nbytes_elem: int, t: Any, optimizer: str) -> list[int]:
    """The optimizer's state tensors for one parameter tensor, in the order the optimizer allocates them
    (bytes each). Their allocator-rounded sum is :func:`memsim.optimizer_bytes` (tested)."""
    n = t.parameters
    if optimizer in ("adamw", "adam"):
        return [4, n * nbytes_elem, n * nbytes_elem]  # fused: state["step"] on the device, exp_avg, exp_avg_sq
    if optimizer == "sgd":
        return []
    if optimizer == "sgd-momentum":
        return [n * nbytes_elem]
    if optimizer == "adafactor":
        shape = t.shape
        if len(shape) >= 2:
            return [math.prod(shape[:-1]) * 4, shape[-1] * 4]
        return [n * 4]
    if optimizer == "adamw-8bit":
        if n >= 4096:
            blocks = 4 * -(-n // 256)
            return [n, blocks, n, blocks]
        return [4 * n, 4 * n]
    raise UsageError(f"unknown optimizer {optimizer!r}", param="optimizer")


def _parameters(arch: Architecture, n: int) -> list[tuple[Any, Any]]:
    """(key, tensor) of every unique parameter of the model with ``n`` layers, in state-dict order."""
    enc = arch.program.encoder
    shared = enc is not None and enc.groups < enc.times
    out = []
    for c in arch.components:
        reps = n if (enc is not None and c.name == enc.component and not shared) else c.repeat
        for r in range(reps):
            for part in c.parts:
                for t in part.tensors:
                    if t.tied_to is None:
                        out.append((("w", c.name, r, t.name), t))
    return out


def _casts(arch: Architecture) -> tuple[list[tuple[Any, int]], list[tuple[Any, int]]]:
    """Autocast's bf16 weight copies: (encoder layer parts, the others), one per distinct Linear weight."""
    enc = arch.program.encoder
    layer_parts = {id(op.part) for op in (enc.ops if enc is not None else ()) if isinstance(op, Linear)}
    seen: dict[int, tuple[Any, int]] = {}
    for op in arch.program.ops():
        if isinstance(op, Linear) and op.part.tensors[0].tied_to is None:
            seen[id(op.part)] = (id(op.part), op.part.tensors[0].parameters * 2)
    inner = [v for k, v in seen.items() if k in layer_parts]
    outer = [v for k, v in seen.items() if k not in layer_parts]
    return inner, outer


def step_events(arch: Architecture, o: memsim.Options, n: int) -> tuple[list[Any], ...]:
    """(persistent, step, zero_grad, optimizer-states) events of a training step of the model with ``n`` layers:
    the weights; the forward and backward; ``zero_grad``'s frees of everything the backward left; the states."""
    x = memsim.Ctx.of(o)
    p = arch.program
    dt = memsim.dtypes(p, x)
    enc = p.encoder
    times = n if enc is not None and enc.times else 0
    groups = min(enc.groups, times) if enc is not None and times else 0
    shared = enc is not None and enc.groups < enc.times
    wb = x.wb
    params = _parameters(arch, n)
    persistent: list[Any] = [("+", k, t.parameters * wb) for k, t in params]
    persistent += [("+", ("buffer", b.name), 8 * math.prod(b.shape)) for b in arch.buffers]
    states = [("+", ("state", k, i), s) for k, t in params
              for i, s in enumerate(state_tensors(wb, t, o.optimizer))]

    ev: list[Any] = []
    emb_saved = memsim.saved_set(p.embeddings, x, dt)
    head_ops = (*p.tail, *p.head)
    head_saved = memsim.saved_set(head_ops, x, dt)
    layer_saved = memsim.saved_set(enc.ops, x, dt) if enc is not None else {}
    inner, outer = _casts(arch) if (x.amp and not o.grad_checkpointing) else ([], [])

    def keep(tag: Any, saved: dict[Any, int]) -> None:
        ev.extend(("+", (tag, k), nb) for k, nb in saved.items())

    # the forward; values made before the encoder and read by every layer (memsim.shared_inputs: an attention
    # bias, a relative table) live through it; one a layer saves is counted with the layer's saved tensors
    side = [v for v in memsim.shared_inputs(p) if v.storage not in layer_saved] if times else []
    keep("emb", emb_saved)
    ev.extend(("+", ("side", v.name), x.n(v) * dt[v.storage]) for v in side)
    cast_keys = []
    for j in range(times):
        if not shared or j == 0:
            for pid, nb in inner:
                cast_keys.append(("cast", j, pid))
                ev.append(("+", cast_keys[-1], nb))
        if o.grad_checkpointing:
            kept = enc.inp.storage
            ev.append(("+", (j, kept), x.n(kept) * dt[kept]))
        else:
            keep(j, layer_saved)
    for pid, nb in outer:
        cast_keys.append(("cast", "outer", pid))
        ev.append(("+", cast_keys[-1], nb))
    ev.extend(("-", ("side", v.name)) for v in side)
    keep("head", head_saved)

    # the backward, on one ledger
    sim = _Recorder(ev)
    owners = memsim.owners_of(arch)
    sim.tag = "head"
    memsim._register(sim, head_saved)
    bw = memsim.Backward(sim, x, dt, memsim._savers(head_ops, x, dt, sim), owners=owners)
    bw.run(head_ops)
    g = bw.grads.pop(p.hidden, None)
    if times:
        shared_ids = frozenset(id(part) for c in arch.components if c.name == enc.component for part in c.parts)
        group_params: dict[int, dict[int, Any]] = {}
        carried: dict[Any, Any] = {}  # gradients of what every layer reads (memsim.shared_inputs): made once
        if g is None:
            sim.tag = "top"
            g = sim.alloc(x.n(enc.out) * dt[enc.out])
        for j in reversed(range(times)):
            sim.tag = j
            if o.grad_checkpointing:
                kept = enc.inp.storage
                sim.bufs[kept] = [memsim.alloc(x.n(kept) * dt[kept]), 1]
                for k, nb in layer_saved.items():
                    if k is not kept:
                        sim.alloc(nb, key=k)
                        sim.bufs[k][1] = 0
            else:
                memsim._register(sim, layer_saved)
            savers = memsim._savers(enc.ops, x, dt, sim)
            grp = int(j / (times / groups)) if shared else j
            first = grp not in group_params
            lbw = memsim.Backward(sim, x, dt, savers, owners=owners, shared=shared_ids if shared else frozenset(),
                                  first=first, params=group_params.setdefault(grp, {}))
            lbw.grads[enc.out] = g
            lbw.grads.update(carried)  # a later layer adds into them (its own is freed on delivery)
            lbw.run(enc.ops)
            for v in memsim.shared_inputs(p):
                if v in lbw.grads:
                    carried[v] = lbw.grads.pop(v)
            if o.grad_checkpointing and sim.has(enc.inp.storage):
                sim.free(enc.inp.storage)
            for k in layer_saved:  # saved tensors no op freed: autograd frees them with the graph, at the end
                if sim.has(k):
                    sim.bufs[(j, "left", k)] = sim.bufs.pop(k)
            g = lbw.grads.pop(enc.inp, None)
        ev.extend(("-", k) for k in cast_keys)
        cast_keys = []
    sim.tag = "emb"
    memsim._register(sim, emb_saved)
    ebw = memsim.Backward(sim, x, dt, memsim._savers(p.embeddings, x, dt, sim), owners=owners, params=bw.params)
    ebw.via_linear = bw.via_linear
    if g is not None:
        ebw.grads[p.embedded] = g
    if times:
        ebw.grads.update(carried)
    ebw.run(p.embeddings)
    ev.extend(("-", k) for k in cast_keys)
    # what is left: the gradients (freed by zero_grad after the optimizer step), and any saved tensor, which
    # autograd frees with the graph
    live = {}
    for e in ev:
        if e[0] == "+":
            live[e[1]] = True
        else:
            del live[e[1]]
    return persistent, ev, [("-", k) for k in live], states


def _training_events(arch: Architecture, o: memsim.Options, n: int) -> list[Any]:
    """The weights, step 1, the optimizer states, ``zero_grad``, step 2, ``zero_grad``. Step 2 reuses step 1's
    keys: ``zero_grad`` has freed every one of them by then (``step_events``' last list is what was left)."""
    persistent, step, zero, states = step_events(arch, o, n)
    return [*persistent, *step, *states, *zero, *step, *zero]


def _shape(events: list[Any]) -> list[Any]:
    """The stream without its sizes. memsim's temporaries are numbered from 0 in each stream (the recorder's
    own counter), so two streams of one shape give equal lists."""
    return [e[:2] for e in events]


_STREAMS: dict[Any, tuple[Any, list[Any], list[int], list[int]]] = {}  # batch-free key -> (arch, ops, base, slope)
_MAX_STREAMS = 64


def training_events(arch: Architecture, o: memsim.Options, n: int) -> list[Any]:
    """Weights, step 1 (whose optimizer states are allocated after its backward, before ``zero_grad``), step 2.
    ``torch.cuda.max_memory_reserved()`` after the second step is the largest reserved total of all of it.

    The batch is hoisted out: every size in the stream is ``B`` times a per-sequence size, or constant, and the
    stream's shape does not depend on ``B`` except where CUDA's embedding backward switches to sorting (more
    than 3072 tokens). So the stream is generated at two batches of the same side of that switch, checked to
    have the same shape, and kept as ``size = base + slope · B``; a search over the batch then only computes
    sizes (tested against fresh generations)."""
    regime = o.rows * o.seq > 3072  # rows: the batch, times a multiple-choice input's choices
    key = (id(arch), replace(o, batch=1), n, regime)
    hit = _STREAMS.get(key)
    if hit is None or hit[0] is not arch:
        first = _training_events(arch, o, n)
        other = o.batch + 1 if regime else o.batch - 1
        if other < 1 or (other * (o.choices or 1) * o.seq > 3072) != regime:
            return first
        second = _training_events(arch, replace(o, batch=other), n)
        if _shape(first) != _shape(second):  # pragma: no cover - the stream's shape never depends on B here
            return first
        step = other - o.batch
        base, slope = [], []
        for a, b in zip(first, second, strict=True):
            d = (b[2] - a[2]) * step if a[0] == "+" else 0
            slope.append(d)
            base.append(a[2] - d * o.batch if a[0] == "+" else 0)
        if len(_STREAMS) >= _MAX_STREAMS:
            _STREAMS.pop(next(iter(_STREAMS)))
        _STREAMS[key] = (arch, first, base, slope)
        return first
    _, ops, base, slope = hit
    b = o.batch
    return [(e[0], e[1], base[i] + slope[i] * b) if e[0] == "+" else e for i, e in enumerate(ops)]


@frozen
class Reserved:
    """The replay's figures (bytes): ``allocated`` is the allocator's own ``max_memory_allocated`` (memsim's,
    plus the slack of cached blocks reused whole), ``reserved`` its ``max_memory_reserved``. ``layers``:
    how the layer count was reached: ``"exact"`` (replayed) or ``"affine from n = k..k+3"``."""

    allocated: int
    reserved: int
    layers: str


def _run(arch: Architecture, o: memsim.Options, n: int, config: _alloc.AllocatorConfig) -> tuple[int, int]:
    a = _alloc.replay(training_events(arch, o, n), config)
    return a.peak_allocated, a.peak_reserved


def training_reserved(arch: Architecture, o: memsim.Options,
                      config: _alloc.AllocatorConfig | None = None) -> Reserved:
    """Peak allocated and reserved bytes of a training step as the caching allocator sees them."""
    config = config or _alloc.AllocatorConfig()
    enc = arch.program.encoder
    L = enc.times if enc is not None else 0
    if L <= EXACT_LAYERS:
        a, r = _run(arch, o, L, config)
        return Reserved(a, r, "exact")
    if config.capacity is not None:  # a bounded replay is not periodic in n once it releases segments
        config = replace(config, capacity=None)
    runs: dict[int, tuple[int, int]] = {}

    def run(n: int) -> tuple[int, int]:
        if n not in runs:
            runs[n] = _run(arch, o, n, config)
        return runs[n]

    k = PROBE_FROM
    for period in range(1, MAX_PERIOD + 1):
        steps = {tuple(b - a for a, b in zip(run(n), run(n + period), strict=True))
                 for n in range(k, k + 2 * period + 1)}
        if len(steps) == 1:
            (da, dr), = steps
            q, m = divmod(L - k, period)
            a, r = run(k + m)
            return Reserved(a + q * da, r + q * dr, f"periodic from {k} layers, period {period}")
    # No period: the line through the first and the last probe, raised by the largest amount any probe lies
    # above it, so that it bounds every probe.
    top = k + 3 * MAX_PERIOD
    fig = []
    for i in (0, 1):
        slope = (run(top)[i] - run(k)[i]) / (top - k)
        above = max(run(n)[i] - run(k)[i] - slope * (n - k) for n in range(k, top + 1))
        fig.append(math.ceil(run(k)[i] + slope * (L - k) + above))
    return Reserved(fig[0], fig[1], f"no period: a line through {k} to {top} layers, "
                                    f"extrapolated (not exact)")


def fits(arch: Architecture, o: memsim.Options, capacity: int, config: _alloc.AllocatorConfig | None = None) -> bool:
    """Whether the step runs within ``capacity`` bytes of device memory: the replay with the driver's limit,
    including the allocator's release-and-retry on a failed ``cudaMalloc``."""
    config = replace(config or _alloc.AllocatorConfig(), capacity=capacity)
    enc = arch.program.encoder
    L = enc.times if enc is not None else 0
    if L <= EXACT_LAYERS:
        try:
            _alloc.replay(training_events(arch, o, L), config)
        except _alloc.OutOfMemory:
            return False
        return True
    return training_reserved(arch, o, replace(config, capacity=None)).reserved <= capacity


def max_batch(arch: Architecture, cfg: ModelConfig, o: memsim.Options, room: int, alloc_best: int,
              allocator: _alloc.AllocatorConfig | None = None) -> int:
    """The largest batch whose replayed reserved peak fits in ``room`` (each evaluation is a full replay).
    Reserved ≥ allocated, so the allocated answer ``alloc_best`` bounds it; the first look is where the
    allocated peak, scaled by the reserved/allocated ratio at ``alloc_best``, meets the room. The search never
    starts from the report's own batch, so the answer does not depend on it (reserved memory is not quite
    monotone in the batch, docs/memory.md)."""
    from .fitting import largest

    def reserved_at(b: int) -> int:
        return training_reserved(arch, replace(o, batch=b), allocator).reserved

    top = reserved_at(alloc_best)
    if top <= room:
        return alloc_best
    scaled = room * memsim.peak(arch, cfg, replace(o, batch=alloc_best)) // top
    guess = memsim.max_batch(arch, cfg, o, scaled, limit=alloc_best) or 1
    return largest(reserved_at, room, limit=alloc_best, known={alloc_best: top}, guess=guess)
