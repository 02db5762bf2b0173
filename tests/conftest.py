"""Shared fixtures. ``pytest --update-golden`` rewrites the golden rendered tables instead of comparing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HF_FIXTURES = ROOT / "tests" / "fixtures" / "hf"
GOLDEN = ROOT / "tests" / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/* from current output")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def hf_fixtures() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(HF_FIXTURES.glob("*.json"))]


@pytest.fixture
def runner():
    from typer.testing import CliRunner

    return CliRunner()


@pytest.fixture
def cli(runner):
    """Run ``bertcalc ARGS...`` in-process; returns the Result (``.exit_code``, ``.stdout``, ``.stderr``)."""
    from bertcalc.cli import app

    def run(*args: str, **kw):
        return runner.invoke(app, list(args), **kw)

    return run
