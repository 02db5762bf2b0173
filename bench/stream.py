"""``shapes`` of a very deep model, streamed: 10^5 layers of BERT-base (1.6 million rows) as CSV, JSON and a
table, to a pipe (and CSV to a file, written to a temporary file and renamed), each a fresh process.

    python bench/stream.py                   # 10^5 layers, 3 runs per format, medians
    python bench/stream.py --layers 20000 --runs 1 --json

Issue #11's targets: CSV or JSON in under 5 s and under 200 MB peak RSS; a table to a pipe in under 10 s. The
peak RSS is the child's own (``wait4``), the time is wall-clock from start to the last byte read.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TARGETS = {"csv": (5.0, 200), "json": (5.0, 200), "table": (10.0, None), "csv -o FILE": (5.0, 200)}


def bertcalc_command() -> list[str]:
    exe = shutil.which("bertcalc")
    return [exe] if exe is not None else [sys.executable, "-m", "bertcalc"]


def run(cmd: list[str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, bytes read from its stdout)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    n = 0
    while True:
        block = proc.stdout.read(1 << 20)
        if not block:
            break
        n += len(block)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed ({proc.returncode}): {err.decode()[-500:]}")
    return seconds, usage.ru_maxrss / 1024, n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    env_cmd = bertcalc_command()
    base = [*env_cmd, "shapes", "--preset", "base", "--layers", str(args.layers)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bertcalc-stream-") as tmp:
        out_file = os.path.join(tmp, "shapes.csv")
        cases = {"csv": [*base, "-f", "csv"], "json": [*base, "-f", "json"], "table": base,
                 "csv -o FILE": [*base, "-o", out_file]}
        for name, cmd in cases.items():
            runs = [run(cmd) for _ in range(args.runs)]
            size = os.path.getsize(out_file) if name.endswith("FILE") else runs[0][2]
            secs, mb = statistics.median(r[0] for r in runs), max(r[1] for r in runs)
            limit_s, limit_mb = TARGETS[name]
            ok = secs < limit_s * args.layers / 100_000 and (limit_mb is None or mb < limit_mb)
            rows.append({"output": name, "layers": args.layers, "seconds": round(secs, 2),
                         "peak_rss_mb": round(mb, 1), "bytes": size, "target_seconds": limit_s,
                         "target_rss_mb": limit_mb, "meets_target": ok})
            if not args.json:
                print(f"shapes --layers {args.layers:,} {name:<12} {secs:6.2f} s  peak RSS {mb:6.1f} MB  "
                      f"{size / 1e6:7.1f} MB written  (target < {limit_s:g} s"
                      + (f", < {limit_mb} MB" if limit_mb else "") + ("" if ok else "; MISSED") + ")", flush=True)
    if args.json:
        print(json.dumps({"runs": args.runs, "results": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
