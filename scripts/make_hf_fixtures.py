"""Generate the HuggingFace fixtures that bertcalc's shapes are tested against.

For each case below, build the real ``transformers`` model from a config (never from the hub) on the meta
device, so no weights are allocated, and record every state-dict name with its shape, plus
``model.num_parameters()``. The JSON files land in ``tests/fixtures/hf/`` and are committed; the test suite
reads them without torch.

    pip install torch==2.13.0 transformers
    python scripts/make_hf_fixtures.py            # rewrite every fixture
    python scripts/make_hf_fixtures.py --check    # exit 1 if a committed fixture differs from transformers
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "hf"

BERT_PRESETS = {
    "tiny": dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512),
    "mini": dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024),
    "small": dict(num_hidden_layers=4, hidden_size=512, num_attention_heads=8, intermediate_size=2048),
    "medium": dict(num_hidden_layers=8, hidden_size=512, num_attention_heads=8, intermediate_size=2048),
    "base": dict(),
    "large": dict(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16, intermediate_size=4096),
    "base-cased": dict(vocab_size=28996),
    "large-cased": dict(vocab_size=28996, num_hidden_layers=24, hidden_size=1024, num_attention_heads=16,
                        intermediate_size=4096),
    "base-chinese": dict(vocab_size=21128),
    "base-multilingual-cased": dict(vocab_size=119547),
}

# Odd shapes that a formula written for BERT-base would get wrong.
BERT_ODD = {
    "odd-l0": dict(vocab_size=100, hidden_size=16, num_hidden_layers=0, num_attention_heads=4, intermediate_size=40,
                   max_position_embeddings=32, type_vocab_size=1),
    "odd-l1": dict(vocab_size=11, hidden_size=12, num_hidden_layers=1, num_attention_heads=3, intermediate_size=7,
                   max_position_embeddings=5, type_vocab_size=3),
    "odd-l3-a1": dict(vocab_size=1000, hidden_size=64, num_hidden_layers=3, num_attention_heads=1,
                      intermediate_size=100, max_position_embeddings=128, type_vocab_size=4),
}


def cases() -> list[dict]:
    out = []
    for name, cfg in {**BERT_PRESETS, **BERT_ODD}.items():
        for pooler in (True, False):
            out.append(dict(case=f"bert-{name}-model{'' if pooler else '-nopooler'}", family="bert", head="model",
                            config=cfg, pooler=pooler))
    return out


def build(case: dict):
    import torch
    import transformers

    cfg = transformers.BertConfig(**case["config"])
    with torch.device("meta"):
        if case["head"] == "model":
            model = transformers.BertModel(cfg, add_pooling_layer=case["pooler"])
        else:  # pragma: no cover - later heads
            raise ValueError(case["head"])
    return cfg, model


def record(case: dict) -> dict:
    import torch
    import transformers

    cfg, model = build(case)
    sd = model.state_dict()
    shape_keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                  "max_position_embeddings", "type_vocab_size")
    return {
        "case": case["case"],
        "family": case["family"],
        "head": case["head"],
        "pooler": case["pooler"],
        "model_class": type(model).__name__,
        "config": {k: getattr(cfg, k) for k in shape_keys},
        "num_parameters": model.num_parameters(),
        "state_dict": [[k, list(v.shape)] for k, v in sd.items()],
        "generated_by": {"transformers": transformers.__version__, "torch": torch.__version__},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed fixtures; write nothing")
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    bad = 0
    for case in cases():
        rec = record(case)
        path = OUT / f"{case['case']}.json"
        text = json.dumps(rec, indent=1) + "\n"
        if args.check:
            old = json.loads(path.read_text()) if path.exists() else None
            same = old is not None and {k: v for k, v in old.items() if k != "generated_by"} == {
                k: v for k, v in rec.items() if k != "generated_by"
            }
            if not same:
                bad += 1
                print(f"differs: {path.name}")
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(OUT.parent.parent.parent)}  ({len(rec['state_dict'])} tensors, "
                  f"{rec['num_parameters']:,} parameters)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
