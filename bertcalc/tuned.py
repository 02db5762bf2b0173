"""Training memory with frozen parameters and LoRA adapters: autograd's rules over the forward program.

An adapted :class:`~bertcalc.model.Architecture` (:mod:`bertcalc.adapters`: PEFT's tensors and ``trainable``
flags) keeps the family's forward program. Here that program is re-read with the flags:

- each op's parts are the adapted ones (a ``modules_to_save`` module runs its trained copy);
- a Linear with a LoRA adapter becomes what ``peft.tuners.lora.Linear.forward`` runs:
  ``base(x) + lora_B(lora_A(dropout(x))) * scaling`` (the dropout only for ``lora_dropout`` > 0);
- a value *requires grad* when an input of the op that makes it does, or the op has a trainable parameter;
  an op whose output does not builds no graph and saves nothing;
- the saving rules are autograd's conditional ones: ``addmm``/``mm`` keep the input only when the weight
  trains; ``bmm`` keeps each operand only when the other requires grad; LayerNorm, softmax, dropout and
  activations keep what they keep whenever their output requires grad (for the input's gradient);
- the backward (:class:`bertcalc.memsim.Backward` with ``needs``) computes no gradient for a value that does
  not require grad, and a frozen parameter gets none.

The encoder is replayed run by run (``adapters`` splits the layers where a freeze or an adapter changes): in
each run the layers are equal but the first may be fed an input that requires no grad (frozen layers or
embeddings below), so a run is at most two blocks, and the replay is O(runs), whatever the number of layers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .config import ModelConfig
from .errors import UsageError, arg
from .memsim import (
    Backward,
    Ctx,
    DTypes,
    Key,
    Options,
    Sim,
    TrainingPeak,
    _forward_top,
    _register,
    _saved_of,
    alloc,
    dtypes,
    no_grad_extra,
    optimizer_bytes,
    owners_of,
    saved_bytes,
    sdpa,
    weight_casts,
    weights_bytes,
)
from .model import Architecture, Dim, Part
from .program import (
    Add,
    Dropout,
    Input,
    Linear,
    Lookup,
    Make,
    Mask,
    Matmul,
    Norm,
    Op,
    Param,
    PositionBias,
    Program,
    Rope,
    Rotary,
    Scalar,
    Value,
)
from .program import Attention as AttentionOp

LORA_DROPOUT = ".lora_dropout"  # the name of the value LoRA's dropout makes
HELD = ".held"  # the attention probabilities Python holds where nothing saves them


def _op_part(op: Op) -> Part | None:
    if isinstance(op, (Linear, Norm, Param)):
        return op.part
    if isinstance(op, (Lookup, PositionBias)):
        return op.table
    return None


def _with_part(op: Op, part: Part) -> Op:
    if isinstance(op, (Lookup, PositionBias)):
        return dataclasses.replace(op, table=part)
    return dataclasses.replace(op, part=part)


def _trains(part: Part) -> bool:
    """Whether any of the part's tensors requires grad (a tied one has its source's flag)."""
    return any(t.trainable for t in part.tensors)


class _Parts:
    """The adapted parts by module path: one map outside the encoder, one per layer run."""

    def __init__(self, arch: Architecture, encoder: str | None) -> None:
        self.outside: dict[str, Part] = {}
        self.runs: list[tuple[Any, dict[str, Part]]] = []  # (component, module -> part), by first layer
        for c in arch.components:
            is_run = encoder is not None and (c.name == encoder or c.name.startswith(encoder + " "))
            target = {} if is_run else self.outside
            for p in c.parts:
                if p.module in target and not any(".modules_to_save." in t.name for t in p.tensors):
                    continue  # a modules_to_save module: the forward runs the trained copy
                target[p.module] = p
            if is_run:
                self.runs.append((c, target))
        self.runs.sort(key=lambda r: r[0].start)


def _adapter_tensors(part: Part) -> tuple[list, list, list]:
    base = [t for t in part.tensors if t.role != "lora"]
    a = [t for t in part.tensors if t.role == "lora" and ".lora_A." in t.name]
    b = [t for t in part.tensors if t.role == "lora" and ".lora_B." in t.name]
    return base, a, b


def _rewrite(ops: tuple[Op, ...], parts: dict[str, Part], dropout: float,
             memo: dict[Value, Value]) -> tuple[Op, ...]:
    """The ops with the adapted parts, each LoRA-wrapped Linear expanded into PEFT's forward (new values each
    call, so a template rewritten for two runs keeps them apart). ``memo`` gets each wrapped Linear's output ->
    its input."""
    out: list[Op] = []
    for op in ops:
        part = _op_part(op)
        if isinstance(op, AttentionOp) and op.probs.until is not None:
            # the probabilities HF returns as attn_weights, which Python holds (``probs.until``) even where
            # nothing saves them (a frozen attention): sized in training_peak, 0 where the attention saves them
            out.append(Make(Value(op.probs.name + HELD, op.scores.dims, listed=False, until=op.probs.until),
                            nbytes=0))
        if part is None:
            out.append(op)
            continue
        new = parts.get(part.module)
        if new is None:
            raise UsageError(f"memory with an adapter: the forward's module {part.module!r} is not in the adapted "
                             "tensor list (a bertcalc bug; please report it)", param="lora")
        if not any(t.role == "lora" for t in new.tensors):
            out.append(_with_part(op, new))
            continue
        if any(".lora_magnitude_vector." in t.name for t in new.tensors):
            raise UsageError("memory with use_dora is not modelled (DoRA's weight-norm tensors are not verified "
                             "against a measurement); count and shapes take it, memory does not", param="lora")
        if not isinstance(op, Linear):
            raise UsageError(f"memory with a LoRA adapter on {new.module!r} (an Embedding) is not modelled; "
                             "count and shapes take it, memory does not", param="lora")
        base, a, b = _adapter_tensors(new)
        if any(t.tied_to for t in base):
            raise UsageError(f"memory with a LoRA adapter on the tied {new.module!r} is not modelled", param="lora")
        r = a[0].dims[0]
        pa = dataclasses.replace(new, label=new.label + " lora_A", tensors=tuple(a), role="lora")
        pb = dataclasses.replace(new, label=new.label + " lora_B", tensors=tuple(b), role="lora")
        pbase = dataclasses.replace(new, tensors=tuple(base))
        x, y = op.x, op.out
        memo[y] = x  # the wrapper's input, held by Python until the wrapper returns y
        y0 = Value(y.name + ".base_layer", y.dims, listed=False)
        xa: Value = x
        if dropout > 0:
            xa = Value(x.name + LORA_DROPOUT, x.dims, listed=False)
            out.append(Dropout(xa, x=x, p=dropout))
        ya = Value(y.name + ".lora_A", (*x.dims[:-1], Dim(r.size, r.symbol)), listed=False)
        yb = Value(y.name + ".lora_B", y.dims, listed=False)
        ys = Value(y.name + ".lora_scaled", y.dims, listed=False)
        out.insert(len(out) - (1 if dropout > 0 else 0), Linear(y0, x=x, part=pbase))
        out += [Linear(ya, x=xa, part=pa), Linear(yb, x=ya, part=pb), Scalar(ys, x=yb), Add(y, xs=(y0, ys))]
    return tuple(out)


def _needs(ops: tuple[Op, ...], start: set[Value]) -> set[Value]:
    """The values that require grad, forward: an input that does, or a trainable parameter of the op."""
    need = set(start)
    for op in ops:
        if isinstance(op, (Input, Make, Mask, Rope)):
            continue
        part = _op_part(op)
        ins = (*op.inputs, *((op.bias,) if isinstance(op, AttentionOp) and op.bias is not None else ()))
        if any(v in need or v.storage in need for v in ins) or (part is not None and _trains(part)):
            need.add(op.out)
            need.add(op.out.storage)
    return need


def saved_of(op: Op, x: Ctx, dt: dict[Value, int], need: set[Value]) -> list[tuple[Key, int]]:
    """What autograd keeps from ``op`` when some values require no grad (see the module docstring)."""
    if op.out not in need:
        return []
    full = _saved_of(op, x, dt)
    if isinstance(op, Linear):
        return full if op.part.tensors[0].trainable else [kv for kv in full if kv[0] == (op, "w")]
    if isinstance(op, Matmul):
        keep = {"a": op.b in need, "b": op.a in need}
        return [kn for kn, tag in zip(full, ("a", "b"), strict=True) if keep[tag]]
    if isinstance(op, AttentionOp) and not sdpa(op, x):
        q, k, v = op.q in need, op.k in need, op.v in need
        tags = {"qc": k, "kc": q, "probs": q or k or op.p == 0, "mask": q or k, "probs_bf16": v, "dropped": v,
                "vc": q or k}
        keyed = {id(op.q.storage): k, id(op.k.storage): q, id(op.v.storage): q or k}
        out = []
        for key, n in full:
            tag = key[1] if isinstance(key, tuple) and key[0] is op else None
            if (tags[tag] if tag is not None else keyed.get(id(key), True)):
                out.append((key, n))
        return out
    if isinstance(op, PositionBias):
        return full if _trains(op.table) else []
    return full


def saved_set(ops: tuple[Op, ...], x: Ctx, dt: dict[Value, int], need: set[Value]) -> dict[Key, int]:
    out: dict[Key, int] = {}
    for op in ops:
        for k, n in saved_of(op, x, dt, need):
            out.setdefault(k, n)
    return out


def _savers(ops: tuple[Op, ...], x: Ctx, dt: dict[Value, int], need: set[Value], sim: Sim) -> dict[Op, list[Key]]:
    out: dict[Op, list[Key]] = {}
    for op in ops:
        keys = list(dict.fromkeys(k for k, _ in saved_of(op, x, dt, need)))
        for k in keys:
            sim.bufs[k][1] += 1
        out[op] = keys
    return out


def _dtypes(ops: tuple[Op, ...], base: dict[Value, int], x: Ctx) -> dict[Value, int]:
    """The program's dtypes, plus the LoRA values: Linear outputs in the matmul dtype, dropout in its input's."""
    dt = DTypes()
    dt.update(base)
    for op in ops:
        if op.out in dt:
            continue
        if isinstance(op, Linear):
            dt[op.out] = x.c
        elif isinstance(op, (Dropout, Scalar)):
            dt[op.out] = dt.get(op.x.storage, x.a)
        elif isinstance(op, Add):
            dt[op.out] = max(dt.get(v.storage, x.a) for v in op.xs)
    return dt


@dataclasses.dataclass
class _Block:
    ops: tuple[Op, ...]
    need: set[Value]
    count: int
    inp: Value
    out: Value


def _plan(arch: Architecture) -> tuple[tuple[Op, ...], list[_Block], tuple[Op, ...], set[Value], set[Value],
                                      dict[Value, Value]]:
    """(embeddings ops, encoder blocks bottom-up, tail + head ops, the embeddings' needs, the head's needs, each
    LoRA-wrapped Linear's output -> its input)."""
    p: Program = arch.program
    ad = arch.adapted
    dropout = float(ad.spec.get("lora_dropout") or 0.0) if ad is not None and ad.kind == "lora" else 0.0
    enc = p.encoder
    parts = _Parts(arch, enc.component if enc is not None else None)
    memo: dict[Value, Value] = {}
    emb = _rewrite(p.embeddings, parts.outside, dropout, memo)
    need = _needs(emb, set())
    blocks: list[_Block] = []
    made = {op.out.storage for op in emb}
    in_grad = p.embedded in need or p.embedded.storage in need
    if enc is not None and enc.times:
        if enc.groups < enc.times and enc.groups > 1:
            raise UsageError("memory with an adapter or a freeze on shared layers in more than one group "
                             "(ALBERT's num_hidden_groups > 1) is not modelled", param="lora")
        runs = parts.runs or [(None, parts.outside)]
        for comp, mods in runs:
            n = enc.times if comp is None or len(runs) == 1 else comp.times_applied
            ops = _rewrite(enc.ops, {**parts.outside, **mods}, dropout, memo)
            # tables made before the encoder that a layer reads (DeBERTa's relative embeddings, MPNet's bias)
            shared = {v for op in ops for v in op.inputs if v.storage in made and v.storage in need}
            first = _needs(ops, ({enc.inp} if in_grad else set()) | shared)
            out_grad = enc.out in first
            if out_grad and not in_grad and n > 1:
                blocks.append(_Block(ops, first, 1, enc.inp, enc.out))
                blocks.append(_Block(ops, _needs(ops, {enc.inp} | shared), n - 1, enc.inp, enc.out))
            else:
                blocks.append(_Block(ops, first, n, enc.inp, enc.out))
            in_grad = out_grad
    hidden = {p.hidden, p.hidden.storage} if in_grad else set()
    # the rotary tables: kept by the rotary products whose input requires grad, and counted where they are made,
    # every table as memsim counts them (the layers of each attention kind read their own)
    if any(isinstance(op, Rotary) and op.x in nd for ops, nd in ((emb, need), *((b.ops, b.need) for b in blocks))
           for op in ops):
        need |= {op.out for op in emb if isinstance(op, Rope)}
    head = _rewrite((*p.tail, *p.head), parts.outside, dropout, memo)
    head_need = _needs(head, hidden | {v for v in need if v.dtype != "int64"})
    return emb, blocks, head, need, head_need, memo


def trainable_grad_bytes(arch: Architecture, elem: int) -> int:
    return sum(alloc(t.parameters * elem) * c.repeat for c in arch.components for p in c.parts for t in p.tensors
               if t.tied_to is None and t.trainable)


def optimizer(arch: Architecture, o: Options) -> tuple[int, str]:
    params = [(t, c.repeat) for c in arch.components for p in c.parts for t in p.tensors
              if t.tied_to is None and t.trainable]
    total, formula = optimizer_bytes(arch, o, params=params)
    return total, formula.replace("N", "N_trainable", 1).replace("per parameter tensor", "per trainable tensor")


def training_peak(arch: Architecture, cfg: ModelConfig, o: Options) -> TrainingPeak:
    """memsim.training_peak for an adapted model: weights of every tensor, gradients and optimizer states of the
    trainable ones, the saved set and the backward by autograd's rules with the flags, the encoder run by run."""
    check(arch, o)
    x = Ctx.of(o)
    p = arch.program
    emb_ops, blocks, head_ops, emb_need, head_need, wrapped = _plan(arch)
    every = (*emb_ops, *(op for b in blocks for op in b.ops), *head_ops)
    dt = _dtypes(every, dtypes(p, x), x)
    for ops, nd in ((emb_ops, emb_need), *((b.ops, b.need) for b in blocks), (head_ops, head_need)):
        for i, op in enumerate(ops):  # a held copy counts where the attention saves nothing (and runs eager)
            if isinstance(op, Make) and op.out.name.endswith(HELD):
                att = ops[i + 1]
                dt[op.out] = 0 if att.out in nd or sdpa(att, x) else (4 if x.amp else x.a)
    weights = weights_bytes(arch, cfg, x.wb)
    opt, _ = optimizer(arch, o)
    grads_total = trainable_grad_bytes(arch, x.wb)
    casts = weight_casts(arch, p, x)
    steady = weights + opt
    enc = p.encoder
    owners = owners_of(arch)
    emb_saved = saved_set(emb_ops, x, dt, emb_need)
    head_saved = saved_set(head_ops, x, dt, head_need)
    per_block = [saved_set(b.ops, x, dt, b.need) for b in blocks]
    # what every layer keeps of a value made before the encoder (the relative table): stored once
    made = {op.out.storage for op in emb_ops} - ({enc.inp.storage} if enc is not None else set())
    once: dict[Key, int] = {}
    for d in per_block:
        for k in [k for k in d if isinstance(k, Value) and k in made]:
            once.setdefault(k, d.pop(k))
    once_bytes = saved_bytes({k: n for k, n in once.items() if k not in emb_saved})
    layers_saved = sum(b.count * saved_bytes(d) for b, d in zip(blocks, per_block, strict=True))
    saved = saved_bytes(emb_saved) + layers_saved + saved_bytes(head_saved) + casts + once_bytes
    # the head's backward
    sim = Sim(steady + saved)
    _register(sim, head_saved)
    bw = Backward(sim, x, dt, _savers(head_ops, x, dt, head_need, sim), owners=owners, needs=head_need)
    bw.run(head_ops)
    head_peak = sim.peak
    left = sum(sim.bufs[k][0] for k in head_saved if sim.has(k))
    hidden_grad = bw.grads.pop(p.hidden, None)
    live = sim.live
    encoder_start = live
    best = live
    rise1 = net1 = 0
    shared_in: list[Value] = []
    if enc is not None and blocks:
        shared = frozenset(id(part) for b in blocks for op in b.ops
                           for part in ((op.part,) if isinstance(op, (Linear, Norm)) else ())) \
            if enc.groups < enc.times else frozenset()
        shared_in = list(dict.fromkeys(v for b in blocks for op in b.ops for v in op.inputs
                                       if v.storage in made and v in b.need))
        first_app = True
        for b, d in reversed(list(zip(blocks, per_block, strict=True))):
            if b.out not in b.need:
                continue  # nothing below the lowest trainable tensor builds a graph
            r1, n1 = _block_run(b, d, once, x, dt, owners, shared, first_app, not first_app,
                                shared_in)
            if b.count > 1:
                r2, n2 = _block_run(b, d, once, x, dt, owners, shared, False, True, shared_in)
                best = max(best, live + max(r1, n1 + max(0, (b.count - 2) * n2) + r2))
                live += n1 + (b.count - 1) * n2
            else:
                best = max(best, live + r1)
                live += n1
            if first_app:
                rise1, net1 = r1, n1
            first_app = False
        live -= casts
        live -= once_bytes
    encoder_end = live
    emb = Sim(live)
    _register(emb, emb_saved)
    ebw = Backward(emb, x, dt, _savers(emb_ops, x, dt, emb_need, emb), owners=owners, params=bw.params,
                   needs=emb_need)
    ebw.via_linear = bw.via_linear
    for part_id in bw.via_linear:
        if part_id in bw.params and sim.has(bw.params[part_id]):
            emb.bufs[bw.params[part_id]] = [sim.bufs[bw.params[part_id]][0], 1]
    reached = any(b.out in b.need and b.inp in b.need for b in blocks[:1]) if blocks else hidden_grad is not None
    if reached:
        emb.bufs["incoming"] = [alloc(x.n(p.embedded) * dt[p.embedded]), 1]
        ebw.grads[p.embedded] = "incoming"
    for v in shared_in:
        emb.bufs[("shared", v)] = [alloc(x.n(v) * dt[v.storage]), 1]
        ebw.grads[v] = ("shared", v)
    ebw.run(emb_ops)
    left += sum(emb.bufs[k][0] for k in emb_saved if emb.has(k))
    per_app = saved_bytes(per_block[-1]) if per_block else 0
    forward_end = 0
    if blocks:
        last = blocks[-1]
        below = saved - saved_bytes(head_saved) - per_app
        layer_and_head = {**emb_saved, **per_block[-1], **head_saved, **dict.fromkeys(once, 0)}
        need_all = last.need | head_need | emb_need
        # what full fine-tuning saves anyway but Python holds regardless: the embeddings' output (held by the base
        # model through the encoder) and the layer's input (the encoder loop's hidden_states, until the layer returns)
        emb_out = p.embedded.storage
        kept = emb_out in emb_saved or enc.inp.storage in per_block[0]  # the first layer keeps its input
        if not kept and any(op.out.storage is emb_out and op.out.until == "base"
                                                       for op in emb_ops) and enc.times > 1:
            below += alloc(x.n(emb_out) * dt[emb_out])
        holds: dict[Value, Any] = {}
        for op in last.ops:  # LoRA's dropout rebinds no local of the HF module: its input keeps its hold
            if isinstance(op, Dropout) and op.out.name.endswith(LORA_DROPOUT):
                holds[op.x.storage] = op.x.until
                holds[op.out.storage] = None
        seq = (*last.ops, *head_ops)
        last_use = {v.storage: i for i, op in enumerate(seq) for v in op.inputs}
        for i, op in enumerate(seq):  # a wrapped Linear's input is the wrapper's argument until it returns
            x_in = wrapped.get(op.out)
            if x_in is not None and x_in.until is None and last_use.get(x_in.storage, -1) <= i:
                holds[x_in.storage] = op.out
        holds[enc.inp.storage] = enc.out
        forward_end = _forward_top(p, x, dt, steady + below, layer_and_head, shared_in, last.ops, head_ops,
                                   lambda op, x, dt: saved_of(op, x, dt, need_all), holds,
                                   lambda op: _temps(op, x, dt, need_all))
    peak = max(head_peak, best, emb.peak, steady + grads_total, forward_end)
    where = max((head_peak, "loss and head backward"), (best, "encoder backward"), (emb.peak, "embeddings backward"),
                (steady + grads_total, "optimizer step"), (forward_end, "forward, last layer and head"))[1]
    return TrainingPeak(weights, opt, grads_total, steady, saved, per_app, saved_bytes(emb_saved),
                        saved_bytes(head_saved), casts, enc.times if enc is not None else 0, peak, where, emb.live,
                        left, head_peak, encoder_start, rise1, net1, encoder_end, emb.peak)


def _temps(op: Op, x: Ctx, dt: dict[Value, int], need: set[Value]) -> int:
    """An op that builds no graph runs as in a no-grad forward: what it holds beside its output while it runs
    (a LayerNorm's statistics, a composed activation's parts, the GLU's fn(a)...), and dropout's mask, which
    nothing keeps. An op that saves is modelled as memsim models full fine-tuning."""
    if op.out in need:
        return 0
    if isinstance(op, Dropout):
        return alloc(x.n(op.x))
    return no_grad_extra(op, x, dt)[0]


def _block_run(b: _Block, saved: dict[Key, int], once: dict[Key, int], x: Ctx, dt: dict[Value, int],
               owners: dict[str, Part], shared: frozenset[int], first: bool, accumulate: bool,
               shared_in: list[Value]) -> tuple[int, int]:
    """One application of a block's layer: (peak rise, net change) from its start, with its saved tensors and
    the incoming gradient live. ``accumulate``: the shared inputs' gradients exist (an earlier application)."""
    sim = Sim()
    for k in once:
        sim.bufs[k] = [0, 0]
    g = sim.alloc(x.n(b.out) * dt[b.out])
    _register(sim, saved)
    sim.live += saved_bytes(saved)
    start = sim.live
    sim.peak = start
    bw = Backward(sim, x, dt, _savers(b.ops, x, dt, b.need, sim), owners=owners, shared=shared, first=first,
                  needs=b.need)
    bw.grads[b.out] = g
    if accumulate:
        for v in shared_in:
            bw.grads[v] = ("held", v)
    bw.run(b.ops)
    return sim.peak - start, sim.live - start


def check(arch: Architecture, o: Options) -> None:
    """Refuse, by parameter, what this model of an adapted step does not cover."""
    if o.grad_checkpointing:
        raise UsageError("memory with an adapter or a freeze and gradient checkpointing is not modelled",
                         param="grad_checkpointing")
    if o.mode != "train":
        raise UsageError(f"memory {arg('mode', 'infer', repr('infer'))} with an adapter or a freeze is not modelled (a "
                         "no-grad forward through PEFT's wrapped Linears); use "
                         f"{arg('mode', 'train', repr('train'))}, or merge the adapter", param="mode")


__all__ = ["check", "optimizer", "trainable_grad_bytes", "training_peak"]
