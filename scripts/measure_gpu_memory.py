"""Measure peak GPU memory of HF BERT-family models, to check bertcalc's memory model on more configurations.

The method is ../shared/measured/measure_memory.py's, unchanged: ``torch.cuda.max_memory_allocated`` over a
no-grad forward, or over the second of two training steps (forward, backward, fused AdamW, zero_grad with
set_to_none). This script adds configurations the shared table lacks (tiny to large, other families) and
records the GPU, torch and transformers versions on the first line. Compare with:

    python scripts/measure_gpu_memory.py OUT.jsonl              # on a machine with a CUDA GPU
    python bench/memory_accuracy.py OUT.jsonl

    python scripts/measure_gpu_memory.py --list                 # the cases, without a GPU

No GPU was available to the session that wrote this script; the tables in docs/memory.md come from the
shared H100 measurements and from scripts/measure_cpu_memory.py.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time

CONFIGS = {  # name: (family, HF config kwargs)
    "tiny": ("bert", dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512)),
    "small": ("bert", dict(num_hidden_layers=4, hidden_size=512, num_attention_heads=8, intermediate_size=2048)),
    "base": ("bert", dict()),
    "large": ("bert", dict(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16, intermediate_size=4096)),
    "roberta-base": ("roberta", dict(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1)),
    "distilbert-base": ("distilbert", dict()),
    "albert-base-v2": ("albert", dict(vocab_size=30000, embedding_size=128, hidden_size=768, num_attention_heads=12,
                                      intermediate_size=3072, hidden_act="gelu_new")),
    "electra-small": ("electra", dict()),
}
FAMILY = {"bert": ("BertConfig", "Bert"), "roberta": ("RobertaConfig", "Roberta"),
          "distilbert": ("DistilBertConfig", "DistilBert"), "albert": ("AlbertConfig", "Albert"),
          "electra": ("ElectraConfig", "Electra")}
SHAPES = [(8, 128), (32, 128), (8, 512), (32, 512)]
MODES = ["infer_fp32", "infer_bf16", "train_fp32", "train_amp_bf16"]
HEADS = {"mlm": "ForMaskedLM", "cls": "ForSequenceClassification"}


def cases():
    for name, (family, cfg) in CONFIGS.items():
        for head in HEADS:
            for mode in MODES:
                for attn in ("eager", "sdpa"):
                    for batch, seq in SHAPES:
                        yield name, family, cfg, head, mode, attn, batch, seq


def one(name, family, cfg_kw, head, mode, attn, batch, seq, out):
    import torch
    import transformers

    def mem():
        torch.cuda.synchronize()
        return torch.cuda.memory_allocated()

    cfg_cls, prefix = FAMILY[family]
    cfg = getattr(transformers, cfg_cls)(**cfg_kw, num_labels=2)
    rec = dict(config=name, family=family, head=head, mode=mode, attn=attn, batch=batch, seq=seq, hf_config=cfg_kw)
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = mem()
    with torch.device("cuda"):
        model = getattr(transformers, prefix + HEADS[head]).from_config(cfg, attn_implementation=attn)
    rec["params"] = sum(p.numel() for p in model.parameters())
    if mode == "infer_bf16":
        model = model.to(torch.bfloat16)
    rec["weights_bytes"] = mem() - base
    ids = torch.randint(0, cfg.vocab_size, (batch, seq), device="cuda")
    labels = (torch.randint(0, cfg.vocab_size, (batch, seq), device="cuda") if head == "mlm"
              else torch.randint(0, 2, (batch,), device="cuda"))
    try:
        if mode.startswith("infer"):
            model.eval()
            with torch.no_grad():
                for _ in range(2):
                    torch.cuda.reset_peak_memory_stats()
                    before = mem()
                    y = model(input_ids=ids).logits
                    rec["peak_bytes"] = torch.cuda.max_memory_allocated() - base
                    rec["output_bytes"] = mem() - before
                    del y
        else:
            model.train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
            amp = mode == "train_amp_bf16"

            def step(record):
                before = mem()
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                    loss = model(input_ids=ids, labels=labels).loss
                if record:
                    rec["saved_activations_bytes"] = mem() - before
                loss.backward()
                if record:
                    rec["after_backward_bytes"] = mem() - base
                opt.step()
                opt.zero_grad(set_to_none=True)

            step(False)
            torch.cuda.reset_peak_memory_stats()
            rec["steady_bytes"] = mem() - base
            step(True)
            rec["peak_bytes"] = torch.cuda.max_memory_allocated() - base
            opt = None
        rec["ok"] = True
    except torch.cuda.OutOfMemoryError:
        rec["ok"], rec["error"] = False, "OOM"
    model = None  # release it before the next case
    out.write(json.dumps(rec) + "\n")
    out.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", help="output JSONL")
    ap.add_argument("--list", action="store_true", help="print the cases and exit")
    args = ap.parse_args(argv)
    if args.list or not args.out:
        for c in cases():
            print(*c[:2], *c[3:])
        return 0
    import torch
    import transformers

    if not torch.cuda.is_available():
        print("measure_gpu_memory: no CUDA device; see scripts/measure_cpu_memory.py", file=sys.stderr)
        return 2
    with open(args.out, "w") as out:
        meta = dict(torch=torch.__version__, transformers=transformers.__version__,
                    gpu=torch.cuda.get_device_name(), total_bytes=torch.cuda.get_device_properties(0).total_memory,
                    date=time.strftime("%Y-%m-%d"))
        out.write(json.dumps({"meta": meta}) + "\n")
        for c in cases():
            one(*c, out)
            print(*c[:2], *c[3:], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
