"""Per-rank live tensor bytes of an FSDP2 (``fully_shard``) training step on the CPU, over gloo.

``torch.multiprocessing`` spawns W local processes (W = 2 and 4) on 127.0.0.1; each builds the same HF model
(eager attention, fp32, seeded), applies ``fully_shard`` to every encoder layer and then to the root (the
recipe of torch's FSDP2 docs), and runs two training steps with ``AdamW(foreach=False)``. The second is
measured by the storage tracker of ``scripts/measure_cpu_storage.py`` (a ``TorchDispatchMode``: every aten
op's output storages, CUDA-rounded, with their lifetimes), with three additions FSDP2 needs:

- DTensor outputs are counted by their local tensor (``_local_tensor``), which is what the rank holds;
- the unsharded parameters' storages (each ``FSDPParam.all_gather_outputs``) are freed and refilled with
  ``untyped_storage().resize_()`` rather than by dropping the tensor: they are watched, and counted at their
  current size after every op;
- the baseline is the rank's sharded parameters (their padded ``_sharded_param_data``), the replicated
  buffers and the optimizer states (on the local shards).

Each rank records its peak over the forward and backward (``peak_fwd_bwd_bytes``) and its live bytes after
the backward (``after_backward_bytes``: shards, optimizer states, sharded gradients — what a fused optimizer
step peaks at on a GPU; this AdamW(foreach=False) makes parameter-sized temporaries on the CPU, recorded as
``peak_step_bytes``). ``peak_bytes`` is the larger of the first two, the figure bertcalc predicts.

    python scripts/measure_fsdp_cpu.py tests/fixtures/memory/fsdp2_cpu_gloo.jsonl    # about two minutes
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
import torch.distributed as dist
from _ranks import harness, rank_file, spawn, write_jsonl

# name, family, HF kwargs, head, B, S, reshard_after_forward[, MixedPrecisionPolicy param_dtype]
CASES: list[tuple] = [
    ("bert-small", "bert", dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512),
     "model", 4, 64, True),
    ("bert-small", "bert", dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512),
     "mlm", 4, 64, True),
    ("bert-small", "bert", dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512),
     "seq-cls", 4, 64, False),
    ("bert-odd", "bert", dict(num_hidden_layers=4, hidden_size=192, num_attention_heads=3, intermediate_size=500,
                              vocab_size=5001), "seq-cls", 2, 128, True),
    ("bert-odd", "bert", dict(num_hidden_layers=4, hidden_size=192, num_attention_heads=3, intermediate_size=500,
                              vocab_size=5001), "mlm", 2, 128, False),
    ("roberta-small", "roberta", dict(num_hidden_layers=3, hidden_size=128, num_attention_heads=2,
                                      intermediate_size=512, max_position_embeddings=514, type_vocab_size=1,
                                      vocab_size=3001), "token-cls", 4, 64, True),
    ("bert-small", "bert", dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512),
     "seq-cls", 4, 64, True, "bf16"),
    ("bert-odd", "bert", dict(num_hidden_layers=4, hidden_size=192, num_attention_heads=3, intermediate_size=500,
                              vocab_size=5001), "mlm", 2, 128, True, "bf16"),
]


def _local(t: torch.Tensor) -> torch.Tensor:
    from torch.distributed.tensor import DTensor

    return t._local_tensor if isinstance(t, DTensor) else t


def make_tracker(h: Any) -> Any:
    from torch.utils._pytree import tree_flatten

    class FSDPTracker(h.StorageTracker):
        def __init__(self) -> None:
            super().__init__()
            self.watched: list[torch.UntypedStorage] = []
            self.watched_bytes = 0
            self.peak_watched = 0

        def watch(self, t: torch.Tensor) -> None:
            self.watched.append(t.untyped_storage())

        def count(self, op: str) -> int:
            w = sum(h.cuda_round(st.nbytes()) for st in self.watched)
            self.live += w - self.watched_bytes
            self.watched_bytes = w
            before = self.peak
            live = super().count(op)
            if self.peak > before:
                self.peak_watched = w
            return live

        def now(self) -> int:
            self._sweep()
            self.count("now")
            return self.live

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            self._sweep()
            name = func.__name__ if hasattr(func, "__name__") else str(func)
            flat_in = [_local(t) for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
            inputs = {t.untyped_storage().data_ptr() for t in flat_in}
            watched = {st.data_ptr() for st in self.watched if st.nbytes()}
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    t = _local(t)
                    key = t.untyped_storage().data_ptr()
                    if key in watched:
                        continue
                    self.add(t, name, fresh=key not in inputs)
            self.count(name)
            return out

    return FSDPTracker


def one_case(h: Any, rank: int, world: int, case: tuple) -> dict[str, Any]:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    name, family, kw, head, batch, seq, reshard = case[:7]
    param_dtype = case[7] if len(case) > 7 else None
    mp = MixedPrecisionPolicy() if param_dtype is None else \
        MixedPrecisionPolicy(param_dtype=getattr(torch, {"bf16": "bfloat16", "fp16": "float16"}[param_dtype]),
                             reduce_dtype=torch.float32)
    torch.manual_seed(0)
    cfg, model = h.build_model(family, head, kw)
    mesh = init_device_mesh("cpu", (world,))
    base = getattr(model, model.base_model_prefix, model)
    for layer in base.encoder.layer:
        fully_shard(layer, mesh=mesh, reshard_after_forward=reshard, mp_policy=mp)
    fully_shard(model, mesh=mesh, mp_policy=mp)
    model.train()
    torch.manual_seed(1 + rank)  # each rank its own local batch
    ids, labels = h.make_inputs(family, head, cfg, batch, seq)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, foreach=False)

    def loss_of(out: Any) -> torch.Tensor:
        if head != "model":
            return out.loss
        return out.pooler_output.sum() if getattr(out, "pooler_output", None) is not None else \
            out.last_hidden_state.sum()

    loss = loss_of(model(input_ids=ids, **labels))  # warm-up: lazy init, optimizer state
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    del loss
    gc.collect()
    tracker_cls = make_tracker(h)
    tr = tracker_cls()
    from torch.distributed.fsdp._fully_shard._fsdp_state import _get_module_fsdp_state

    seen: set[int] = set()
    for mod in model.modules():
        state = _get_module_fsdp_state(mod)
        if state is None:
            continue
        for group in state._fsdp_param_groups:
            for fp in group.fsdp_params:
                for t in fp.all_gather_outputs:  # resharded now: size 0, data_ptr 0; told apart by _cdata
                    if t.untyped_storage()._cdata not in seen:
                        seen.add(t.untyped_storage()._cdata)
                        tr.watch(t)
    for p in model.parameters():
        tr.add_baseline(_local(p))
    for b in model.buffers():
        tr.add_baseline(b)
    for st in opt.state.values():
        for t in st.values():
            if isinstance(t, torch.Tensor):
                tr.add_baseline(_local(t))
    tr.reset_peak()
    rec: dict[str, Any] = dict(config=name, family=family, head=head, batch=batch, seq=seq, hf_config=kw,
                               world=world, rank=rank, reshard_after_forward=reshard, param_dtype=param_dtype,
                               optimizer="AdamW(foreach=False)")
    rec["steady_bytes"] = tr.now()
    rec["unsharded_at_start_bytes"] = tr.watched_bytes
    with tr:
        tr.phase = "forward"
        loss = loss_of(model(input_ids=ids, **labels))
        tr.phase = "backward"
        loss.backward()
        rec["after_backward_bytes"] = tr.now()
        rec["peak_fwd_bwd_bytes"] = tr.peak
        rec["peak_fwd_bwd_op"], rec["peak_fwd_bwd_phase"] = tr.peak_op, tr.peak_phase
        rec["peak_fwd_bwd_top"] = tr.top(6)
        rec["peak_fwd_bwd_unsharded_bytes"] = tr.peak_watched  # the unsharded parameters at the peak
        tr.phase = "step"
        tr.reset_peak()
        opt.step()
        rec["peak_step_bytes"] = tr.peak
        opt.zero_grad(set_to_none=True)
        del loss
    rec["peak_bytes"] = max(rec["peak_fwd_bwd_bytes"], rec["after_backward_bytes"])
    del model, opt
    gc.collect()
    return rec


def worker(rank: int, world: int, port: int, out_dir: str, cases: list | None = None) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    h = harness()
    recs = [one_case(h, rank, world, c) for c in (CASES if cases is None else cases)]
    rank_file(out_dir, world, rank).write_text(json.dumps(recs))
    dist.barrier()
    dist.destroy_process_group()


def run(worlds: tuple[int, ...], port: int = 29533, cases: list | None = None) -> list[dict[str, Any]]:
    return spawn(worker, worlds, port, cases)


def main(argv: list[str] | None = None) -> int:
    import transformers

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="output JSONL")
    ap.add_argument("--worlds", default="2,4", help="world sizes, comma-separated (default 2,4)")
    args = ap.parse_args(argv)
    t0 = time.time()
    recs = run(tuple(int(w) for w in args.worlds.split(",")))
    meta = {"torch": torch.__version__, "transformers": transformers.__version__, "device": "cpu", "backend": "gloo",
            "method": "storage: live tensor storages through a TorchDispatchMode, CUDA-rounded; DTensors by their "
                      "local tensor; FSDPParam.all_gather_outputs watched at their current size",
            "wrapping": "fully_shard(each encoder layer, reshard_after_forward=R); fully_shard(root)",
            "date": time.strftime("%Y-%m-%d")}
    write_jsonl(args.out, meta, recs)
    for r in recs:
        print(f"{r['config']:14} {r['head']:9} W={r['world']} rank {r['rank']} reshard={r['reshard_after_forward']!s:5}"
              f" peak {r['peak_bytes']:>12,}  ({r['peak_fwd_bwd_phase']}, {r['peak_fwd_bwd_op']})")
    print(f"{len(recs)} records in {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
