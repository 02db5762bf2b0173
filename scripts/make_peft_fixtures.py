"""Generate the PEFT fixtures that bertcalc's ``--lora``/``--adapter``/``--freeze``/``--train`` are tested against.

For every family and every head (a small odd config per family, from ``make_hf_fixtures.py``), build the real
``transformers`` model from its config on the CPU, wrap it with real ``peft`` (``get_peft_model``) in several
adapter configs, and record every parameter's name (``named_parameters(remove_duplicate=False)``, so tied ones
too), shape and ``requires_grad``, and ``get_nb_trainable_parameters()``. A config that peft refuses is
recorded with its error's type. The freeze cases set ``requires_grad`` on the plain HF model the way the
freeze groups are defined below (by HF names, independently of bertcalc), and record the same.

    python scripts/make_peft_fixtures.py            # rewrite tests/fixtures/peft/*.json
    python scripts/make_peft_fixtures.py --only bert
    python scripts/make_peft_fixtures.py --check    # exit 1 if a committed fixture differs from peft today
    python scripts/make_peft_fixtures.py --flops    # tests/fixtures/peft_flops.json: FlopCounterMode on seq-cls
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_hf_fixtures import (
    BERT_PRESETS,
    CLASS_NAMES,
    FAMILY_HEADS,
    FAMILY_ODD,
    HEAD_CLASSES,
    HF_CONFIG,
    HF_PREFIX,
)

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "peft"

# one small config per family (two for BERT)
CONFIGS = {
    "bert-tiny": ("bert", BERT_PRESETS["tiny"]),
    "bert-odd": ("bert", dict(vocab_size=97, hidden_size=45, num_hidden_layers=3, num_attention_heads=5,
                              intermediate_size=70, max_position_embeddings=80, type_vocab_size=3)),
    **{name: FAMILY_ODD[name] for name in ("roberta-odd", "distilbert-odd", "albert-odd-groups",
                                            "electra-odd-noproject", "xlm-roberta-odd", "camembert-odd",
                                            "mpnet-odd", "modernbert-odd", "deberta-odd", "roberta-prelayernorm-odd",
                                            "xlm-roberta-xl-odd")},
    "deberta-odd-v2": ("deberta_v2", {k: v for k, v in FAMILY_ODD["deberta-odd-v2"][1].items()
                                      if k not in ("conv_kernel_size", "conv_groups")}),
    "electra-small": ("electra", dict(embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                      intermediate_size=37, vocab_size=50, max_position_embeddings=40)),
}
# explicit target module names, as a user would write them for each family (HF module names)
EXPLICIT = {
    "bert": ["query", "key", "dense"], "roberta": ["query", "key", "dense"], "electra": ["query", "value", "dense"],
    "xlm_roberta": ["query", "value", "dense"], "camembert": ["key", "dense"],
    "roberta_prelayernorm": ["query", "dense"], "xlm_roberta_xl": ["value", "dense"],
    "distilbert": ["q_lin", "v_lin", "lin1"], "albert": ["query", "value", "ffn"],
    "deberta_v2": ["query_proj", "value_proj", "dense"], "mpnet": ["q", "v", "dense"], "modernbert": ["Wqkv", "Wo"],
}
# a layer-1 module for rank_pattern / alpha_pattern keys, and a regex over layer 0 for target_modules as a string
LAYER_KEY = {
    "bert": "layer.1.attention.self.query", "roberta": "layer.1.attention.self.query",
    "electra": "layer.1.attention.self.query", "xlm_roberta": "layer.1.attention.self.value",
    "camembert": "layer.1.attention.self.key", "roberta_prelayernorm": "layer.1.attention.self.query",
    "xlm_roberta_xl": "layer.1.attention.self.value", "distilbert": "layer.1.attention.q_lin",
    "albert": "attention.query", "deberta_v2": "layer.1.attention.self.query_proj",
    "mpnet": "layer.1.attention.attn.q", "modernbert": "layers.1.attn.Wqkv",
}
# a module-name suffix that every LayerNorm of the family ends with (modules_to_save matches by endswith)
NORM = {f: "LayerNorm" for f in EXPLICIT} | {"distilbert": "layer_norm", "modernbert": "norm"}
TASK = {"seq-cls": "SEQ_CLS", "token-cls": "TOKEN_CLS", "qa": "QUESTION_ANS"}


def adapter_configs(family: str, head: str) -> dict[str, dict]:
    """name -> LoraConfig keyword arguments (task_type from the head, as bertcalc's default)."""
    task = TASK.get(head)
    t = EXPLICIT[family]
    key = LAYER_KEY[family]
    base = dict(r=4, lora_alpha=8, lora_dropout=0.1, task_type=task)
    return {
        "default": dict(base),
        "explicit": dict(base, target_modules=t),
        "all-linear": dict(base, target_modules="all-linear"),
        "all-linear-bias-all": dict(base, target_modules="all-linear", bias="all"),
        "all-linear-notask": dict(base, target_modules="all-linear", task_type=None),
        "lora-only-dora": dict(base, target_modules=t, bias="lora_only", use_dora=True),
        "patterns": dict(base, target_modules=t, rank_pattern={key: 2, t[-1]: 3}, alpha_pattern={key: 5}),
        "layers-to-transform": dict(base, target_modules=t, layers_to_transform=[0]),
        "regex": dict(base, target_modules=rf".*\.0\..*\.({'|'.join(t)})"),
        "modules-to-save": dict(base, target_modules=t[:1], modules_to_save=[NORM[family]]),
        # nested matches (embeddings, word_embeddings...) wrap inside the copy: bertcalc refuses them
        "modules-to-save-nested": dict(base, target_modules=t[:1], modules_to_save=["embeddings"]),
    }


# freeze groups, by HF parameter names (bertcalc defines them by its components; these must agree)
def groups_of(name: str, base: str) -> set[str]:
    out = set()
    if base and not name.startswith(base):
        out.add("head")
        return out
    inner = name[len(base):]
    if re.match(r"(embeddings|embeddings_project|encoder\.embedding_hidden_mapping_in)\.", inner):
        out.add("embeddings")
    m = re.match(r"(?:encoder\.|transformer\.)?(?:layer|layers|albert_layer_groups)\.(\d+)\.", inner)
    if m:
        out.add(f"layer{m.group(1)}")
    if inner.startswith("pooler."):
        out.add("pooler")
    return out


FREEZES = {  # name -> (freeze groups, train groups); layer ranges as bertcalc spells them
    "freeze-embeddings": (["embeddings"], []),
    "freeze-embeddings-layer0": (["embeddings", "layers=0-0"], []),
    "train-head": ([], ["head"]),
    "train-head-last-layer": ([], ["head", "layers=1-1"]),
}


def frozen(name: str, base: str, freeze: list[str], train: list[str]) -> bool:
    g = groups_of(name, base)

    def hit(spec: str) -> bool:
        if spec.startswith("layers="):
            lo, hi = (int(x) for x in spec[7:].split("-"))
            return any(f"layer{i}" in g for i in range(lo, hi + 1))
        return spec in g

    if train and not any(hit(s) for s in train):
        return True
    return any(hit(s) for s in freeze)


def build(family: str, head: str, config: dict):
    import torch
    import transformers

    torch.manual_seed(0)
    cfg = getattr(transformers, HF_CONFIG[family])(**config)
    cls = getattr(transformers, CLASS_NAMES.get((family, head), HF_PREFIX[family] + HEAD_CLASSES[head]))
    return cls(cfg)


def params(model) -> list[list]:
    return [[n, list(p.shape), bool(p.requires_grad)] for n, p in model.named_parameters(remove_duplicate=False)]


def record(case: str, family: str, head: str, config: dict) -> dict:
    import peft
    import torch
    import transformers

    base_prefix = build(family, head, config).base_model_prefix
    out = {"case": case, "family": family, "head": head, "config": config, "adapters": {}, "freezes": {},
           "generated_by": {"transformers": transformers.__version__, "peft": peft.__version__,
                            "torch": torch.__version__}}
    for name, kw in adapter_configs(family, head).items():
        model = build(family, head, config)
        try:
            pm = peft.get_peft_model(model, peft.LoraConfig(**kw))
        except Exception as exc:  # the refusal is what is recorded
            out["adapters"][name] = {"config": kw, "error": type(exc).__name__, "message": str(exc)[:300]}
            continue
        trainable, total = pm.get_nb_trainable_parameters()
        out["adapters"][name] = {"config": kw, "parameters": params(pm), "trainable": trainable, "total": total}
    for name, (freeze, train) in FREEZES.items():
        if "head" in train and head == "model":
            continue
        model = build(family, head, config)
        prefix = base_prefix + "." if head != "model" else ""
        # a tied parameter (the decoder's weight is the word embeddings') is frozen when any of its names is
        flags: dict[int, bool] = {}
        for n, p in model.named_parameters(remove_duplicate=False):
            flags[id(p)] = flags.get(id(p), True) and not frozen(n, prefix, freeze, train)
        for p in model.parameters():
            p.requires_grad_(flags[id(p)])
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        out["freezes"][name] = {"freeze": freeze, "train": train, "parameters": params(model),
                                "trainable": trainable, "total": total}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="one family")
    ap.add_argument("--check", action="store_true", help="compare with the committed fixtures, write nothing")
    ap.add_argument("--flops", action="store_true", help="write tests/fixtures/peft_flops.json (FlopCounterMode)")
    args = ap.parse_args(argv)
    if args.flops:
        write_flops()
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    stale = []
    for case, (family, config) in CONFIGS.items():
        if args.only and family != args.only:
            continue
        for head in FAMILY_HEADS[family]:
            rec = record(case, family, head, config)
            path = OUT / f"{case}-{head}.json"
            text = json.dumps(rec, separators=(",", ":")) + "\n"
            if args.check:
                if not path.exists() or json.loads(path.read_text())["adapters"] != rec["adapters"] \
                        or json.loads(path.read_text())["freezes"] != rec["freezes"]:
                    stale.append(path.name)
                continue
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
            print(path.name, file=sys.stderr)
    if stale:
        print("differ from peft today: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0



# ------------------------------------------------------------------------------------------------------- FLOPs

FLOP_OUT = OUT.parent / "peft_flops.json"
FLOP_CASES = {  # name -> (LoraConfig keywords, or None for a freeze, freeze groups, train groups)
    "lora-explicit": (lambda f, h: dict(r=4, lora_alpha=8, target_modules=EXPLICIT[f], task_type=TASK.get(h)), [], []),
    "lora-all-linear": (lambda f, h: dict(r=4, target_modules="all-linear", task_type=TASK.get(h)), [], []),
    "freeze-embeddings-layer0": (None, ["embeddings", "layers=0-0"], []),
    "freeze-layer1": (None, ["layers=1-1"], []),
    "train-head": (None, [], ["head"]),
}


def flop_record(case: str, family: str, head: str, config: dict, name: str) -> dict | None:
    """FlopCounterMode's no-grad forward and training step (the class's own loss from labels, backward) on the
    CPU (small configs), eager attention, batch 2, sequence 16, with the adapter or the freeze applied."""
    import peft
    import torch
    import transformers
    from torch.utils.flop_counter import FlopCounterMode

    make, freeze, train = FLOP_CASES[name]
    cfg = getattr(transformers, HF_CONFIG[family])(**config)
    cls = getattr(transformers, CLASS_NAMES.get((family, head), HF_PREFIX[family] + HEAD_CLASSES[head]))
    torch.manual_seed(0)
    model = cls._from_config(cfg, attn_implementation="eager")
    if make is not None:
        try:
            model = peft.get_peft_model(model, peft.LoraConfig(**make(family, head)))
        except (TypeError, ValueError):  # a config peft refuses (the adapter fixtures record those)
            return None
    else:
        prefix = model.base_model_prefix + "." if head != "model" else ""
        flags: dict[int, bool] = {}
        for n, p in model.named_parameters(remove_duplicate=False):
            flags[id(p)] = flags.get(id(p), True) and not frozen(n, prefix, freeze, train)
        for p in model.parameters():
            p.requires_grad_(flags[id(p)])
    b, s = 2, 16
    ids = torch.full((b, s), 5, dtype=torch.long)  # not a pad id: every position is a token
    model.eval()
    with FlopCounterMode(display=False) as fwd, torch.no_grad():
        model(input_ids=ids)
    model.train()
    with FlopCounterMode(display=False) as step:
        out = model(input_ids=ids, labels=torch.zeros(b, dtype=torch.long))
        out.loss.backward()
    return {"case": case, "family": family, "head": head, "config": config, "adapter": name,
            "lora": make(family, head) if make else None, "freeze": freeze, "train": train, "batch": b, "seq": s,
            "forward": fwd.get_total_flops(), "training": step.get_total_flops()}


def write_flops() -> None:
    out = []
    for case, (family, config) in CONFIGS.items():
        if case in ("bert-tiny", "electra-small", "deberta-odd-v2"):
            continue
        for name in FLOP_CASES:
            rec = flop_record(case, family, "seq-cls", config, name)
            if rec is not None:
                out.append(rec)
            print(case, name, file=sys.stderr)
    tmp = FLOP_OUT.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=0) + "\n")
    tmp.replace(FLOP_OUT)


if __name__ == "__main__":
    raise SystemExit(main())
