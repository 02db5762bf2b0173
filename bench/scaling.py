"""Counting cost against depth: ``count`` for L = 12 and L = 10^7 should take the same time.

    python bench/scaling.py            # prints the median time of each and their ratio
    python bench/scaling.py --max-ratio 1.5

Totals come from one layer template × L, so depth is one multiplication. In-process timing (no start-up).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def median_seconds(fn, runs: int) -> float:
    fn()  # warm
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--max-ratio", type=float, default=None, help="exit 1 if deep/shallow exceeds this")
    args = ap.parse_args(argv)
    import bertcalc

    shallow = median_seconds(lambda: bertcalc.count(preset="base", num_hidden_layers=12), args.runs)
    deep = median_seconds(lambda: bertcalc.count(preset="base", num_hidden_layers=10**7), args.runs)
    ratio = deep / shallow
    print(f"count, L=12      median {shallow * 1e6:8.1f} µs")
    print(f"count, L=10^7    median {deep * 1e6:8.1f} µs")
    print(f"ratio (10^7 / 12): {ratio:.3f}")
    if args.max_ratio is not None and ratio > args.max_ratio:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
