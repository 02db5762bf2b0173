"""`memory(fit=...)` throughput: configs per second, single core, against plain `memory`, and the full
simulations one fit costs (the secant search of bertcalc/fitting.py against bisection).

    OMP_NUM_THREADS=1 python bench/fit.py            # medians of 5 rounds of --seconds each
    OMP_NUM_THREADS=1 python bench/fit.py --seconds 2 --rounds 3

Three library calls over the same configs (BERT-base and mini, MLM and classifier heads, fp32 and amp-bf16,
S = 128 and 512, an 80 GiB budget): `memory` (no budget), `memory(fit=..., reserved=False)` (fit on the
allocated peak: issue #11's target, ≥ 2,000 configs/s) and `memory(fit=...)` (fit on reserved memory, the
caching allocator replayed: issue #12's OOM boundary; each evaluation replays a whole step). In-process: no
start-up. Not a test: no test depends on timing.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bertcalc
from bertcalc import memsim

CONFIGS = list(itertools.product(("base", "mini"), ("mlm", "seq-cls"), ("fp32", "amp-bf16"), (128, 512)))


def rate(call, seconds: float) -> float:
    n = 0
    t0 = time.perf_counter()
    while True:
        for preset, head, precision, seq in CONFIGS:
            call(preset, head, precision, seq)
            n += 1
        if time.perf_counter() - t0 >= seconds:
            return n / (time.perf_counter() - t0)


def simulations_per_fit() -> tuple[float, float]:
    """Mean full simulations per fit: the secant search, and the bisection it replaced (counted the same way)."""
    spec = bertcalc.resolve(preset="base", head="mlm")
    arch = bertcalc.build(spec.config, head="mlm")
    ours, bis = [], []
    for precision, seq in itertools.product(memsim.PRECISIONS, (128, 512)):
        o = memsim.Options(precision=precision, seq=seq)
        calls: list[int] = []

        def value(b: int, o=o, calls=calls) -> int:
            calls.append(b)
            return memsim.peak(arch, spec.config, memsim.Options(**{**o.__dict__, "batch": b}))

        from bertcalc.fitting import largest

        largest(value, 80 << 30, known={8: memsim.peak(arch, spec.config, o)})
        ours.append(len(set(calls)))
        b = largest(value, 80 << 30)  # the answer, for the bisection count below
        lo, hi, n = 1, 2, 2  # fits(1), and the doubling step that fails
        while value(hi) <= 80 << 30:
            lo, hi, n = hi, hi * 2, n + 1
        n += math.ceil(math.log2(max(2, hi - lo)))
        bis.append(n)
        assert lo <= b < hi
    return statistics.mean(ours), statistics.mean(bis)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    calls = {
        "memory": lambda p, h, pr, s: bertcalc.memory(preset=p, head=h, precision=pr, seq=s),
        "memory(fit, reserved=False)": lambda p, h, pr, s: bertcalc.memory(preset=p, head=h, precision=pr, seq=s,
                                                                          fit="80GiB", reserved=False),
        "memory(fit)  [reserved]": lambda p, h, pr, s: bertcalc.memory(preset=p, head=h, precision=pr, seq=s,
                                                                      fit="80GiB"),
    }
    for call in calls.values():  # warm: imports, caches
        call("base", "mlm", "fp32", 128)
    results = {}
    for name, call in calls.items():
        rounds = [rate(call, args.seconds / (10 if "reserved]" in name else 1)) for _ in range(args.rounds)]
        results[name] = statistics.median(rounds)
    base = results["memory"]
    print(f"{'call':<30} {'configs/s':>10} {'vs memory':>10}")
    for name, r in results.items():
        print(f"{name:<30} {r:>10,.0f} {r / base:>9.2f}×")
    ours, bis = simulations_per_fit()
    print(f"full simulations per fit: {ours:.1f} (secant + local check), bisection: {bis:.1f}")
    print("target (#11): memory(fit, ...) ≥ 2,000 configs/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
