"""Measure what HF BERT models hold in memory on the CPU, as a stand-in for torch.cuda.max_memory_allocated.

No GPU is needed. Live bytes are read from glibc's allocator (``mallinfo2``: heap in use + mmapped) after
every aten op, through a TorchDispatchMode, in the forward and the backward alike; the peak of a training
step is the largest reading. Dropout is routed through ``native_dropout`` so that, as on CUDA, it saves a
one-byte mask instead of a float noise tensor. Everything else (what autograd saves, in which dtype) is the
same code path as on the GPU for fp32 eager attention; sdpa backends and autocast differ on the CPU, so
those are measured on the GPU only (../shared/measured/, or scripts/measure_gpu_memory.py).

The records mirror ../shared/measured/measure_memory.py: weights_bytes, peak_bytes, and for training
steady_bytes, saved_activations_bytes, after_backward_bytes.

    python scripts/measure_cpu_memory.py OUT.jsonl            # the default sweep
"""

from __future__ import annotations

import ctypes
import gc
import json
import sys

import torch
import transformers
from torch.utils._python_dispatch import TorchDispatchMode


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


_libc = ctypes.CDLL("libc.so.6")
_libc.mallinfo2.restype = _MallInfo2


def used() -> int:
    m = _libc.mallinfo2()
    return m.uordblks + m.hblkhd


class PeakMode(TorchDispatchMode):
    """Reads live bytes after every aten op (forward and backward)."""

    def __init__(self) -> None:
        super().__init__()
        self.peak = used()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.peak = max(self.peak, used())
        return out


def _cuda_like_dropout(input, p=0.5, training=True, inplace=False):
    if not training or p == 0:
        return input
    return torch.native_dropout(input, p, True)[0]


torch.nn.functional.dropout = _cuda_like_dropout

HEADS = {"mlm": "ForMaskedLM", "cls": "ForSequenceClassification"}
FAMILY = {"bert": ("BertConfig", "Bert"), "roberta": ("RobertaConfig", "Roberta"),
          "distilbert": ("DistilBertConfig", "DistilBert"), "albert": ("AlbertConfig", "Albert"),
          "electra": ("ElectraConfig", "Electra")}


def one(name: str, cfg_kw: dict, head: str, mode: str, batch: int, seq: int, family: str = "bert") -> dict:
    torch.manual_seed(0)
    cfg_cls, prefix = FAMILY[family]
    cfg = getattr(transformers, cfg_cls)(**cfg_kw, num_labels=2)
    cls = getattr(transformers, prefix + HEADS[head])
    rec = dict(config=name, family=family, head=head, mode=mode, attn="eager", batch=batch, seq=seq,
               hf_config=cfg_kw, device="cpu")
    gc.collect()
    base = used()
    model = cls._from_config(cfg, attn_implementation="eager")
    rec["params"] = sum(p.numel() for p in model.parameters())
    rec["weights_bytes"] = used() - base
    ids = torch.randint(0, cfg.vocab_size, (batch, seq))
    labels = torch.randint(0, cfg.vocab_size, (batch, seq)) if head == "mlm" else torch.randint(0, 2, (batch,))
    if mode == "infer_fp32":
        model.eval()
        with torch.no_grad():
            for _ in range(2):
                gc.collect()
                m = PeakMode()
                with m:
                    y = model(input_ids=ids).logits
                rec["peak_bytes"] = m.peak - base
                del y
    else:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5, foreach=False)

        def step(record: bool) -> None:
            gc.collect()
            m = PeakMode()
            before = used()
            with m:
                loss = model(input_ids=ids, labels=labels).loss
                if record:
                    rec["saved_activations_bytes"] = used() - before
                loss.backward()
            if record:
                rec["after_backward_bytes"] = used() - base
                rec["peak_bytes"] = m.peak - base
            opt.step()
            opt.zero_grad(set_to_none=True)

        step(False)
        gc.collect()
        rec["steady_bytes"] = used() - base
        step(True)
    model = None
    return rec


SWEEP = {  # name: (family, config, shapes)
    "tiny": ("bert", dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512),
             [(4, 64), (8, 128), (2, 256)]),
    "mini": ("bert", dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024),
             [(4, 64), (8, 128), (2, 256)]),
    "odd": ("bert", dict(num_hidden_layers=3, hidden_size=192, num_attention_heads=3, intermediate_size=500,
                         vocab_size=5000), [(4, 64), (8, 128), (2, 256)]),
    "small": ("bert", dict(num_hidden_layers=4, hidden_size=512, num_attention_heads=8, intermediate_size=2048),
              [(4, 64), (8, 128), (2, 256)]),
    "large": ("bert", dict(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16, intermediate_size=4096),
              [(2, 64), (1, 256)]),
    "roberta-small": ("roberta", dict(num_hidden_layers=3, hidden_size=256, num_attention_heads=4,
                                      intermediate_size=1024, max_position_embeddings=514, type_vocab_size=1),
                      [(4, 64), (2, 256)]),
    "distilbert-small": ("distilbert", dict(n_layers=3, dim=256, n_heads=4, hidden_dim=1024), [(4, 64), (2, 256)]),
    "albert-small": ("albert", dict(num_hidden_layers=6, hidden_size=256, embedding_size=64, num_attention_heads=4,
                                    intermediate_size=1024), [(4, 64), (2, 256)]),
    "electra-small": ("electra", dict(num_hidden_layers=3, hidden_size=256, embedding_size=128,
                                      num_attention_heads=4, intermediate_size=1024), [(4, 64), (2, 256)]),
}


def main(argv: list[str]) -> int:
    out = argv[0] if argv else "cpu_memory.jsonl"
    with open(out, "w") as fh:
        fh.write(json.dumps({"meta": {"torch": torch.__version__, "transformers": transformers.__version__,
                                      "device": "cpu", "method": "mallinfo2 after every aten op"}}) + "\n")
        for name, (family, cfg, shapes) in SWEEP.items():
            for head in HEADS:
                for mode in ("infer_fp32", "train_fp32"):
                    for b, s in shapes:
                        rec = one(name, cfg, head, mode, b, s, family)
                        fh.write(json.dumps(rec) + "\n")
                        fh.flush()
                        print(name, head, mode, b, s, rec.get("peak_bytes", 0) // 2**20, "MiB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
