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


def _hatch_build():
    import importlib.util

    spec = importlib.util.spec_from_file_location("hatch_build", ROOT / "hatch_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compiled_presets_are_the_yaml() -> None:
    """hatch_build.py's compiled form holds exactly what the strict YAML reader reads: same keys in the same
    order, same values of the same types (1e-12 stays a float, 12 an int)."""
    from bertcalc.loading import read_mapping

    namespace: dict = {}
    exec(_hatch_build().compile_presets(ROOT / "presets"), namespace)
    compiled = namespace["PRESETS"]
    assert sorted(compiled) == sorted(p.stem for p in (ROOT / "presets").glob("*.yaml"))
    for name, data in compiled.items():
        want = read_mapping(ROOT / "presets" / f"{name}.yaml")
        assert repr(data) == repr(want), name


def test_every_preset_constructs_what_validation_gives() -> None:
    """``loading.preset_config`` skips pydantic's validator for a shipped preset as it stands: every shipped
    preset must validate, and the unvalidated config must be the validated one (equal, the same fields set,
    each value of the same type), or a preset path would differ from the same fields given as overrides."""
    from bertcalc import catalog
    from bertcalc.config import config_class, validate
    from bertcalc.loading import load_preset, preset_config

    for name in catalog.names():
        source = load_preset(name)
        validated = validate(config_class(source.family), source.data)
        built = preset_config(name)
        assert type(built) is type(validated), name
        assert built == validated, name
        assert built.model_fields_set == validated.model_fields_set, name
        for key, value in validated.model_dump().items():
            assert type(getattr(built, key)) is type(value), (name, key)


def test_a_preset_with_overrides_is_validated() -> None:
    """Only a preset as it stands skips the validator: an override is checked against the whole config."""
    import bertcalc
    from bertcalc.errors import ConfigError

    with pytest.raises(ConfigError, match="num_attention_heads"):
        bertcalc.resolve(preset="base", overrides={"heads": 7})


def test_wheel_ships_the_compiled_presets(wheel: Path) -> None:
    z = zipfile.ZipFile(wheel)
    assert z.read("bertcalc/_presets.py").decode() == _hatch_build().compile_presets(ROOT / "presets")


def test_source_checkout_reads_the_yaml() -> None:
    """No compiled file in a source checkout (or an editable install): the YAML is read, the same mappings."""
    from bertcalc import catalog

    if (ROOT / "bertcalc" / "_presets.py").exists():
        pytest.skip("a compiled file was left in the source tree")
    assert catalog.compiled() is None
    assert catalog.data("base")["num_hidden_layers"] == 12


@pytest.mark.parametrize("args", [["count", "--preset", "base"], ["presets", "-f", "json"],
                                  ["shapes", "--preset", "large", "-f", "csv"], ["memory", "-p", "base"]])
def test_installed_preset_path_imports_neither_yaml_nor_rich(wheel: Path, tmp_path: Path, args) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import sys; site = sys.argv[1]; sys.argv = ['bertcalc', *sys.argv[2:]]\n"
            "from bertcalc.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "import bertcalc\n"
            "assert bertcalc.__file__.startswith(site), bertcalc.__file__\n"
            "sys.stderr.write('\\nMODULES ' + ' '.join(sorted(sys.modules)))\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(var, None)
    out = subprocess.run([sys.executable, "-c", code, str(site), *args], capture_output=True, text=True, env=env,
                         cwd=tmp_path)
    assert "MODULES " in out.stderr, out.stderr
    mods = set(out.stderr.rsplit("MODULES ", 1)[1].split())
    assert "bertcalc._presets" in mods
    assert not {m for m in mods if m.split(".")[0] in ("yaml", "rich")}, args


def test_field_values_are_model_dump() -> None:
    """``ModelConfig.field_values`` reads the fields off the instance instead of ``model_dump()`` (whose
    serializer costs a schema build): the same mapping, in the same order, for every preset and family."""
    from bertcalc import catalog
    from bertcalc.config import config_class, family_names
    from bertcalc.loading import preset_config

    configs = [preset_config(n) for n in catalog.names()] + [config_class(f)() for f in family_names()]
    for cfg in configs:
        got, want = cfg.field_values(), cfg.model_dump()
        assert list(got) == list(want) and repr(got) == repr(want), type(cfg).__name__
