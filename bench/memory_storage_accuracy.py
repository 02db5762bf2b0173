"""bertcalc's memory predictions against the exact CPU storage accounting of scripts/measure_cpu_storage.py.

Reads its records (one JSON object per line after a ``{"meta": ...}`` line) and predicts each with
bertcalc's memory model, fp32 and eager attention, for the family, head and pooler the record names. It
prints, per case, the predicted and the measured peak and the error, and for training the predicted saved
activations (``memsim.training_peak(...).saved``) against the measured ones; then a summary: median
|error|, the share within 0.1 % and 1 %, the largest error.

The measured training peak compared is ``max(peak_fwd_bwd_bytes, after_backward_bytes)``: the forward and
backward as recorded, and the optimizer step as fused AdamW (what bertcalc models, and the GPU harness
runs) would make it, holding weights, states and gradients and nothing more. The harness ran
AdamW(foreach=False), whose step adds two parameter-sized temporaries; that raw ``peak_bytes`` is printed
too (``raw``), not scored.

    python bench/memory_storage_accuracy.py        # every tests/fixtures/memory/cpu_storage_fp32_eager*.jsonl
    python bench/memory_storage_accuracy.py OUT.jsonl --worst 10
    python bench/memory_storage_accuracy.py --markdown > table.md
    python bench/memory_storage_accuracy.py --compact                # one row per config and head

A record with an ``adapter`` (cpu_storage_fp32_eager_lora.jsonl: real peft, or requires_grad freezes) is predicted
for the same adapter (its LoraConfig fields read as an adapter_config.json) or freeze groups; its head is shown
with the adapter's name (``seq-cls lora-qv-dropout``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "memory" / "cpu_storage_fp32_eager.jsonl"
# Every committed record: the first sweep's file, and one file per later addition (cpu_storage_fp32_eager_<what>.jsonl)
FIXTURES = sorted(FIXTURE.parent.glob("cpu_storage_fp32_eager*.jsonl"))
MODES = {"train_fp32": "train", "infer_fp32": "infer"}
MiB = 1 << 20


def load(path: Path | list[Path]) -> tuple[dict, list[dict]]:
    paths = path if isinstance(path, list) else [path]
    lines = [json.loads(x) for p in paths for x in p.read_text().splitlines() if x.strip()]
    meta = next((x["meta"] for x in lines if "meta" in x), {})
    return meta, [r for r in lines if "meta" not in r and "peak_bytes" in r]


def measured(rec: dict) -> int:
    """The peak compared: a fused optimizer step (weights + states + gradients) in place of the recorded one."""
    if rec["mode"].startswith("train") and "peak_fwd_bwd_bytes" in rec:
        return max(rec["peak_fwd_bwd_bytes"], rec["after_backward_bytes"])
    return rec["peak_bytes"]


def predict(rec: dict) -> dict:
    from bertcalc import memsim
    from bertcalc.architecture import build
    from bertcalc.config import config_class

    cfg = config_class(rec["family"]).model_validate(dict(rec["hf_config"]))
    head = rec["head"]
    arch = build(cfg, head=head, pooler=rec.get("pooler", True) if head == "model" else True)
    if "adapter" in rec:  # a peft LoraConfig's fields (as adapter_config.json holds them), or freeze groups
        from bertcalc.api import tuned

        a = rec["adapter"]
        arch = tuned(arch, adapter=a["lora"]) if "lora" in a else \
            tuned(arch, freeze=",".join(a["freeze"]) or None, train=",".join(a["train"]) or None)
    o = memsim.Options(mode=MODES[rec["mode"]], precision="fp32", attention=rec.get("attn", "eager"),
                       batch=rec["batch"], seq=rec["seq"], choices=rec.get("choices"))
    out = {"params": arch.total_parameters, "weights": memsim.weights_bytes(arch, cfg, 4)}
    if o.mode == "train":
        t = memsim.training_peak(arch, cfg, o)
        out.update(peak=t.peak, saved=t.saved, steady=t.steady, where=t.where)
    else:
        r = memsim.inference_peak(arch, cfg, o)
        out.update(peak=r.peak, where=r.where)
    return out


def label(rec: dict) -> str:
    """``model-nopooler`` for the bare model built with add_pooling_layer=False (DistilBERT's and ELECTRA's
    bare models have no pooler to leave out: plain ``model``)."""
    from bertcalc import families

    nopooler = rec["head"] == "model" and not rec.get("pooler", True) and families.module(rec["family"]).POOLER_ARG
    return rec["head"] + ("-nopooler" if nopooler else "") + (f" {rec['adapter_name']}" if "adapter" in rec else "")


def evaluate(path: Path | list[Path]) -> tuple[dict, list[dict], dict]:
    meta, records = load(path)
    rows = []
    for r in records:
        p = predict(r)
        m = measured(r)
        row = {"config": r["config"], "family": r["family"], "head": label(r), "mode": r["mode"],
               "batch": r["batch"], "seq": r["seq"], "predicted": p["peak"], "measured": m, "raw": r["peak_bytes"],
               "error": p["peak"] / m - 1, "where": p["where"], "params_ok": p["params"] == r["params"],
               "weights_error": p["weights"] - r["weights_bytes"]}
        if "saved_activations_bytes" in r:
            row.update(saved_predicted=p["saved"], saved_measured=r["saved_activations_bytes"],
                       saved_error=p["saved"] / r["saved_activations_bytes"] - 1,
                       steady_error=p["steady"] - r["steady_bytes"])
        rows.append(row)
    errs = [abs(x["error"]) for x in rows]
    saved = [abs(x["saved_error"]) for x in rows if "saved_error" in x]
    worst = max(rows, key=lambda x: abs(x["error"])) if rows else None
    summary = {
        "cases": len(rows),
        "median_abs_error": statistics.median(errs) if errs else 0.0,
        "within_0.1pct": sum(e <= 0.001 for e in errs) / len(errs) if errs else 1.0,
        "within_1pct": sum(e <= 0.01 for e in errs) / len(errs) if errs else 1.0,
        "max_abs_error": max(errs) if errs else 0.0,
        "worst": f"{worst['config']} {worst['head']} {worst['mode']} {worst['batch']}x{worst['seq']}" if worst else "",
        "saved_median_abs_error": statistics.median(saved) if saved else 0.0,
        "saved_max_abs_error": max(saved) if saved else 0.0,
        "params_mismatches": sum(not x["params_ok"] for x in rows),
        "weights_mismatches": sum(x["weights_error"] != 0 for x in rows),
    }
    return meta, rows, summary


def _summary_line(summary: dict) -> str:
    return (f"{summary['cases']} cases: median |error| {100 * summary['median_abs_error']:.3f}%, "
            f"{100 * summary['within_0.1pct']:.0f}% within ±0.1%, {100 * summary['within_1pct']:.0f}% within ±1%, "
            f"largest |error| {100 * summary['max_abs_error']:.2f}% ({summary['worst']}); saved activations: "
            f"median |error| {100 * summary['saved_median_abs_error']:.3f}%, largest "
            f"{100 * summary['saved_max_abs_error']:.2f}%; parameter-count mismatches "
            f"{summary['params_mismatches']}, weight-byte mismatches {summary['weights_mismatches']}.")


def markdown(meta: dict, rows: list[dict], summary: dict) -> str:
    out = ["| config | head | mode | B×S | predicted MiB | measured MiB | error | saved pred. MiB | saved meas. MiB "
           "| saved error |",
           "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        sp = sm = se = ""
        if "saved_error" in r:
            sp, sm = f"{r['saved_predicted'] / MiB:,.3f}", f"{r['saved_measured'] / MiB:,.3f}"
            se = f"{100 * r['saved_error']:+.2f}%"
        out.append(f"| {r['config']} | {r['head']} | {r['mode']} | {r['batch']}×{r['seq']} | "
                   f"{r['predicted'] / MiB:,.3f} | {r['measured'] / MiB:,.3f} | {100 * r['error']:+.3f}% | "
                   f"{sp} | {sm} | {se} |")
    out.append("")
    out.append(_summary_line(summary))
    return "\n".join(out) + "\n"


def compact(rows: list[dict], summary: dict) -> str:
    """One Markdown row per config and head: the error of each mode at each shape (measured MiB in brackets)."""
    shapes = sorted({(r["batch"], r["seq"]) for r in rows}, key=lambda bs: bs[0] * bs[1])
    modes = sorted({r["mode"] for r in rows}, reverse=True)
    cols = [(m, bs) for m in modes for bs in shapes]
    out = ["| config | head | " + " | ".join(f"{m} {b}×{s}" for m, (b, s) in cols) + " |",
           "| --- | --- | " + " | ".join("---:" for _ in cols) + " |"]
    cells: dict[tuple, dict] = {}
    for r in rows:
        cells.setdefault((r["config"], r["head"]), {})[(r["mode"], (r["batch"], r["seq"]))] = r
    for (config, head), got in cells.items():
        vals = []
        for c in cols:
            r = got.get(c)
            vals.append(f"{100 * r['error']:+.3f}% ({r['measured'] / MiB:,.2f})" if r else "")
        out.append(f"| {config} | {head} | " + " | ".join(vals) + " |")
    out.append("")
    out.append(_summary_line(summary))
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="*", type=Path, default=FIXTURES, help="JSONL files (default: every committed one)")
    ap.add_argument("--markdown", action="store_true", help="print the Markdown table")
    ap.add_argument("--compact", action="store_true", help="print one Markdown row per config and head")
    ap.add_argument("--worst", type=int, default=0, metavar="N", help="print only the N largest errors")
    ap.add_argument("--json", action="store_true", help="print the rows and the summary as JSON")
    args = ap.parse_args(argv)
    for p in args.path:
        if not p.is_file():
            sys.exit(f"memory_storage_accuracy: no such file {p}")
    meta, rows, summary = evaluate(args.path)
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows, "summary": summary}, indent=1))
        return 0
    if args.markdown:
        sys.stdout.write(markdown(meta, rows, summary))
        return 0
    if args.compact:
        sys.stdout.write(compact(rows, summary))
        return 0
    shown = sorted(rows, key=lambda x: -abs(x["error"]))[: args.worst] if args.worst else rows
    print(json.dumps(meta))
    for r in shown:
        saved = ""
        if "saved_error" in r:
            saved = (f"  saved pred {r['saved_predicted'] / MiB:8.3f} meas {r['saved_measured'] / MiB:8.3f} "
                     f"{100 * r['saved_error']:+7.2f}%")
        print(f"{r['config']:17} {r['head']:14} {r['mode']:10} {r['batch']:2}×{r['seq']:<4} "
              f"pred {r['predicted'] / MiB:9.3f} meas {r['measured'] / MiB:9.3f} raw {r['raw'] / MiB:9.3f} MiB "
              f"{100 * r['error']:+7.3f}%{saved}  [{r['where']}]")
    print(_summary_line(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
