"""The CLI's options and messages are built from the core's vocabulary, each in one place."""

from __future__ import annotations

import re

import pytest

import bertcalc
from bertcalc import cli as cli_module

from .conftest import ROOT


def _core_params() -> set[str]:
    """Every ``param="..."`` a core module names in an error."""
    found: set[str] = set()
    for path in (ROOT / "bertcalc").rglob("*.py"):
        if path.name != "cli.py":
            found |= set(re.findall(r'\bparam="([A-Za-z_]+)"', path.read_text()))
    return found


def test_every_parameter_a_core_error_names_has_its_flag_in_the_table() -> None:
    params = _core_params()
    assert {"pooler", "head", "seq", "batch", "fit", "peak_tflops"} <= params
    assert params <= set(cli_module.FLAGS), f"add these to cli.FLAGS: {sorted(params - set(cli_module.FLAGS))}"


def test_core_errors_name_the_library_parameter() -> None:
    with pytest.raises(bertcalc.UsageError) as err:
        bertcalc.count(preset="base", head="mlm", pooler=False)
    assert err.value.param == "pooler"
    assert not [p for p in _core_params() if p.startswith("no_")], "name the parameter (pooler), not the flag"


def test_an_error_line_names_the_flag(cli) -> None:
    r = cli("count", "--preset", "base", "--head", "mlm", "--no-pooler")
    assert r.exit_code == 2
    assert r.stderr == ("bertcalc count: error: --no-pooler applies to --head model only; the mlm class decides "
                        "its own pooler\n")
    r = cli("flops", "--preset", "base", "--gpu", "H100", "--peak-tflops", "-1")
    assert r.stderr.startswith("bertcalc flops: error: --peak-tflops: ")
