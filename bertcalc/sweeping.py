"""A grid of what fits: peak memory over batch × sequence length (× precision × attention), against a budget.

Each cell is one full simulation (:mod:`bertcalc.memsim`, and for a training step with a budget the caching
allocator's replay, :mod:`bertcalc.reserved`); each row's last column is the largest batch that fits, from the
same exact search as ``memory --fit``. With an MFU and a peak rate, each cell also carries the time per step
from the FLOP count (:mod:`bertcalc.flopcount`). Pure: rendering is in ``bertcalc/render/grid.py``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from typing import Any, ClassVar

from .config import ModelConfig
from .errors import UsageError, arg
from .model import Architecture, ModelReport, identify
from .records import frozen

AXES = ("batch", "seq", "precision", "attention")
MAX_COLUMNS = 24  # batches: wider than any terminal past this
MAX_CELLS = 240  # each cell is a full simulation (with a budget, an allocator replay): bounded work
MAX_VALUE = 1 << 40
TIGHT = 0.90  # amber: fits, but with less than 10 % of the budget to spare


def _item(axis: str, values: object) -> str:
    """One axis of ``axes`` in a message: ``axes='batch=0'`` to the library, ``--sweep batch=0`` to the CLI."""
    given = f"{axis}={values}"
    if len(given) > 60:  # a hostile value of thousands of digits: the line stays a line
        given = f"{given[:40]}... ({len(given):,} characters)"
    return arg("axes", given, repr(given))


def _ints(axis: str, text: str) -> tuple[int, ...]:
    """``8,16,24``; ``8..256`` (doubling: 8, 16, …, 256); ``8..64+8`` (steps of 8); mixed with commas."""
    out: list[int] = []
    for item in text.split(","):
        item = item.strip()
        m = re.fullmatch(r"(\d+)\.\.(\d+)(?:([+x*])(\d+))?", item) or re.fullmatch(r"(\d+)", item)
        if m and any(len(g) > 15 for g in m.groups() if g and g.isdigit()):  # int() refuses 4,300 digits
            raise UsageError(f"{_item(axis, text)}: {item[:40]!r}{'...' if len(item) > 40 else ''} is too large: "
                             f"values are at most {MAX_VALUE:,}", param="axes")
        if m and m.lastindex and m.lastindex >= 2:
            lo, hi = int(m.group(1)), int(m.group(2))
            op, step = m.group(3) or "x", int(m.group(4) or 2)
            if lo < 1 or hi < lo:
                raise UsageError(f"{_item(axis, text)}: {item!r} is not a range: write a..b with 1 ≤ a ≤ b "
                                 "(doubling), a..b+s (steps of s) or a..bx3 (times 3)", param="axes")
            if hi > MAX_VALUE:
                raise UsageError(f"{_item(axis, text)}: {item!r} is too large: values are at most {MAX_VALUE:,}",
                                 param="axes")
            if step < (1 if op == "+" else 2):
                raise UsageError(f"{_item(axis, text)}: {item!r}: " + ("a step is at least 1" if op == "+" else
                                 "a factor is at least 2 (x1 would never grow)"), param="axes")
            v = lo
            while v <= hi:
                out.append(v)
                if len(out) > MAX_CELLS:
                    break
                v = v + step if op == "+" else v * step
        elif m and 1 <= int(item) <= MAX_VALUE:
            out.append(int(item))
        elif m and int(item) > MAX_VALUE:
            raise UsageError(f"{_item(axis, text)}: {item!r} is too large: values are at most {MAX_VALUE:,}",
                             param="axes")
        else:
            raise UsageError(f"{_item(axis, text)}: {item!r} is not a positive whole number or a range "
                             "such as 8..256", param="axes")
    return tuple(dict.fromkeys(out))


def parse_sweep(items: list[str] | tuple[str, ...]) -> dict[str, tuple[Any, ...]]:
    """``["batch=8..256", "seq=128,256,512"]`` (or one string with both, space-separated) -> the axes' values.
    Axes: batch, seq (whole numbers or ranges), precision and attention (names, or ``all``)."""
    from .memsim import ATTENTIONS, PRECISIONS

    choices = {"precision": PRECISIONS, "attention": ATTENTIONS}
    out: dict[str, tuple[Any, ...]] = {}
    for item in (part for text in items for part in text.split()):
        axis, sep, values = item.partition("=")
        axis = axis.strip().lower()
        if not sep or axis not in AXES or not values.strip():
            raise UsageError(f"{arg('axes', repr(item))}: write AXIS=VALUES with AXIS one of {', '.join(AXES)}, e.g. "
                             "batch=8..256 seq=128,256,512", param="axes")
        if axis in out:
            raise UsageError(f"{arg('axes')}: {axis} is given twice; give each axis once", param="axes")
        if axis in choices:
            names = choices[axis] if values.strip() == "all" else tuple(v.strip() for v in values.split(","))
            bad = [v for v in names if v not in choices[axis]]
            if bad:
                raise UsageError(f"{_item(axis, values)}: unknown {axis} {bad[0]!r}; choose from "
                                 f"{', '.join(choices[axis])} or all", param="axes")
            out[axis] = tuple(dict.fromkeys(names))
        else:
            out[axis] = _ints(axis, values)
    if not out:
        raise UsageError(f"{arg('axes')} needs at least one axis, e.g. batch=8..256 seq=128,256,512", param="axes")
    return out


@frozen
class Cell:
    batch: int
    peak_bytes: int  # the allocated peak (max_memory_allocated)
    reserved_bytes: int | None  # the reserved peak (training with a budget)
    fits: bool | None
    level: str | None  # "fits", "tight" (within 10 % of the budget) or "over"; None without a budget
    step_seconds: float | None

    @property
    def shown_bytes(self) -> int:
        """What the grid shows and a budget is checked against: reserved memory where it was replayed."""
        return self.peak_bytes if self.reserved_bytes is None else self.reserved_bytes


@frozen
class Row:
    seq: int
    precision: str
    attention: str
    cells: tuple[Cell, ...]
    max_batch: int | None


@frozen
class SweepReport(ModelReport):
    kind: ClassVar[str] = "sweep"

    mode: str
    optimizer: str
    grad_checkpointing: bool
    swept: tuple[str, ...]  # the axes given, in AXES order
    batches: tuple[int, ...]
    rows: tuple[Row, ...]
    budget: int | None = None
    context: int | None = None
    gpu: str | None = None
    mfu: float | None = None
    peak_tflops: float | None = None  # given, or None for the card's own rates (by precision)
    on: str = "allocated"  # which peak the cells show: "allocated" or "reserved"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.identity(),
            "options": {"mode": self.mode, "optimizer": self.optimizer if self.mode == "train" else None,
                        "grad_checkpointing": self.grad_checkpointing},
            "swept": list(self.swept),
            "batches": list(self.batches),
            "shown": f"peak {self.on} bytes",
            "rows": [{"seq": r.seq, "precision": r.precision, "attention": r.attention, "max_batch": r.max_batch,
                      "cells": [{"batch": c.batch, "peak_bytes": c.peak_bytes, "reserved_bytes": c.reserved_bytes,
                                 "fits": c.fits, "level": c.level, "step_seconds": c.step_seconds}
                                for c in r.cells]} for r in self.rows],
        }
        if self.budget is not None:
            out.update(budget_bytes=self.budget, context_bytes=self.context, tight_below=TIGHT)
            if self.gpu:
                out["gpu"] = self.gpu
        if self.mfu is not None:
            out.update(mfu=self.mfu, peak_tflops=self.peak_tflops)
        return out


def sweep(arch: Architecture, cfg: ModelConfig, axes: dict[str, tuple[Any, ...]], base: Any, *, label: str = "",
          budget: int | None = None, gpu: str | None = None, context: int | None = None,
          reserved: bool | None = None, mfu: float | None = None, peak_tflops: float | None = None,
          allocator: Any = None) -> SweepReport:
    """The grid for ``base`` (:class:`memsim.Options`) over ``axes`` (from :func:`parse_sweep`). ``mfu``
    (with ``gpu`` or ``peak_tflops``): the time per step in each cell."""
    from . import memsim
    batches = axes.get("batch", (base.batch,))
    seqs = axes.get("seq", (base.seq,))
    precisions = axes.get("precision", (base.precision,))
    attentions = axes.get("attention", (base.attention,))
    cells = len(batches) * len(seqs) * len(precisions) * len(attentions)
    if len(batches) > MAX_COLUMNS or cells > MAX_CELLS:
        raise UsageError(f"{arg('axes')}: {len(batches)} batches × {cells // len(batches)} rows = {cells:,} cells; the "
                         f"limit is {MAX_COLUMNS} batches and {MAX_CELLS} cells (each is a full simulation): "
                         "sweep fewer values, e.g. batch=8..256", param="axes")
    timed = mfu is not None or peak_tflops is not None
    if timed and gpu is None and peak_tflops is None:
        raise UsageError(f"{arg('mfu')} times each cell from a peak rate: give {arg('gpu', 'NAME')} or "
                         f"{arg('peak_tflops')}", param="mfu")
    train = base.mode == "train"
    use_reserved = train and (reserved or (reserved is None and budget is not None))
    room = None
    if budget is not None:
        context = memsim.CUDA_CONTEXT if context is None else context
        room = budget - context
    rows: list[Row] = []
    for seq, precision, attention in itertools.product(seqs, precisions, attentions):
        o = replace(base, seq=seq, precision=precision, attention=attention)
        out: list[Cell] = []
        known_alloc: dict[int, int] = {}
        for b in batches:
            ob = replace(o, batch=b)
            try:
                rep = memsim.estimate(arch, cfg, ob, label=label)  # validates seq and the options
            except UsageError as exc:  # a swept value at fault: name the --sweep item, not --seq or --batch
                axis = exc.param if exc.param in ("batch", "seq") and exc.param in axes else None
                if axis is None:
                    raise
                raise UsageError(f"{_item(axis, b if axis == 'batch' else seq)}: {exc.text}", param="axes") from None
            known_alloc[b] = rep.peak_bytes
            res = None
            if use_reserved:
                from .reserved import training_reserved

                res = training_reserved(arch, ob, allocator).reserved
            shown = rep.peak_bytes if res is None else res
            fits = level = None
            if room is not None:
                fits = shown <= room
                level = "over" if not fits else "tight" if shown > TIGHT * room else "fits"
            secs = None
            if timed:
                from .flopcount import PRECISION_PEAK, count

                f = count(arch, cfg, b, seq, gpu=gpu, peak_tflops=peak_tflops, precision=PRECISION_PEAK[precision],
                          mfu=mfu if mfu is not None else 0.40)
                s = f.seconds()
                secs = None if s is None else s["training_step" if train else "forward"]
            out.append(Cell(b, rep.peak_bytes, res, fits, level, secs))
        best = None
        if room is not None:
            best = memsim.max_batch(arch, cfg, o, room, known=known_alloc) if room > 0 else 0
            if use_reserved and best:
                from .reserved import max_batch as reserved_max_batch

                best = reserved_max_batch(arch, cfg, o, room, best, allocator)
        rows.append(Row(seq, precision, attention, tuple(out), best))
    return SweepReport(**identify(arch, label, cfg.fields()), mode=base.mode, optimizer=base.optimizer,
                       grad_checkpointing=base.grad_checkpointing, swept=tuple(a for a in AXES if a in axes),
                       batches=tuple(batches), rows=tuple(rows), budget=budget, context=context if budget else None,
                       gpu=gpu, mfu=(mfu if mfu is not None else 0.40) if timed else None,
                       peak_tflops=peak_tflops, on="reserved" if use_reserved else "allocated")
