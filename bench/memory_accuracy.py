"""bertcalc's memory predictions against measured peaks.

Reads records in the format of ../shared/measured/measure_memory.py (one JSON object per line; the first
line is metadata) and prints, for each, the predicted and the measured ``peak_bytes`` and the error, then
the summary the accuracy target is stated in: median |error|, the share within ±10 %, the largest error.

    python bench/memory_accuracy.py                                   # the shared H100 table (its copy)
    python bench/memory_accuracy.py tests/fixtures/memory/cpu_fp32_eager.jsonl
    python bench/memory_accuracy.py --markdown > table.md             # the table docs/memory.md shows
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# ../shared/measured/h100_bert_base.jsonl, copied byte for byte so a clone anywhere carries it
H100 = ROOT / "tests" / "fixtures" / "memory" / "h100_bert_base.jsonl"
SHARED = ROOT.parent / "shared" / "measured" / "h100_bert_base.jsonl"  # the original, when it sits beside us
CPU = ROOT / "tests" / "fixtures" / "memory" / "cpu_fp32_eager.jsonl"

MODES = {"infer_fp32": ("infer", "fp32"), "infer_bf16": ("infer", "bf16"), "infer_fp16": ("infer", "fp16"),
         "train_fp32": ("train", "fp32"), "train_amp_bf16": ("train", "amp-bf16"),
         "train_amp_fp16": ("train", "amp-fp16"), "train_bf16": ("train", "bf16")}
HEADS = {"mlm": "mlm", "cls": "seq-cls"}


def load(path: Path) -> tuple[dict, list[dict]]:
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    meta = lines[0].get("meta", {}) if lines and "meta" in lines[0] else {}
    return meta, [r for r in lines if "meta" not in r and r.get("ok", True) and "peak_bytes" in r]


def predict(rec: dict) -> int:
    from bertcalc import memsim
    from bertcalc.architecture import build
    from bertcalc.config import config_class

    family = rec.get("family", "bert")
    cfg = config_class(family).model_validate(dict(rec["hf_config"]))
    arch = build(cfg, head=HEADS[rec["head"]])
    mode, precision = MODES[rec["mode"]]
    o = memsim.Options(mode=mode, precision=precision, attention=rec.get("attn", "eager"), batch=rec["batch"],
                       seq=rec["seq"])
    return memsim.peak(arch, cfg, o)


def evaluate(path: Path) -> tuple[dict, list[dict], dict]:
    meta, records = load(path)
    rows = []
    for r in records:
        pred = predict(r)
        rows.append({**{k: r.get(k) for k in ("config", "family", "head", "mode", "attn", "batch", "seq")},
                     "predicted": pred, "measured": r["peak_bytes"], "error": pred / r["peak_bytes"] - 1})
    errs = [abs(x["error"]) for x in rows]
    summary = {
        "cases": len(rows),
        "median_abs_error": statistics.median(errs) if errs else 0.0,
        "within_10pct": sum(e <= 0.10 for e in errs) / len(errs) if errs else 1.0,
        "max_abs_error": max(errs) if errs else 0.0,
    }
    return meta, rows, summary


def markdown(meta: dict, rows: list[dict], summary: dict) -> str:
    MiB = 1 << 20
    out = ["| model | head | mode | attention | B×S | predicted MiB | measured MiB | error |",
           "| --- | --- | --- | --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        name = r.get("config") or r.get("family") or "?"
        out.append(f"| {name} | {r['head']} | {r['mode']} | {r['attn']} | {r['batch']}×{r['seq']} | "
                   f"{r['predicted'] / MiB:,.1f} | {r['measured'] / MiB:,.1f} | {100 * r['error']:+.2f}% |")
    out.append("")
    out.append(f"{summary['cases']} cases: median |error| {100 * summary['median_abs_error']:.2f}%, "
               f"{100 * summary['within_10pct']:.0f}% within ±10%, largest |error| "
               f"{100 * summary['max_abs_error']:.2f}%.")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", type=Path, default=H100)
    ap.add_argument("--markdown", action="store_true", help="print the Markdown table")
    args = ap.parse_args(argv)
    if not args.path.is_file():
        sys.exit(f"memory_accuracy: no such file {args.path}")
    meta, rows, summary = evaluate(args.path)
    if args.markdown:
        sys.stdout.write(markdown(meta, rows, summary))
        return 0
    print(json.dumps(meta))
    for r in rows:
        print(f"{r.get('config') or '':10} {r['head']:4} {r['mode']:15} {r['attn']:5} {r['batch']:3}×{r['seq']:<4} "
              f"pred {r['predicted'] / 2**20:10.1f}  meas {r['measured'] / 2**20:10.1f} MiB  {100 * r['error']:+7.2f}%")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
