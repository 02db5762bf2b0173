"""Snapshot every number bertcalc prints, to prove a refactor changes none of them.

Writes the JSON of ``count``, ``shapes``, ``flops`` and ``memory`` for every preset × head and a grid of
batch / sequence / precision / attention / checkpointing / optimizer choices, plus odd configs (factorized
embeddings, shared layer groups, odd head counts, untied decoders, relabelled heads, dropout off), and the
rendered table / CSV / Markdown / YAML of a few of them. One file per command, one line per case, keys sorted,
so ``diff`` or ``--compare`` shows exactly what moved.

    python scripts/snapshot.py /tmp/snap-before            # before the change
    python scripts/snapshot.py /tmp/snap-after             # after it
    python scripts/snapshot.py --compare /tmp/snap-before /tmp/snap-after

``--compare`` prints each case whose output differs, with the first differing JSON paths, and exits 1 if any
does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bertcalc  # noqa: E402
from bertcalc import catalog  # noqa: E402

# (name, preset, overrides): presets as shipped, then odd configs a BERT-base-shaped rule would get wrong.
ODD: list[tuple[str, str, dict[str, Any]]] = [
    ("bert-odd", "tiny", dict(num_hidden_layers=3, hidden_size=192, num_attention_heads=3, intermediate_size=500,
                              vocab_size=5000)),
    ("bert-nodrop", "mini", dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)),
    ("bert-l0", "tiny", dict(num_hidden_layers=0)),
    ("bert-gelu-new", "tiny", dict(hidden_act="gelu_new")),
    ("bert-relu", "tiny", dict(hidden_act="relu")),
    ("bert-untied", "tiny", dict(tie_word_embeddings=False)),
    ("bert-labels3", "tiny", dict(num_labels=3)),
    ("roberta-odd", "roberta-base", dict(num_hidden_layers=2, hidden_size=264, num_attention_heads=3,
                                         intermediate_size=700, vocab_size=777)),
    ("distilbert-odd", "distilbert-base", dict(n_layers=3, dim=200, n_heads=5, hidden_dim=333, vocab_size=919)),
    ("albert-groups", "albert-base-v2", dict(num_hidden_groups=2, inner_group_num=2, num_hidden_layers=5,
                                             hidden_size=256, num_attention_heads=4, intermediate_size=1024)),
    ("albert-drop", "albert-base-v2", dict(num_hidden_layers=3, hidden_dropout_prob=0.1,
                                           attention_probs_dropout_prob=0.1, hidden_act="gelu")),
    ("electra-odd", "electra-small-discriminator", dict(num_hidden_layers=2, embedding_size=96, hidden_size=192,
                                                        num_attention_heads=3, intermediate_size=500)),
]

SHAPES = ((2, 64), (16, 256))  # T = 128 and T = 4096 (past the 3072 indices where CUDA's embedding backward sorts)
PRECISIONS = ("fp32", "fp16", "bf16", "amp-bf16", "amp-fp16")
ATTENTIONS = ("eager", "sdpa")
RENDERED = ("base", "albert-base-v2", "electra-small-discriminator", "distilbert-base", "roberta-base")


def configs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(name, name, {}) for name in catalog.names()] + ODD


def heads_of(preset: str, overrides: dict[str, Any]) -> tuple[str, ...]:
    from bertcalc.architecture import heads_of as family_heads

    return family_heads(bertcalc.resolve(preset=preset, overrides=overrides).config.family)


def cases() -> list[tuple[str, str, str, dict[str, Any], dict[str, Any]]]:
    """(command, case id, preset, overrides, keyword arguments)."""
    out = []
    for name, preset, ov in configs():
        heads = heads_of(preset, ov)
        for head in heads:
            out.append(("count", f"{name}|{head}", preset, ov, dict(head=head)))
            out.append(("shapes", f"{name}|{head}|pt", preset, ov, dict(head=head)))
            out.append(("shapes", f"{name}|{head}|tf|collapse", preset, ov, dict(head=head, layout="tf",
                                                                                collapse=True)))
            for b, s in SHAPES:
                out.append(("shapes", f"{name}|{head}|{b}x{s}", preset, ov, dict(head=head, batch=b, seq=s,
                                                                                 collapse=True)))
                out.append(("flops", f"{name}|{head}|{b}x{s}", preset, ov, dict(head=head, batch=b, seq=s)))
                for prec in PRECISIONS:
                    for attn in ATTENTIONS:
                        for gc in (False, True):
                            out.append(("memory", f"{name}|{head}|{b}x{s}|train|{prec}|{attn}|gc={gc}", preset, ov,
                                        dict(head=head, batch=b, seq=s, precision=prec, attention=attn,
                                             grad_checkpointing=gc)))
                        out.append(("memory", f"{name}|{head}|{b}x{s}|infer|{prec}|{attn}", preset, ov,
                                    dict(head=head, batch=b, seq=s, mode="infer", precision=prec, attention=attn)))
        if "model" in heads:
            out.append(("count", f"{name}|model|nopooler", preset, ov, dict(pooler=False)))
            out.append(("memory", f"{name}|model|nopooler|train", preset, ov, dict(pooler=False, batch=4, seq=64)))
        for opt in ("adam", "sgd", "sgd-momentum", "adafactor", "adamw-8bit"):
            out.append(("memory", f"{name}|opt={opt}", preset, ov, dict(optimizer=opt, batch=4, seq=64)))
        out.append(("memory", f"{name}|fit", preset, ov, dict(fit="24GiB", seq=128, precision="amp-bf16")))
        out.append(("memory", f"{name}|fit-infer", preset, ov, dict(fit="1GiB", seq=64, mode="infer")))
        for fit, s in (("24GiB", 128), ("80GiB", 512), ("2GiB", 64)):  # the allocated peak's fit (templates)
            for prec in ("fp32", "amp-bf16"):
                out.append(("memory", f"{name}|fit-alloc|{fit}|{s}|{prec}", preset, ov,
                            dict(fit=fit, seq=s, precision=prec, reserved=False)))
        out.append(("memory", f"{name}|gpu", preset, ov, dict(gpu="H100", seq=64)))
        for stage in (1, 2, 3):
            out.append(("memory", f"{name}|zero{stage}", preset, ov, dict(zero=stage, gpus=8,
                                                                           precision="amp-bf16")))
        out.append(("flops", f"{name}|gpu", preset, ov, dict(gpu="H100", batch=8, seq=128, mfu=0.5)))
        out.append(("flops", f"{name}|peak", preset, ov, dict(peak_tflops=100.0, batch=4, seq=32, precision="fp32")))
    return out


def run(command: str, preset: str, overrides: dict[str, Any], kw: dict[str, Any]) -> Any:
    fn = getattr(bertcalc, command)
    try:
        return fn(preset=preset, **kw, **overrides)
    except bertcalc.BertcalcError as exc:  # refusals are outputs too
        return {"error": type(exc).__name__, "message": str(exc)}


def rendered() -> list[tuple[str, str]]:
    from bertcalc.render import render

    out = []
    for preset in RENDERED:
        heads = heads_of(preset, {})
        for head in ("model", "mlm", "seq-cls"):
            if head not in heads:
                continue
            reports = {
                "count": bertcalc.count(preset=preset, head=head),
                "shapes": bertcalc.shapes(preset=preset, head=head, batch=2, seq=16),
                "flops": bertcalc.flops(preset=preset, head=head, gpu="A100"),
                "memory-train": bertcalc.memory(preset=preset, head=head, precision="amp-bf16", fit="16GiB"),
                "memory-infer": bertcalc.memory(preset=preset, head=head, mode="infer"),
            }
            for what, rep in reports.items():
                for fmt in ("table", "csv", "markdown", "yaml"):
                    out.append((f"{preset}|{head}|{what}|{fmt}", render(rep, fmt, width=120)))
            out.append((f"{preset}|{head}|count|explain", render(reports["count"], "table", explain=True, width=120)))
    cmp = bertcalc.compare(["base", "base:layers=6", "large", "albert-base-v2", "distilbert-base"])
    for fmt in ("table", "csv", "markdown", "json"):
        out.append((f"compare|{fmt}", render(cmp, fmt, width=120)))
    out.append(("presets|table", render(bertcalc.presets(), "table", width=120)))
    out.append(("presets|json", render(bertcalc.presets(), "json")))
    return out


CLI_FORMATS = ("table", "json", "yaml", "csv", "markdown")


def cli_cases() -> list[tuple[str, list[str]]]:
    """(case id, argv): every command in every format over every preset and head, as the CLI prints it to a pipe
    (CliRunner's stdout is not a terminal), plus the same tables drawn for a terminal (``TERM_COLUMNS``)."""
    out: list[tuple[str, list[str]]] = []
    for name in catalog.names():
        for head in heads_of(name, {}):
            base = ["--preset", name, "--head", head]
            runs = {
                "count": ["count", *base],
                "count-explain": ["count", *base, "--explain"],
                "shapes": ["shapes", *base],
                "shapes-act": ["shapes", *base, "--batch", "2", "--seq", "16", "--collapse"],
                "flops": ["flops", *base, "--gpu", "A100"],
                "memory-train": ["memory", *base, "--precision", "amp-bf16", "--fit", "16GiB"],
                "memory-infer": ["memory", *base, "--mode", "infer"],
                "memory-zero": ["memory", *base, "--zero", "2", "--gpus", "4"],
            }
            for what, argv in runs.items():
                for fmt in CLI_FORMATS:
                    if what == "count-explain" and fmt != "table":
                        continue
                    out.append((f"{name}|{head}|{what}|{fmt}", [*argv, "-f", fmt]))
    for fmt in CLI_FORMATS:
        out.append((f"compare|{fmt}", ["compare", "base", "base:layers=6", "large", "albert-base-v2",
                                       "distilbert-base", "modernbert-base", "-f", fmt]))
        out.append((f"presets|{fmt}", ["presets", "-f", fmt]))
        out.append((f"sweep|{fmt}", ["memory", "--preset", "base", "--sweep", "batch=8..64 seq=128,256",
                                     "--gpu", "A100", "-f", fmt]))
    return out


def cli_outputs() -> list[tuple[str, str]]:
    from typer.testing import CliRunner

    from bertcalc.cli import app

    runner = CliRunner()
    env = {"COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb"}
    out = []
    for case, argv in cli_cases():
        r = runner.invoke(app, argv, env=env)
        out.append((case, f"exit {r.exit_code}\n{r.stdout}"))
    return out


def write(out_dir: Path, cli: bool = True) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[str]] = {}
    for command, case, preset, ov, kw in cases():
        r = run(command, preset, ov, kw)
        data = r if isinstance(r, dict) else r.to_dict()
        files.setdefault(command, []).append(json.dumps({"case": case, "out": data}, sort_keys=True,
                                                        ensure_ascii=False))
    files["rendered"] = [json.dumps({"case": c, "out": text}, ensure_ascii=False) for c, text in rendered()]
    if cli:
        files["cli"] = [json.dumps({"case": c, "out": text}, ensure_ascii=False) for c, text in cli_outputs()]
    for command, lines in files.items():
        (out_dir / f"{command}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{command}: {len(lines)} cases", file=sys.stderr)


def _paths(a: Any, b: Any, where: str = "") -> list[str]:
    """The JSON paths at which ``a`` and ``b`` differ (leaves only)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{where}.{k} ({'added' if k not in a else 'removed'})")
            else:
                out += _paths(a[k], b[k], f"{where}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += _paths(x, y, f"{where}[{i}]")
        return out
    return [] if a == b else [f"{where}: {json.dumps(a, ensure_ascii=False)[:90]} -> "
                               f"{json.dumps(b, ensure_ascii=False)[:90]}"]


def compare(before: Path, after: Path, limit: int) -> int:
    changed = 0
    for f in sorted(before.glob("*.jsonl")):
        old = {d["case"]: d["out"] for d in map(json.loads, f.read_text(encoding="utf-8").splitlines())}
        g = after / f.name
        new = {d["case"]: d["out"] for d in map(json.loads, g.read_text(encoding="utf-8").splitlines())} \
            if g.is_file() else {}
        diff = [c for c in old if old[c] != new.get(c)]
        added = [c for c in new if c not in old]
        print(f"{f.stem}: {len(old)} cases, {len(diff)} differ, {len(added)} new")
        for c in diff[:limit]:
            changed += 1
            paths = _paths(old[c], new.get(c)) if c in new else ["(missing)"]
            print(f"  {c}")
            for p in paths[:6]:
                print(f"      {p}")
            if len(paths) > 6:
                print(f"      ... {len(paths) - 6} more")
        changed += max(0, len(diff) - limit)
    return 1 if changed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path, help="output folder; with --compare, BEFORE and AFTER")
    ap.add_argument("--compare", action="store_true", help="compare two snapshot folders")
    ap.add_argument("--limit", type=int, default=40, help="cases shown per command with --compare")
    ap.add_argument("--no-cli", action="store_true",
                    help="skip the CLI outputs (every command x format x preset x head)")
    args = ap.parse_args(argv)
    if args.compare:
        if len(args.dirs) != 2:
            ap.error("--compare takes BEFORE and AFTER")
        return compare(args.dirs[0], args.dirs[1], args.limit)
    if len(args.dirs) != 1:
        ap.error("give one output folder")
    write(args.dirs[0], cli=not args.no_cli)
    return 0


if __name__ == "__main__":
    sys.exit(main())
