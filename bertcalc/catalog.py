"""The presets shipped inside the package: YAML files in ``bertcalc/presets/``.

In the wheel, the top-level ``presets/`` folder is mapped to ``bertcalc/presets`` (see ``pyproject.toml``),
and read through :mod:`importlib.resources`. In a source checkout (or an editable install) the same folder
is read where it lies, beside the package.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from .errors import PresetNotFoundError

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
SUFFIX = ".yaml"


@lru_cache(maxsize=1)
def preset_dir() -> Path:
    packaged = files("bertcalc") / "presets"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "presets"  # source checkout


def names() -> list[str]:
    """Every shipped preset's name, sorted."""
    return sorted(p.name[: -len(SUFFIX)] for p in preset_dir().iterdir() if p.name.endswith(SUFFIX))


def path_of(name: str) -> Path:
    """The file behind a preset name (any case). A name is a name, never a path."""
    name = name.strip().lower()
    if not _NAME.match(name) or ".." in name:
        raise PresetNotFoundError(
            f"preset {name!r}: a preset is a name like 'base', not a path; "
            f"to read a file, use --config {name}"
        )
    path = preset_dir() / f"{name}{SUFFIX}"
    if not path.is_file():
        from .config import suggest

        known = names()
        close = suggest(name, known) or [n for n in known if name in n or n in name][:3]
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise PresetNotFoundError(
            f"unknown preset {name!r}; {hint + ' ' if hint else ''}"
            f"run 'bertcalc presets' to list them ({', '.join(known)})"
        )
    return path

