"""memory --sweep: the grid's figures against single memory reports, its bounds and errors, and golden files
for every render (table, JSON, CSV, Markdown, SVG). Regenerate the goldens with ``pytest --update-golden``."""

from __future__ import annotations

import difflib
import json
import re

import pytest
from typer.testing import CliRunner

import bertcalc
from bertcalc.cli import app
from bertcalc.errors import UsageError
from bertcalc.render import render

from .conftest import GOLDEN

runner = CliRunner()


def _grid():
    return bertcalc.sweep(preset="tiny", head="mlm", axes="batch=8..64 seq=64,128", precision="amp-bf16",
                          fit="580MiB", context=64 << 20)


def _timed():
    return bertcalc.sweep(preset="tiny", head="seq-cls", axes=["batch=4,16", "precision=fp32,amp-bf16",
                                                               "attention=all"], seq=128, gpu="L4", mfu=0.5)


CASES = {
    "sweep-tiny-mlm.txt": (_grid, "table"),
    "sweep-tiny-mlm.json": (_grid, "json"),
    "sweep-tiny-mlm.csv": (_grid, "csv"),
    "sweep-tiny-mlm.md": (_grid, "markdown"),
    "sweep-tiny-mlm.svg": (_grid, "svg"),
    "sweep-tiny-timed.txt": (_timed, "table"),
}


# The SVG goldens were written by this rich; another version draws the same text with other markup, so there
# the SVG is checked by its text, line by line, against the plain-text render.
SVG_RICH = "15.0.0"


def svg_text(svg: str) -> list[str]:
    """The text an SVG written by rich shows, one string per terminal line (each piece placed at its column:
    rich leaves runs of spaces out and positions the next piece by x)."""
    import html

    pieces = re.findall(r'<text [^>]*x="([\d.]+)" y="[\d.]+" textLength="([\d.]+)" '
                        r'clip-path="url\(#[\w-]*-line-(\d+)\)"[^>]*>([^<]*)</text>', svg)
    if not pieces:
        return []
    width = next(float(n) / len(html.unescape(t)) for _, n, _, t in pieces if t)
    lines: dict[int, str] = {}
    for x, _, line, chunk in pieces:
        col = round(float(x) / width)
        have = lines.get(int(line), "")
        lines[int(line)] = have.ljust(col) + html.unescape(chunk).replace("\xa0", " ")
    return [lines.get(i, "").rstrip() for i in range(max(lines) + 1)]


def _rich_version() -> str:
    from importlib.metadata import version

    return version("rich")


@pytest.mark.parametrize("name", sorted(CASES))
def test_sweep_golden(name: str, update_golden: bool) -> None:
    make, fmt = CASES[name]
    text = render(make(), fmt, width=120)
    if fmt == "table":
        assert "\x1b[" not in text and max(len(line) for line in text.splitlines()) <= 120
    if fmt == "svg":
        plain = render(make(), "table", width=120).rstrip("\n").splitlines()
        assert svg_text(text) == plain, "the SVG shows other text than the table"
        if _rich_version() != SVG_RICH and not update_golden:
            pytest.skip(f"SVG markup golden written with rich {SVG_RICH}; its text matched the table")
    path = GOLDEN / name
    if update_golden:
        path.write_text(text)
        return
    if not path.exists():
        pytest.fail(f"missing golden file {name}; run: pytest tests/test_sweep.py --update-golden")
    want = path.read_text()
    if want != text:
        diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True), "golden", "now"))
        pytest.fail(f"{name} differs (pytest --update-golden to accept):\n{diff[:4000]}")


def test_cells_are_single_reports() -> None:
    """Each cell is what `memory` says for that batch and length; each row's max batch is memory --fit's."""
    g = _grid()
    assert g.on == "reserved" and [r.seq for r in g.rows] == [64, 128] and g.batches == (8, 16, 32, 64)
    for row in g.rows:
        for c in row.cells:
            one = bertcalc.memory(preset="tiny", head="mlm", precision="amp-bf16", batch=c.batch, seq=row.seq,
                                  fit="580MiB", context=64 << 20)
            assert (c.peak_bytes, c.reserved_bytes, c.fits) == (one.peak_bytes, one.reserved.reserved, one.fits)
            assert row.max_batch == one.max_batch
            room = (580 << 20) - (64 << 20)
            assert c.level == ("over" if not c.fits else "tight" if c.reserved_bytes > 0.9 * room else "fits")
    assert {c.level for r in g.rows for c in r.cells} >= {"fits", "over"}


def test_time_per_step_is_flops_at_the_mfu() -> None:
    g = _timed()
    for row in g.rows:
        for c in row.cells:
            f = bertcalc.flops(preset="tiny", head="seq-cls", batch=c.batch, seq=row.seq, gpu="L4", mfu=0.5,
                               precision="fp32" if row.precision == "fp32" else "bf16")
            assert c.step_seconds == f.seconds()["training_step"]
    assert len(g.rows) == 4 and g.on == "reserved"  # --gpu is a budget too


def test_json_is_strict_and_complete() -> None:
    doc = json.loads(render(_grid(), "json"))
    assert doc["swept"] == ["batch", "seq"] and doc["budget_bytes"] == 580 << 20
    assert [len(r["cells"]) for r in doc["rows"]] == [4, 4]


@pytest.mark.parametrize("axes,match", [
    ("batch=1..100000+1", "cells"),
    ("batch=0..8", "not a range"),
    ("batch=8 batch=16", "twice"),
    ("depth=3", "AXIS=VALUES"),
    ("precision=fp8", "unknown precision"),
    ("seq=abc", "positive whole number"),
    ("batch=1..8 seq=1..4096+1", "cells"),
    ("batch=8..9223372036854775807", "too large: values are at most 1,099,511,627,776"),
    ("batch=2000000000000", "too large"),
    ("batch=1.." + "9" * 5000, "too large"),  # int() refuses 4,300 digits: this was an internal error (exit 70)
    ("batch=" + "9" * 5000, "too large"),
    ("batch=1..2x1", "a factor is at least 2"),
    ("batch=1..4+0", "a step is at least 1"),
])
def test_bad_sweeps_are_clear_errors(axes: str, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        bertcalc.sweep(preset="tiny", axes=axes)


def test_a_value_of_thousands_of_digits_is_one_short_line() -> None:
    r = runner.invoke(app, ["memory", "--preset", "tiny", "--sweep", "batch=1.." + "9" * 5000])
    assert r.exit_code == 2, r.output
    line, = r.stderr.splitlines()
    assert len(line) < 300 and "(5,009 characters)" in line and "is too large" in line, line


def test_a_swept_value_at_fault_is_named_as_swept() -> None:
    """A sequence past the position table, given in --sweep, is named as the --sweep item, not as --seq (which
    the user did not give); one given with --seq is still --seq."""
    r = runner.invoke(app, ["memory", "--preset", "tiny", "--sweep", "seq=128,600"])
    assert r.exit_code == 2 and "error: --sweep seq=600: sequence length 600 exceeds" in r.output, r.output
    r = runner.invoke(app, ["memory", "--preset", "tiny", "--seq", "600", "--sweep", "batch=1,2"])
    assert r.exit_code == 2 and "error: --seq: sequence length 600" in r.output, r.output
    with pytest.raises(UsageError, match="seq=600") as info:
        bertcalc.sweep(preset="tiny", axes="seq=600")
    assert info.value.param == "axes"


def test_cli_sweep_exit_2_on_bad_input_and_svg_file(tmp_path) -> None:
    r = runner.invoke(app, ["memory", "--preset", "tiny", "--sweep", "batch=0..4"])
    assert r.exit_code == 2 and "not a range" in r.output
    out = tmp_path / "grid.svg"
    r = runner.invoke(app, ["memory", "--preset", "tiny", "--head", "mlm", "--sweep", "batch=8..32 seq=64,128",
                            "--fit", "600MiB", "-o", str(out)])
    assert r.exit_code == 0, r.output
    svg = out.read_text()
    assert svg.startswith("<svg") and "max B" in svg.replace("&#160;", " ")
    assert not list(tmp_path.glob("*.tmp*")), "atomic write leaves no temporary file"
    r = runner.invoke(app, ["memory", "--preset", "tiny", "--sweep", "batch=8,16", "--sweep", "seq=32", "-f", "csv"])
    assert r.exit_code == 0 and r.output.splitlines()[0] == "seq,precision,attention,B=8,B=16"


def test_reports_display_in_notebooks() -> None:
    r = bertcalc.memory(preset="tiny", batch=2, seq=16)
    html = r._repr_html_()
    assert html.lstrip().startswith("<!DOCTYPE html>") or "<pre" in html
    assert "peak allocated" in re.sub(r"<[^>]+>", "", html).replace("&#160;", " ")
    from rich.console import Console

    c = Console(record=True, width=120, color_system=None)
    c.print(r)
    assert "peak allocated" in c.export_text()


def test_readme_image_is_current() -> None:
    """docs/img/sweep-base-h100.svg, shown in the README, is what the README's sweep command writes."""
    from .conftest import ROOT

    r = bertcalc.sweep(preset="base", head="mlm", precision="amp-bf16", gpu="H100",
                       axes=["batch=8..256", "seq=128,256,512"])
    shown = (ROOT / "docs" / "img" / "sweep-base-h100.svg").read_text()
    assert svg_text(shown) == render(r, "table", width=120).rstrip("\n").splitlines()
    if _rich_version() != SVG_RICH:
        pytest.skip(f"the image was drawn with rich {SVG_RICH}; its text matches")
    assert shown == render(r, "svg"), \
        "regenerate: bertcalc memory --preset base --head mlm --precision amp-bf16 --gpu H100 " \
        "--sweep batch=8..256 --sweep seq=128,256,512 -o docs/img/sweep-base-h100.svg"


def test_cli_memory_reserved_context_and_notes() -> None:
    r = runner.invoke(app, ["memory", "--preset", "tiny", "--context", "0B", "--fit", "1GiB"])
    assert r.exit_code == 2 and "--context" in r.output
    r = runner.invoke(app, ["memory", "--preset", "tiny", "--reserved", "--mode", "infer"])
    assert r.exit_code == 0 and "inference is not replayed" in r.output
    r = runner.invoke(app, ["memory", "--preset", "tiny", "--reserved", "-f", "json"])
    doc = json.loads(r.output)
    assert doc["reserved_bytes"] >= doc["reserved_allocated_bytes"] >= doc["peak_bytes"]
    r = runner.invoke(app, ["memory", "--preset", "tiny", "--gpu", "T4", "--context", "1GiB", "-f", "json"])
    doc = json.loads(r.output)
    assert doc["context_bytes"] == 1 << 30 and doc["fit_on"] == "reserved"
    r = runner.invoke(app, ["memory", "--preset", "tiny", "--alloc-conf", "expandable_segments:maybe"])
    assert r.exit_code == 2 and "--alloc-conf" in r.output


def test_a_table_too_large_falls_back_to_plain_repr_in_notebooks() -> None:
    assert bertcalc.shapes(preset="tiny", layers=20000)._repr_html_() is None
    assert "<pre" in bertcalc.count(preset="tiny")._repr_html_()
