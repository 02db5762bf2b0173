"""The presets shipped inside the package: YAML files in ``bertcalc/presets/``.

In the wheel, the top-level ``presets/`` folder is mapped to ``bertcalc/presets`` (see ``pyproject.toml``),
and read through :mod:`importlib.resources`. In a source checkout (or an editable install) the same folder
is read where it lies, beside the package.

The wheel also carries the presets compiled to a dict literal, ``bertcalc/_presets.py`` (written at build time by
``hatch_build.py``), so that an installed bertcalc reads a preset without importing PyYAML. Without that file (a
source checkout, an editable install) :func:`data` reads the YAML.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, NoReturn

from .errors import PresetNotFoundError, arg

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
SUFFIX = ".yaml"
MAX_NAME = 100  # the longest shipped name is 27 characters; a longer one is never a preset


@lru_cache(maxsize=1)
def preset_dir() -> Path:
    from importlib.resources import files

    packaged = files("bertcalc") / "presets"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "presets"  # source checkout


@lru_cache(maxsize=1)
def compiled() -> dict[str, dict[str, Any]] | None:
    """The presets compiled at build time (name -> mapping), or None where there is no compiled file."""
    try:
        from ._presets import PRESETS  # type: ignore[import-not-found]
    except ImportError:
        return None
    return PRESETS


def names() -> list[str]:
    """Every shipped preset's name, sorted."""
    built = compiled()
    if built is not None:
        return sorted(built)
    return sorted(p.name[: -len(SUFFIX)] for p in preset_dir().iterdir() if p.name.endswith(SUFFIX))


def data(name: str) -> dict[str, Any]:
    """A preset's mapping (a fresh copy), as ``yaml.safe_load`` reads its file: from the compiled form when the
    package has one, else from the YAML."""
    built = compiled()
    if built is None:
        return _copy(_read(path_of(name)))
    key = _checked(name)
    if key not in built:
        _unknown(key)
    return _copy(built[key])


@cache
def _read(path: Path) -> dict[str, Any]:
    """A shipped preset's YAML, read once per process (the files ship with the package and do not change)."""
    from .loading import read_mapping

    return read_mapping(path)


def _copy(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, list) else v for k, v in mapping.items()}


def _checked(name: str) -> str:
    """A preset name, normalised (any case); a name is a name, never a path."""
    name = name.strip().lower()
    if len(name) > MAX_NAME:
        raise PresetNotFoundError(
            f"preset {name[:40]!r}...: {len(name):,} characters, too long for a preset name; "
            "run 'bertcalc presets' to list them"
        )
    if not name:
        raise PresetNotFoundError("the preset name is empty; give one like 'base' (run 'bertcalc presets' to "
                                  "list them)")
    pathlike = any(c in name for c in "/\\~:") or ".." in name or name.startswith(".") or \
        name.endswith((".yaml", ".yml", ".json"))
    if not pathlike and not _NAME.match(name):
        raise PresetNotFoundError(f"no preset is named {name!r} (names are letters, digits, '.', '-' and '_'); "
                                  "run 'bertcalc presets' to list them")
    if not _NAME.match(name) or ".." in name:
        raise PresetNotFoundError(
            f"preset {name!r}: a preset is a name like 'base', not a path; to read a file, give its path "
            f"({arg('config_file', 'FILE')}, or in compare the file itself, e.g. my-model.yaml)"
        )
    return name


def path_of(name: str) -> Path:
    """The file behind a preset name (any case). A name is a name, never a path."""
    name = _checked(name)
    path = preset_dir() / f"{name}{SUFFIX}"
    if not path.is_file():
        _unknown(name)
    return path


def _unknown(name: str) -> NoReturn:
    from .config import suggest

    known = names()
    hub = _hub_match(name, known)
    if hub is not None:
        preset, repo = hub
        raise PresetNotFoundError(
            f"unknown preset {name!r}; it is the Hub model {repo}, whose config the preset {preset!r} holds: "
            f"{arg('preset', preset, repr(preset))} (or the Hub id {repo}, which needs the network or the HF cache)"
        )
    close = suggest(name, known) or [n for n in known if name in n or n in name][:3]
    hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise PresetNotFoundError(
        f"unknown preset {name!r}; {hint + ' ' if hint else ''}"
        f"run 'bertcalc presets' to list them ({', '.join(known)})"
    )


def _hub_match(name: str, known: list[str]) -> tuple[str, str] | None:
    """The preset whose description names the Hub model ``name`` (``bert-base-uncased`` or
    ``google-bert/bert-base-uncased``), and that model's id. Read only when a name is unknown."""
    import re

    for preset in known:
        m = re.search(r"\(([\w.-]+/[\w.-]+)", str(data(preset).get("description", "")))
        if m and name in (m.group(1).lower(), m.group(1).split("/")[1].lower()):
            return preset, m.group(1)
    return None
