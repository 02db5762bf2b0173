"""Measure what the reserved-memory model predicts: ``torch.cuda.max_memory_reserved()`` of a training step,
the CUDA context, and the largest batch that trains, by bisection, on a CUDA GPU.

    python scripts/measure_gpu_reserved.py OUT.jsonl          # on a machine with a CUDA GPU
    python scripts/measure_gpu_reserved.py --list             # the cases, without a GPU
    python scripts/measure_gpu_reserved.py --compare OUT.jsonl  # bertcalc's figures beside the records

Each measurement runs in a fresh process (``--one``), so that one case's cached segments and an OOM never
touch the next: the model is built on the GPU, two training steps run as in ../shared/measured/
measure_memory.py (forward, backward, fused AdamW, ``zero_grad(set_to_none=True)``), and the process records
``max_memory_reserved``, ``max_memory_allocated`` and, before the model is built, the device's free memory
(``torch.cuda.mem_get_info``) against ``total_memory``: what the CUDA context and the driver take. The max
batch is the largest batch whose two steps run without ``OutOfMemoryError``, by bisection over fresh
processes.

No GPU was available to the session that wrote this script: it has not been run, and no record exists yet.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CASES = [  # (preset, HF class suffix, precision, attention, seq, batches to measure)
    ("base", "mlm", "amp-bf16", "sdpa", 512, (32, 128)),
    ("base", "mlm", "fp32", "eager", 512, (16, 64)),
    ("base", "mlm", "amp-bf16", "eager", 128, (64, 256)),
    ("base", "seq-cls", "amp-bf16", "sdpa", 512, (64, 256)),
    ("large", "mlm", "amp-bf16", "sdpa", 512, (16, 64)),
]
HF = {"mlm": "BertForMaskedLM", "seq-cls": "BertForSequenceClassification"}
CONFIGS = {"base": {}, "large": dict(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16,
                                      intermediate_size=4096)}


def one(preset: str, head: str, precision: str, attention: str, seq: int, batch: int) -> dict:
    import torch
    import transformers

    torch.cuda.init()
    free0, total = torch.cuda.mem_get_info()
    cfg = transformers.BertConfig(**CONFIGS[preset], num_labels=2)
    with torch.device("cuda"):
        model = getattr(transformers, HF[head]).from_config(cfg, attn_implementation=attention)
    model.train()
    ids = torch.randint(0, cfg.vocab_size, (batch, seq), device="cuda")
    labels = (torch.randint(0, cfg.vocab_size, (batch, seq), device="cuda") if head == "mlm"
              else torch.randint(0, 2, (batch,), device="cuda"))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    rec = dict(preset=preset, head=head, precision=precision, attention=attention, seq=seq, batch=batch,
               total_memory=total, free_before_model=free0)
    try:
        for _ in range(2):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "amp-bf16"):
                loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        rec.update(ok=True, max_reserved=torch.cuda.max_memory_reserved(),
                   max_allocated=torch.cuda.max_memory_allocated())
    except torch.cuda.OutOfMemoryError:
        rec.update(ok=False, error="OOM")
    return rec


def run_one(case: tuple, batch: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", json.dumps([*case[:5], batch])], capture_output=True,
                         text=True)
    if out.returncode != 0:
        return dict(ok=False, error=out.stderr.strip()[-300:])
    return json.loads(out.stdout)


def max_batch(case: tuple, hi: int = 4096) -> int:
    lo = 0
    b = 1
    while b <= hi and run_one(case, b).get("ok"):
        lo, b = b, b * 2
    hi = min(b, hi + 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if run_one(case, mid).get("ok") else (lo, mid)
    return lo


def compare(path: str) -> int:
    from pathlib import Path

    import bertcalc

    for line in Path(path).read_text().splitlines():
        rec = json.loads(line)
        if "meta" in rec:
            continue
        kw = dict(preset=rec["preset"], head=rec["head"], precision=rec["precision"], attention=rec["attention"],
                  seq=rec["seq"], fit=rec["total_memory"], context=rec["total_memory"] - rec["free_before_model"])
        if "max_batch" in rec:
            r = bertcalc.memory(**kw)
            print(f"{rec['preset']} {rec['head']} {rec['precision']} {rec['attention']} S={rec['seq']}: max batch "
                  f"measured {rec['max_batch']}, predicted {r.max_batch} ({r.max_batch / rec['max_batch'] - 1:+.1%})")
        elif rec.get("ok"):
            r = bertcalc.memory(**kw, batch=rec["batch"])
            print(f"{rec['preset']} {rec['head']} {rec['precision']} {rec['attention']} {rec['batch']}x{rec['seq']}: "
                  f"reserved measured {rec['max_reserved']:,}, predicted {r.reserved.reserved:,} "
                  f"({r.reserved.reserved / rec['max_reserved'] - 1:+.2%})")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", help="output JSONL")
    ap.add_argument("--list", action="store_true", help="print the cases and exit")
    ap.add_argument("--compare", metavar="JSONL", help="bertcalc's figures beside recorded ones")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(*json.loads(args.one))))
        return 0
    if args.compare:
        return compare(args.compare)
    if args.list or not args.out:
        for c in CASES:
            print(*c)
        return 0
    import torch

    if not torch.cuda.is_available():
        print("measure_gpu_reserved: no CUDA device", file=sys.stderr)
        return 2
    with open(args.out, "w") as out:
        import transformers

        out.write(json.dumps({"meta": dict(torch=torch.__version__, transformers=transformers.__version__,
                                           gpu=torch.cuda.get_device_name(), date=time.strftime("%Y-%m-%d"))}) + "\n")
        for case in CASES:
            for b in case[5]:
                out.write(json.dumps(run_one(case, b)) + "\n")
                out.flush()
            rec = run_one(case, 1)
            rec.update(max_batch=max_batch(case), batch=None)
            out.write(json.dumps(rec) + "\n")
            out.flush()
            print(*case[:5], rec["max_batch"], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
