"""Every #11 speed figure in one run: start-up ratios, library rates, fit cost, shapes throughput and
streaming, and the cost of depth, each printed by its own script with its medians and targets.

    OMP_NUM_THREADS=1 python bench/all.py            # about 10 minutes on 2 cores
    OMP_NUM_THREADS=1 python bench/all.py --quick    # fewer runs: a smoke run, not figures to quote

Start-up is measured on the ``bertcalc`` on PATH (install the wheel first: an editable install reads the YAML
presets). Not a test: no test depends on timing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (script, full arguments, --quick arguments)
SCRIPTS = [
    ("startup.py", ["--runs", "15"], ["--runs", "2", "--warmup", "0"]),
    ("throughput.py", ["--seconds", "1", "--rounds", "5", "--repeat"], ["--seconds", "0.1", "--rounds", "1"]),
    ("fit.py", [], ["--seconds", "0.2", "--rounds", "1"]),
    ("shapes.py", [], ["--configs", "200", "--rounds", "1"]),
    ("stream.py", [], ["--layers", "10000", "--runs", "1"]),
    ("scaling.py", [], ["--runs", "5"]),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few runs of each: checks the scripts run")
    ap.add_argument("--only", default="", help="comma-separated script names (startup, throughput, ...)")
    args = ap.parse_args(argv)
    only = {s.strip().removesuffix(".py") for s in args.only.split(",") if s.strip()}
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    failed = []
    for script, full, quick in SCRIPTS:
        if only and script.removesuffix(".py") not in only:
            continue
        cmd = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        print(f"\n=== bench/{script} {' '.join(quick if args.quick else full)}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, env=env).returncode
        print(f"--- {script}: exit {rc}, {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
