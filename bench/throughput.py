"""Library throughput: configs per second, single core, of each call over DISTINCT configs (issue #11).

    OMP_NUM_THREADS=1 python bench/throughput.py                 # medians of 5 rounds of ~1 s per call
    OMP_NUM_THREADS=1 python bench/throughput.py --seconds 0.5 --rounds 3 --calls count,flops
    OMP_NUM_THREADS=1 python bench/throughput.py --json          # one JSON object: call -> configs/s

Every config in a round is different from every other one seen in the process (hidden, layers, vocab, heads,
batch, seq vary over the presets), so no result cache can answer them: what is measured is the work itself.
Caches that bertcalc keeps (a preset's parsed YAML, what a built architecture derives) still apply where they
would for a user. ``--repeat`` adds the figure for one config asked again and again, reported apart (it is
what a result cache would make fast, and it is not the target).

Targets (#11): count ≥ 20,000; count(preset=…) ≥ 20,000; flops ≥ 20,000; memory ≥ 10,000;
memory(fit=…, reserved=False) ≥ 2,000. In-process timing, no start-up. Not a test: no test depends on timing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bertcalc
from bertcalc.config import config_class

# Presets of the families the distinct-config stream cycles through, each with the fields it may vary.
PRESETS = ("base", "mini", "roberta-base", "distilbert-base", "albert-base-v2", "electra-small-discriminator",
           "modernbert-base", "deberta-v3-small", "mpnet-base", "xlm-roberta-base")
HEADS = ("model", "mlm", "seq-cls")


def _configs() -> Iterator[tuple[str, str, dict[str, Any], int, int]]:
    """An endless stream of distinct (preset, head, overrides, batch, seq): layers and vocab grow with the
    counter, so no two are the same."""
    specs = []
    for p in PRESETS:
        cfg = bertcalc.resolve(preset=p).config
        cls = type(cfg)
        specs.append((p, cls.FLAGS, cfg.dims))
    for n in itertools.count():
        p, flags, d = specs[n % len(specs)]
        ov: dict[str, Any] = {"layers": 1 + n % 48 + 48 * (n // (48 * len(specs)) % 7), "vocab": d.V + n}
        if n % 3 == 0:
            ov["hidden"] = d.H + 64 * (n % 5)
            ov["intermediate"] = 4 * ov["hidden"]
            if "heads" in flags:
                ov["heads"] = d.A if ov["hidden"] % d.A == 0 else 1
        yield p, HEADS[n % len(HEADS)], ov, 1 + n % 16, 64 * (1 + n % 8)


def _calls() -> dict[str, Callable[..., Any]]:
    """Each call as a user makes it: the model named by keywords, so resolving and validating the config is
    timed too. ``count`` varies BERT's defaults (no preset); the others go through the presets."""
    def count(p, h, ov, b, s):
        return bertcalc.count(head=h, **_bert(ov))

    def count_preset(p, h, ov, b, s):
        return bertcalc.count(preset=p, head=h, **ov)

    def flops(p, h, ov, b, s):
        return bertcalc.flops(preset=p, head=h, batch=b, seq=s, **ov)

    def memory(p, h, ov, b, s):
        return bertcalc.memory(preset=p, head=h, batch=b, seq=s, **ov)

    def memory_fit(p, h, ov, b, s):
        return bertcalc.memory(preset=p, head=h, batch=b, seq=s, fit="80GiB", reserved=False, **ov)

    return {"count": count, "count(preset=…)": count_preset, "flops": flops, "memory": memory,
            "memory(fit=…, reserved=False)": memory_fit}


def _bert(ov: dict[str, Any]) -> dict[str, Any]:
    """Another family's overrides, as BERT-defaults overrides of the same sizes."""
    out = {"layers": ov["layers"], "vocab": ov["vocab"]}
    if "hidden" in ov:
        out.update(hidden=ov["hidden"], intermediate=ov["intermediate"], heads=1 if ov["hidden"] % 12 else 12)
    return out


SHORT = {"count": "count", "count-preset": "count(preset=…)", "flops": "flops", "memory": "memory",
         "memory-fit": "memory(fit=…, reserved=False)"}
TARGETS = {"count": 20_000, "count(preset=…)": 20_000, "flops": 20_000, "memory": 10_000,
           "memory(fit=…, reserved=False)": 2_000}


def _rate(call: Callable[..., Any], stream: Iterator[Any], seconds: float) -> float:
    n, busy = 0, 0.0
    while busy < seconds:
        batch = [next(stream) for _ in range(64)]
        t0 = time.perf_counter()
        for args in batch:
            call(*args)
        busy += time.perf_counter() - t0
        n += len(batch)
    return n / busy


def _repeat_rate(call: Callable[..., Any], seconds: float) -> float:
    args = ("base", "model", {"layers": 12, "vocab": 30522}, 8, 128)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(32):
            call(*args)
        n += 32
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="busy time per call per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", default="", help=f"comma-separated subset of {', '.join(SHORT)}")
    ap.add_argument("--repeat", action="store_true", help="also the rate of one config asked again (not a target)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    calls = _calls()
    if args.calls:
        want = {SHORT.get(c.strip(), c.strip()) for c in args.calls.split(",")}
        calls = {k: v for k, v in calls.items() if k in want}
    assert config_class("bert")  # families import before timing
    stream = _configs()
    for call in calls.values():  # warm: imports, lazy modules
        for _ in range(3):
            call(*next(stream))
    rounds: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(args.rounds):  # interleaved: each round runs every call once
        for name, call in calls.items():
            rounds[name].append(_rate(call, stream, args.seconds))
    out = {k: statistics.median(v) for k, v in rounds.items()}
    repeat = {k: _repeat_rate(c, args.seconds) for k, c in calls.items()} if args.repeat else {}
    if args.json:
        print(json.dumps({"distinct": out, "repeated": repeat}))
        return 0
    print(f"{'call':<32} {'configs/s':>10} {'target':>8}  {'min':>9} {'max':>9}")
    for name, r in out.items():
        t = TARGETS[name]
        mark = "ok" if r >= t else "BELOW"
        print(f"{name:<32} {r:>10,.0f} {t:>8,}  {min(rounds[name]):>9,.0f} {max(rounds[name]):>9,.0f}  {mark}")
    for name, r in repeat.items():
        print(f"{name:<32} {r:>10,.0f}  (one config repeated, not a target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
