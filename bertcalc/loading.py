"""Where a config comes from: a preset, then a file, then explicit overrides, each overriding the one before.

This module reads files (it is the one place that does), but it never prints: every problem is a typed
error whose message names the file or field and says how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import FLAG_FIELDS, INTERMEDIATE_RATIO, BertConfig, config_class, suggest, validate
from .errors import ConfigError, ConfigFileError

# Keys a bertcalc YAML file may hold besides the config's fields.
META_KEYS = ("description",)
MAX_CONFIG_BYTES = 1 << 20  # a config is a few hundred bytes; refuse to parse anything huge


@dataclass(frozen=True)
class Resolved:
    """A validated config, and a record of where it came from, for the report's header."""

    config: BertConfig
    label: str
    description: str = ""
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def read_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) file that must hold a mapping. ``yaml.safe_load`` only: tags never run."""
    import yaml

    p = Path(path)
    try:
        if p.is_dir():
            raise ConfigFileError(f"{p}: is a directory; give a YAML config file")
        with p.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigFileError(f"{p}: no such file; check the path") from None
    except PermissionError:
        raise ConfigFileError(f"{p}: permission denied; make the file readable") from None
    except OSError as exc:
        raise ConfigFileError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigFileError(f"{p}: larger than {MAX_CONFIG_BYTES // 1024} KiB; a config file is a short mapping")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigFileError(f"{p}: not UTF-8 text; give a YAML config file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.constructor.ConstructorError as exc:
        tag = getattr(exc, "problem", "") or "unknown tag"
        mark = exc.problem_mark
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigFileError(
            f"{p}{where}: {tag}; bertcalc reads plain YAML only (safe_load), remove the tag"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigFileError(f"{p}:{where} malformed YAML ({problem}); fix the syntax") from None
    if data is None:
        raise ConfigFileError(f"{p}: file is empty; expected a mapping such as 'hidden_size: 768'")
    if not isinstance(data, dict):
        raise ConfigFileError(
            f"{p}: expected a mapping of config keys such as 'hidden_size: 768', got a {_kind(data)}"
        )
    return data


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "value")


def _split_meta(data: Mapping[Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    cfg, meta = {}, {}
    for k, v in data.items():
        (meta if k in META_KEYS else cfg)[str(k)] = v
    return cfg, meta


def resolve(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    override_origins: Mapping[str, str] | None = None,
    label: str | None = None,
) -> Resolved:
    """Preset, then file, then overrides (HF field names), validated once.

    Without a preset or file the defaults are BERT-base's. When ``hidden_size`` is overridden and
    ``intermediate_size`` is not, the intermediate size follows as ``4 × hidden_size`` (BERT's ratio); the
    returned notes say so.
    """
    from . import catalog as presets

    data: dict[str, Any] = {}
    origins: dict[str, str] = {}
    sources: list[str] = []
    description = ""
    family = "bert"
    if preset is not None:
        cfg_part, meta = _split_meta(presets.load(preset))
        data.update(cfg_part)
        origins.update(dict.fromkeys(cfg_part, f"preset {preset!r}"))
        description = str(meta.get("description", ""))
        sources.append(f"preset {preset}")
    if config_file is not None:
        cfg_part, meta = _split_meta(read_mapping(config_file))
        data.update(cfg_part)
        origins.update(dict.fromkeys(cfg_part, str(config_file)))
        description = str(meta.get("description", description))
        sources.append(f"file {config_file}")
    notes: list[str] = []
    overrides = dict(overrides or {})
    override_origins = dict(override_origins or {})
    cls = config_class(family)
    if "hidden_size" in overrides and "intermediate_size" not in overrides:
        h = overrides["hidden_size"]
        if isinstance(h, int) and not isinstance(h, bool) and h > 0:
            overrides["intermediate_size"] = INTERMEDIATE_RATIO * h
            src = override_origins.get("hidden_size", "hidden_size")
            override_origins["intermediate_size"] = src
            notes.append(
                f"intermediate_size = {INTERMEDIATE_RATIO} × hidden_size = {INTERMEDIATE_RATIO * h:,} "
                f"(follows {src}; set it explicitly to override)"
            )
    if overrides:
        data.update(overrides)
        origins.update({k: override_origins.get(k, k) for k in overrides})
        sources.append("overrides " + ", ".join(f"{k}={v}" for k, v in overrides.items()))
    config = validate(cls, data, origins)
    if label is None:
        label = preset or (Path(config_file).name if config_file else "bert-base (defaults)")
    return Resolved(config, label, description, tuple(sources), tuple(notes))


# ---------------------------------------------------------------------------------------------- overrides


def override_key(key: str) -> str:
    """``hidden``, ``max-positions`` or ``hidden_size`` -> the HF field name."""
    k = key.strip().replace("-", "_")
    if k in FLAG_FIELDS:
        return FLAG_FIELDS[k]
    return k


def parse_scalar(text: str) -> Any:
    """``12`` -> 12, ``1e-5`` -> 1e-05, ``true`` -> True, anything else stays text."""
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        pass
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    return t


def parse_overrides(text: str, where: str) -> dict[str, Any]:
    """``num_hidden_layers=6,hidden=512`` -> ``{"num_hidden_layers": 6, "hidden_size": 512}``."""
    out: dict[str, Any] = {}
    known = [*BertConfig.model_fields, *FLAG_FIELDS, "pooler"]
    for item in filter(None, (s.strip() for s in text.split(","))):
        if "=" not in item:
            raise ConfigError([f"{where}: {item!r} is not key=value; write e.g. num_hidden_layers=6"])
        key, value = item.split("=", 1)
        field = override_key(key)
        if field not in BertConfig.model_fields and field != "pooler":
            close = suggest(key.strip().replace("-", "_"), known)
            hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else "use a config field name"
            raise ConfigError([f"{where}: unknown key {key.strip()!r}; {hint}"])
        out[field] = parse_scalar(value)
    return out
