"""The wheel carries the presets, and an installed (non-editable) copy finds every one of them."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("wheel")
    from hatchling.builders.wheel import WheelBuilder

    builder = WheelBuilder(str(ROOT))
    paths = list(builder.build(directory=str(out), versions=["standard"]))
    assert len(paths) == 1
    return Path(paths[0])


def test_wheel_ships_every_preset(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {Path(n).name for n in names if n.startswith("bertcalc/presets/") and n.endswith(".yaml")}
    assert shipped == {p.name for p in (ROOT / "presets").glob("*.yaml")}
    assert any(n.endswith("entry_points.txt") for n in names)


def test_installed_wheel_loads_every_preset(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import bertcalc, bertcalc.catalog as c, json, sys;"
        "assert bertcalc.__file__.startswith(sys.argv[1]), bertcalc.__file__;"
        "assert str(c.preset_dir()).startswith(sys.argv[1]), c.preset_dir();"
        "print(json.dumps({n: bertcalc.count(preset=n).total_parameters for n in c.names()}))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True, text=True, env=env,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    import json

    totals = json.loads(out.stdout)
    assert set(totals) == {p.stem for p in (ROOT / "presets").glob("*.yaml")}
    assert totals["base"] == 109_482_240
