"""Where a config comes from: a preset, then a file, then explicit overrides, each overriding the one before.

Two file formats are read:

- bertcalc's YAML: a mapping of the family's HF field names, plus optional ``description`` and ``family``
  (``bert`` unless given). Strict: an unknown key is an error, with a did-you-mean.
- HuggingFace's ``config.json`` (a ``.json`` file, a model folder holding one, or any file with a
  ``model_type`` key). Lenient: ``model_type`` picks the family, keys that do not change shapes are ignored,
  and missing keys take the HF config class's defaults.

This module reads files (it is the one place that does, besides checkpoint headers in ``checkpoint.py``),
but it never prints: every problem is a typed error whose message names the file or field and says how to
fix it. YAML is read with ``yaml.safe_load`` only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import paths
from .config import FLAG_NAMES, INTERMEDIATE_RATIO, ModelConfig, config_class, family_names, suggest, validate
from .errors import ConfigError, ConfigFileError, arg
from .families import DEFAULT as DEFAULT_FAMILY
from .families import exists as family_exists
from .records import frozen

# Keys a bertcalc YAML file may hold besides the config's fields.
META_KEYS = ("description", "family")
MAX_CONFIG_BYTES = 1 << 20  # a config is a few KiB at most; refuse to parse anything huge
# A config is a flat mapping of a few dozen scalars. YAML aliases can make a small file stand for a huge tree
# ("billion laughs"): the nodes are counted with every alias expanded, before anything is constructed.
MAX_YAML_NODES = 10_000


@frozen
class Source:
    """One config source, read and sorted: the family, the field values it sets, and where it came from."""

    family: str
    data: dict[str, Any]
    origin: str  # "preset 'base'" or the file's path
    description: str = ""
    architectures: tuple[str, ...] = ()  # HF config.json: the model classes it was saved from
    hf: bool = False
    ignored: tuple[str, ...] = ()  # HF keys that do not change shapes, left out
    notes: tuple[str, ...] = ()  # what reading it found worth saying (a key transformers ignores)


def default_head(family: str, architectures: tuple[str, ...]) -> str:
    """The head a config.json's ``architectures`` names, when the family has that class; else ``model``."""
    if not architectures:
        return "model"
    from .families import module
    from .families._heads import head_from_architectures

    head = head_from_architectures(architectures)
    return head if head is not None and head in module(family).HEADS else "model"


@frozen
class ModelSpec:
    """One model, resolved: a validated config, the model class (``head``, ``pooler``), and a record of where
    each value came from, for the report's header and its error messages.

    This is how the library passes a model around: :func:`resolve` makes one, every ``bertcalc.*`` call takes
    one as its first argument, and ``dataclasses.replace(spec, head="mlm")`` picks another class of the same
    config. ``origins`` maps a config field to where its value came from (``"preset 'base'"``, a file's path,
    ``"--layers"``); fields left at their defaults are absent.
    """

    config: ModelConfig
    label: str
    description: str = ""
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()
    origins: tuple[tuple[str, str], ...] = ()
    head: str = "model"
    pooler: bool = True

    def origin(self, field: str) -> str | None:
        """Where ``field``'s value came from, or None for a default."""
        return dict(self.origins).get(field)


Resolved = ModelSpec  # the name before the spec carried its head and pooler; kept for existing callers


# ------------------------------------------------------------------------------------------------- reading


def _read_bytes(p: Path) -> bytes:
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigFileError(f"{p}: no such file; check the path") from None
    except IsADirectoryError:
        raise ConfigFileError(f"{p}: is a directory; give a config file") from None
    except PermissionError:
        raise ConfigFileError(f"{p}: permission denied; make the file readable") from None
    except OSError as exc:
        raise ConfigFileError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigFileError(f"{p}: larger than {MAX_CONFIG_BYTES // 1024} KiB; a config file is a short mapping")
    return raw


def _text(p: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigFileError(f"{p}: not UTF-8 text; give a YAML or JSON config file") from None


def read_mapping(path: str | Path, text: str | None = None) -> dict[str, Any]:
    """Read a YAML or JSON file that must hold a mapping. YAML: ``safe_load`` only, tags never run.

    ``text``, when given, is the file's content already read (``--config -``: standard input)."""
    p = Path(path)
    if text is None:
        what = paths.kind(p, ConfigFileError)
        if what == "dir":
            raise ConfigFileError(f"{p}: is a directory; give a YAML config file")
        if what == "other":  # a FIFO with no writer would block the read forever
            raise ConfigFileError(f"{p}: not a regular file (a FIFO, device or socket); give a config file, or "
                                  f"{arg('config_file', '-', repr('-'))} to read standard input")
        text = _text(p, _read_bytes(p))
    if p.suffix.lower() == ".json":
        import json

        try:
            data = json.loads(text, object_pairs_hook=lambda pairs: _unique(p, pairs))
        except json.JSONDecodeError as exc:
            raise ConfigFileError(
                f"{p}: line {exc.lineno}, column {exc.colno}: malformed JSON ({exc.msg}); fix the syntax"
            ) from None
        except RecursionError:
            raise ConfigFileError(f"{p}: nested too deeply to be a config; give a flat mapping of keys") from None
        except ValueError as exc:  # an integer of more than 4,300 digits (Python's int/str conversion limit)
            raise ConfigFileError(f"{p}: {_too_long_number(exc)}") from None
    else:
        data = _safe_yaml(p, text)
    if data is None:
        if text.strip() and text.strip() not in ("---", "..."):
            raise ConfigFileError(f"{p}: holds null, not a mapping; expected a mapping such as 'hidden_size: 768'")
        raise ConfigFileError(f"{p}: file is empty; expected a mapping such as 'hidden_size: 768'")
    if not isinstance(data, dict):
        raise ConfigFileError(
            f"{p}: expected a mapping of config keys such as 'hidden_size: 768', got a {_kind(data)}"
        )
    return data


def _unique(p: Path, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (json keeps the last one silently)."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ConfigFileError(f"{p}: key {k!r} is given twice; keep one")
        out[k] = v
    return out


def _too_long_number(exc: ValueError) -> str:
    if "digits" in str(exc):
        return "holds an integer of more than 4,300 digits; a config's sizes are a few digits long"
    return f"cannot be read ({_one_line(exc)}); fix the value"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _yaml_size(p: Path, node: Any) -> None:
    """Refuse a YAML document that expands to more than :data:`MAX_YAML_NODES` nodes, every alias counted at
    each place it is used. Each distinct node is visited once (aliases share their node), so this costs the
    size of the file, not of its expansion."""
    import yaml

    if node is None:
        return
    size: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(node, False)]
    open_: set[int] = set()  # nodes whose children are being sized
    aliases = 0
    while stack:
        n, done = stack.pop()
        if id(n) in size:
            continue
        children = [x for kv in n.value for x in kv] if isinstance(n, yaml.MappingNode) else (
            list(n.value) if isinstance(n, yaml.SequenceNode) else [])
        if done:
            open_.discard(id(n))
            size[id(n)] = 1 + sum(size[id(c)] for c in children)
            if size[id(n)] > MAX_YAML_NODES:
                raise ConfigFileError(
                    f"{p}: expands to more than {MAX_YAML_NODES:,} YAML nodes (aliases counted at each use); a "
                    "config is a flat mapping of a few keys: remove the aliases (&name / *name)")
            continue
        if id(n) in open_:
            continue  # already waiting for its children, further down the stack
        open_.add(id(n))
        stack.append((n, True))
        pending = [c for c in children if id(c) not in size]
        if any(id(c) in open_ for c in pending):
            raise ConfigFileError(f"{p}: an alias refers to a node that holds it (a recursive YAML structure); "
                                  "a config is a flat mapping of a few keys: remove the alias")
        aliases += len(children) - len(pending)
        if aliases > MAX_YAML_NODES:
            raise ConfigFileError(f"{p}: more than {MAX_YAML_NODES:,} alias uses; a config is a flat mapping of "
                                  "a few keys: remove the aliases (&name / *name)")
        stack.extend((c, False) for c in pending)


_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_YAML_INT = "tag:yaml.org,2002:int"


def _plain_integer(p: Path, key: Any, v: Any) -> None:
    """Refuse an integer YAML 1.1 reads other than as written in decimal: ``012`` is octal 10, ``0x10`` is 16,
    ``1_2`` is 12 and ``1:30`` is 90 (sexagesimal) to ``safe_load``; a config that says ``012`` layers means
    twelve or a typo, never ten."""
    if getattr(v, "tag", None) == _YAML_INT and getattr(v, "style", None) is None and not _DECIMAL.fullmatch(v.value):
        raise ConfigFileError(f"{p} (line {v.start_mark.line + 1}): {key}: {v.value!r} is not a plain decimal "
                              "integer (YAML reads a leading 0 as octal, 0x as hex, 1_000 and 1:30 as other numbers); "
                              "write it in decimal digits")


def _check_yaml_nodes(p: Path, node: Any) -> None:
    """Refuse a mapping key given twice (safe_load keeps the last one silently), and an integer value not
    written in plain decimal (:func:`_plain_integer`). Walks the composed node
    graph once per node (an alias is the node it names, walked once), which is parsing only: nothing is
    constructed."""
    import yaml

    stack = [node]
    visited: set[int] = set()
    while stack:
        n = stack.pop()
        if id(n) in visited:
            continue
        visited.add(id(n))
        if isinstance(n, yaml.MappingNode):
            seen: set[Any] = set()
            for k, v in n.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else None
                if key is not None and key in seen:
                    raise ConfigFileError(f"{p} (line {k.start_mark.line + 1}): key {key!r} is given twice; keep one")
                seen.add(key)
                _plain_integer(p, key, v)
                stack.append(v)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)


def _safe_yaml(p: Path, text: str) -> Any:
    import yaml

    try:  # parsed once: composed, checked, then constructed from the same nodes (what safe_load does, in two)
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _yaml_size(p, node)
            _check_yaml_nodes(p, node)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except RecursionError:
        raise ConfigFileError(f"{p}: nested too deeply to be a config; give a flat mapping of keys") from None
    except yaml.constructor.ConstructorError as exc:
        problem = getattr(exc, "problem", "") or "unknown tag"
        mark = exc.problem_mark
        where = f" (line {mark.line + 1})" if mark else ""
        if "unhashable key" in problem:
            raise ConfigFileError(
                f"{p}{where}: a key is a list or mapping (a YAML complex key, '? ...'); config keys are plain "
                "names such as hidden_size"
            ) from None
        raise ConfigFileError(
            f"{p}{where}: {problem}; bertcalc reads plain YAML only (safe_load), remove the tag"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigFileError(f"{p}:{where} malformed YAML ({problem}); fix the syntax") from None
    except ValueError as exc:  # an integer of more than 4,300 digits (Python's int/str conversion limit)
        raise ConfigFileError(f"{p}: {_too_long_number(exc)}") from None


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean", dict: "mapping",
            type(None): "null"}.get(type(value), "value")


def load_file(path: str | Path) -> Source:
    """A config file or a model folder, in either format (see the module docstring)."""
    if str(path).strip() == "":
        raise ConfigFileError("the config path is empty; give a YAML file, a config.json or a model folder")
    if str(path) == "-":
        return _from_stdin()
    p = Path(path)
    if paths.kind(p, ConfigFileError) == "dir":
        cfg = p / "config.json"
        if paths.kind(cfg, ConfigFileError) != "file":
            raise ConfigFileError(
                f"{p}: no config.json in this folder; give a model folder saved by save_pretrained, or a config file"
            )
        p = cfg
    data = read_mapping(p)
    if p.suffix.lower() == ".json" or "model_type" in data:
        return hf_source(data, str(p))
    return strict_source(data, str(p))


STDIN = "<stdin>"


def _from_stdin() -> Source:
    """``--config -``: a YAML or JSON config on standard input (JSON is read as the YAML it also is)."""
    import sys

    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise ConfigFileError(f"{STDIN}: standard input is closed; give {arg('config_file', 'FILE')}")
    try:
        raw = stream.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigFileError(f"{STDIN}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigFileError(f"{STDIN}: larger than {MAX_CONFIG_BYTES // 1024} KiB; a config is a short mapping")
    p = Path(STDIN)
    data = read_mapping(p, _text(p, raw))
    if "model_type" in data:
        return hf_source(data, STDIN)
    return strict_source(data, STDIN)


def strict_source(data: Mapping[Any, Any], origin: str) -> Source:
    """bertcalc's own YAML: the family's fields plus ``description`` and ``family``; unknown keys are errors."""
    family = data.get("family", DEFAULT_FAMILY)
    if isinstance(family, str):
        family = family.replace("-", "_")  # xlm-roberta, as HF's model_type spells it
    if not isinstance(family, str):
        raise ConfigError([f"{origin}: family: must be a family name such as {DEFAULT_FAMILY!r}, got a "
                           f"{_kind(family)}; supported: {', '.join(family_names())}"])
    if not family_exists(family):
        close = suggest(str(family), list(family_names()))
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError([f"{origin}: family: unknown family {family!r}; {hint}supported: "
                           f"{', '.join(family_names())}"])
    description = data.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, (str, int, float)) or isinstance(description, bool):
        raise ConfigError([f"{origin}: description: must be text, got a {_kind(description)}"])
    fields = {str(k): v for k, v in data.items() if k not in META_KEYS}  # unknown keys fail in validate()
    return Source(family, fields, origin, str(description))


# Keys of an HF config that would change shapes in ways bertcalc does not model: refuse rather than miscount.
_UNSUPPORTED = {
    "add_cross_attention": (True, "adds cross-attention tensors to every layer (a decoder); bertcalc models encoders"),
}
# Keys transformers 5 reads no more, though configs saved by 4.x hold them: counted as 5.x builds, with a note.
_IGNORED_BY_HF = {
    "position_embedding_type": ("relative", "transformers 5 no longer builds relative_key / relative_key_query "
                                "attention (4.x added a distance_embedding table to every layer): it builds the "
                                "absolute-position model, which is what is counted here"),
}


def hf_source(data: Mapping[Any, Any], origin: str) -> Source:
    """HuggingFace's config.json, read leniently: ``model_type`` picks the family; irrelevant keys are ignored."""
    model_type = data.get("model_type")
    if model_type is not None and not isinstance(model_type, str):
        raise ConfigFileError(f"{origin}: model_type must be a name such as \"bert\", got a {_kind(model_type)}")
    if model_type is None:
        raise ConfigFileError(
            f"{origin}: no model_type; a HuggingFace config.json names its architecture in model_type "
            f"(one of {', '.join(f.replace('_', '-') for f in family_names())})"
        )
    family = str(model_type).replace("-", "_")
    if not family_exists(family):
        raise ConfigFileError(
            f"{origin}: model_type {model_type!r} is not supported; bertcalc reads "
            f"{', '.join(f.replace('_', '-') for f in family_names())}"
        )
    for key, (bad, why) in _UNSUPPORTED.items():
        value = data.get(key)
        if value == bad or (isinstance(bad, str) and isinstance(value, str) and value.startswith(bad)):
            import json

            raise ConfigFileError(f"{origin}: {key} = {json.dumps(value)}: {why}")
    notes = []
    for key, (bad, why) in _IGNORED_BY_HF.items():
        value = data.get(key)
        if isinstance(value, str) and value.startswith(bad):
            import json

            notes.append(f"{origin}: {key} = {json.dumps(value)}: {why}")
    cls = config_class(family)
    fields = {k: v for k, v in data.items() if k in cls.model_fields}
    if "num_labels" not in fields and isinstance(data.get("id2label"), dict):
        fields["num_labels"] = len(data["id2label"])  # what PretrainedConfig does
    archs = data.get("architectures")
    if archs is None:
        archs = []
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        import json

        got = f"a {_kind(archs)}" if not isinstance(archs, list) else "a list holding a non-string"
        example = json.dumps([archs[:60]]) if isinstance(archs, str) else '["BertForMaskedLM"]'
        raise ConfigFileError(f"{origin}: architectures must be a list of class names such as {example}, got {got}")
    ignored = tuple(str(k) for k in data if k not in fields and k != "model_type")
    return Source(family, fields, origin, "", tuple(str(a) for a in archs if isinstance(a, str)), True, ignored,
                  tuple(notes))


@lru_cache(maxsize=64)  # a shipped preset never changes: parse it once per process (resolve copies .data)
def load_preset(name: str) -> Source:
    from . import catalog

    data = catalog.data(name)
    return strict_source(data, f"preset {name!r}")


@lru_cache(maxsize=64)
def preset_config(name: str) -> ModelConfig:
    """A shipped preset's config, unchanged, without pydantic's validation: ``model_construct`` of its fields.

    A shipped preset is not user input: ``tests/test_packaging.py`` checks that every one validates, and that
    this gives the very config validation gives (equal, field by field, with the same fields set). Skipping the
    validator skips building the family's pydantic schema (about 4 ms a family), which is most of what
    ``presets`` and the start-up of ``--preset`` commands spend on pydantic. A preset with overrides, a file or
    a Hub model is validated as a whole, as ever."""
    source = load_preset(name)
    # a YAML list is a tuple in a config, as validation makes it (configs are frozen: pos_att_type)
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in source.data.items()}
    return config_class(source.family).model_construct(**fields)


# ------------------------------------------------------------------------------------------------ resolving


def resolve(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    override_origins: Mapping[str, str] | None = None,
    label: str | None = None,
    model: str | None = None,
    revision: str | None = None,
    offline: bool | None = None,
    head: str | None = None,
    pooler: bool = True,
) -> ModelSpec:
    """Preset, then file (or Hub model), then overrides, validated once; ``head`` and ``pooler`` choose the
    model class. Without a ``head``, the class a config.json's ``architectures`` names (when its family has
    it), else the bare model.

    ``model`` is a Hugging Face Hub model id (``google-bert/bert-base-uncased``): its config.json, from the local
    HF cache or downloaded alone (``revision``, ``offline``: see ``hub.py``). It takes the place of a file.

    Overrides are keyed by HF field names (``num_hidden_layers``) or flag names (``layers``, mapped to the
    family's own field: ``n_layers`` for DistilBERT). Without a preset or file the family's HF defaults
    apply (BERT-base's for BERT). When the hidden width is overridden and the intermediate width is not,
    the intermediate width follows as ``4 × hidden`` (BERT's ratio); the returned notes say so.
    """
    sources = [load_preset(preset)] if preset is not None else []
    if config_file is not None:
        sources.append(load_file(config_file))
    if model is not None:
        from . import hub

        sources.append(hub.load_source(model, revision, offline))
    other = next((s for s in sources[1:] if s.family != sources[0].family), None) if len(sources) > 1 else None
    if other is not None:
        a, b = sources[0], other
        raise ConfigError([
            f"{b.origin} is {_a(config_class(b.family).display)} config but {a.origin} is "
            f"{config_class(a.family).display}; use one or the other"
        ])
    family = sources[0].family if sources else DEFAULT_FAMILY
    cls = config_class(family)

    data: dict[str, Any] = {}
    origins: dict[str, str] = {}
    description = ""
    notes: list[str] = []
    arch: tuple[str, ...] = ()
    for s in sources:
        data.update(s.data)
        origins.update(dict.fromkeys(s.data, s.origin))
        description = s.description or description
        if s.ignored:
            notes += _likely_typos(s, cls)
        if s.architectures and not arch:
            arch = s.architectures
    for s in sources:
        if s.notes:
            notes += s.notes
    if head is None:
        head = default_head(family, arch)

    fields, field_origins = _map_overrides(cls, dict(overrides or {}), dict(override_origins or {}))
    if cls.HIDDEN in fields and cls.INTERMEDIATE not in fields:
        h = fields[cls.HIDDEN]
        if isinstance(h, int) and not isinstance(h, bool) and h > 0:
            fields[cls.INTERMEDIATE] = INTERMEDIATE_RATIO * h
            src = field_origins.get(cls.HIDDEN, cls.HIDDEN)
            field_origins[cls.INTERMEDIATE] = src
            notes.append(
                f"{cls.INTERMEDIATE} = {INTERMEDIATE_RATIO} × {cls.HIDDEN} = {INTERMEDIATE_RATIO * h:,} "
                f"(follows {src}; set it explicitly to override)"
            )
    data.update(fields)
    origins.update(field_origins)
    if preset is not None and len(sources) == 1 and not fields:
        config = preset_config(preset)  # a shipped preset as it stands: validated by its tests, built once
    else:
        config = validate(cls, data, origins)

    described = [f"preset {preset}"] if preset else []
    if config_file is not None:
        described.append(f"file {config_file}")
    hub_label = None if model is None else model + (f"@{revision}" if revision else "")
    if hub_label is not None:
        described.append(f"Hub model {hub_label}")
    if fields:
        described.append("overrides " + ", ".join(_shown(fields)))
    if label is None:  # name what was combined: "base", "large + my-model", "base:layers=6"
        named = [preset] if preset else []
        if config_file is not None:
            named.append(_label_of(config_file))
        if hub_label is not None:
            named.append(hub_label)
        label = " + ".join(named) or f"{cls.display} defaults"
        if overrides:
            label += ":" + ",".join(_shown(overrides))
    if description and (len(sources) > 1 or fields):  # the preset's description no longer describes it alone
        description = f"based on {description}"
    return ModelSpec(config, label, description, tuple(described), tuple(notes), arch, tuple(origins.items()),
                     head, pooler)


def _shown(values: Mapping[str, Any]) -> list[str]:
    """``key=value`` for each, the value as a user would type it: ``false``, not ``False``."""
    return [f"{k}={str(v).lower() if v is True or v is False else str(v)}" for k, v in values.items()]


def _likely_typos(s: Source, cls: type[ModelConfig]) -> list[str]:
    """An HF config.json is read leniently, so a misspelt field would silently fall back to its default.
    Say so when an ignored key is one slip from a field (same length give or take one, and close)."""
    import difflib

    out = []
    for key in s.ignored:
        for field in difflib.get_close_matches(key, list(cls.model_fields), n=1, cutoff=0.8):
            if abs(len(field) - len(key)) <= 1 and field not in s.data:
                out.append(f"{s.origin}: {key!r} is not a field bertcalc reads, so {field} keeps its default "
                           f"({cls.model_fields[field].default}); did you mean {field!r}?")
    return out


def _a(word: str) -> str:
    """'a BERT', 'an ALBERT', 'an ELECTRA'."""
    return ("an " if word[:1] in "AEIOU" else "a ") + word


def _label_of(path: str | Path) -> str:
    if str(path) == "-":
        return "stdin"
    p = Path(path)
    return p.parent.name if p.name == "config.json" and p.parent.name else p.name


def _map_overrides(
    cls: type[ModelConfig], overrides: dict[str, Any], origins: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Flag or field names -> this family's field names, with where each came from."""
    given = (cls, *overrides)
    try:
        names = _FIELDS_OF.get(given)
    except TypeError:  # a key that is no dictionary key: the loop below names it
        names = None
    if names is not None:  # these keys, in this order, were mapped before: the same fields, all distinct
        pairs = zip(names, overrides, strict=True)
        return dict(zip(names, overrides.values(), strict=True)), \
            {f: origins.get(k, k) for f, k in pairs} if origins else dict(pairs)
    fields: dict[str, Any] = {}
    where: dict[str, str] = {}
    keys: dict[str, str] = {}
    for key, value in overrides.items():
        origin = origins.get(key, key)
        field = _field_of(cls, key, origin)
        if field in fields:
            same = where[field] == origin
            both = f"{origin}: {keys[field]!r} and {key!r}" if same else f"{where[field]} and {origin}"
            raise ConfigError([f"{both} both set {field}; give it once"])
        fields[field] = value
        where[field] = origin
        keys[field] = key
    if len(_FIELDS_OF) < 4096 and all(type(k) is str for k in overrides):  # bounded: keys are the user's text
        _FIELDS_OF[given] = tuple(fields)
    return fields, where


_FIELDS_OF: dict[tuple, tuple[str, ...]] = {}  # (config class, *override keys) -> their fields, once mapped


def _field_of(cls: type[ModelConfig], key: str, origin: str) -> str:
    """The field an override key names (a flag, or the field itself, ``-`` for ``_``), or a ConfigError."""
    model_fields = cls.model_fields  # a class property in pydantic: read it once
    flags = cls.FLAGS
    k = key.strip().replace("-", "_")
    field = flags.get(k, k)
    if field not in model_fields:
        known = list(model_fields)
        if k in FLAG_NAMES:
            raise ConfigError([f"{origin}: {cls.display} has no such setting; its fields are {', '.join(known)}"])
        close = suggest(k, [*known, *cls.FLAGS])
        hint = f"did you mean {' or '.join(map(repr, close))}?" if close else f"known keys: {', '.join(known)}"
        raise ConfigError([f"{origin}: unknown key {key!r} for {cls.display}; {hint}"])
    return field


# ---------------------------------------------------------------------------------------------- overrides


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
    """``num_hidden_layers=6,hidden=512`` -> ``{"num_hidden_layers": 6, "hidden": 512}`` (keys checked later)."""
    out: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        if "=" not in item:
            raise ConfigError([f"{where}: {item!r} is not key=value; write e.g. num_hidden_layers=6"])
        key, value = item.split("=", 1)
        if key.strip() in out:
            raise ConfigError([f"{where}: {key.strip()!r} is given twice; give it once"])
        out[key.strip()] = parse_scalar(value)
    return out
