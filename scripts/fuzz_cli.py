"""Fuzz the command line: random argument vectors and random files through typer's CliRunner.

    python scripts/fuzz_cli.py                 # 3,000 runs, seed 0
    python scripts/fuzz_cli.py -n 10000 --seed 7

Each run draws a command, a handful of its options with values from pools of the plausible and the absurd
(negative, zero, 2^63, 400-digit, non-numeric, empty, NaN...), and often a file written for it: a random YAML or
JSON config (with alias chains and huge integers), a random safetensors header, or a model folder. It fails
(exit 1) if any run exits 70 (an internal error: a bug), prints a traceback, or takes over a second of CPU time
(CPU, not wall-clock, time: on a shared machine the wall clock measures the neighbours).

Two kinds of run are legitimately long and are not drawn, so that "over a second" means a bug: a valid model
with more than 1,000 layers written by `shapes` as CSV/JSON/YAML/Markdown (it streams millions of rows because
it was asked to), and `memory` with more than 1,000 layers (the memory model is O(L); issue #7 makes it O(1)).
`verify` is always given a size it refuses before importing torch (--preset tiny --layers 10000000, last, so
that they win), because importing torch alone takes seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import struct
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from typer.testing import CliRunner  # noqa: E402

from bertcalc.cli import app  # noqa: E402

INTS = ["0", "1", "2", "3", "7", "12", "16", "64", "768", "1000", "-1", "-0", "1e3", "1.5", "", "abc", "nan",
        "9223372036854775807", "9223372036854775808", "1" + "0" * 400, "0x10", " 12", "１２"]
FLOATS = ["0", "0.4", "1", "1.5", "-1", "nan", "inf", "-inf", "5e-324", "1e308", "1e400", "", "x", "0.0000001"]
SIZES = ["80GiB", "24GB", "1GiB", "80", "0GiB", "-1GiB", "1e400GiB", "1" + "0" * 400 + "GiB", "0.0000000001GiB",
         "GiB", "", "1.5TiB", "81920MiB", "abc"]
WORDS = ["base", "tiny", "bsae", "", ":", "base:", "base:layers=6", "base:layers=x", "base:=", "tiny:pooler=2",
         "../etc/passwd", "a" * 300, "tiny:hidden=100000000000000000000", "tiny:layers=1" + "0" * 400, "-",
         "base:layers=6,layers=7", "roberta-base:type_vocab=3", "distilbert-base:type-vocab=2"]
HEADS = ["model", "mlm", "pretraining", "seq-cls", "token-cls", "qa", "multiple-choice", "causal-lm", "nsp", "nope",
         ""]
FORMATS = ["table", "json", "yaml", "csv", "markdown", "xml", ""]
OUTS = ["-", "out.json", "out.yaml", "out.csv", "out.txt", "", "nodir/x.json", "afile/x.json", "a" * 300,
        "readonly.json", "/dev/null", "/dev/full", "."]
MODEL_FLAGS = ["--layers", "--hidden", "--heads", "--intermediate", "--vocab", "--max-positions", "--type-vocab",
               "--embedding-size", "--labels"]

LAYER_CAP = 1000  # see the module docstring


def random_config(rng: random.Random) -> str:
    keys = ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size",
            "layer_norm_eps", "family", "description", "model_type", "architectures", "hidden_szie", "n_layers",
            "id2label", "tie_word_embeddings", "embedding_size", "max_position_embeddings"]
    values = ["12", "768", "0", "-3", "1.5", ".inf", ".nan", "true", "null", "[bert]", "{a: 1}", "bert", "albert",
              "distilbert", "'768'", "7" * 5000, "0x" + "f" * 3000, "gelu", "[1, 2]", "1e-12", "BertForMaskedLM",
              "[BertForMaskedLM]", "!!python/object/apply:os.system [true]", "*missing", "&a 3"]
    lines = []
    for _ in range(rng.randint(0, 6)):
        k = rng.choice(keys)
        v = rng.choice(values)
        if k == "num_hidden_layers" and v.isdigit() and len(v) < 6:
            v = str(min(int(v), LAYER_CAP))
        lines.append(f"{k}: {v}")
    if rng.random() < 0.3:  # an alias chain: up to 12^11 nodes when expanded
        depth, fan = rng.randint(1, 12), rng.randint(1, 12)
        lines.append("x0: &x0 [lol, lol]")
        lines += [f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * fan)}]" for i in range(1, depth)]
        lines.append(f"{rng.choice(keys)}: *x{depth - 1}")
    if rng.random() < 0.05:
        lines = ["? [a, b]", ": 1"]
    if rng.random() < 0.05:
        return rng.choice(["", "null", "---", "[1, 2]", "{", "\x00\xff", "a: 1\na: 2"])
    return "\n".join(lines) + "\n"


def as_json(yaml_text: str) -> str:
    import yaml

    plain = "\n".join(ln for ln in yaml_text.splitlines() if "*x" not in ln and not ln.startswith("x"))
    try:  # JSON has no aliases: expanding an alias chain here would be the billion laughs in this script
        data = yaml.safe_load(plain)
        return json.dumps(data)
    except Exception:
        return yaml_text  # stays malformed JSON: fine, that is a case too


def random_safetensors(rng: random.Random) -> bytes:
    dtypes = ["F32", "F16", "BF16", "I64", "U8", "BOOL", "F4", "Q7", "f32"]
    entries, at = {}, 0
    names = ["embeddings.word_embeddings.weight", "embeddings.position_ids", "encoder.layer.0.output.dense.bias",
             "encoder.layer.99999999999.output.dense.bias", "bert.pooler.dense.weight", "x"]
    for _ in range(rng.randint(0, 4)):
        dtype = rng.choice(dtypes)
        shape = [rng.choice([0, 1, 2, 16, 50, 2**32, -1]) for _ in range(rng.randint(0, 3))]
        n = 1
        for s in shape:
            n *= s if 0 <= s < 2**20 else 1
        size = n * {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}.get(dtype, 1) + rng.choice([0, 0, 0, 1])
        off = rng.choice([[at, at + size]] * 4 + [[True, False], [0.5, 1], [at + 4, at + size + 4], [at]])
        entries[rng.choice(names)] = {"dtype": dtype, "shape": shape, "data_offsets": off}
        at += size
    body = json.dumps(entries).encode()
    if rng.random() < 0.1:
        body = body[: rng.randint(0, len(body))]
    length = rng.choice([len(body)] * 6 + [len(body) + 10, 2**63, 100_000_001, 0])
    return struct.pack("<Q", length) + body + b"\0" * max(0, at + rng.choice([0, 0, 0, 3]))


def pick(rng: random.Random, pool: list[str]) -> str:
    return rng.choice(pool)


def argv(rng: random.Random, work: Path, k: int) -> list[str]:
    cmd = rng.choice(["count", "shapes", "compare", "inspect", "verify", "flops", "memory", "presets", "",
                      "--version", "-V", "nope"])
    args = [cmd] if cmd else []
    if cmd in ("", "--version", "-V", "nope"):
        return args + ([pick(rng, WORDS)] if rng.random() < 0.3 else [])
    files = []
    cfg = work / f"c{k}{rng.choice(['.yaml', '.json', '.yml', ''])}"
    text = random_config(rng)
    cfg.write_text(as_json(text) if cfg.suffix == ".json" else text, encoding="utf-8", errors="surrogateescape")
    files.append(str(cfg))
    if cmd == "inspect":
        folder = work / f"m{k}"
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(random_safetensors(rng))
        if rng.random() < 0.7:
            (folder / "config.json").write_text(as_json(random_config(rng)))
        if rng.random() < 0.2:
            shard = rng.choice(["model.safetensors", "../x.safetensors", "/etc/passwd", "", "missing.safetensors"])
            (folder / "model.safetensors.index.json").write_text(json.dumps(
                {"weight_map": {"embeddings.word_embeddings.weight": shard}}))
        args.append(rng.choice([str(folder), str(folder / "model.safetensors"), str(cfg), "", "a" * 300,
                                str(folder / "model.safetensors.index.json")]))
        if rng.random() < 0.3:
            args.append("--diff")
    if cmd == "compare":
        args += [rng.choice([*WORDS, str(cfg), f"{cfg}:layers=3"]) for _ in range(rng.randint(0, 4))]
    if cmd != "presets" and cmd != "compare":
        if rng.random() < 0.5:
            args += ["--preset", pick(rng, ["tiny", "base", "albert-base-v2", "distilbert-base", "electra-small-"
                                                  "discriminator", "roberta-base", "bsae", "", "a" * 300, "../x"])]
        if rng.random() < 0.5:
            args += ["--config", rng.choice([str(cfg), str(cfg), "", "-", "a" * 300, str(work), "afile/x.yaml"])]
        for flag in rng.sample(MODEL_FLAGS, rng.randint(0, 3)):
            args += [flag, pick(rng, INTS)]
        if rng.random() < 0.3:
            args += ["--head", pick(rng, HEADS)]
    if cmd in ("shapes", "flops", "memory") and rng.random() < 0.6:
        args += ["--batch", pick(rng, INTS), "--seq", pick(rng, INTS)]
    if cmd == "shapes" and rng.random() < 0.3:
        args.append("--collapse")
    if cmd in ("shapes", "flops", "memory") and rng.random() < 0.2:
        args += ["--choices", pick(rng, INTS)]
    if cmd == "flops" and rng.random() < 0.6:
        for flag in rng.sample(["--gpu", "--mfu", "--peak-tflops", "--precision"], rng.randint(1, 3)):
            args += [flag, pick(rng, {"--gpu": ["H100", "T4", "a100 80gb", "nope", ""],
                                      "--precision": ["bf16", "fp16", "fp32", "amp-bf16", "x"]}.get(flag, FLOATS))]
    if cmd == "memory" and rng.random() < 0.6:
        for flag in rng.sample(["--fit", "--gpu", "--mode", "--precision", "--zero", "--gpus", "--optimizer"],
                               rng.randint(1, 3)):
            args += [flag, pick(rng, {"--fit": SIZES, "--gpu": ["H100", "T4", "nope"], "--mode": ["train", "infer",
                                      "x"], "--precision": ["fp32", "bf16", "amp-fp16", "x"], "--zero": ["1", "3",
                                      "4", "x"], "--optimizer": ["adamw", "sgd", "x"]}.get(flag, INTS))]
    if rng.random() < 0.5:
        args += ["-f", pick(rng, FORMATS)]
    if rng.random() < 0.3:
        args += ["-o", pick(rng, OUTS)] + (["--force"] if rng.random() < 0.3 else [])
    if cmd == "verify":
        args += ["--preset", "tiny", "--layers", "10000000"]  # refused before torch is imported: see the docstring
    return args


def too_long_by_design(args: list[str], work: Path) -> bool:
    """The legitimately long runs the docstring names: a valid model of more than LAYER_CAP layers written
    as streamed rows by shapes, or any memory run past LAYER_CAP layers. Decided from the arguments, leniently:
    any --layers (or a file or compare override) that parses as an integer above the cap."""
    def big(text: str) -> bool:
        try:
            return int(text) > LAYER_CAP
        except ValueError:
            return False

    layers = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--layers"]
    if not any(big(v) for v in layers):
        return False
    if args and args[0] == "memory":
        return True
    fmt = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "-f"), "table")
    return bool(args) and args[0] == "shapes" and fmt != "table" and "--collapse" not in args


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=3000, help="runs (default 3000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-v", "--verbose", action="store_true", help="print each argument vector before its run")
    ap.add_argument("--limit", type=float, default=1.0, help="seconds a run may take (default 1)")
    opts = ap.parse_args()
    rng = random.Random(opts.seed)
    runner = CliRunner()
    codes: dict[int, int] = {}
    failures: list[str] = []
    skipped = 0
    slowest = (0.0, [])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.chdir(work)
        (work / "afile").write_text("x")
        for args in (["count", "-p", "tiny"], ["inspect", "x", "-p", "tiny"], ["memory", "-p", "tiny"]):
            runner.invoke(app, args)  # imports, once
        k = ran = 0
        while ran < opts.n:
            k += 1
            ro = work / "readonly.json"
            if not ro.exists():
                ro.write_text("{}")
                ro.chmod(0o444)
            args = argv(rng, work, k)
            if too_long_by_design(args, work):
                skipped += 1
                continue
            ran += 1
            if opts.verbose:
                print(k, args, flush=True)
            start, cpu = time.perf_counter(), time.process_time()
            r = runner.invoke(app, args, input=random_config(rng) if "-" in args else None)
            took = time.process_time() - cpu  # the run's work: CPU seconds, not a shared machine's wall clock
            wall = time.perf_counter() - start
            codes[r.exit_code] = codes.get(r.exit_code, 0) + 1
            out = r.stdout + r.stderr
            shown = " ".join(repr(a) if (not a or " " in a) else (a[:40] + "…" if len(a) > 40 else a) for a in args)
            if took > slowest[0]:
                slowest = (took, shown)
            if r.exit_code == 70 or "Traceback" in out or (r.exception and not isinstance(r.exception, SystemExit)):
                failures.append(f"exit {r.exit_code}: bertcalc {shown}\n    {out.strip()[-300:]}")
            elif took > opts.limit:
                failures.append(f"{took:.2f} s of CPU ({wall:.2f} s wall): bertcalc {shown}")
    print(f"{opts.n} runs (seed {opts.seed}): " + ", ".join(f"exit {c}: {n}" for c, n in sorted(codes.items()))
          + f"; not run (long by design): {skipped}; slowest {slowest[0]:.2f} s: bertcalc {slowest[1]}")
    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
