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


# ------------------------------------------------------------------------------------ a local Hugging Face Hub

# huggingface_hub reads its settings (HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE, timeouts, the token
# path) from the environment once, when huggingface_hub.constants is imported; the functions bertcalc calls read
# them from that module at call time. So a test sets the environment and then reloads that module (and reloads
# it again afterwards); a subprocess gets the environment as a user's shell would give it.
HF_VARS = ("HF_ENDPOINT", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN",
           "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT",
           "HF_HUB_DISABLE_TELEMETRY", "HF_HUB_DISABLE_IMPLICIT_TOKEN", "XDG_CACHE_HOME")


class HubEnv:
    """Environment for huggingface_hub in this process: ``set(HF_HUB_OFFLINE="1")``; ``None`` unsets a variable."""

    def __init__(self, server, home: Path) -> None:
        import os

        self.server = server
        server.log.clear()  # each test sees its own requests only
        self.home = home
        self.cache = home / "hub"
        self._saved = {k: os.environ.get(k) for k in HF_VARS}
        self.env: dict[str, str] = {}
        self.set(HF_ENDPOINT=server.url, HF_HOME=str(home), HF_HUB_CACHE=None, HF_HUB_OFFLINE=None,
                 TRANSFORMERS_OFFLINE=None, HF_TOKEN=None, HUGGING_FACE_HUB_TOKEN=None, HF_TOKEN_PATH=None,
                 HF_HUB_ETAG_TIMEOUT="5", HF_HUB_DOWNLOAD_TIMEOUT="5", HF_HUB_DISABLE_TELEMETRY="1",
                 XDG_CACHE_HOME=None)

    def set(self, **env: str | None) -> None:
        import importlib
        import os

        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
                self.env.pop(k, None)
            else:
                os.environ[k] = v
                self.env[k] = v
        import huggingface_hub.constants

        importlib.reload(huggingface_hub.constants)

    def subprocess_env(self) -> dict[str, str]:
        import os

        return {"PATH": os.environ.get("PATH", ""), "NO_COLOR": "1", "COLUMNS": "200", **self.env}

    def restore(self) -> None:
        self.set(**self._saved)


@pytest.fixture
def hub_env(hub_server, tmp_path: Path):
    """huggingface_hub pointed at the module's local Hub server, with a fresh, empty HF_HOME."""
    env = HubEnv(hub_server, tmp_path / "hf-home")
    yield env
    env.restore()
