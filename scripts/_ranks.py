"""What the multi-rank CPU measurements share (scripts/measure_fsdp_cpu.py, scripts/measure_deepspeed_cpu.py):
the CPU storage harness of scripts/measure_cpu_storage.py, spawning one world of local ranks after another and
gathering each rank's records, and writing the records as JSONL (temp file + rename)."""

from __future__ import annotations

import importlib.util
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def harness() -> Any:
    """scripts/measure_cpu_storage.py as a module: its model builders, inputs and ``StorageTracker`` (loading it
    also routes dropout through native_dropout, as there)."""
    spec = importlib.util.spec_from_file_location("measure_cpu_storage", HERE / "measure_cpu_storage.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def rank_file(out_dir: str, world: int, rank: int) -> Path:
    """Where rank ``rank`` of a ``world``-rank run writes its records (a JSON list)."""
    return Path(out_dir, f"rank{world}_{rank}.json")


def spawn(worker: Callable[..., None], worlds: tuple[int, ...], port: int, cases: list | None) -> list[dict[str, Any]]:
    """Run ``worker(rank, world, port, out_dir, cases)`` on each world size in turn (a fresh port each), and
    return every rank's records, world by world, rank by rank."""
    import torch.multiprocessing as mp

    recs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, w in enumerate(worlds):
            mp.spawn(worker, args=(w, port + i, tmp, cases), nprocs=w, join=True)
            for r in range(w):
                recs += json.loads(rank_file(tmp, w, r).read_text())
    return recs


def write_jsonl(out: str, meta: dict[str, Any], recs: list[dict[str, Any]]) -> None:
    """A metadata line, then one record per line; written beside ``out`` and renamed, so no half file is left."""
    tmp = Path(out + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(json.dumps({"meta": meta}) + "\n")
        for r in recs:
            fh.write(json.dumps(r) + "\n")
    tmp.replace(out)
