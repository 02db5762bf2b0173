"""The benchmark scripts run (their figures are printed, never asserted here)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT


def test_scaling_bench_runs() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "scaling.py"), "--runs", "3"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ratio" in out.stdout


def test_startup_bench_runs() -> None:
    floor = ROOT.parent / "shared" / "bench" / "floor_app.py"
    if not floor.exists() or shutil.which("bertcalc") is None:
        pytest.skip("needs ../shared/bench/floor_app.py and an installed bertcalc")
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "startup.py"), "--runs", "1", "--warmup", "0",
                          "--commands", "count --preset,inspect", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert {"floor_median_ms", "ours_median_ms", "median_ratio", "commands"} <= set(result)
    rows = {(r["command"], r["mode"]) for r in result["commands"]}
    assert rows == {(c, m) for c in ("count --preset base", "inspect DIR") for m in ("terminal", "pipe", "json")}


def test_throughput_bench_runs() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "throughput.py"), "--seconds", "0.01", "--rounds", "1",
                          "--repeat", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result["distinct"]) == {"count", "count(preset=…)", "flops", "memory", "memory(fit=…, reserved=False)"}
