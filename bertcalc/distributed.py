"""Per-rank memory and communication of a data-parallel training step: DDP, DeepSpeed ZeRO-1/2/3 (with CPU
offload) and PyTorch FSDP2 ``fully_shard``.

Nothing here re-derives a training step. The single-GPU model (:func:`bertcalc.memsim.training_peak`, at the
local batch) gives the weights, gradients, optimizer states, saved activations and the backward's moments
(the head's highest point, each layer run's rise and net change, the embeddings'); each engine then changes
what is resident at those moments, by rules read from its source:

- **DDP** (torch 2.13 ``DistributedDataParallel``): a full replica; the reducer's gradient buckets are a
  second copy of the gradients unless ``gradient_as_bucket_view=True``.
- **DeepSpeed ZeRO** (0.19.8, ``runtime/zero/stage_1_and_2.py``, ``stage3.py``, ``partition_parameters.py``):
  partitions of the fp32 master weights, optimizer states, gradients (stage 2) and parameters (stage 3),
  the ``reduce_bucket_size`` staging buffers, stage 3's gathered module and prefetch; ``offload_optimizer``
  and ``offload_param`` move partitions to CPU RAM.
- **FSDP2** (torch 2.13 ``torch/distributed/fsdp/_fully_shard/``): each encoder layer one ``fully_shard``
  unit and the root the rest; per-parameter dim-0 shards padded to ``ceil(d0 / N)`` rows; a unit's
  all-gather output and unsharded parameters; the root kept unsharded through the step; the next unit's
  all-gather prefetched in the backward; one reduce-scatter input held until the next unit's.

Beside them, what DeepSpeed's own estimator functions return (:func:`deepspeed_estimate`, their arithmetic
transcribed) and the ZeRO paper's model-state formulas (:func:`bertcalc.memsim.zero_terms`). Every byte
count is an exact integer; the rules are listed, with where each was read, in docs/memory.md.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Literal

from .errors import UsageError, arg
from .memsim import Options, Term, TrainingPeak, alloc, buffer_bytes, optimizer_bytes, part_bytes, training_peak
from .records import frozen

Strategy = Literal["ddp", "zero", "fsdp"]
OFFLOADS = ("optimizer", "param", "both")
DS_RELEASE = "DeepSpeed 0.19.8"
TORCH_RELEASE = "torch 2.13.0"

# DeepSpeed's defaults (runtime/zero/config.py, 0.19.8)
REDUCE_BUCKET = 500_000_000  # reduce_bucket_size
ALLGATHER_BUCKET = 500_000_000  # allgather_bucket_size
PREFETCH_BUCKET = 50_000_000  # stage3_prefetch_bucket_size
MAX_LIVE = 1_000_000_000  # stage3_max_live_parameters
PERSISTENCE = 100_000  # stage3_param_persistence_threshold
BUFFER_FACTOR = 1.5  # the estimators' additional_buffer_factor


@frozen
class Setup:
    """The data-parallel run: ``gpus`` per node × ``nodes`` ranks."""

    strategy: Strategy = "ddp"
    stage: int = 0  # ZeRO stage (strategy "zero")
    gpus: int = 1
    nodes: int = 1
    offload: str | None = None  # optimizer | param | both (ZeRO)
    reshard: bool = True  # FSDP2 reshard_after_forward for the layer units
    rank: int = 0
    link_gbps: float | None = None  # for the communication time; display only
    reduce_bucket: int = REDUCE_BUCKET
    prefetch_bucket: int = PREFETCH_BUCKET
    max_live: int = MAX_LIVE
    persistence: int = PERSISTENCE

    @property
    def world(self) -> int:
        return self.gpus * self.nodes

    @property
    def label(self) -> str:
        if self.strategy == "zero":
            off = f" + offload {self.offload}" if self.offload else ""
            return f"ZeRO-{self.stage}{off}"
        if self.strategy == "fsdp":
            return f"FSDP2 (reshard_after_forward={self.reshard})"
        return "DDP"

    @property
    def offload_optimizer(self) -> bool:
        return self.offload in ("optimizer", "both")

    @property
    def offload_param(self) -> bool:
        return self.offload in ("param", "both")


def check(s: Setup) -> None:
    if s.gpus < 1:
        raise UsageError(f"{arg('gpus')} must be at least 1", param="gpus")
    if s.nodes < 1:
        raise UsageError(f"{arg('nodes')} must be at least 1", param="nodes")
    if s.strategy == "zero" and s.stage not in (1, 2, 3):
        raise UsageError(f"{arg('zero')} takes 1, 2 or 3, got {s.stage}", param="zero")
    if s.offload is not None:
        if s.offload not in OFFLOADS:
            raise UsageError(f"{arg('offload')} takes {', '.join(OFFLOADS)}, got {s.offload!r}", param="offload")
        if s.strategy != "zero":
            raise UsageError(f"{arg('offload')} is DeepSpeed's offload_optimizer/offload_param: give "
                             f"{arg('zero', '1, 2 or 3')}", param="offload")
        if s.offload_param and s.stage != 3:
            raise UsageError("offload_param needs ZeRO-3 (DeepSpeed partitions parameters only at stage 3); use "
                             f"{arg('offload', 'optimizer', repr('optimizer'))}, or {arg('zero', '3')}",
                             param="offload")
    if s.link_gbps is not None and not (1e-6 <= s.link_gbps <= 1e9):  # 1 kbit/s to 1 Pbit/s: a finite time
        raise UsageError(f"{arg('link_gbps')} must be a bandwidth from 1e-06 to 1e+09 Gbit/s, e.g. 400, got "
                         f"{s.link_gbps:g}", param="link_gbps")


# ----------------------------------------------------------------------------------------- the report


@frozen
class RankTerm:
    """One figure of a rank's memory: where it lives (``gpu`` or ``cpu``), its bytes, the rule behind it."""

    name: str
    device: str
    bytes: int
    rule: str


@frozen
class Comm:
    name: str
    bytes: int  # sent by one rank per step
    rule: str


@frozen
class FitRow:
    setting: str
    gpu_bytes: int  # per rank at the given local batch
    cpu_bytes: int
    max_local_batch: int
    fits: bool


@frozen
class DistReport:
    setup: Setup
    local_batch: int
    terms: tuple[RankTerm, ...]
    peak_at: str
    comm: tuple[Comm, ...]
    deepspeed: tuple[int, int, str] | None = None  # (gpu, cpu, assumptions)
    paper: tuple[Term, ...] = ()
    fit: tuple[FitRow, ...] = ()
    budget: int | None = None
    smallest_fit: str | None = None

    @property
    def gpu_bytes(self) -> int:
        return sum(t.bytes for t in self.terms if t.device == "gpu")

    @property
    def cpu_bytes(self) -> int:
        return sum(t.bytes for t in self.terms if t.device == "cpu")

    @property
    def comm_bytes(self) -> int:
        return sum(c.bytes for c in self.comm)

    @property
    def global_batch(self) -> int:
        return self.local_batch * self.setup.world

    def comm_seconds(self) -> float | None:
        """Display only: the step's communication at ``link_gbps`` (Gbit/s), nothing overlapped."""
        g = self.setup.link_gbps
        return None if g is None else self.comm_bytes * 8 / (g * 1e9)

    def to_dict(self) -> dict[str, Any]:
        s = self.setup
        out: dict[str, Any] = {
            "distributed": {"strategy": s.strategy, "label": s.label, "zero_stage": s.stage or None,
                            "gpus_per_node": s.gpus, "nodes": s.nodes, "world_size": s.world, "rank": s.rank,
                            "offload": s.offload, "reshard_after_forward": s.reshard if s.strategy == "fsdp" else None,
                            "local_batch": self.local_batch, "global_batch": self.global_batch},
            "per_rank": {"gpu_bytes": self.gpu_bytes, "cpu_bytes": self.cpu_bytes, "peak_at": self.peak_at,
                         "terms": [{"name": t.name, "device": t.device, "bytes": t.bytes, "rule": t.rule}
                                   for t in self.terms]},
            "communication": {"bytes_per_rank": self.comm_bytes, "link_gbps": s.link_gbps,
                              "seconds": self.comm_seconds(),
                              "terms": [{"name": c.name, "bytes": c.bytes, "rule": c.rule} for c in self.comm]},
        }
        if self.deepspeed is not None:
            gpu, cpu, why = self.deepspeed
            out["deepspeed_estimate"] = {"gpu_bytes": gpu, "cpu_bytes": cpu, "assumptions": why}
        elif s.strategy == "zero":
            out["deepspeed_estimate"] = {"gpu_bytes": None, "cpu_bytes": None, "assumptions": NO_ESTIMATE}
        if self.paper:
            out["paper"] = {t.name: t.bytes for t in self.paper}
            out["paper_formulas"] = {t.name: t.formula for t in self.paper}
        if self.fit:
            out["fit"] = {"budget_bytes": self.budget, "smallest_that_fits": self.smallest_fit,
                          "settings": [{"setting": r.setting, "gpu_bytes": r.gpu_bytes, "cpu_bytes": r.cpu_bytes,
                                        "max_local_batch": r.max_local_batch, "fits": r.fits} for r in self.fit]}
        return out


# ------------------------------------------------------------------------------------------- the model


@frozen
class _Shard:
    """A rank's piece of one parameter, for memsim's optimizer rule (which reads ``shape`` and ``parameters``)."""

    shape: tuple[int, ...]

    @property
    def parameters(self) -> int:
        return math.prod(self.shape)


def _unique_tensors(parts: Any) -> list[Any]:
    return [t for p in parts for t in p.tensors if t.tied_to is None]


def units(arch: Any) -> tuple[list[Any], list[Any], int]:
    """(the root's parts, one layer unit's parts, how many layer units): each encoder layer is one
    ``fully_shard`` unit, the root the rest. A shared layer (ALBERT) is not a unit of its own."""
    enc = arch.program.encoder
    layered = enc is not None and enc.times and enc.groups >= enc.times
    root, layer, count = [], [], 0
    for c in arch.components:
        if layered and c.name == enc.component:
            layer, count = list(c.parts), c.repeat
        else:
            root += list(c.parts) * c.repeat
    return root, layer, count


def largest_module(arch: Any) -> int:
    """DeepSpeed's ``largest_layer_params`` (stage3.model_to_params): the most parameters any one module holds
    directly, a tied weight counted in each module that holds it."""
    return max((sum(t.parameters for t in p.tensors) for c in arch.components for p in c.parts), default=0)


@frozen
class _Unit:
    """One FSDP2 unit on one rank (bytes)."""

    sharded: int  # the padded per-parameter shards (orig dtype)
    unsharded: int  # the per-parameter all-gather outputs (param dtype, padded to N shards)
    gather: int  # the flat all-gather output
    rs_input: int  # the flat reduce-scatter input (reduce dtype)
    grad_shard: int  # the flat reduce-scatter output the sharded gradients view (orig dtype)
    full_grads: int  # autograd's unsharded gradients, as memsim counts them
    shards: tuple[_Shard, ...]  # the local (unpadded) shards, for the optimizer states


def _fsdp_unit(tensors: list[Any], s: Setup, pd: int, od: int, rd: int, gw: int) -> _Unit:
    n, r = s.world, s.rank
    sharded = unsharded = padded_total = 0
    shards = []
    for t in tensors:
        d0, rest = t.shape[0], math.prod(t.shape[1:])
        c = -(-d0 // n)
        sharded += alloc(c * rest * od)  # FSDPParam._sharded_param_data: chunk padded to ceil(d0/N) rows
        unsharded += alloc(n * c * rest * pd)  # all_gather_outputs, one per parameter, padded
        padded_total += c * rest
        shards.append(_Shard((max(0, min(c, d0 - r * c)), *t.shape[1:])))
    return _Unit(sharded, unsharded, alloc(n * padded_total * pd), alloc(n * padded_total * rd),
                 alloc(padded_total * od), sum(alloc(t.parameters * gw) for t in tensors), tuple(shards))


def _memsim_options(o: Options, s: Setup) -> Options:
    if s.strategy == "zero" and o.precision.startswith("amp"):
        # DeepSpeed's bf16/fp16 modes run the model itself in half precision (no autocast)
        return replace(o, precision=o.precision.removeprefix("amp-"))
    return o


def _moments(m: TrainingPeak, layers: int, adjust: Any) -> list[tuple[str, int, dict[str, int]]]:
    """The backward's moments in memsim's frame (absolute bytes of a single-GPU step), each with the
    engine's changes: ``adjust(kind, k)`` -> {term: bytes to add} at the head ("head"), within the k-th layer
    run processed ("layer"), after it ("after"), at the embeddings ("embeddings") and at the end ("end")."""
    out = [("loss and head backward", m.head_peak, adjust("head", 0))]
    if layers:
        ks = sorted({k for k in (0, 1, layers - 2, layers - 1) if 0 <= k < layers})
        for k in ks:  # each figure is affine in k between these, so the largest is at one of them
            start = m.encoder_start + k * m.layer_net
            out.append((f"encoder backward (layer run {k + 1} of {layers})", start + m.layer_rise, adjust("layer", k)))
            out.append((f"after layer run {k + 1} of {layers}", start + m.layer_net, adjust("after", k)))
        out.append(("embeddings backward", m.embeddings_peak, adjust("embeddings", layers)))
    out.append(("end of the backward", m.end, adjust("end", layers)))
    return out


def _pick(moments: list[tuple[str, int, dict[str, int]]], base: dict[str, int],
          m: TrainingPeak) -> tuple[str, dict[str, int]]:
    """The highest moment, as terms: the engine's resident figures, and the rest of memsim's live bytes (saved
    activations still held, backward temporaries, gradients not yet handed to the engine)."""
    best_where, best, best_total = "", {}, -1
    for where, live, extra in moments:
        rest = live - m.weights - m.optimizer - sum(v for k, v in extra.items() if k.startswith("-"))
        terms = {**base, **{k: v for k, v in extra.items() if not k.startswith("-")}}
        terms["activations and backward temporaries"] = rest
        total = sum(terms.values())
        if total > best_total:
            best_where, best, best_total = where, terms, total
    return best_where, best


def _fsdp(arch: Any, cfg: Any, o: Options, s: Setup) -> tuple[list[RankTerm], str, list[Comm]]:
    mp = o.precision in ("bf16", "fp16")  # MixedPrecisionPolicy(param_dtype=bf16/fp16, reduce_dtype=fp32)
    pd, od, rd = (2, 4, 4) if mp else (4, 4, 4)
    if o.precision.startswith("amp"):
        pd = od = rd = 4  # autocast over fp32 parameters: no MixedPrecisionPolicy
    m = training_peak(arch, cfg, o)
    gw = 2 if mp else o.weight_bytes
    root_parts, layer_parts, L = units(arch)
    root = _fsdp_unit(_unique_tensors(root_parts), s, pd, od, rd, gw)
    lay = _fsdp_unit(_unique_tensors(layer_parts), s, pd, od, rd, gw)
    o32 = replace(o, precision="fp32")
    shards = [(t, 1) for t in root.shards] + [(t, L) for t in lay.shards]
    opt = optimizer_bytes(arch, o32, params=shards)[0]
    buffers = buffer_bytes(arch)
    base = {"sharded parameters": root.sharded + L * lay.sharded, "optimizer states (on the shards)": opt,
            "index buffers (replicated)": buffers}
    U, AG, RS, GS, G = lay.unsharded, lay.gather, lay.rs_input, lay.grad_shard, lay.full_grads

    def adjust(kind: str, k: int) -> dict[str, int]:
        g: dict[str, int] = {}
        if L == 0:
            g["gathered parameters"] = root.unsharded if kind != "end" else 0
            if kind == "end":
                g["reduce-scatter input"] = root.rs_input
            return g
        done = k if kind in ("layer", "after") else (L if kind in ("embeddings", "end") else 0)
        if kind == "head":
            layers_up = AG if s.reshard else L * U  # the root's pre-backward prefetches the last layer
        elif kind == "layer":
            layers_up = (U + (AG if k < L - 1 else 0)) if s.reshard else (L - k) * U
        elif kind == "after":  # the unit has resharded; the next unit's prefetch is pending
            layers_up = (AG if k < L - 1 else 0) if s.reshard else (L - k - 1) * U
        else:
            layers_up = 0
        g["gathered parameters"] = (root.unsharded if kind != "end" else 0) + layers_up
        if kind == "after":
            g["reduce-scatter input"] = RS  # the previous one was freed just before
        elif done and kind != "end":
            g["reduce-scatter input"] = RS  # held until the next unit's post-backward
        elif kind == "end":
            g["reduce-scatter input"] = root.rs_input  # the root's post-backward: layer 0's was freed
        g["sharded gradients"] = done * GS
        g["-reduced"] = done * G  # autograd's full gradients of reduced units are gone
        return g

    moments = _moments(m, L, adjust)
    where, terms = _pick(moments, base, m)
    candidates = [("optimizer step", {**base, "sharded gradients": root.grad_shard + L * GS})]
    # The forward: a unit's flat all-gather output is kept until the next unit's wait_for_unshard returns (the
    # implicit forward prefetch: FSDPParamGroup.wait_for_unshard holds it in comm_ctx.all_gather_state, and its
    # local prev_all_gather_state through the copy-out), the last one until the root's post-forward.
    act = "activations and backward temporaries"
    candidates.append(("forward: the root's all-gather", {**base, "gathered parameters": root.unsharded,
                                                          "all-gather output": root.gather, act: 0}))
    if L:
        enc = arch.program.encoder
        x_in = alloc(enc.inp.elements(o.batch, o.seq) * o.act_bytes)  # the layer's input, not yet saved by it
        for i in sorted({0, L - 1}):
            held = (0 if s.reshard else i * U)
            prev = root.gather if i == 0 else AG
            candidates.append((f"forward: layer {i + 1}'s all-gather copy-out", {
                **base, "gathered parameters": root.unsharded + held + U, "all-gather output": prev + AG,
                act: m.saved_embeddings + i * m.saved_layer + x_in}))
    for at, cand in candidates:
        if sum(cand.values()) > sum(terms.values()):
            where, terms = at, cand
    rules = {
        "sharded parameters": f"each parameter's dim-0 chunk, padded to ceil(d0/N) rows, in its own dtype "
                              f"(FSDPParam._sharded_param_data; {TORCH_RELEASE})",
        "optimizer states (on the shards)": f"the optimizer's rule on this rank's unpadded local shards "
                                            f"(DTensor._local_tensor, fp32); {TORCH_RELEASE}",
        "index buffers (replicated)": "buffers are not sharded: position_ids, token_type_ids on every rank",
        "gathered parameters": "the root unit (unsharded from its forward to its post-backward) + the layer "
                               "units gathered at this moment: the one in backward and the next one's all-gather "
                               "output (prefetched in pre_backward)" if s.reshard else
                               "the root and every layer unit not yet through its post-backward "
                               "(reshard_after_forward=False)",
        "all-gather output": "the flat all-gather output of the unit being gathered, and of the one before it "
                             "(kept to the next unit's wait_for_unshard in the forward)",
        "reduce-scatter input": "one unit's flat reduce-scatter input (N padded shards, reduce dtype), held "
                                "until the next unit's post-backward (reduce_scatter_max_input_buffers=1)",
        "sharded gradients": "the flat reduce-scatter output of each reduced unit, viewed as sharded grads",
        "activations and backward temporaries": "memsim's replay at the local batch: saved tensors still held, "
                                                "the backward's temporaries, unsharded gradients of units not "
                                                "yet reduced",
    }
    out = [RankTerm(k, "gpu", v, rules.get(k, "")) for k, v in terms.items()]
    f = s.world
    ring = lambda b: b * (f - 1) // f  # noqa: E731  (bytes a rank sends in one ring all-gather/reduce-scatter)
    comm = [Comm("all-gather parameters", ring(root.gather + L * AG), "forward: every unit, (N−1)/N × its padded "
                 "parameters in the param dtype")]
    if s.reshard and L:
        comm.append(Comm("all-gather parameters again (backward)", ring(L * AG),
                         "reshard_after_forward=True: each layer unit re-gathered in the backward"))
    comm.append(Comm("reduce-scatter gradients", ring(root.rs_input + L * RS), "(N−1)/N × the gradients, reduce dtype"))
    return out, where, comm


def _zero(arch: Any, cfg: Any, o: Options, s: Setup) -> tuple[list[RankTerm], str, list[Comm]]:
    mo = _memsim_options(o, s)
    m = training_peak(arch, cfg, mo)
    hb = 2 if mo.precision in ("bf16", "fp16") else 4  # the model's parameters and gradients
    n, N = arch.total_parameters, s.world
    _, layer_parts, L = units(arch)
    G = sum(part_bytes(p, mo.weight_bytes) for p in layer_parts)
    o32 = replace(o, precision="fp32")
    off_o, off_p = s.offload_optimizer, s.offload_param
    dev_o = "cpu" if off_o else "gpu"
    t: list[tuple[str, str, int, str]] = []
    src12, src3 = f"stage_1_and_2.py, {DS_RELEASE}", f"stage3.py, {DS_RELEASE}"
    if s.stage in (1, 2):
        flat = -(-n // (2 * N)) * 2 * N  # bit16_groups_flat, aligned to nccl_start_alignment_factor × N
        part = flat // N
        t.append(("parameters (full replica, flat)", "gpu", alloc(flat * hb),
                  f"bit16_groups_flat: all Ψ parameters, padded to a multiple of 2N elements ({src12})"))
        state_n = part
    else:
        pers = sum(tp.parameters * c.repeat for c in arch.components for p in c.parts for tp in p.tensors
                   if tp.tied_to is None and tp.parameters <= s.persistence)  # one template × L: O(1) in layers
        parts = sum(-(-tp.parameters // N) * c.repeat for c in arch.components for p in c.parts
                    for tp in p.tensors if tp.tied_to is None)
        t.append(("parameter partitions", "cpu" if off_p else "gpu", parts * hb,
                  f"ds_tensor: ceil(numel/N) elements of each parameter (partition_parameters.py, {DS_RELEASE})"))
        t.append(("persistent parameters (≤ stage3_param_persistence_threshold)", "gpu", pers * hb,
                  f"parameters of at most {s.persistence:,} elements stay gathered on every rank ({src3})"))
        state_n = parts
    t.append(("fp32 master partition", dev_o, alloc(state_n * 4),
              "single_partition_of_fp32_groups / fp32_partitioned_groups_flat: Ψ/N in fp32"))
    opt = optimizer_bytes(arch, o32, params=[(_Shard((state_n,)), 1)])[0]
    t.append(("optimizer states (partition)", dev_o, opt, "the optimizer's rule on the flat fp32 partition"))
    if s.stage in (1, 2):
        # Both stages reduce through the ipg bucket as gradients arrive and keep this rank's share in
        # grads_in_partition (contiguous_gradients=True, the default, at stage 1 too): measured alike on gloo
        if off_o:
            t.append(("fp32 gradient partition (CPU)", "cpu", alloc(state_n * 4),
                      "offload_optimizer: gradients accumulate into the CPU fp32 partition"))
        else:
            t.append(("gradient partition", "gpu", alloc(state_n * hb),
                      f"grads_in_partition: this rank's Ψ/N gradients, contiguous (contiguous_gradients=True), "
                      f"made at the first bucket reduction (the backward's end when Ψ ≤ reduce_bucket_size) and "
                      f"held to the step ({src12})"))
            t.append(("fp32 gradient partition (at the step)", "gpu", alloc(state_n * 4),
                      f"single_grad_partition = flat partition .to(fp32) at the step ({src12})"))
        t.append(("reduce bucket", "gpu", alloc(s.reduce_bucket * hb),
                  f"ipg bucket: reduce_bucket_size = {s.reduce_bucket:,} elements in the model's dtype "
                  f"(_gradient_reduction_buffer_dtype; overlap_comm defaults to False below stage 3: one buffer), "
                  f"from the backward's start to its end ({src12})"))
    else:
        t.append(("gradient partitions", dev_o, state_n * hb,
                  f"grad_partitions_flat_buffer: Σ partition sizes ({src3})"))
        if not off_o:
            t.append(("fp32 gradient partition (at the step)", "gpu", alloc(state_n * 4),
                      "the flat gradient partition cast to fp32 for the step"))
        t.append(("reduce bucket", "gpu", alloc(s.reduce_bucket * hb),
                  f"ipg bucket: reduce_bucket_size = {s.reduce_bucket:,} elements ({src3})"))
        big = largest_module(arch)
        prefetch = min(s.prefetch_bucket, s.max_live, n)
        t.append(("gathered module + prefetch", "gpu", (big + prefetch) * hb,
                  f"the largest module gathered ({big:,} parameters) + stage3_prefetch_bucket_size = "
                  f"{s.prefetch_bucket:,} elements prefetched (capped by stage3_max_live_parameters) ({src3})"))
    t.append(("index buffers (replicated)", "gpu", buffer_bytes(arch), "module buffers stay on every rank"))
    STEP = "fp32 gradient partition (at the step)"
    PART = "gradient partition"
    # grads_in_partition is made at the first copy_grads_in_partition, the first bucket reduction: with all Ψ
    # gradients inside one bucket (reduce_bucket_size ≥ Ψ, as with the 5e8 default for any BERT), the backward's
    # end; before that, nothing (stage_1_and_2.py). A model larger than the bucket reduces earlier: the partition
    # is then counted from the backward's start, an over-count of at most the partition.
    late = s.stage in (1, 2) and not off_o and n <= s.reduce_bucket
    base = {name: b for name, dev, b, _ in t if dev == "gpu" and name != STEP and not (late and name == PART)}
    held = {name: b for name, dev, b, _ in t if dev == "gpu" and late and name == PART}
    rules = {name: rule for name, _, _, rule in t}

    def adjust(kind: str, k: int) -> dict[str, int]:
        done = k if kind in ("layer", "after") else (L if kind in ("embeddings", "end") else 0)
        if kind == "end":
            return {"-reduced": m.gradients, **held}
        # copied into the bucket (and, once it is reduced, into the partition): gone from autograd
        return {"-reduced": done * G}

    where, terms = _pick(_moments(m, L, adjust), base, m)
    # the step: the fp32 gradient partition is made for it, beside what is resident (a fused optimizer makes
    # nothing more); the activations are gone, and ZeRO-1's full gradients were freed by the reduction
    resident = {**{k: v for k, v in base.items() if k != "reduce bucket"}, **held}  # bucket: freed at the end
    step = {**resident, **{name: b for name, dev, b, _ in t if dev == "gpu" and name == STEP}}
    step["activations and backward temporaries"] = 0
    # before it, the gradient norm: the gradient partition cast to get_norm_dtype() (fp64) for
    # torch.linalg.vector_norm (stage_1_and_2.get_grad_norm_direct, stage3; runtime/zero/utils.py)
    NORM = "fp64 gradient partition (the gradient norm)"
    rules[NORM] = f"get_norm_dtype() is fp64: the gradient partition cast for its norm before the step ({src12})"
    if s.stage == 3:  # stage 3 takes the norm partition by partition: the largest one at a time
        norm_n = max((-(-tp.parameters // N) for c in arch.components for p in c.parts for tp in p.tensors
                      if tp.tied_to is None and tp.parameters > s.persistence), default=0)
    else:
        norm_n = state_n
    norm = {**resident, NORM: alloc(norm_n * 8), "activations and backward temporaries": 0}
    for at, cand in (("optimizer step", step), ("gradient norm, before the step", norm)):
        if not off_o and sum(cand.values()) > sum(terms.values()):
            where, terms = at, cand
    rules["activations and backward temporaries"] = (
        "memsim's replay at the local batch" + (" (the model in half precision, as DeepSpeed runs it)"
                                                if hb == 2 else "") + ": saved tensors still held, backward "
        "temporaries, gradients of the layer in progress (earlier ones are in the "
        f"{'bucket' if late else 'partition'})")
    out = [RankTerm(k, "gpu", v, rules[k]) for k, v in terms.items()]
    out += [RankTerm(name, "cpu", b, rule) for name, dev, b, rule in t if dev == "cpu"]
    ring = lambda b: b * (N - 1) // N  # noqa: E731
    comm = [Comm("reduce-scatter gradients", ring(n * hb), "(N−1)/N × 2Ψ (the gradients, bit16)" if hb == 2 else
                 "(N−1)/N × 4Ψ")]
    if s.stage == 3:
        comm.append(Comm("all-gather parameters (forward and backward)", 2 * ring(n * hb),
                         "2 × (N−1)/N × the parameters: gathered for the forward and again for the backward"))
    else:
        comm.append(Comm("all-gather updated parameters", ring(n * hb),
                         "(N−1)/N × the parameters, after the step, in allgather_bucket_size chunks"))
    return out, where, comm


def _ddp(arch: Any, cfg: Any, o: Options, s: Setup) -> tuple[list[RankTerm], str, list[Comm]]:
    m = training_peak(arch, cfg, o)
    steady = {"weights (replica)": m.weights, "optimizer states (replica)": m.optimizer,
              "gradient buckets": m.gradients}
    act = m.peak - m.weights - m.optimizer
    terms = [RankTerm("weights (replica)", "gpu", m.weights, "every parameter on every rank"),
             RankTerm("optimizer states (replica)", "gpu", m.optimizer, "the optimizer's rule on every parameter"),
             RankTerm("gradient buckets", "gpu", steady["gradient buckets"],
                      f"Reducer's flat bucket per bucket_cap_mb: a second copy of the gradients unless "
                      f"gradient_as_bucket_view=True ({TORCH_RELEASE}, DistributedDataParallel)"),
             RankTerm("activations, gradients and backward temporaries", "gpu", act,
                      "memsim's single-GPU step at the local batch, above weights and optimizer states")]
    N = s.world
    comm = [Comm("all-reduce gradients", 2 * (N - 1) * m.gradients // N, "2(N−1)/N × the gradients")]
    return terms, m.where, comm


def deepspeed_estimate(total: int, largest: int, s: Setup, factor: float = BUFFER_FACTOR,
                       zero_init: bool = True) -> tuple[int, int] | None:
    """What DeepSpeed's estimator returns, as (gpu, cpu) bytes: ``estimate_zero2_model_states_mem_needs``
    (stage_1_and_2.py) or ``estimate_zero3_model_states_mem_needs`` (stage3.py), DeepSpeed 0.19.8.

    The arithmetic is theirs, transcribed operation for operation, floats included (``int(18 * P / N)``,
    ``P * 18 * (1 / nodes) * 1.5``), so the result is theirs to the byte. ZeRO-1 has no estimator; the ZeRO-2
    function with offload_param has no case (None)."""
    gpn, nodes = s.gpus, s.nodes
    total_gpus = nodes * gpn
    if s.strategy != "zero" or s.stage == 1:
        return None
    if s.stage == 2:
        if s.offload_param:
            return None
        if s.offload_optimizer:
            gpu_mem = 2 * total
            cpu_mem = total * max(4 * total_gpus, 16) * factor
        else:
            gpu_mem = 2 * total + int(18 * total / total_gpus)
            cpu_mem = total * 4 * gpn * factor
        return int(gpu_mem), int(cpu_mem)
    cpu_offload, cpu_offload_params = s.offload_optimizer, s.offload_param
    if cpu_offload_params and not cpu_offload:
        return None  # the estimator's cpu_offload_params is only read under cpu_offload
    gpus_factor = 1 / nodes
    largest_layer_memory = 4 * largest
    if cpu_offload:
        if cpu_offload_params:
            gpu_mem = largest_layer_memory
            cpu_mem = (total * 18 * gpus_factor * factor if zero_init
                       else total * max(4 * gpn, 18 * gpus_factor) * factor)
        else:
            gpu_mem = largest_layer_memory + int(2 * total / total_gpus)
            cpu_mem = (total * 16 * gpus_factor * factor if zero_init
                       else total * max(4 * gpn, 16 * gpus_factor) * factor)
    else:
        gpu_mem = largest_layer_memory + int(18 * total / total_gpus)
        cpu_mem = largest * 4 * gpn * factor if zero_init else total * 4 * gpn * factor
    return int(gpu_mem), int(cpu_mem)


DS_ASSUMPTIONS = (
    "DeepSpeed's estimator (model states only, no activations): 2 B bit16 parameters, 2 B bit16 + 4 B fp32 "
    "gradients, 4 B fp32 master and 8 B Adam states per parameter (18 B sharded); ZeRO-3 adds 4 B × the "
    "largest module (its bit16 parameters and gradients, gathered); CPU figures are per node with "
    "additional_buffer_factor = 1.5; ZeRO-3 with zero_init=True; Ψ counted once per unique parameter and "
    "the largest module as stage3.model_to_params counts them"
)


NO_ESTIMATE = ("DeepSpeed has no estimator for this setting: none for ZeRO-1, and its ZeRO-3 estimator reads "
               "cpu_offload_params only with cpu_offload (give --offload both)")


def plan(arch: Any, cfg: Any, o: Options, s: Setup, budget: int | None = None) -> DistReport:
    """Per-rank memory, communication, DeepSpeed's estimate and the paper's figures for one setup."""
    from .memsim import zero_terms

    check(s)
    if o.mode != "train":
        raise UsageError(f"{arg('zero')} and {arg('fsdp')} shard training state (parameters, gradients, optimizer); "
                         f"use {arg('mode', 'train', repr('train'))}", param="zero" if s.strategy == "zero" else "fsdp")
    if s.rank >= s.world:
        raise UsageError(f"rank {s.rank} is outside a world of {s.world}", param="gpus")
    terms, where, comm = _run(arch, cfg, o, s)
    ds = paper = None
    if s.strategy == "zero":
        est = deepspeed_estimate(arch.total_parameters, largest_module(arch), s)
        ds = (est[0], est[1], DS_ASSUMPTIONS) if est is not None else None
        paper = zero_terms(arch, o, s.stage, s.world)
    fit: tuple[FitRow, ...] = ()
    smallest = None
    if budget is not None:
        fit, smallest = _fit(arch, cfg, o, s, budget)
    return DistReport(s, o.batch, tuple(terms), where, tuple(comm), ds, paper or (), fit, budget, smallest)


def _run(arch: Any, cfg: Any, o: Options, s: Setup) -> tuple[list[RankTerm], str, list[Comm]]:
    return {"ddp": _ddp, "zero": _zero, "fsdp": _fsdp}[s.strategy](arch, cfg, o, s)


def gpu_peak(arch: Any, cfg: Any, o: Options, s: Setup) -> int:
    return sum(t.bytes for t in _run(arch, cfg, o, s)[0] if t.device == "gpu")


SETTINGS = (
    ("DDP", dict(strategy="ddp")),
    ("ZeRO-1", dict(strategy="zero", stage=1)),
    ("ZeRO-2", dict(strategy="zero", stage=2)),
    ("FSDP2 reshard_after_forward=False", dict(strategy="fsdp", reshard=False)),
    ("FSDP2 reshard_after_forward=True", dict(strategy="fsdp", reshard=True)),
    ("ZeRO-3", dict(strategy="zero", stage=3)),
    ("ZeRO-2 + offload optimizer", dict(strategy="zero", stage=2, offload="optimizer")),
    ("ZeRO-3 + offload optimizer", dict(strategy="zero", stage=3, offload="optimizer")),
    ("ZeRO-3 + offload both", dict(strategy="zero", stage=3, offload="both")),
)


def _fit(arch: Any, cfg: Any, o: Options, s: Setup, budget: int) -> tuple[tuple[FitRow, ...], str | None]:
    """For every setting on the same ranks: the per-rank peak at the given local batch, and the largest local
    batch that fits the budget (peaks grow with the batch: a doubling then bisection search)."""
    from .architecture import check_batch

    rows = []
    smallest = None
    for label, kw in SETTINGS:
        st = replace(s, **{"offload": None, "reshard": True, "stage": 0, **kw})
        at = _run(arch, cfg, o, st)[0]
        gpu = sum(t.bytes for t in at if t.device == "gpu")
        cpu = sum(t.bytes for t in at if t.device == "cpu")

        def fits(b: int, st: Setup = st) -> bool:
            try:
                check_batch(cfg, b, o.seq)
            except Exception:  # past what the model can take: not a fit
                return False
            return gpu_peak(arch, cfg, replace(o, batch=b), st) <= budget

        best = 0
        if fits(1):
            lo, hi = 1, 2
            while hi <= (1 << 40) and fits(hi):
                lo, hi = hi, hi * 2
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if fits(mid) else (lo, mid)
            best = lo
        ok = gpu <= budget
        if ok and smallest is None:
            smallest = label
        rows.append(FitRow(label, gpu, cpu, best, ok))
    return tuple(rows), smallest
