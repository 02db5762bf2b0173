"""The plain-text renderer (bertcalc/render/plain.py) draws what rich draws, character for character, and the
piped path imports neither rich nor (from an installed wheel) PyYAML. No timing here: bench/startup.py."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import bertcalc
from bertcalc import catalog
from bertcalc.render import text as T
from bertcalc.render.plain import DoesNotFit, Table, draw, table_widths

from .conftest import ROOT


def _reports():
    for name in catalog.names():
        yield bertcalc.count(preset=name)
        yield bertcalc.shapes(preset=name, head="mlm" if name.startswith(("base", "large")) else None)
        yield bertcalc.flops(preset=name)
        yield bertcalc.memory(preset=name)
    yield bertcalc.count(preset="albert-base-v2", head="pretraining")
    yield bertcalc.shapes(preset="tiny", batch=2, seq=16, collapse=True, layout="tf")
    yield bertcalc.memory(preset="base", precision="amp-bf16", fit="80GiB", head="mlm")
    yield bertcalc.memory(preset="base", zero=3, gpus=8, offload="optimizer", link_gbps=400)
    yield bertcalc.memory(preset="base", fsdp=True, gpus=4, fit="8GiB")
    yield bertcalc.memory(preset="base", mode="infer")
    yield bertcalc.presets()
    yield bertcalc.compare(["base", "roberta-base", "distilbert-base", "albert-base-v2"])
    yield bertcalc.sweep(preset="tiny", axes=["batch=8,16", "seq=128,256"], fit="80GiB")


@pytest.mark.parametrize("width", [None, 120, 80])
def test_plain_drawing_is_what_rich_draws(width) -> None:
    drawn = 0
    for r in _reports():
        for explain in ([False, True] if r.kind == "count" else [False]):
            doc = T.document(r, explain)
            try:
                got = draw(doc, width or T.NATURAL_WIDTH)
            except DoesNotFit:
                continue
            assert got == T.rich_text(doc, width), (r.kind, r.label, width, explain)
            drawn += 1
    assert drawn > (100 if width is None else 30)  # the plain path is the common one, not the exception


def test_natural_width_tables_need_no_rich() -> None:
    for r in (bertcalc.count(preset="base"), bertcalc.shapes(preset="base"), bertcalc.presets(),
              bertcalc.flops(preset="base"), bertcalc.memory(preset="base"),
              bertcalc.compare(["base", "large"])):
        draw(T.document(r), T.NATURAL_WIDTH)  # raises DoesNotFit where rich would be needed


@pytest.mark.parametrize("layers", [0, 1, 9, 10, 11, 100, 1000])
def test_shapes_widths_from_the_templates_are_the_widest_rows(layers) -> None:
    for name in catalog.names():
        for head, layout in (("model", "pt"), ("mlm", "tf"), ("pretraining", "pt")):
            try:
                r = bertcalc.shapes(preset=name, head=head, layout=layout, num_hidden_layers=layers)
            except bertcalc.BertcalcError:
                continue
            t = Table()
            for _ in range(4):
                t.add_column("")
            for n, (tname, spec, _rep) in enumerate(r.tensors(), 1):
                from bertcalc.listing import displayed_shape
                from bertcalc.render import shape_text

                t.add_row(str(n), tname + (f"  (tied to {spec.tied_to})" if spec.tied_to else ""),
                          shape_text(displayed_shape(spec, layout)), f"{spec.parameters:,}")
            want = table_widths(t)
            got = T.shapes_widths(r)
            assert got[1:] == want[1:] and got[0] == len(str(r.arch.tensor_count())), (name, head, layers)


def test_shapes_table_of_many_layers_streams_to_a_pipe(cli) -> None:
    """The table has no row limit when drawn plain (piped): rows are made while they are written. The same
    rows as the CSV, in the same order."""
    r = cli("shapes", "-p", "tiny", "--layers", "2000")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert sum(1 for line in lines if ".layer." in line) == 16 * 2000
    assert "32,007 tensors" in r.stdout
    names = [line.split()[1] for line in lines if line.strip()[:1].isdigit() and "." in line]
    csv = cli("shapes", "-p", "tiny", "--layers", "2000", "-f", "csv").stdout.splitlines()[1:]
    assert names == [row.split(",")[1] for row in csv if row.startswith("tensor,")]


def _modules_after(args: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> set[str]:
    code = ("import sys, io; sys.argv = ['bertcalc', *sys.argv[1:]]\n"
            "from bertcalc.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write('\\nMODULES ' + ' '.join(sorted(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=cwd)
    assert "MODULES " in out.stderr, out.stderr
    return set(out.stderr.rsplit("MODULES ", 1)[1].split())


@pytest.mark.parametrize("args", [["count", "--preset", "base"], ["shapes", "--preset", "base"], ["presets"],
                                  ["flops", "--preset", "base"], ["memory", "--preset", "base"],
                                  ["compare", "base", "large"], ["count", "--preset", "base", "-f", "json"]])
def test_piped_output_imports_no_rich(args) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(var, None)
    mods = _modules_after(args, env)
    assert not {m for m in mods if m == "rich" or m.startswith("rich.")}, args


def test_terminal_output_is_the_table_in_colour() -> None:
    """On a terminal of 200 columns: the same characters as the plain table at that width, with ANSI styles,
    and (where nothing has to wrap) without rich."""
    pty = pytest.importorskip("pty")
    import fcntl
    import re
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color"}
    for var in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        env.pop(var, None)
    code = ("import sys; sys.argv = ['bertcalc', 'count', '--preset', 'base']\n"
            "from bertcalc.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write('RICH ' + str(any(m.startswith('rich') for m in sys.modules)))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 1 << 16)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    err = proc.communicate()[1].decode()
    os.close(master)
    shown = b"".join(chunks).decode().replace("\r\n", "\n")
    assert "\x1b[1;36mbase\x1b[0m" in shown  # the title, bold cyan
    plain = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    want = bertcalc.render.render(bertcalc.count(preset="base"), "table", width=200)
    assert "\n".join(line.rstrip() for line in plain.splitlines()) + "\n" == want
    assert "RICH False" in err


@pytest.mark.parametrize("kw", [dict(preset="base"), dict(preset="tiny", head="mlm", batch=2, seq=8),
                                dict(preset="albert-base-v2", head="pretraining", collapse=True, layout="tf"),
                                dict(preset="modernbert-base", head="mlm"), dict(preset="base", num_hidden_layers=0)])
def test_streamed_table_is_the_rendered_table(kw) -> None:
    from bertcalc.render import render
    from bertcalc.render.stream import chunks

    r = bertcalc.shapes(**kw)
    assert "".join(chunks(r, "table")) == render(r, "table")


@pytest.mark.parametrize("name", catalog.names())
def test_streamed_shapes_are_the_rendered_shapes_for_every_preset_and_head(name) -> None:
    """The streamed writers (one encoded row per layer template) against the whole render (``json.dumps`` of
    the document, ``csv.writer`` over every row, the table drawn whole), for every head and option."""
    from bertcalc.families._heads import HEADS
    from bertcalc.render import render
    from bertcalc.render.stream import chunks

    for head in HEADS:
        for kw in (dict(), dict(layout="tf", collapse=True), dict(batch=2, seq=8)):
            try:
                r = bertcalc.shapes(preset=name, head=head, **kw)
            except bertcalc.BertcalcError:
                continue
            for fmt in ("json", "csv", "table"):
                assert "".join(chunks(r, fmt)) == render(r, fmt), (name, head, kw, fmt)
