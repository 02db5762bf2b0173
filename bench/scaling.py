"""Cost against depth: every command at L = 12 and at L = 10^9 should take the same time (issue #11).

    python bench/scaling.py                  # median time of each call at both depths, and their ratio
    python bench/scaling.py --max-ratio 1.5  # exit 1 if any deep/shallow ratio exceeds it
    python bench/scaling.py --deep 10000000 --runs 20

Totals come from one layer template × L, and memory replays one layer application and multiplies (ALBERT's
groups as runs of equal size), so depth is a multiplication. The reserved-memory replay (``reserved=True``, and
``fit`` without ``reserved=False``) is exact up to 48 layers and beyond replays a fixed set of probe depths
(8 … 26 layers) to extrapolate: bounded, so 10^9 costs what 100 does, but more than 12 (shown apart, not in
--max-ratio). In-process timing (no start-up). Not a test: tests/test_scaling.py checks the same without
timing (the Python lines executed are bounded).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bertcalc


def median_seconds(fn, runs: int) -> float:
    fn()  # warm
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def calls() -> dict[str, object]:
    c = {
        "count": lambda L: bertcalc.count(preset="base", layers=L),
        "count albert": lambda L: bertcalc.count(preset="albert-base-v2", layers=L),
        "flops": lambda L: bertcalc.flops(preset="base", layers=L),
        "compare": lambda L: bertcalc.compare(["base", f"large:layers={L}"]),
        "memory": lambda L: bertcalc.memory(preset="base", layers=L),
        "memory grad-ckpt": lambda L: bertcalc.memory(preset="base", layers=L, grad_checkpointing=True),
        "memory inference": lambda L: bertcalc.memory(preset="base", layers=L, mode="inference"),
        "memory fit (allocated)": lambda L: bertcalc.memory(preset="base", layers=L, fit="80GiB", reserved=False),
        "memory zero-3 × 8": lambda L: bertcalc.memory(preset="base", layers=L, zero=3, gpus=8),
        "memory fsdp × 8": lambda L: bertcalc.memory(preset="base", layers=L, fsdp=True, gpus=8),
        "memory ddp × 8": lambda L: bertcalc.memory(preset="base", layers=L, gpus=8),
    }
    for p in ("albert-base-v2", "modernbert-base", "deberta-v3-small", "mpnet-base", "distilbert-base"):
        c[f"memory {p}"] = lambda L, p=p: bertcalc.memory(preset=p, layers=L)
    return c


BOUNDED = {  # bounded in depth, not flat from 12: the reserved replay (see the docstring)
    "memory reserved": lambda L: bertcalc.memory(preset="base", layers=L, reserved=True),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--deep", type=int, default=10**9)
    ap.add_argument("--max-ratio", type=float, default=None, help="exit 1 if a deep/shallow ratio exceeds this")
    ap.add_argument("--reserved", action="store_true", help="also time the reserved replay (slow: seconds)")
    args = ap.parse_args(argv)
    worst = 0.0
    print(f"{'call':<28} {'L=12':>10} {'L=' + format(args.deep, '.0e'):>10} {'ratio':>7}")
    for name, fn in calls().items():
        shallow = median_seconds(lambda fn=fn: fn(12), args.runs)
        deep = median_seconds(lambda fn=fn: fn(args.deep), args.runs)
        ratio = deep / shallow
        worst = max(worst, ratio)
        print(f"{name:<28} {shallow * 1e3:8.2f}ms {deep * 1e3:8.2f}ms {ratio:7.2f}")
    if args.reserved:
        for name, fn in BOUNDED.items():
            at = {L: median_seconds(lambda fn=fn, L=L: fn(L), 3) for L in (12, 100, args.deep)}
            print(f"{name:<28} L=12 {at[12] * 1e3:.0f}ms, L=100 {at[100] * 1e3:.0f}ms, "
                  f"L={args.deep:.0e} {at[args.deep] * 1e3:.0f}ms (bounded: probes past 48 layers)")
    print(f"worst ratio (deep / 12): {worst:.2f}")
    if args.max_ratio is not None and worst > args.max_ratio:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
