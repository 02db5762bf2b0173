"""Library throughput of ``bertcalc.shapes``: configs per second, single core, over distinct configs.

    python bench/shapes.py                  # 3 rounds of 2,000 distinct configs, median
    python bench/shapes.py --configs 500 --rounds 5 --json
    python bench/shapes.py --min-rate 5000  # exit 1 below 5,000 configs/s

Each config is distinct (layers, hidden, heads, vocab, intermediate and the preset vary), so that no result
cache can meet the target alone. Three figures: ``shapes(config)`` for a validated config (the report: the
architecture, its tensor list and identification; the rows are made when they are read); the same with every
row listed (``tensor_rows()``: names, shapes, parameters, the JSON's list); and ``shapes(preset=..., overrides)``,
which resolves and validates the config too. Issue #11's target is >= 5,000 configs/s for the first.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

PRESETS = ("base", "tiny", "large", "roberta-base", "distilbert-base", "albert-base-v2", "deberta-v3-small",
           "modernbert-base", "electra-small-discriminator", "mpnet-base")


def distinct_configs(n: int) -> list[dict]:
    grid = itertools.product(range(1, 49), (128, 256, 384, 512, 768, 1024), range(60000, 60000 + 10_000))
    out = []
    for k, (layers, hidden, vocab) in enumerate(grid):
        if k >= n:
            break
        out.append(dict(preset=PRESETS[k % len(PRESETS)], layers=layers, hidden=hidden, heads=hidden // 64,
                        vocab=vocab + k))
    return out


def rate(fn, items) -> float:
    t0 = time.perf_counter()
    for x in items:
        fn(x)
    return len(items) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=int, default=2000, help="distinct configs per round (default 2,000)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported (default 3)")
    ap.add_argument("--min-rate", type=float, default=None, help="exit 1 if shapes(config) is below this rate")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import bertcalc
    from bertcalc.loading import resolve

    raw = distinct_configs(args.configs)
    overrides = [(c["preset"], {k: v for k, v in c.items() if k != "preset"}) for c in raw]
    specs = [resolve(preset=p, overrides=o) for p, o in overrides]
    configs = [s.config for s in specs]

    def with_rows(cfg):
        return sum(1 for _ in bertcalc.shapes(cfg).tensor_rows())

    def from_preset(po):
        preset, o = po
        return bertcalc.shapes(preset=preset, **o)  # flag names: each family maps them to its own fields

    figures: dict[str, list[float]] = {"shapes(config)": [], "shapes(config) + rows": [],
                                       "shapes(preset=..., overrides)": []}
    bertcalc.shapes(configs[0])  # imports, first-use work
    for _ in range(args.rounds):
        figures["shapes(config)"].append(rate(bertcalc.shapes, configs))
        figures["shapes(config) + rows"].append(rate(with_rows, configs[: max(1, len(configs) // 4)]))
        figures["shapes(preset=..., overrides)"].append(rate(from_preset, overrides))
    result = {k: round(statistics.median(v)) for k, v in figures.items()}
    result["configs"] = len(configs)
    result["target_shapes_config"] = 5000
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in figures.items():
            print(f"{k:<32} {statistics.median(v):>10,.0f} configs/s  (median of {args.rounds} rounds of "
                  f"{len(configs):,} distinct configs)")
        print("target: shapes(config) >= 5,000 configs/s")
    if args.min_rate is not None and result["shapes(config)"] < args.min_rate:
        print(f"bench: shapes(config) at {result['shapes(config)']:,} configs/s, below {args.min_rate:,.0f}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
