"""Shapes as CSV or JSON stream: the same bytes as the whole render, written piece by piece, in bounded
memory whatever the number of layers (issue #10's "CSV and JSON stream")."""

from __future__ import annotations

import json
import tracemalloc

import pytest

import bertcalc
from bertcalc.render import render
from bertcalc.render.stream import chunks, streams


@pytest.mark.parametrize("kw", [
    dict(preset="base"),
    dict(preset="tiny", head="mlm", batch=2, seq=8),
    dict(preset="albert-base-v2", head="pretraining", collapse=True, layout="tf"),
    dict(preset="distilbert-base", head="qa"),
    dict(preset="base", num_hidden_layers=0),
])
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_streamed_output_is_the_rendered_output(kw, fmt) -> None:
    r = bertcalc.shapes(**kw)
    assert streams(r, fmt)
    pieces = list(chunks(r, fmt))
    assert "".join(pieces) == render(r, fmt)


def test_streaming_memory_does_not_grow_with_layers() -> None:
    """2,000 layers of BERT-base (32,000 rows) as JSON: the encoder never holds the rows."""
    r = bertcalc.shapes(preset="base", num_hidden_layers=2000)
    tracemalloc.start()
    n = sum(len(c) for c in chunks(r, "json"))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n > 4_000_000
    assert peak < 4 << 20  # the whole document is about 4.6 MB; the stream holds a few blocks of it


def test_cli_writes_a_streamed_file(cli, tmp_path) -> None:
    out = tmp_path / "s.json"
    r = cli("shapes", "-p", "tiny", "--layers", "300", "-o", str(out))
    assert r.exit_code == 0, r.stderr
    d = json.loads(out.read_text())
    assert d["schema_version"] == 1 and len(d["tensors"]) == 5 + 16 * 300 + 2
    r = cli("shapes", "-p", "tiny", "--layers", "300", "-f", "csv")
    assert r.exit_code == 0 and r.stdout.count("\n") == 1 + 5 + 16 * 300 + 2
