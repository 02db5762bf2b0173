"""Per-rank live tensor bytes of a DeepSpeed ZeRO-1/2/3 training step on the CPU, over gloo.

DeepSpeed 0.19.8 runs on its CPU accelerator (``DS_ACCELERATOR=cpu``) with ``deepspeed.init_distributed(
dist_backend="gloo")``. ``torch.multiprocessing`` spawns W local processes (W = 2 and 4) on 127.0.0.1; each
builds the same HF model (eager attention, seeded), hands it to ``deepspeed.initialize`` with ``bf16`` enabled
and a fused ``torch.optim.AdamW`` (no parameter-sized temporaries in its step, as DeepSpeed's FusedAdam on a
GPU), and runs two steps. The second is measured by the storage tracker of ``scripts/measure_cpu_storage.py``;
its baseline is every tensor alive before the step (found through ``gc``: the bit16 parameters, the fp32
partitions, the optimizer states, the gradient partition, buffers), the inputs excepted.

Every case runs in a fresh world of processes (one ``torch.multiprocessing`` spawn per case and world size).
DeepSpeed 0.19.8 never frees a ZeRO-3 engine: ``runtime/zero/parameter_offload.py`` keeps the root module in
its module-level ``FWD_MODULE_STACK``, and the forward pre-hook that ``runtime/engine.py``
(``DeepSpeedEngine._create_module_forward_pre_hook``) puts on that module closes over the engine, so
``engine.destroy()`` and ``del engine`` leave its fp32 partition, Adam states, ``lp_param_buffer``,
``grad_partitions_flat_buffer`` and persistent parameters alive. Run in one process, a ZeRO-3 case would add
its state (9,932,288 B per rank for bert-small on 2 ranks) to the baseline and peak of every case after it.

``reduce_bucket_size`` is set to 2e6 elements (the default, 5e8, would be a 1 GB bucket that hides everything
else at this size, and a parameter larger than the bucket takes another path) and
``stage3_prefetch_bucket_size`` to 1e5; bertcalc is given the same values. ``peak_bytes`` is the whole step's
peak (forward, backward and ``engine.step()``).

    DS_ACCELERATOR=cpu DS_BUILD_OPS=0 timeout 3600 \
        python scripts/measure_deepspeed_cpu.py tests/fixtures/memory/deepspeed_cpu_gloo.jsonl    # 5-8 min, 2 cores
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from typing import Any

import torch
from _ranks import harness, rank_file, spawn, write_jsonl

REDUCE_BUCKET = 2_000_000
PREFETCH_BUCKET = 100_000

CASES: list[tuple] = [  # name, HF BertConfig kwargs, head, B, S, ZeRO stage
    *[("bert-small", dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512,
                          vocab_size=5001), "seq-cls", 4, 64, st) for st in (1, 2, 3)],
    *[("bert-odd", dict(num_hidden_layers=3, hidden_size=192, num_attention_heads=3, intermediate_size=500,
                        vocab_size=3001), "mlm", 2, 128, st) for st in (2, 3)],
]


def one_case(h: Any, rank: int, world: int, case: tuple) -> dict[str, Any]:
    import deepspeed

    name, kw, head, batch, seq, stage = case
    torch.manual_seed(0)
    cfg, model = h.build_model("bert", head, kw)
    conf = {"train_micro_batch_size_per_gpu": batch, "bf16": {"enabled": True},
            "zero_optimization": {"stage": stage, "reduce_bucket_size": REDUCE_BUCKET,
                                  "stage3_prefetch_bucket_size": PREFETCH_BUCKET},
            "zero_allow_untested_optimizer": True}
    client = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=client, config=conf)
    torch.manual_seed(1 + rank)
    ids, labels = h.make_inputs("bert", head, cfg, batch, seq)
    loss = engine(input_ids=ids, **labels).loss
    engine.backward(loss)
    engine.step()
    del loss
    gc.collect()
    tr = h.StorageTracker()
    skip = {t.untyped_storage().data_ptr() for t in [ids, *labels.values()]}
    for obj in gc.get_objects():
        if isinstance(obj, torch.Tensor) and obj.device.type == "cpu":
            try:
                st = obj.untyped_storage()
            except (RuntimeError, NotImplementedError):
                continue
            if st.data_ptr() not in skip:
                tr.add_baseline(obj)
    tr.reset_peak()
    rec: dict[str, Any] = dict(config=name, family="bert", head=head, hf_config=kw, batch=batch, seq=seq,
                               stage=stage, world=world, rank=rank, precision="bf16",
                               reduce_bucket_size=REDUCE_BUCKET, stage3_prefetch_bucket_size=PREFETCH_BUCKET,
                               optimizer="AdamW(fused=True)")
    rec["steady_bytes"] = tr.now()
    with tr:
        tr.phase = "forward"
        loss = engine(input_ids=ids, **labels).loss
        tr.phase = "backward"
        engine.backward(loss)
        rec["peak_fwd_bwd_bytes"] = tr.peak
        rec["after_backward_bytes"] = tr.now()
        rec["peak_fwd_bwd_top"] = tr.top(6)
        tr.phase = "step"
        engine.step()
        del loss
    rec["peak_bytes"] = tr.peak
    rec["peak_op"], rec["peak_phase"] = tr.peak_op, tr.peak_phase
    engine.destroy()
    del engine, model, client
    gc.collect()
    return rec


def worker(rank: int, world: int, port: int, out_dir: str, cases: list | None = None) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_SIZE=str(world), DS_ACCELERATOR="cpu")
    torch.set_num_threads(1)
    import deepspeed

    deepspeed.init_distributed(dist_backend="gloo")
    h = harness()
    recs = [one_case(h, rank, world, c) for c in (CASES if cases is None else cases)]
    rank_file(out_dir, world, rank).write_text(json.dumps(recs))


def run(worlds: tuple[int, ...], port: int = 29743, cases: list | None = None) -> list[dict[str, Any]]:
    """Every case of ``cases`` (default CASES) on every world size, each in its own spawn (see the docstring:
    a ZeRO-3 engine outlives its case); the records come world by world, rank by rank, case by case."""
    cases = CASES if cases is None else cases
    recs: list[dict[str, Any]] = []
    for i, w in enumerate(worlds):
        per_case = [spawn(worker, (w,), port + i * len(cases) + k, [c]) for k, c in enumerate(cases)]
        for r in range(w):
            recs += [pc[r] for pc in per_case]
    return recs


def main(argv: list[str] | None = None) -> int:
    import deepspeed
    import transformers

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="output JSONL")
    ap.add_argument("--worlds", default="2,4", help="world sizes, comma-separated (default 2,4)")
    args = ap.parse_args(argv)
    t0 = time.time()
    recs = run(tuple(int(w) for w in args.worlds.split(",")))
    meta = {"torch": torch.__version__, "transformers": transformers.__version__, "deepspeed": deepspeed.__version__,
            "device": "cpu (DS_ACCELERATOR=cpu)", "backend": "gloo",
            "method": "storage: live tensor storages through a TorchDispatchMode, CUDA-rounded; the baseline is "
                      "every tensor alive before the measured step (gc), inputs excepted",
            "date": time.strftime("%Y-%m-%d")}
    write_jsonl(args.out, meta, recs)
    for r in recs:
        print(f"{r['config']:11} {r['head']:8} ZeRO-{r['stage']} W={r['world']} rank {r['rank']} "
              f"peak {r['peak_bytes']:>12,} ({r['peak_phase']}, {r['peak_op']})")
    print(f"{len(recs)} records in {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
