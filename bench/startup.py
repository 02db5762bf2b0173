"""Start-up benchmark: ``bertcalc count --preset base`` against the floor of its own stack.

The floor (``../shared/bench/floor_app.py``) is the least a typer + pydantic + rich CLI must pay: one typer
command, one pydantic model, one rich table. Both run as fresh processes, interleaved in one loop so that
machine noise hits them alike, and the script prints the median of the per-pair ratios.

    python bench/startup.py                 # 30 pairs
    python bench/startup.py --runs 60 --json
    python bench/startup.py --max-ratio 1.3 # exit 1 if the median ratio is above 1.3

Figures live here, not in the test suite: timing asserts in tests are flaky by nature.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FLOOR = ROOT.parent / "shared" / "bench" / "floor_app.py"


def ours_command() -> list[str]:
    exe = shutil.which("bertcalc")
    if exe is None:
        sys.exit("bench: 'bertcalc' is not on PATH; install it first (pip install .)")
    return [exe, "count", "--preset", "base"]


def compile_package() -> None:
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("bertcalc")
    if spec and spec.origin:
        compileall.compile_dir(str(Path(spec.origin).parent), quiet=1)


def run_once(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30, help="interleaved pairs to time (default 30)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed pairs first (default 3)")
    ap.add_argument("--floor", type=Path, default=DEFAULT_FLOOR, help="path to floor_app.py")
    ap.add_argument("--max-ratio", type=float, default=None, help="exit 1 if the median ratio exceeds this")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    if not args.floor.is_file():
        sys.exit(f"bench: floor app not found at {args.floor}; pass --floor PATH")

    env = {**os.environ, "NO_COLOR": "1"}
    for var in ("PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE"):
        env.pop(var, None)
    compile_package()  # pip writes .pyc files at install; an editable checkout may not have them yet
    floor = [sys.executable, str(args.floor)]
    ours = ours_command()
    for _ in range(args.warmup):  # fill the page cache and write .pyc files
        run_once(floor, env)
        run_once(ours, env)
    f_times, o_times, ratios = [], [], []
    for i in range(args.runs):
        pair = [(floor, f_times), (ours, o_times)]
        if i % 2:  # alternate which goes first
            pair.reverse()
        for cmd, acc in pair:
            acc.append(run_once(cmd, env))
        ratios.append(o_times[-1] / f_times[-1])
    result = {
        "runs": args.runs,
        "floor_median_ms": round(1000 * statistics.median(f_times), 1),
        "ours_median_ms": round(1000 * statistics.median(o_times), 1),
        "median_ratio": round(statistics.median(ratios), 3),
        "ratio_of_medians": round(statistics.median(o_times) / statistics.median(f_times), 3),
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"floor  (typer+pydantic+rich)   median {result['floor_median_ms']:7.1f} ms")
        print(f"bertcalc count --preset base   median {result['ours_median_ms']:7.1f} ms")
        print(f"median ratio over {args.runs} interleaved pairs: {result['median_ratio']:.3f}")
    if args.max_ratio is not None and result["median_ratio"] > args.max_ratio:
        print(f"bench: median ratio {result['median_ratio']:.3f} exceeds {args.max_ratio}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
