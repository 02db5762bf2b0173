"""Build hook: the wheel carries the presets compiled to a Python module, ``bertcalc/_presets.py``.

``presets/*.yaml`` stay the source (and ship too). The compiled form is a dict literal of what
``yaml.safe_load`` reads from each file, so that the preset path of an installed bertcalc never imports PyYAML
(8 ms of start-up) nor parses YAML. An editable install or a source checkout has no compiled file and reads the
YAML (``bertcalc/catalog.py``); ``tests/test_presets_compiled.py`` checks that both give the same mappings.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

TARGET = "bertcalc/_presets.py"
HEADER = '"""The shipped presets, compiled from presets/*.yaml at build time by hatch_build.py. Do not edit."""\n\n'


def read_presets(preset_dir: Path) -> dict[str, dict[str, Any]]:
    """Every ``NAME.yaml`` in ``preset_dir`` -> its mapping, read with ``yaml.safe_load``, sorted by name."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for path in sorted(preset_dir.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a preset is a mapping")
        out[path.stem] = data
    return out


def compile_presets(preset_dir: Path) -> str:
    """The text of ``bertcalc/_presets.py``: ``PRESETS = {name: mapping}``, one preset a line, keys in file order."""
    lines = [HEADER, "PRESETS = {\n"]
    for name, data in read_presets(preset_dir).items():
        lines.append(f"    {name!r}: {data!r},\n")
    lines.append("}\n")
    return "".join(lines)


try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # imported by the tests without hatchling: compile_presets is all they need
    BuildHookInterface = object  # type: ignore[assignment,misc]


class CompiledPresetsHook(BuildHookInterface):  # type: ignore[misc,valid-type]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        # An editable install runs the source tree, where catalog.py falls back to the YAML files; a compiled
        # file placed beside it would go stale with the first edit of a preset.
        if self.target_name != "wheel" or version == "editable":
            return
        self._tmp = tempfile.mkdtemp(prefix="bertcalc-presets-")
        out = Path(self._tmp) / "_presets.py"
        out.write_text(compile_presets(Path(self.root) / "presets"), encoding="utf-8")
        build_data["force_include"][str(out)] = TARGET

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        tmp = getattr(self, "_tmp", None)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
