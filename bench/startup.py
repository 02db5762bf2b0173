"""Start-up benchmark: every bertcalc command against the floor of its own stack, as a table on a terminal,
as a table to a pipe, and as JSON.

The floor (``../shared/bench/floor_app.py``) is the least a typer + pydantic + rich CLI must pay: one typer
command, one pydantic model, one rich table. Each of our commands and the floor run as fresh processes,
interleaved pair by pair (which goes first alternates) so that machine noise hits them alike, in the same mode:
``terminal`` (standard output is a pseudo-terminal of 200 columns, as in an interactive shell), ``pipe`` (a
pipe), ``json`` (``-f json`` to a pipe; the floor still draws its table). The script prints the median of the
per-pair ratios for each command and mode, against the issue's targets (#11): every command at most 1.10 × the
floor as a table, on a terminal and piped; JSON at most 1.05 ×; ``count --preset base`` at most 1.05 ×.

    python bench/startup.py                        # every command, every mode, 15 pairs each
    python bench/startup.py --runs 40 --json
    python bench/startup.py --commands count,shapes --modes pipe
    python bench/startup.py --max-ratio 1.10       # exit 1 if any median ratio is above 1.10

It measures the ``bertcalc`` on PATH (``pip install .`` first: an installed wheel reads its presets compiled,
without PyYAML; an editable install reads the YAML), else ``python -m bertcalc``. Figures live here, not in the
test suite: timing asserts in tests are flaky by nature.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FLOOR = ROOT.parent / "shared" / "bench" / "floor_app.py"
MODES = ("terminal", "pipe", "json")
# name -> the arguments after `bertcalc`; MODEL_DIR is a small model folder (config.json + model.safetensors)
COMMANDS = {
    "count --preset base": ["count", "--preset", "base"],
    "shapes --preset base": ["shapes", "--preset", "base"],
    "inspect DIR": ["inspect", "MODEL_DIR"],
    "presets": ["presets"],
    "memory": ["memory", "--preset", "base"],
    "flops": ["flops", "--preset", "base"],
    "count --config DIR": ["count", "--config", "MODEL_DIR"],
    "compare": ["compare", "base", "large"],
}
TARGETS = {"terminal": 1.10, "pipe": 1.10, "json": 1.05}
TARGET_COUNT = 1.05  # count --preset base, in every mode


def target(command: str, mode: str) -> float:
    return TARGET_COUNT if command == "count --preset base" else TARGETS[mode]


def ours_command() -> list[str]:
    exe = shutil.which("bertcalc")
    return [exe] if exe is not None else [sys.executable, "-m", "bertcalc"]


def compile_package() -> None:
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("bertcalc")
    if spec and spec.origin:
        compileall.compile_dir(str(Path(spec.origin).parent), quiet=1)


def has_compiled_presets(env: dict[str, str]) -> bool:
    code = "import bertcalc.catalog as c; print(c.compiled() is not None)"
    # from a folder of its own: `python -c` puts the working directory first on sys.path, and a source
    # checkout there would shadow the installed package being measured
    with tempfile.TemporaryDirectory() as cwd:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd)
    return out.stdout.strip() == "True"


def make_model_dir(where: Path) -> Path:
    """A small BERT folder: its config.json and a model.safetensors whose header lists every tensor (the data
    is a sparse file of zeros: inspect reads headers only)."""
    folder = where / "bert-small"
    folder.mkdir()
    config = {"model_type": "bert", "architectures": ["BertModel"], "vocab_size": 30522, "hidden_size": 512,
              "num_hidden_layers": 4, "num_attention_heads": 8, "intermediate_size": 2048,
              "max_position_embeddings": 512, "type_vocab_size": 2}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    import bertcalc

    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, spec, _rep in bertcalc.shapes(config_file=str(folder / "config.json")).tensors():  # one per layer
        if spec.tied_to:
            continue  # stored once, under the name it is tied to
        size = 4 * _prod(spec.shape)
        header[name] = {"dtype": "F32", "shape": list(spec.shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with (folder / "model.safetensors").open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        fh.truncate(8 + len(raw) + offset)
    return folder


def _prod(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def run_pipe(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def run_pty(cmd: list[str], env: dict[str, str]) -> float:
    """Standard output on a pseudo-terminal of 50 × 200, read to the end."""
    import fcntl
    import pty
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.DEVNULL, env=env)
    os.close(slave)
    try:
        while True:
            try:
                if not os.read(master, 1 << 16):
                    break
            except OSError:  # EIO: the child closed its end
                break
        proc.wait()
    finally:
        os.close(master)
    return time.perf_counter() - t0


def measure(ours: list[str], floor: list[str], mode: str, runs: int, warmup: int, env: dict[str, str]) -> dict:
    run = run_pty if mode == "terminal" else run_pipe
    if mode == "json":
        ours = [*ours, "-f", "json"]
    for _ in range(warmup):
        run(floor, env)
        run(ours, env)
    f_times: list[float] = []
    o_times: list[float] = []
    ratios: list[float] = []
    for i in range(runs):
        pair = [(floor, f_times), (ours, o_times)]
        if i % 2:
            pair.reverse()
        for cmd, acc in pair:
            acc.append(run(cmd, env))
        ratios.append(o_times[-1] / f_times[-1])
    return {
        "floor_median_ms": round(1000 * statistics.median(f_times), 1),
        "ours_median_ms": round(1000 * statistics.median(o_times), 1),
        "median_ratio": round(statistics.median(ratios), 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15, help="interleaved pairs per command and mode (default 15)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed pairs first, per command and mode (default 2)")
    ap.add_argument("--floor", type=Path, default=DEFAULT_FLOOR, help="path to floor_app.py")
    ap.add_argument("--commands", default="", help="comma-separated prefixes of the command names to run "
                    f"(default: all of {', '.join(COMMANDS)})")
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)} (default: all)")
    ap.add_argument("--max-ratio", type=float, default=None, help="exit 1 if any median ratio exceeds this")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    if not args.floor.is_file():
        sys.exit(f"bench: floor app not found at {args.floor}; pass --floor PATH")
    modes = [m for m in args.modes.split(",") if m]
    if set(modes) - set(MODES):
        sys.exit(f"bench: --modes takes {', '.join(MODES)}")
    wanted = [c.strip() for c in args.commands.split(",") if c.strip()]
    commands = {k: v for k, v in COMMANDS.items() if not wanted or any(k.startswith(w) for w in wanted)}
    if not commands:
        sys.exit(f"bench: no command matches {args.commands!r}")

    env = {**os.environ, "NO_COLOR": "1", "TERM": "xterm-256color"}
    for var in ("PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE", "FORCE_COLOR", "COLUMNS", "LINES"):
        env.pop(var, None)
    compile_package()  # pip writes .pyc files at install; an editable checkout may not have them yet
    floor = [sys.executable, str(args.floor)]
    ours = ours_command()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bertcalc-bench-") as tmp:
        model_dir = make_model_dir(Path(tmp)) if any("MODEL_DIR" in v for v in commands.values()) else None
        for name, tail in commands.items():
            cmd = ours + [str(model_dir) if a == "MODEL_DIR" else a for a in tail]
            for mode in modes:
                r = measure(cmd, floor, mode, args.runs, args.warmup, env)
                r.update(command=name, mode=mode, target=target(name, mode))
                r["meets_target"] = r["median_ratio"] <= r["target"]
                rows.append(r)
                if not args.json:
                    print(f"  {name:<22} {mode:<9} floor {r['floor_median_ms']:6.1f} ms  ours "
                          f"{r['ours_median_ms']:6.1f} ms  ratio {r['median_ratio']:.3f}  (target ≤ {r['target']:.2f}"
                          f"{'' if r['meets_target'] else ', MISSED'})", flush=True)
    first = rows[0]
    result = {
        "runs": args.runs,
        "bertcalc": " ".join(ours),
        "compiled_presets": has_compiled_presets(env),
        "python": sys.version.split()[0],
        # the first row's figures at the top level, as before this script measured every command
        "floor_median_ms": first["floor_median_ms"],
        "ours_median_ms": first["ours_median_ms"],
        "median_ratio": first["median_ratio"],
        "commands": rows,
        "all_meet_targets": all(r["meets_target"] for r in rows),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print()
        print(f"median ratio to the floor over {args.runs} interleaved pairs ({' '.join(ours)}; compiled presets: "
              f"{'yes' if result['compiled_presets'] else 'no, reading YAML'})")
        print(f"{'command':<22} " + " ".join(f"{m:>9}" for m in modes))
        for name in commands:
            cells = []
            for m in modes:
                r = next(x for x in rows if x["command"] == name and x["mode"] == m)
                cells.append(f"{r['median_ratio']:>8.3f}{' ' if r['meets_target'] else '!'}")
            print(f"{name:<22} " + " ".join(cells))
        print("targets: table ≤ 1.10 (terminal, pipe), json ≤ 1.05, count --preset base ≤ 1.05; ! marks a miss")
    worst = max(r["median_ratio"] for r in rows)
    if args.max_ratio is not None and worst > args.max_ratio:
        print(f"bench: median ratio {worst:.3f} exceeds {args.max_ratio}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
