"""Matmul FLOPs of a forward pass, by component, with the convention of ``torch.utils.flop_counter``.

Each matmul ``[m, k] × [k, n]`` costs ``2·m·n·k``. Counted: every Linear (from its weight's shape, over the
tokens it sees: all ``B·S`` of them, or only the ``B`` [CLS] rows for the pooler and [CLS] classifiers), and
attention's two batched matmuls, ``Q·Kᵀ`` and ``probs·V``, each ``2·B·A·S·S·(H/A)``. Bias adds, softmax,
LayerNorm, activations and embedding lookups count 0, as FlopCounterMode counts them. The backward of these
matmuls costs twice the forward, so a training step is 3× the forward.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from .architecture import check_batch
from .architecture import rows as flat_rows
from .config import MAX_SIZE, ModelConfig, digits
from .errors import UsageError, arg
from .formula import short
from .model import Architecture, ModelReport, identify
from .program import Attention, Linear, Loss, Matmul, size  # flopcount is imported only to count a program
from .records import frozen

# Dense peak throughput in TFLOP/s (no sparsity), from NVIDIA's datasheets. fp32 is the non-tensor-core rate
# PyTorch gets with TF32 off (its default for matmuls).
# memory_gib: what torch.cuda.get_device_properties().total_memory reports for the card, in GiB to two places,
# as PyTorch's own out-of-memory message prints it ("GPU 0 has a total capacity of 79.15 GiB"); memory_bytes,
# where it was measured, exactly (H100: ../shared/measured/h100_bert_base.jsonl's meta, total_bytes). The others
# are approximate (drivers and ECC move them by a few hundredths; A10G and RTX3090 are the commonly quoted
# figures, unchecked): docs/memory.md. The CUDA context takes several hundred MiB of it. A10G: the A10
# datasheet's rates (NVIDIA publishes none for the A10G).
GPUS: dict[str, dict[str, float | None]] = {
    "A100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0, "memory_gib": 79.15},
    "A100-40GB": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0, "memory_gib": 39.39},
    "H100": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4, "memory_gib": 79.18,
             "memory_bytes": 85017493504},
    "H200": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4, "memory_gib": 139.8},
    "L4": {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0, "fp16": 121.0, "memory_gib": 22.05},
    "T4": {"fp32": 8.1, "tf32": None, "bf16": None, "fp16": 65.0, "memory_gib": 14.75},
    "RTX4090": {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2, "fp16": 165.2, "memory_gib": 23.65},
    "A10G": {"fp32": 31.2, "tf32": 62.5, "bf16": 125.0, "fp16": 125.0, "memory_gib": 22.19},
    "RTX3090": {"fp32": 35.6, "tf32": 35.6, "bf16": 71.0, "fp16": 71.0, "memory_gib": 23.69},
}
GPU_ALIASES = {"4090": "RTX4090", "3090": "RTX3090", "A10080GB": "A100", "A10040G": "A100-40GB", "H10080GB": "H100",
               "H100SXM": "H100", "H100SXM5": "H100", "H200SXM": "H200"}  # keys as _key() writes them
PRECISION_PEAK = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "amp-bf16": "bf16", "amp-fp16": "fp16"}
DEFAULT_MFU = 0.40


def _rate(peak_tflops: float, mfu: float) -> float:
    """FLOP/s: peak × 1e12 × MFU, the order every figure has been computed in (the last bit of a float depends
    on it); where that overflows (1e308 TFLOP/s at MFU 1e-308), the MFU first."""
    rate = peak_tflops * 1e12 * mfu
    return peak_tflops * mfu * 1e12 if math.isinf(rate) else rate


def gpu_spec(name: str, other: str | None = None) -> tuple[str, dict[str, float | None]]:
    """A known GPU by name: case, spaces, hyphens and underscores are ignored (``a100 80gb``, ``H100-SXM``).
    ``other`` says what covers any other card, after "or" (default: give ``peak_tflops``, marked with
    :func:`~bertcalc.errors.arg`)."""
    def _key(text: str) -> str:
        return "".join(ch for ch in text.upper() if ch not in " -_")

    wanted = _key(name)
    wanted = _key(GPU_ALIASES.get(wanted, wanted))
    for k, v in GPUS.items():
        if _key(k) == wanted:
            return k, v
    other = other or f"give {arg('peak_tflops')} for any other"
    raise UsageError(f"unknown GPU {name!r}; known: {', '.join(GPUS)} (or {other})", param="gpu")


@frozen
class FlopRow:
    name: str  # "encoder layer: query"
    component: str
    kind: str  # "linear" | "attention"
    formula: str  # "2 × B·S × H × H"
    flops: int  # per application
    repeat: int  # applications in the forward
    backward: bool = True  # on the loss's path: its backward costs twice its forward
    grads: int | None = None  # with frozen parts: the backward matmuls it has (0, 1 or 2), each its forward's

    @property
    def total(self) -> int:
        return self.flops * self.repeat


@frozen
class FlopsReport(ModelReport):
    kind: ClassVar[str] = "flops"

    batch: int
    seq: int
    rows: tuple[FlopRow, ...]
    parameters: int
    non_embedding_parameters: int
    layers: int
    hidden: int
    precision: str = "bf16"
    shared_layers: bool = False  # ALBERT: parameters applied more than once
    gpu: str | None = None
    peak_tflops: float | None = None
    peak_given: bool = False  # True: the peak came from --peak-tflops, not from the GPU table
    mfu: float = DEFAULT_MFU
    choices: int | None = None  # a multiple-choice input [B, C, S]: the model runs over B·C rows

    @property
    def forward_flops(self) -> int:
        return sum(r.total for r in self.rows)

    @property
    def training_flops(self) -> int:
        """Forward plus backward: twice the forward of each matmul the loss's gradient reaches (3× the forward
        when it reaches all of them)."""
        return sum(r.total * (1 + (r.grads if r.grads is not None else 2 if r.backward else 0)) for r in self.rows)

    @property
    def training_rule(self) -> str:
        return "3 × forward" if self.training_flops == 3 * self.forward_flops else \
            "forward + 2 × the matmuls on the loss's path"

    @property
    def tokens(self) -> int:
        return self.batch * (self.choices or 1) * self.seq

    def components(self) -> list[tuple[str, int]]:
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.component] = out.get(r.component, 0) + r.total
        return list(out.items())

    def approximations(self) -> dict[str, float]:
        """Per-token training FLOPs: exact, and the approximations papers use."""
        n, ne, L, H, S = self.parameters, self.non_embedding_parameters, self.layers, self.hidden, self.seq
        return {
            "exact": self.training_flops / self.tokens,
            "6N": 6 * n,
            "6N (non-embedding N)": 6 * ne,
            "6N + 12·L·H·S (PaLM)": 6 * n + 12 * L * H * S,
            "6N + 12·L·H·S (non-embedding N)": 6 * ne + 12 * L * H * S,
        }

    def seconds(self) -> dict[str, float] | None:
        if self.peak_tflops is None:
            return None
        rate = _rate(self.peak_tflops, self.mfu)
        return {"forward": self.forward_flops / rate, "training_step": self.training_flops / rate}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.identity(),
            "batch": self.batch,
            "seq": self.seq,
            **({"choices": self.choices} if self.choices is not None else {}),
            "forward_flops": self.forward_flops,
            "training_flops": self.training_flops,
            "flops_per_token": {"forward": self.forward_flops / self.tokens,
                                "training": self.training_flops / self.tokens},
            "components": [{"name": n, "forward_flops": f} for n, f in self.components()],
            "matmuls": [{"name": r.name, "component": r.component, "kind": r.kind, "formula": r.formula,
                         "flops": r.flops, "repeat": r.repeat, "total": r.total}
                        | ({} if r.grads is None else {"backward_matmuls": r.grads}) for r in self.rows],
            "approximations_per_token": self.approximations(),
        }
        secs = self.seconds()
        if secs is not None:
            out["gpu"] = {"name": self.gpu, "peak_tflops": self.peak_tflops,
                          "peak_source": "--peak-tflops" if self.peak_given else "table",
                          "precision": self.precision, "mfu": self.mfu, "seconds": secs}
        return out


DEFAULT_PRECISION = "bf16"


def best_precision(spec: dict[str, float | None]) -> str:
    """The precision a card runs matmuls fastest in, of those it has tensor cores for: bf16, else fp16."""
    return next((p for p in ("bf16", "fp16", "fp32") if spec.get(p) is not None), "fp32")


def _on_loss_path(prog: Any) -> set:
    """The values the loss's gradient reaches: walked back from each loss through the ops' inputs, the layer
    template's output standing for the last hidden state and its input for what the embeddings hand it. A
    value no loss depends on (DeBERTa's query_proj of the relative table when only c2p reads keys) has no
    backward."""
    ops = prog.all_ops()
    made = {op.out: op for op in ops}
    links = {}
    if prog.encoder is not None and prog.encoder.times:
        links = {prog.hidden: prog.encoder.out, prog.encoder.inp: prog.embedded}
    todo = [v for op in ops if isinstance(op, Loss) for v in op.inputs]
    seen: set = set()
    while todo:
        v = todo.pop()
        if v in seen:
            continue
        seen.add(v)
        if v in links:
            todo.append(links[v])
        if v.view_of is not None:
            todo.append(v.view_of)
        if v in made:
            todo.extend(made[v].inputs)
    return seen


def count(arch: Architecture, cfg: ModelConfig, batch: int, seq: int, *, label: str = "",
          gpu: str | None = None, peak_tflops: float | None = None, precision: str | None = DEFAULT_PRECISION,
          mfu: float = DEFAULT_MFU, choices: int | None = None) -> FlopsReport:
    """Forward matmul FLOPs from the program: each Linear's weight × the rows it sees (all B·S tokens, or the
    B [CLS] rows), and each attention's two batched matmuls. By component; within one, the Linears in
    state-dict order, then attention.

    ``precision=None`` means the default: bf16, or the GPU's best precision when it has no bf16 (T4: fp16).
    A multiple-choice input ``[B, C, S]`` runs over ``B × choices`` rows."""

    d = cfg.dims
    if isinstance(batch, int) and batch > MAX_SIZE:
        raise UsageError(f"a batch size of {digits(batch)} digits is beyond int64; give a batch of at most "
                         "2^63 - 1", param="batch")
    check_batch(cfg, batch, seq)
    shown_batch = batch
    batch, choices = flat_rows(arch, batch, choices)
    if not 0 < mfu <= 1:
        raise UsageError(f"MFU must be in (0, 1], got {mfu}", param="mfu")
    if peak_tflops is not None and not (0 < peak_tflops < float("inf")):
        raise UsageError(f"peak TFLOP/s must be a positive number, got {peak_tflops}", param="peak_tflops")
    if precision is None:
        precision = DEFAULT_PRECISION
        if gpu is not None and peak_tflops is None:
            spec = gpu_spec(gpu)[1]
            if spec.get(precision) is None:
                precision = best_precision(spec)
    prog = arch.program
    ops = prog.all_ops()
    trained = _on_loss_path(prog)
    linears: dict[int, list[Linear]] = {}  # a part may run on several inputs (DeBERTa's query_proj on rel too)
    for op in ops:
        if isinstance(op, Linear):
            linears.setdefault(id(op.part), []).append(op)
    made = {op.out: op for op in ops}

    def projection(v):  # the Linear a head-split query comes from, through views and one-input ops
        op = made.get(v)
        while op is not None and not isinstance(op, Linear):
            op = made.get(op.inputs[0]) if op.inputs else None
        return op

    attention: dict[int, list] = {}  # id(part of the Q projection) -> the attention ops it feeds
    for op in ops:
        if isinstance(op, Attention) and (src := projection(op.q)) is not None:
            attention.setdefault(id(src.part), []).append(op)
    matmuls = [op for op in (prog.encoder.ops if prog.encoder is not None else ()) if isinstance(op, Matmul)]
    rows: list[FlopRow] = []
    if arch.adapted is not None:
        rows = _adapted_rows(arch, prog, batch, seq, trained, linears, attention, matmuls)
    for comp in arch.components if arch.adapted is None else ():
        rep = comp.times_applied
        for p in comp.parts:
            for n, op in enumerate(linears.get(id(p), ())):
                out_d, in_d = p.tensors[0].dims[:2]
                lead = op.x.dims[:-1]
                tokens = 1
                for dim in lead:
                    tokens *= size(dim, batch, seq)
                scope = "·".join(dim.symbol or str(dim.size) for dim in lead)
                formula = f"2 × {scope} × {short(in_d.symbol) or in_d.size} × {short(out_d.symbol) or out_d.size}"
                name = f"{comp.name}: {p.label}" + (f" ({op.x.name})" if n else "")
                rows.append(FlopRow(name, comp.name, "linear", formula, 2 * tokens * in_d.size * out_d.size, rep,
                                    op.out in trained))
        mine = [a for p in comp.parts for a in attention.get(id(p), ())]
        if mine:
            for what in ("Q·Kᵀ", "probs·V"):
                op = mine[0]
                one = 2 * batch * op.heads.size * seq * seq * op.head_dim.size
                rows.append(FlopRow(f"{comp.name}: attention {what}", comp.name, "attention",
                                    "2 × B·A × S × S × H/A", one, rep * len(mine)))
        if prog.encoder is not None and comp.name == prog.encoder.component:
            for op in matmuls:  # 2 × (every output element) × the contracted width
                k = op.a.dims[-1]
                out_n = op.out.elements(batch, seq)
                formula = f"2 × {'·'.join(d.symbol or str(d.size) for d in op.out.dims)} × {k.symbol or k.size}"
                rows.append(FlopRow(f"{comp.name}: {op.out.description or op.out.name}", comp.name, "attention",
                                    formula, 2 * out_n * size(k, batch, seq), rep, op.out in trained))
    if gpu is not None:
        # with a peak given, the GPU only labels the run: an unknown name is still refused (likely a typo)
        given = f"leave {arg('gpu')} out: {arg('peak_tflops')} sets the rate alone" if peak_tflops is not None else None
        gname, spec = gpu_spec(gpu, other=given)
        key = PRECISION_PEAK[precision]
        peak = spec.get(key)
        if peak is None and peak_tflops is None:
            best = best_precision(spec)
            raise UsageError(f"{gname} has no {key} tensor cores; use {arg('precision', best, repr(best))} (its "
                             f"best), or give {arg('peak_tflops')}", param="precision")
        gpu = gname
    peak_given = peak_tflops is not None
    if gpu is not None and peak_tflops is None:
        peak_tflops = peak
    if peak_tflops is not None:
        rate = _rate(peak_tflops, mfu)
        three = 3 * sum(r.total for r in rows)  # the longest time shown: a training step, at most 3× the forward
        if not math.isfinite(rate):
            raise UsageError(f"peak TFLOP/s {peak_tflops:g} × MFU {mfu:g} is not a finite rate; give the "
                             "accelerator's peak, e.g. 312 for an A100", param="peak_tflops")
        if not (rate > 0 and math.isfinite(three / rate)):
            # the peak came from the GPU table unless given: then the MFU is what made the rate vanish
            cause, fix = (("peak_tflops", "give the accelerator's peak, e.g. 312 for an A100") if peak_given else
                          ("mfu", "give the fraction of the peak it reaches, e.g. 0.4"))
            raise UsageError(f"peak TFLOP/s {peak_tflops:g} × MFU {mfu:g} is too small a rate for {three:.3g} FLOPs "
                             f"(the time would be infinite); {fix}", param=cause)
    emb = sum(p.parameters for c in arch.components if c.name in ("embeddings",) for p in c.parts)
    return FlopsReport(
        **identify(arch, label, cfg.fields()), batch=shown_batch, seq=seq, rows=tuple(rows),
        parameters=arch.total_parameters, non_embedding_parameters=arch.total_parameters - emb, layers=d.L,
        hidden=d.H, precision=precision,
        shared_layers=any(c.times_applied != c.repeat for c in arch.components),
        gpu=gpu, peak_tflops=peak_tflops, peak_given=peak_given, mfu=mfu, choices=choices,
    )


def _adapted_rows(arch: Architecture, prog: Any, batch: int, seq: int, trained: set, linears: dict, attention: dict,
                  matmuls: list) -> list[FlopRow]:
    """The rows of a model with frozen parts or a LoRA adapter (``arch.adapted``): each matmul's backward has the
    gradient of its input only where that input requires one (something trainable lies below it) and the
    gradient of its weight only where the weight trains, as autograd computes them; each adapted Linear adds
    lora_A's and lora_B's matmuls. ``requires_grad`` is followed through the program: embeddings, then the layer
    template run by run (a run's first layer apart where its input's state differs from the rest's), then the
    head."""
    from .formula import short
    from .program import Linear, Lookup, Norm, Param, PositionBias, size

    how = arch.adapted
    if how.spec.get("use_dora"):
        raise UsageError("DoRA's FLOPs (its weight norm) are not modelled; count and shapes take it", param="lora")
    enc = prog.encoder
    enc_parts = {id(getattr(op, "part", None) or getattr(op, "table", None)) for op in (enc.ops if enc else ())}

    def param_of(op: Any) -> Any:
        return getattr(op, "part", None) if isinstance(op, (Linear, Norm, Param)) else \
            getattr(op, "table", None) if isinstance(op, (Lookup, PositionBias)) else None

    runs: list[tuple[Any, dict[int, bool], dict[int, int]]] = []  # (component, trains, ranks) in layer order
    fixed_train: dict[int, bool] = {}
    fixed_rank: dict[int, int] = {}
    for comp in arch.components:
        trains: dict[int, bool] = {}
        ranks: dict[int, int] = {}
        for p in comp.parts:
            o = how.origin.get(id(p), p)
            trains[id(o)] = trains.get(id(o), False) or p.tensors[0].trainable
            if id(p) in how.ranks:
                ranks[id(o)] = how.ranks[id(p)]
        if enc is not None and trains and set(trains) <= enc_parts:
            runs.append((comp, trains, ranks))
        else:
            fixed_train |= trains
            fixed_rank |= ranks

    def grad_pass(ops: tuple, rg: dict, trains: dict[int, bool], ranks: dict[int, int]) -> dict:
        rg = dict(rg)
        for op in ops:
            part = param_of(op)
            own = part is not None and (trains.get(id(part), False) or id(part) in ranks)
            rg[op.out] = own or any(rg.get(v, False) or (v.view_of is not None and rg.get(v.view_of, False))
                                    for v in op.inputs) or \
                (getattr(op, "bias", None) is not None and rg.get(op.bias, False))
        return rg

    rg = grad_pass(prog.embeddings, {}, fixed_train, fixed_rank)
    layer_states: list[tuple[Any, int, dict, dict[int, bool], dict[int, int]]] = []  # (comp, layers, rg, ...)
    cur = rg.get(prog.embedded, False)
    if enc is not None and enc.times:
        shared = {v: rg[v] for op in enc.ops  # what the template reads from before it (an attention bias too)
                  for v in (*op.inputs, getattr(op, "bias", None)) if v is not None and v in rg}
        for comp, trains, ranks in runs:
            n = comp.times_applied
            first = grad_pass(enc.ops, {**shared, enc.inp: cur}, trains, ranks)
            out = first.get(enc.out, cur)
            if n > 1 and out != cur:
                layer_states.append((comp, 1, first, trains, ranks))
                rest = grad_pass(enc.ops, {**shared, enc.inp: out}, trains, ranks)
                layer_states.append((comp, n - 1, rest, trains, ranks))
                cur = rest.get(enc.out, out)
            else:
                layer_states.append((comp, n, first, trains, ranks))
                cur = out
        rg[prog.hidden] = cur
    rg = grad_pass((*prog.tail, *prog.head), rg, fixed_train, fixed_rank)

    def needs(v: Any, state: dict) -> int:
        return int(bool(state.get(v, False) or (v.view_of is not None and state.get(v.view_of, False))))

    rows: list[FlopRow] = []

    def linear_rows(label: str, comp_name: str, op: Any, rep: int, state: dict, trains: dict, ranks: dict,
                    n: int) -> None:
        p = op.part
        out_d, in_d = p.tensors[0].dims[:2]
        lead = op.x.dims[:-1]
        tokens = math.prod(size(dim, batch, seq) for dim in lead)
        scope = "·".join(dim.symbol or str(dim.size) for dim in lead)
        formula = f"2 × {scope} × {short(in_d.symbol) or in_d.size} × {short(out_d.symbol) or out_d.size}"
        name = f"{comp_name}: {label}" + (f" ({op.x.name})" if n else "")
        on = op.out in trained
        x_grad = needs(op.x, state)
        rows.append(FlopRow(name, comp_name, "linear", formula, 2 * tokens * in_d.size * out_d.size, rep, on,
                            (x_grad + int(trains.get(id(p), False))) if on else 0))
        r = ranks.get(id(p))
        if r is not None:
            rows.append(FlopRow(f"{name} lora_A", comp_name, "linear", f"2 × {scope} × {in_d.size} × {r}",
                                2 * tokens * in_d.size * r, rep, on, (x_grad + 1) if on else 0))
            rows.append(FlopRow(f"{name} lora_B", comp_name, "linear", f"2 × {scope} × {r} × {out_d.size}",
                                2 * tokens * r * out_d.size, rep, on, 2 if on else 0))

    def attention_rows(comp_name: str, ops: list, rep: int, state: dict) -> None:
        by_grads: dict[tuple[int, int], int] = {}  # each attention by what its backward computes (ALBERT's
        for op in ops:  # inner layers differ in the first application)
            qk = needs(op.q, state) + needs(op.k, state)
            probs = int(qk > 0 or (op.bias is not None and needs(op.bias, state) > 0))
            key = (qk, probs + needs(op.v, state))
            by_grads[key] = by_grads.get(key, 0) + 1
        op = ops[0]
        one = 2 * batch * op.heads.size * seq * seq * op.head_dim.size
        for (qk, pv), count in by_grads.items():
            tag = "" if len(by_grads) == 1 else f" ×{count}"
            for what, g in (("Q·Kᵀ", qk), ("probs·V", pv)):
                rows.append(FlopRow(f"{comp_name}: attention {what}{tag}", comp_name, "attention",
                                    "2 × B·A × S × S × H/A", one, rep * count, True, g))

    def component_rows(comp: Any, rep: int, state: dict, trains: dict, ranks: dict, suffix: str = "") -> None:
        seen: set[int] = set()
        name = comp.name + suffix
        for p in comp.parts:
            o = how.origin.get(id(p), p)
            if id(o) in seen:
                continue
            seen.add(id(o))
            for n, op in enumerate(linears.get(id(o), ())):
                linear_rows(o.label, name, op, rep, state, trains, ranks, n)
        mine = [a for p in comp.parts for a in attention.get(id(how.origin.get(id(p), p)), ())]
        if mine:
            attention_rows(name, list(dict.fromkeys(mine)), rep, state)

    encoder_done: set[int] = set()
    for comp in arch.components:
        states = [s for s in layer_states if s[0] is comp]
        if not states:
            component_rows(comp, comp.times_applied, rg, fixed_train, fixed_rank)
            continue
        for k, (c, n, state, trains, ranks) in enumerate(states):
            suffix = " (first layer)" if len(states) > 1 and k == 0 else " (the others)" if len(states) > 1 else ""
            component_rows(c, n, state, trains, ranks, suffix)
            for op in matmuls:
                kdim = op.a.dims[-1]
                out_n = op.out.elements(batch, seq)
                on = op.out in trained
                formula = f"2 × {'·'.join(d.symbol or str(d.size) for d in op.out.dims)} × {kdim.symbol or kdim.size}"
                rows.append(FlopRow(f"{c.name + suffix}: {op.out.description or op.out.name}", c.name + suffix,
                                    "attention", formula, 2 * out_n * size(kdim, batch, seq), n, on,
                                    (needs(op.a, state) + needs(op.b, state)) if on else 0))
        encoder_done.add(id(comp))
    return rows
