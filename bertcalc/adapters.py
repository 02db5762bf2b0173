"""Parameter-efficient fine-tuning: LoRA adapters (PEFT's rules) and frozen parts, applied to a tensor list.

:func:`apply` takes an :class:`~bertcalc.model.Architecture` and returns another whose tensors carry PEFT's
names (``base_model.model.<hf name>``; a wrapped Linear's own tensors under ``base_layer``, the adapter's as
``lora_A.default.weight``...; a ``modules_to_save`` module as ``original_module`` and
``modules_to_save.default``) and a ``trainable`` flag each, so that counting the result gives what
``PeftModel.get_nb_trainable_parameters()`` gives.

Matching follows ``peft.tuners.tuners_utils.check_target_module_exists``: a list of target names matches a module
whose name is one of them or ends with ``.<name>``; a string is a regular expression the whole name must match;
``all-linear`` is every ``nn.Linear`` but the output embedding (and, for ``SEQ_CLS``, a top-level ``classifier`` or
``score``). It runs on the layer *template*: a layer range, ``layers_to_transform`` or a layer index named in a
pattern splits the repeated layers into runs (frozen 0-5, trainable 6-11), evaluated once each, so 10^9 layers cost
what 12 do.

Pure: no I/O but :func:`read_adapter_config`, which reads one bounded, strict JSON file.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path
from typing import Any

from .errors import ConfigFileError, UsageError, arg
from .model import Architecture, Component, Dim, Part, TensorSpec
from .records import frozen

# peft's default target modules per model type live in the family files (LORA_TARGETS); a family without
# them has no default, and peft asks for target_modules
# PeftModelForSequenceClassification / ForTokenClassification / ForQuestionAnswering add these to modules_to_save;
# SEQ_CLS before the adapter is injected (so no LoRA target may match them), the other two after
GUARDED_TASKS = ("SEQ_CLS",)
TASK_MODULES: dict[str, tuple[str, ...]] = {"SEQ_CLS": ("classifier", "score"), "TOKEN_CLS": ("classifier", "score"),
                                            "QUESTION_ANS": ("qa_outputs",)}
TASK_TYPES = ("SEQ_CLS", "TOKEN_CLS", "QUESTION_ANS", "CAUSAL_LM", "FEATURE_EXTRACTION", "SEQ_2_SEQ_LM")
SEQ_CLS_HEAD_NAMES = ("score", "classifier")  # peft.utils.constants: excluded from all-linear for SEQ_CLS
BIASES = ("none", "all", "lora_only")
ALL_LINEAR = "all-linear"
MAX_ADAPTER_BYTES = 1 << 20
MAX_R = 1 << 20


@frozen
class LoraSpec:
    """A LoRA adapter as ``peft.LoraConfig`` describes it (the fields that shape the tensors)."""

    r: int = 8
    alpha: float = 8
    dropout: float = 0.0
    targets: tuple[str, ...] | str | None = None  # None: peft's default for the model type; str: regex or all-linear
    bias: str = "none"
    dora: bool = False
    rank_pattern: tuple[tuple[str, int], ...] = ()
    alpha_pattern: tuple[tuple[str, float], ...] = ()
    layers: tuple[int, ...] | None = None  # layers_to_transform
    layers_pattern: tuple[str, ...] | None = None
    modules_to_save: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | str | None = None
    task: str | None = "auto"  # "auto": from the head (seq-cls -> SEQ_CLS ...); None: a plain PeftModel

    def to_dict(self) -> dict[str, Any]:
        return {"r": self.r, "lora_alpha": self.alpha, "lora_dropout": self.dropout,
                "target_modules": list(self.targets) if isinstance(self.targets, tuple) else self.targets,
                "bias": self.bias, "use_dora": self.dora, "rank_pattern": dict(self.rank_pattern),
                "alpha_pattern": dict(self.alpha_pattern),
                "layers_to_transform": None if self.layers is None else list(self.layers),
                "modules_to_save": None if self.modules_to_save is None else list(self.modules_to_save),
                "task_type": self.task}


def checked(spec: LoraSpec) -> LoraSpec:
    """A LoraSpec a library caller built: held to the bounds the parsers apply (``r=-4`` would count negative
    parameters, ``alpha=nan`` would break strict JSON)."""
    import math

    def number(field: str, v: Any, lo: float, hi: float, integer: bool = False) -> None:
        kind = int if integer else (int, float)
        if isinstance(v, bool) or not isinstance(v, kind) or not math.isfinite(v) or not lo <= v <= hi:
            bounds = f"{lo:,} to {hi:,}" if integer else f"{lo:g} to {hi:g}"
            raise UsageError(f"LoraSpec.{field} must be {'a whole number' if integer else 'a number'} from "
                             f"{bounds}, got {repr(v)[:60]}", param="lora")

    number("r", spec.r, 1, MAX_R, integer=True)
    number("alpha", spec.alpha, 0, 1e9)
    number("dropout", spec.dropout, 0, 1)
    for pat, v in spec.rank_pattern:
        number(f"rank_pattern[{pat!r}]", v, 1, MAX_R, integer=True)
    for pat, v in spec.alpha_pattern:
        number(f"alpha_pattern[{pat!r}]", v, 0, 1e9)
    if spec.bias not in BIASES:
        raise UsageError(f"LoraSpec.bias must be one of {', '.join(BIASES)}, got {spec.bias!r}", param="lora")
    return spec


@frozen
class Group:
    """A freeze group: ``embeddings``, ``pooler``, ``head``, ``base``, or the layers ``lo``..``hi``."""

    name: str
    lo: int = 0
    hi: int = -1

    def __str__(self) -> str:
        return f"layers={self.lo}-{self.hi}" if self.name == "layers" else self.name


@frozen
class FreezeSpec:
    freeze: tuple[Group, ...] = ()
    train: tuple[Group, ...] = ()  # when given, everything else is frozen


GROUPS = ("embeddings", "layers", "pooler", "head", "base")


# ---------------------------------------------------------------------------------------------------- parsing

def _int(text: str, param: str, field: str, lo: int = 0, hi: int = MAX_R) -> int:
    if not re.fullmatch(r"\d{1,40}", text.strip()):
        if re.fullmatch(r"\s*-\s*\d{1,40}\s*", text):  # a whole number, but below any range here
            raise UsageError(f"{field}={text.strip()} is negative; {field} is {lo}..{hi:,}, e.g. {field}=8",
                             param=param)
        raise UsageError(f"{field}={text!r} is not a whole number; write e.g. {field}=8", param=param)
    v = int(text)
    if not lo <= v <= hi:
        raise UsageError(f"{field}={v} is out of range ({lo}..{hi:,})", param=param)
    return v


def _float(text: str, param: str, field: str, lo: float, hi: float) -> float:
    try:
        v = float(text)
    except ValueError:
        raise UsageError(f"{field}={text!r} is not a number; write e.g. {field}=0.1", param=param) from None
    if not (lo <= v <= hi):
        raise UsageError(f"{field}={text} is out of range ({lo}..{hi})", param=param)
    return v


def _bool(text: str, param: str, field: str) -> bool:
    t = text.strip().lower()
    if t in ("true", "1", "yes", "on"):
        return True
    if t in ("false", "0", "no", "off"):
        return False
    raise UsageError(f"{field}={text!r}: write true or false", param=param)


def _layers(text: str, param: str, field: str) -> tuple[int, ...]:
    """``0-5+8`` -> (0, 1, 2, 3, 4, 5, 8), bounded: a range over a million layers is refused."""
    out: list[int] = []
    for piece in text.split("+"):
        m = re.fullmatch(r"\s*(\d{1,12})\s*(?:-\s*(\d{1,12})\s*)?", piece)
        if not m:
            raise UsageError(f"{field}={text!r}: write layer indices as 0-5+8", param=param)
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise UsageError(f"{field}: range {lo}-{hi} runs backwards; write {hi}-{lo}", param=param)
        if hi - lo > 1_000_000:
            fix = arg("freeze", "layers=", "'layers=...'")
            raise UsageError(f"{field}: range {lo}-{hi} is too long to list; use {fix}", param=param)
        out += range(lo, hi + 1)
    return tuple(sorted(set(out)))


LORA_KEYS = ("r", "alpha", "dropout", "targets", "bias", "dora", "layers", "save", "exclude", "task", "rank",
             "alpha_of")


def parse_lora(text: str) -> LoraSpec:
    """``r=8,alpha=16,targets=query+value[,dropout=0.1,bias=none,dora=true,layers=0-5,save=classifier,
    exclude=pooler.dense,task=SEQ_CLS|none|auto,rank=query:16+value:4,alpha_of=query:32]`` -> a spec."""
    param = "lora"
    if len(text) > 10_000:
        fix = arg("adapter", "adapter_config.json", "'adapter_config.json'")
        raise UsageError(f"the specification is too long; use {fix}", param=param)
    kw: dict[str, Any] = {}
    seen: set[str] = set()
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip().lower().replace("-", "_")
        if key == "lora_alpha":
            key = "alpha"
        if not sep or key not in LORA_KEYS:
            raise UsageError(f"{item!r}: expected key=value with key one of {', '.join(LORA_KEYS)} "
                             "(e.g. r=8,alpha=16,targets=query+value)", param=param)
        if key in seen:
            raise UsageError(f"{key} is given twice", param=param)
        seen.add(key)
        value = value.strip()
        if key == "r":
            kw["r"] = _int(value, param, "r", 1)
        elif key == "alpha":
            kw["alpha"] = _float(value, param, "alpha", 0, 1e9)
        elif key == "dropout":
            kw["dropout"] = _float(value, param, "dropout", 0, 1)
        elif key == "targets":
            names = tuple(t.strip() for t in value.split("+") if t.strip())
            if not names:
                raise UsageError("targets is empty; name modules (query+value) or all-linear", param=param)
            kw["targets"] = ALL_LINEAR if names == (ALL_LINEAR,) else names
        elif key == "bias":
            if value not in BIASES:
                raise UsageError(f"bias={value!r}: choose one of {', '.join(BIASES)}", param=param)
            kw["bias"] = value
        elif key == "dora":
            kw["dora"] = _bool(value, param, "dora")
        elif key == "layers":
            kw["layers"] = _layers(value, param, "layers")
        elif key == "save":  # peft builds a regular expression of each (its guard against adapting them)
            kw["modules_to_save"] = tuple(t.strip() for t in value.split("+") if t.strip())
            for t in kw["modules_to_save"]:
                _regex(t, param, "save")
        elif key == "exclude":
            kw["exclude"] = tuple(t.strip() for t in value.split("+") if t.strip())
        elif key == "task":
            kw["task"] = _task(value, param)
        else:  # rank / alpha_of: pattern:value pairs
            pairs = []
            for piece in filter(None, value.split("+")):
                pat, colon, num = piece.rpartition(":")
                if not colon or not pat:
                    raise UsageError(f"{key}={value!r}: write module:value pairs, e.g. {key}=query:16+value:4",
                                     param=param)
                _regex(pat, param, key)
                pairs.append((pat, _int(num, param, key, 1) if key == "rank" else _float(num, param, key, 0, 1e9)))
            kw["rank_pattern" if key == "rank" else "alpha_pattern"] = tuple(pairs)
    return LoraSpec(**kw)


def _task(value: Any, param: str) -> str | None:
    if value is None or str(value).lower() == "none":
        return None
    if str(value).lower() == "auto":
        return "auto"
    v = str(value).upper()
    if v not in TASK_TYPES:
        raise UsageError(f"{_where(param)}task type {value!r}: choose auto, none or one of {', '.join(TASK_TYPES)}",
                         param=param)
    return v


def _where(param: str) -> str:
    """A file's name opens its messages; an option's flag is added by the CLI."""
    return "" if param in ("lora", "adapter", "freeze", "train") else f"{param}: "


def _regex(pattern: str, param: str, field: str) -> None:
    if len(pattern) > 1000:
        raise UsageError(f"{_where(param)}{field}: pattern longer than 1,000 characters", param=param)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"{_where(param)}{field}: {pattern!r} is not a regular expression ({exc})",
                         param=param) from None


# adapter_config.json's other keys change no tensor shape or trainable flag (init_lora_weights, use_rslora...),
# or are peft's bookkeeping: they are read past. These would change what is trained: refused unless at their default
_UNMODELLED = {"target_parameters": None, "trainable_token_indices": None, "lora_bias": False,
               "layer_replication": None}


def read_adapter_config(path: str | Path) -> LoraSpec:
    """A peft ``adapter_config.json`` (or the folder holding one) -> a spec. Strict JSON, at most 1 MiB."""
    import json

    p = Path(path)
    if p.is_dir():
        p = p / "adapter_config.json"
    from . import paths

    if paths.kind(p, ConfigFileError) == "other":  # a FIFO with no writer would block the read forever
        raise ConfigFileError(f"{p}: not a regular file (a FIFO, device or socket); give a peft adapter_config.json")
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_ADAPTER_BYTES + 1)
    except OSError as exc:
        raise ConfigFileError(f"{p}: cannot read the adapter config ({exc.strerror or exc}); give the path of a "
                              "peft adapter_config.json") from None
    if len(raw) > MAX_ADAPTER_BYTES:
        raise ConfigFileError(f"{p}: larger than 1 MiB; an adapter_config.json is a short mapping")

    def bad_constant(name: str) -> Any:
        raise ConfigFileError(f"{p}: {name} is not JSON; write a number")

    try:
        from .loading import _unique

        data = json.loads(raw.decode("utf-8"), object_pairs_hook=lambda pairs: _unique(p, pairs),
                          parse_constant=bad_constant)
    except UnicodeDecodeError:
        raise ConfigFileError(f"{p}: not UTF-8 text; an adapter_config.json is JSON") from None
    except json.JSONDecodeError as exc:
        raise ConfigFileError(f"{p}: line {exc.lineno}, column {exc.colno}: malformed JSON ({exc.msg})") from None
    except (RecursionError, ValueError):
        raise ConfigFileError(f"{p}: not a flat adapter config (nested too deeply or a number too long)") from None
    if not isinstance(data, dict):
        raise ConfigFileError(f"{p}: expected a mapping (peft's adapter_config.json), got {type(data).__name__}")
    return adapter_from_dict(data, str(p))


def adapter_from_dict(data: dict[str, Any], origin: str = "adapter") -> LoraSpec:
    """``LoraConfig.to_dict()`` / adapter_config.json's fields -> a spec; errors name the field."""

    def bad(field: str, why: str) -> ConfigFileError:
        return ConfigFileError(f"{origin}: {field}: {why}")

    kind = data.get("peft_type", "LORA")
    if kind != "LORA":
        raise bad("peft_type", f"{kind!r}: bertcalc models LoRA adapters only (peft_type LORA)")
    for key, default in _UNMODELLED.items():
        if data.get(key, default) not in (default, [], {}):
            raise bad(key, "not modelled by bertcalc; remove it or leave it at its default")
    kw: dict[str, Any] = {}

    def num(field: str, lo: float, hi: float, integer: bool = False) -> Any:
        v = data[field]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            raise bad(field, f"{v!r} is not {'a whole number' if integer else 'a number'}")
        if not lo <= v <= hi:
            raise bad(field, f"{v} is out of range ({lo}..{hi})")
        return v

    def names(field: str, allow_str: bool) -> Any:
        v = data[field]
        if v is None:
            return None
        if isinstance(v, str) and allow_str:
            if v != ALL_LINEAR:
                _regex(v, origin, field)
            return v
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v) or len(v) > 10_000:
            raise bad(field, f"expected a list of module names{' or a regex string' if allow_str else ''}")
        return tuple(v)

    def pattern(field: str, integer: bool) -> tuple:
        v = data[field] or {}
        if not isinstance(v, dict):
            raise bad(field, "expected a mapping of module pattern -> value")
        out = []
        for k, x in v.items():
            _regex(k, origin, field)
            if isinstance(x, bool) or not isinstance(x, (int, float)) or (integer and not isinstance(x, int)) or x <= 0:
                raise bad(field, f"{k!r}: {x!r} is not a positive {'whole ' if integer else ''}number")
            out.append((k, x))
        return tuple(out)

    if "r" in data:
        kw["r"] = num("r", 1, MAX_R, integer=True)
    if "lora_alpha" in data:
        kw["alpha"] = num("lora_alpha", 0, 1e9)
    if "lora_dropout" in data:
        kw["dropout"] = num("lora_dropout", 0, 1)
    if "target_modules" in data:
        kw["targets"] = names("target_modules", True)
    if "bias" in data:
        if data["bias"] not in BIASES:
            raise bad("bias", f"{data['bias']!r}: choose one of {', '.join(BIASES)}")
        kw["bias"] = data["bias"]
    if "use_dora" in data:
        if not isinstance(data["use_dora"], bool):
            raise bad("use_dora", "write true or false")
        kw["dora"] = data["use_dora"]
    if "rank_pattern" in data:
        kw["rank_pattern"] = pattern("rank_pattern", True)
    if "alpha_pattern" in data:
        kw["alpha_pattern"] = pattern("alpha_pattern", False)
    if data.get("layers_to_transform") is not None:
        v = data["layers_to_transform"]
        v = [v] if isinstance(v, int) and not isinstance(v, bool) else v
        if not isinstance(v, list) or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0
                                              for x in v):
            raise bad("layers_to_transform", "expected a layer index or a list of them")
        kw["layers"] = tuple(sorted(set(v)))
    if data.get("layers_pattern") is not None:
        v = data["layers_pattern"]
        kw["layers_pattern"] = (v,) if isinstance(v, str) else names("layers_pattern", False)
    if "modules_to_save" in data:
        kw["modules_to_save"] = names("modules_to_save", False)
        for t in kw["modules_to_save"] or ():
            _regex(t, origin, "modules_to_save")
    for t in kw.get("layers_pattern") or ():
        _regex(t, origin, "layers_pattern")
    if data.get("exclude_modules") is not None:
        kw["exclude"] = names("exclude_modules", True)
        if isinstance(kw["exclude"], str):
            _regex(kw["exclude"], origin, "exclude_modules")
    kw["task"] = _task(data.get("task_type"), f"{origin}: task_type")
    return LoraSpec(**kw)


def parse_groups(text: str, param: str) -> tuple[Group, ...]:
    """``embeddings,layers=0-5,pooler,head,base`` -> groups."""
    out = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if name not in GROUPS or (name == "layers") != bool(sep):
            raise UsageError(f"{item!r}: choose from embeddings, layers=LO-HI, pooler, head, base "
                             "(e.g. embeddings,layers=0-5)", param=param)
        if name == "layers":
            m = re.fullmatch(r"\s*(\d{1,15})\s*(?:-\s*(\d{1,15})\s*)?", value)
            if not m:
                raise UsageError(f"layers={value!r}: write a range of layer indices, e.g. layers=0-5",
                                 param=param)
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if hi < lo:
                raise UsageError(f"layers={lo}-{hi} runs backwards; write layers={hi}-{lo}", param=param)
            out.append(Group("layers", lo, hi))
        else:
            out.append(Group(name))
    if not out:
        raise UsageError(f"name what to {param}, e.g. embeddings,layers=0-5", param=param)
    return tuple(out)


# ---------------------------------------------------------------------------------------------------- applying

@frozen
class Adaptation:
    """What :func:`apply` did, for reports: the adapter (or freeze) and the modules it touched."""

    kind: str  # "lora" or "freeze"
    spec: dict[str, Any]
    targeted: tuple[str, ...]  # module templates that got an adapter
    saved: tuple[str, ...]  # modules_to_save templates wrapped
    notes: tuple[str, ...] = ()
    # for the FLOP count, which runs the original program: id(new part) -> the part it came from (both halves of a
    # modules_to_save pair map to one), and id(new part) -> its adapter's rank
    origin: dict[int, Part] = dataclasses.field(default_factory=dict, compare=False, repr=False)
    ranks: dict[int, int] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.spec, "targeted_modules": list(self.targeted),
                "wrapped_modules": list(self.saved)}

    def summary(self) -> str:
        """One line: ``LoRA r=8 alpha=16 on query, value (bias none)`` or ``freeze embeddings, layers=0-5``."""
        s = self.spec
        if self.kind == "freeze":
            out = []
            if s["freeze"]:
                out.append("freeze " + ", ".join(s["freeze"]))
            if s["train"]:
                out.append("train only " + ", ".join(s["train"]))
            return "; ".join(out)
        names = sorted({t.rsplit(".", 1)[-1] for t in self.targeted})
        line = (f"LoRA r={s['r']} alpha={s['lora_alpha']:g} on {', '.join(names)} "
                f"({len(self.targeted)} module templates)")
        extra = [f"bias {s['bias']}"] + (["DoRA"] if s["use_dora"] else [])
        if s["task_type"]:
            extra.append(f"task {s['task_type']}")
        if self.saved:
            extra.append("modules_to_save " + ", ".join(self.saved))
        return line + "; " + "; ".join(extra)


def _idx(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", text)][:1000]


def _cuts(lora: LoraSpec | None, freeze: FreezeSpec | None) -> set[int]:
    """Layer indices where the behaviour may change: each index named anywhere, and the one after it."""
    cuts: set[int] = set()
    if freeze is not None:
        for g in (*freeze.freeze, *freeze.train):
            if g.name == "layers":
                cuts |= {g.lo, g.hi + 1}
    if lora is not None:
        for i in lora.layers or ():
            cuts |= {i, i + 1}
        texts = [p for p, _ in (*lora.rank_pattern, *lora.alpha_pattern)] + list(lora.layers_pattern or ())
        for field in (lora.targets, lora.exclude, lora.modules_to_save):
            if isinstance(field, str):
                texts.append(field)
            elif field:
                texts += list(field)
        for t in texts:
            for i in _idx(t):
                cuts |= {i, i + 1}
    return cuts


def _runs(comp: Component, cuts: set[int]) -> list[Component]:
    if not any("{i}" in t.name for t in comp.templates()) or comp.repeat <= 1:
        return [comp]
    a, b = comp.start, comp.start + comp.repeat
    bounds = sorted({a, b} | {c for c in cuts if a < c < b})
    if len(bounds) == 2:
        return [comp]
    out = []
    for lo, hi in itertools.pairwise(bounds):
        n = hi - lo
        applied = None if comp.applied is None else comp.applied * n // comp.repeat
        out.append(dataclasses.replace(comp, name=f"{comp.name} {lo}" if n == 1 else f"{comp.name} {lo}-{hi - 1}",
                                       start=lo, repeat=n, repeat_symbol=None, applied=applied))
    return out


def _is_linear(part: Part) -> bool:
    return part.kind == "linear" and len(part.tensors[0].dims) == 2 and part.tensors[0].role == "weight"


def _at(template: str, i: int) -> str:
    return template.replace("{i}", str(i))


# Patterns come from the user (a --lora spec, an adapter_config.json), and PEFT matches them with re. bertcalc
# matches them with the regex module: re's syntax and results, and a timeout. A pattern that backtracks without
# end ((.*)*(.*)*X) is then refused, where re would run for ever.
MATCH_SECONDS = 3.0  # all the matching of one adapter, together
# A pattern that may tell layer indices apart (it reads digits: _blind) is matched against every layer, up to
# this many; a deeper model needs the layers named (layers=, or module names).
MAX_LAYERS_MATCHED = 2048
_REPEATS = frozenset("*+?{}()[]|\\")  # none of these: a name, with no repeat of its own to backtrack over


class _Clock:
    """The matching budget of one adapter: each match gets what is left of it."""

    def __init__(self) -> None:
        import time

        self.monotonic = time.monotonic
        self.deadline = time.monotonic() + MATCH_SECONDS

    def find(self, pattern: str, shown: str, key: str, full: bool = False) -> Any:
        """``re.match`` (``re.fullmatch`` with ``full``) of ``pattern``, which holds the user's ``shown``."""
        if not _REPEATS.intersection(shown):  # a name (classifier, layer.5.output.dense): nothing to backtrack
            return (re.fullmatch if full else re.match)(pattern, key)
        import regex

        left = self.deadline - self.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            return (regex.fullmatch if full else regex.match)(pattern, key, timeout=left)
        except TimeoutError:
            raise UsageError(f"pattern {shown!r} takes too long to match (over {MATCH_SECONDS:g} s: nested or "
                             "repeated wildcards such as (.*)* backtrack without end); simplify it",
                             param="lora") from None

    def match(self, pattern: str, shown: str, key: str, full: bool = False) -> bool:
        return self.find(pattern, shown, key, full) is not None


def _blind(pattern: str) -> bool:
    """Whether a pattern's answer is the same for every layer of a run (the runs are cut at each index a spec
    names, :func:`_cuts`), so that one layer stands for the run. Proven from the text:

    - no class (``[``), escaped letter (``\\d``, ``\\w``, ``\\b``, a back reference), counted repeat (``{``),
      group flag or lookaround (``(?``), or repeated group (``(..)*`` counts characters);
    - every ``.`` is a ``.*`` (``.+`` and ``..`` count characters);
    - digits only as a whole index between escaped dots, the second one not optional (``layer\\.7\\.attention``).

    Then an index's digits match only a ``.*``, which takes any number of them, or ``\\.7\\.``, which matches a
    whole all-digit segment of the name: the index where it is 7 (a run of its own), or a segment that does not
    change with the layer (ALBERT's ``albert_layers.0``). A run sees the same answer throughout. Nothing zero-width
    can see the digits (the index sits between two dots, never at an end). ``layer.7.attention`` is not proven
    (its ``.`` are wildcards, and ``layer.7.*`` matches layer 71): write ``layer\\.7\\.attention``."""
    i, n = 0, len(pattern)
    while i < n:
        ch, nxt = pattern[i], pattern[i + 1:i + 2]
        if ch in "[{" or (ch == "(" and nxt == "?") or (ch == ")" and nxt in ("*", "+", "?")):
            return False
        if ch.isdigit() and ch.isascii():
            k = i
            while k < n and pattern[k].isdigit() and pattern[k].isascii():
                k += 1
            if (pattern[i - 2:i] != "\\." or pattern[i - 3:i - 2] == "\\" or pattern[k:k + 2] != "\\."
                    or pattern[k + 2:k + 3] in ("?", "*", "+")):  # \.7\.? would take .70 too
                return False
            i = k
            continue
        if ch == "\\":
            if not nxt or nxt.isalnum():
                return False
            i += 2
            continue
        if ch == "." and nxt != "*":
            return False
        i += 1
    return True


def _patterns(lora: LoraSpec, targets: Any) -> list[str]:
    """Every regular expression of the spec, as the user wrote it."""
    out = [targets] if isinstance(targets, str) else []
    if isinstance(lora.exclude, str):
        out.append(lora.exclude)
    out += list(lora.modules_to_save or ()) + list(lora.layers_pattern or ())
    out += [pat for pat, _ in lora.rank_pattern]
    return out


class _Matcher:
    """``check_target_module_exists`` for one spec (targets resolved: all-linear -> a set of full names)."""

    def __init__(self, lora: LoraSpec, targets: frozenset[str] | tuple[str, ...] | str, clock: _Clock) -> None:
        self.lora = lora
        self.targets = targets
        self.clock = clock

    def __call__(self, key: str) -> bool | None:  # None: excluded
        lo = self.lora
        ex = lo.exclude
        rx = self.clock.match
        if ex and (rx(ex, ex, key, full=True) if isinstance(ex, str) else
                   key in ex or any(key.endswith(f".{e}") for e in ex)):
            return None
        if lo.modules_to_save and any(rx(rf"(^|.*\.){m}($|\..*)", m, key) for m in lo.modules_to_save):
            return None
        t = self.targets
        if isinstance(t, str):
            return rx(t, t, key, full=True)
        if key in t:
            return True
        found = any(key.endswith(f".{x}") for x in t)
        if found and lo.layers is not None and len(lo.layers):
            idx = None
            if not lo.layers_pattern:
                m = re.match(r".*?\.[^.]*\.(?P<idx>\d+)\.", key)
            else:
                m = None
                for pat in lo.layers_pattern:
                    m = self.clock.find(rf"(?:^|.*?\.){pat}\.(?P<idx>\d+)\.", pat, key)
                    if m is not None:
                        break
            if m:
                idx = m.group("idx")
            found = idx is not None and int(idx) in lo.layers
        return found


def _pattern(pairs: tuple, key: str, default: Any, clock: _Clock) -> Any:
    for pat, value in pairs:
        if clock.match(rf"(.*\.)?({pat})$", pat, key):
            return value
    return default


def model_type_of(family: str) -> str:
    """HF's ``model_type`` of a family: its module's ``MODEL_TYPE``, else the name with dashes (deberta-v2)."""
    from . import families

    return getattr(families.module(family), "MODEL_TYPE", family.replace("_", "-"))


def task_of(lora: LoraSpec, head: str) -> str | None:
    """``task=auto``: the task type of the PeftModel class peft uses for the head's HF class."""
    from .families._heads import PEFT_TASKS

    return PEFT_TASKS.get(head) if lora.task == "auto" else lora.task


def apply(arch: Architecture, lora: LoraSpec | None = None,
          freeze: FreezeSpec | None = None) -> tuple[Architecture, Adaptation]:
    """The model as PEFT (or ``requires_grad``) leaves it: renamed tensors, adapter tensors, trainable flags."""
    if lora is not None and freeze is not None:
        raise UsageError(f"{arg('lora')}/{arg('adapter')} and {arg('freeze')}/{arg('train')} both set what trains; "
                         "with an adapter, PEFT freezes the base model: name extra trainable modules with save=... "
                         "(modules_to_save)",
                         param="freeze")
    if lora is None and freeze is None:
        raise UsageError("nothing to apply: give an adapter or a freeze", param="lora")
    cuts = _cuts(lora, freeze)
    if lora is None:
        return _apply_freeze(arch, [(c, r) for c in arch.components for r in _runs(c, cuts)], freeze)
    rule = _Rule(arch, lora)
    cuts |= rule.digit_cuts(arch.components)
    return _apply_lora(arch, [r for c in arch.components for r in _runs(c, cuts)], rule)


def _layer_component(arch: Architecture) -> str | None:
    """The repeated layer template: the first component whose module names hold ``{i}``."""
    return next((c.name for c in arch.components if any("{i}" in p.module for p in c.parts)), None)


def _apply_freeze(arch: Architecture, runs: list[tuple[Component, Component]],
                  fz: FreezeSpec) -> tuple[Architecture, Adaptation]:
    layers = _layer_component(arch)
    base = arch.prefix
    has = {g.name for g in (*fz.freeze, *fz.train)}
    param = "train" if fz.train else "freeze"
    if "head" in has and not base:
        raise UsageError(f"{arch.model_class} is a bare model and has no head; pick a {arg('head')}, or name "
                         "embeddings/layers/pooler", param=param)
    if "pooler" in has and not any(c.name == "pooler" for c in arch.components):
        raise UsageError(f"{arch.model_class} has no pooler", param=param)
    # a layer outside the template (ModernBERT's distinct layer 0) is named like it: model.layers.0.
    tpl = next((p.module for c in arch.components if c.name == layers for p in c.parts), "")
    head_re = re.compile(re.escape(tpl.split("{i}")[0]) + r"(\d+)\.") if "{i}" in tpl else None

    def index_of(orig: Component, run: Component) -> int | None:
        if orig.name == layers:
            return run.start
        if head_re is None:
            return None
        found = {m.group(1) if (m := head_re.match(p.module)) else None for p in run.parts}
        return int(found.pop()) if len(found) == 1 and None not in found else None

    ends = [index_of(c, c) for c in arch.components]
    last = max((i + (c.repeat - 1 if c.name == layers else 0) for c, i in zip(arch.components, ends, strict=True)
                if i is not None), default=-1)
    for g in (*fz.freeze, *fz.train):
        if g.name == "layers" and g.hi > last:
            raise UsageError(f"{g}: {arch.model_class} has layers 0-{last}" if last >= 0 else
                             f"{g}: {arch.model_class} has no layers", param=param)


    def groups(orig: Component, run: Component, p: Part) -> set[str]:
        if base and not p.module.startswith(base):
            return {"head"}
        out = {"base"}
        if orig.name.startswith("embedding"):
            out.add("embeddings")
        if orig.name == "pooler":
            out.add("pooler")
        return out

    def hit(g: Group, gs: set[str], orig: Component, run: Component) -> bool:
        if g.name == "layers":  # a run lies wholly inside or outside each range (the cuts saw to that)
            i = index_of(orig, run)
            return i is not None and g.lo <= i <= g.hi
        return g.name in gs

    out = []
    origin: dict[int, Part] = {}
    for orig, run in runs:
        parts = []
        for p in run.parts:
            gs = groups(orig, run, p)
            frozen = any(hit(g, gs, orig, run) for g in fz.freeze)
            if fz.train and not any(hit(g, gs, orig, run) for g in fz.train):
                frozen = True
            parts.append(dataclasses.replace(p, tensors=tuple(dataclasses.replace(t, trainable=not frozen)
                                                              for t in p.tensors)))
            origin[id(parts[-1])] = p
        out.append(dataclasses.replace(run, parts=tuple(parts)))
    spec = {"freeze": [str(g) for g in fz.freeze], "train": [str(g) for g in fz.train]}
    how = Adaptation("freeze", spec, (), (), origin=origin)
    return _tie_flags(dataclasses.replace(arch, components=tuple(out), adapted=how)), how


class _Rule:
    """What an adapter spec targets, resolved for one model as PEFT resolves it: the default targets of the
    model type, all-linear as a set of full names, the task's modules joining modules_to_save."""

    def __init__(self, arch: Architecture, lora: LoraSpec) -> None:
        from . import families

        self.task = task = task_of(lora, arch.head)
        targets: Any = lora.targets
        if targets is None:
            targets = getattr(families.module(arch.family), "LORA_TARGETS", None)
            if targets is None:
                fix = arg("lora", "targets=...", "'targets=...'")
                raise UsageError(f"PEFT has no default target modules for model type "
                                 f"{model_type_of(arch.family)!r}; name them: {fix} (or all-linear)", param="lora")
        linear = [(c, p) for c in arch.components for p in c.parts if _is_linear(p)]
        if targets == ALL_LINEAR:
            out_emb = {p.module for _, p in linear if p.role == "mlm_decoder"}
            names = {p.module for _, p in linear} - out_emb
            if task == "SEQ_CLS" and not out_emb:
                for n in SEQ_CLS_HEAD_NAMES:
                    if n in names or any(p.module.startswith(n + ".") for _, p in linear):
                        names.discard(n)
                        break
            # the set is of full names: a template stands for each of its layers
            targets = frozenset(names)
        elif isinstance(targets, str):
            _regex(targets, "lora", "target_modules")
        if task in GUARDED_TASKS:  # the task's modules join modules_to_save before matching
            lora = dataclasses.replace(lora, modules_to_save=tuple(lora.modules_to_save or ()) + TASK_MODULES[task])
        self.lora, self.targets, self.clock = lora, targets, _Clock()
        if isinstance(targets, frozenset):  # all-linear: full names, so the template is the key; excludes apply
            self.guard = _Matcher(dataclasses.replace(lora, layers=None), (), self.clock)
        else:
            self.guard = _Matcher(lora, targets, self.clock)

    def is_target(self, key_t: str, key: str) -> bool | None:
        """Whether module ``key`` (of template ``key_t``) gets an adapter; None: excluded."""
        if isinstance(self.targets, frozenset):
            return None if self.guard(key) is None else key_t in self.targets
        return self.guard(key)

    def rank(self, key: str) -> int:
        return _pattern(self.lora.rank_pattern, key, self.lora.r, self.clock)

    def digit_cuts(self, comps: tuple[Component, ...] | list[Component]) -> set[int]:
        """Where a pattern that may read index digits (not :func:`_blind`) changes what it matches: every layer
        is matched, up to MAX_LAYERS_MATCHED of them. The cuts of :func:`_cuts` split runs only at the indices a
        spec names literally; a regular expression can pick layers by their digits (``layer\\.1\\d\\.``) or their
        count (``\\d{2}``) as well."""
        reading = [p for p in _patterns(self.lora, self.targets) if not _blind(p)]
        layered = [c for c in comps if c.repeat > 1 and any("{i}" in p.module for p in c.parts)]
        if not reading or not layered:
            return set()
        total = sum(c.repeat for c in layered)
        if total > MAX_LAYERS_MATCHED:
            raise UsageError(f"pattern {reading[0]!r} may tell layers apart by their digits (a class, a counted "
                             "repeat, a lookaround, a wildcard beside an index), so bertcalc matches it against each "
                             f"layer, up to {MAX_LAYERS_MATCHED:,} of them; this model has {total:,}: name the layers "
                             r"instead (layers=, or an index between escaped dots: layer\.7\.attention)",
                             param="lora")
        cuts: set[int] = set()
        for c in layered:
            above = sorted({".".join(p.module.split(".")[:k]) for p in c.parts
                            for k in range(1, p.module.count(".") + 1)} - {p.module for p in c.parts})
            above = [m for m in above if "{i}" in m]

            def signature(j: int, c: Component = c, above: list[str] = above) -> tuple:
                keys = [_at(p.module, j) for p in c.parts]
                return (tuple((bool(self.is_target(p.module, k)), self.rank(k))
                              for p, k in zip(c.parts, keys, strict=True)),
                        tuple(bool(self.is_target(m, _at(m, j))) for m in above))

            last = signature(c.start)
            for j in range(c.start + 1, c.start + c.repeat):
                now = signature(j)
                if now != last:
                    cuts.add(j)
                last = now
        return cuts


def _apply_lora(arch: Architecture, comps: list[Component], rule: _Rule) -> tuple[Architecture, Adaptation]:
    lora, targets, task, is_target = rule.lora, rule.targets, rule.task, rule.is_target
    part_modules = {p.module for c in comps for p in c.parts}
    wrap_names = tuple(dict.fromkeys(tuple(lora.modules_to_save or ()) + TASK_MODULES.get(task or "", ())))
    targeted: list[str] = []
    saved: set[str] = set()
    # where each tensor's tie points, renamed afterwards
    rename: dict[str, str] = {}
    out: list[Component] = []
    checked: set[str] = set()
    origin: dict[int, Part] = {}
    ranks: dict[int, int] = {}
    for c in comps:
        i = c.start
        # modules above the parts (bert.encoder.layer.{i}.attention): a target there is not a Linear
        for p in c.parts:
            segs = p.module.split(".")
            for k in range(1, len(segs)):
                m = ".".join(segs[:k])
                key = _at(m, i)
                if m in part_modules or key in checked:
                    continue
                checked.add(key)
                if is_target(m, key):
                    raise UsageError(f"target {key!r} is not a Linear or Embedding module; PEFT's LoRA wraps "
                                     "those only ('Target module ... is not supported')", param="lora")
        parts: list[Part] = []
        pending: list[tuple[str, Part, Part]] = []  # (wrapped module, original part, copy part)
        for p in c.parts:
            key = _at(p.module, i)
            hit = is_target(p.module, key) if p.kind in ("linear", "embedding", "layernorm") else None
            if hit and not (_is_linear(p) or p.kind == "embedding"):
                raise UsageError(
                    f"target {key!r} is a Conv1d: PEFT can adapt it, bertcalc does not model that yet; exclude it"
                    if p.kind == "linear" else
                    f"target {key!r} is a {p.kind}; PEFT's LoRA wraps Linear and Embedding modules", param="lora")
            wrapper = _wrapped(p.module, wrap_names)
            tensors: list[TensorSpec] = []
            if hit:
                if wrapper is not None:
                    raise UsageError(f"{key} gets a LoRA adapter and is in modules_to_save ({wrapper}); PEFT refuses "
                                     "this ('modules_to_save cannot be applied to modules of type lora.Linear'): "
                                     "exclude it from the targets", param="lora")
                targeted.append(p.module)
                r = rule.rank(key)
                for t in p.tensors:
                    new = t.name.replace(p.module + ".", p.module + ".base_layer.", 1)
                    rename[t.name] = new
                    bias_on = t.role == "bias" and lora.bias in ("all", "lora_only")
                    tensors.append(dataclasses.replace(t, name=new, trainable=bias_on))
                R = Dim(r)
                w = p.tensors[0]
                if p.kind == "embedding":
                    if lora.dora:
                        raise UsageError(f"use_dora on the Embedding {key} is not modelled by bertcalc", param="lora")
                    rows, dim = w.dims
                    tensors += [TensorSpec(f"{p.module}.lora_embedding_A.default", (R, rows), "lora"),
                                TensorSpec(f"{p.module}.lora_embedding_B.default", (dim, R), "lora")]
                else:
                    d_out, d_in = w.dims
                    tensors += [TensorSpec(f"{p.module}.lora_A.default.weight", (R, d_in), "lora"),
                                TensorSpec(f"{p.module}.lora_B.default.weight", (d_out, R), "lora")]
                    if lora.dora:
                        tensors.append(TensorSpec(f"{p.module}.lora_magnitude_vector.default.weight", (d_out,),
                                                  "lora"))
                parts.append(dataclasses.replace(p, tensors=tuple(tensors)))
                origin[id(parts[-1])], ranks[id(parts[-1])] = p, r
                continue
            for t in p.tensors:
                on = lora.bias == "all" and (t.name == "bias" or t.name.endswith(".bias"))
                tensors.append(dataclasses.replace(t, trainable=on))
            if wrapper is None:
                parts.append(dataclasses.replace(p, tensors=tuple(tensors)))
                origin[id(parts[-1])] = p
                continue
            saved.add(wrapper)
            if any(t.tied_to for t in p.tensors) or any(x.tied_to and x.tied_to.startswith(wrapper + ".")
                                                        for cc in comps for q in cc.parts for x in q.tensors):
                raise UsageError(f"modules_to_save {wrapper!r} holds a tied tensor; bertcalc does not model how "
                                 "PEFT wraps tied weights", param="lora")
            orig = tuple(dataclasses.replace(t, name=t.name.replace(wrapper + ".", wrapper + ".original_module.", 1),
                                             trainable=False) for t in p.tensors)
            copy = tuple(dataclasses.replace(t, name=t.name.replace(wrapper + ".", wrapper + ".modules_to_save."
                                                                     "default.", 1), trainable=True)
                         for t in p.tensors)
            for t in p.tensors:
                rename[t.name] = t.name.replace(wrapper + ".", wrapper + ".original_module.", 1)
            pending.append((wrapper, dataclasses.replace(p, label=f"{p.label} (original)", tensors=orig),
                            dataclasses.replace(p, label=f"{p.label} (trained copy)", tensors=copy)))
            origin[id(pending[-1][1])] = origin[id(pending[-1][2])] = p
            nxt = c.parts[c.parts.index(p) + 1] if c.parts.index(p) + 1 < len(c.parts) else None
            if nxt is None or _wrapped(nxt.module, wrap_names) != wrapper:
                parts += [o for _, o, _ in pending] + [k for _, _, k in pending]
                pending = []
        out.append(dataclasses.replace(c, parts=tuple(parts)))
    if not targeted:
        shown = "all-linear" if isinstance(targets, frozenset) else targets
        raise UsageError(f"target modules {shown!r} match no module of {arch.model_class}; check the names "
                         "(shapes lists them)", param="lora")
    # a wrapped module in two components (modules_to_save=encoder), or nested wrapping: not modelled
    for w in saved:
        holders = {c.name for c in comps for p in c.parts if p.module.startswith(w + ".")}
        if len(holders) > 1:
            raise UsageError(f"modules_to_save {w!r} spans {len(holders)} components; bertcalc models wrapping a "
                             "module within one (a head, a LayerNorm, a Linear)", param="lora")
        if any(o != w and o.startswith(w + ".") for o in saved) or any(t.startswith(w + ".") for t in targeted):
            raise UsageError(f"modules_to_save {w!r} holds another wrapped or adapted module; PEFT then wraps "
                             "inside the copy, which bertcalc does not model", param="lora")
    final = []
    origin2: dict[int, Part] = {}
    ranks2: dict[int, int] = {}
    prefix = "base_model.model."
    for c in out:
        parts = []
        for p in c.parts:
            ts = tuple(dataclasses.replace(t, name=prefix + t.name,
                                           tied_to=None if t.tied_to is None else prefix + rename.get(t.tied_to,
                                                                                                      t.tied_to))
                       for t in p.tensors)
            parts.append(dataclasses.replace(p, tensors=ts))
            origin2[id(parts[-1])] = origin[id(p)]
            if id(p) in ranks:
                ranks2[id(parts[-1])] = ranks[id(p)]
        final.append(dataclasses.replace(c, parts=tuple(parts)))
    spec = lora.to_dict() | {"task_type": task, "target_modules": (
        sorted(targets) if isinstance(targets, frozenset) else list(targets) if isinstance(targets, tuple)
        else targets), "modules_to_save": list(wrap_names) or None}
    if isinstance(lora.targets, str) and lora.targets == ALL_LINEAR:
        spec["target_modules"] = ALL_LINEAR
    how = Adaptation("lora", spec, tuple(dict.fromkeys(targeted)), tuple(sorted(saved)), origin=origin2, ranks=ranks2)
    return _tie_flags(dataclasses.replace(arch, components=tuple(final), adapted=how)), how


def _wrapped(module: str, names: tuple[str, ...]) -> str | None:
    """The outermost module at or above ``module`` whose name ends with a modules_to_save entry (peft's
    ``key.endswith(target_key)``, no dot), or None."""
    if not names:
        return None
    segs = module.split(".")
    keys = [".".join(segs[:k]) for k in range(1, len(segs) + 1)]
    hits = [k for k in keys if any(k.endswith(n) for n in names)]
    if len(hits) > 1:
        raise UsageError(f"modules_to_save matches both {hits[0]!r} and {hits[1]!r} inside it; PEFT then wraps "
                         "inside the copy, which bertcalc does not model", param="lora")
    return hits[0] if hits else None


def _tie_flags(arch: Architecture) -> Architecture:
    """A tied tensor is the same ``nn.Parameter``: it has its source's ``requires_grad``."""
    flags = {t.name: t.trainable for c in arch.components for p in c.parts for t in p.tensors}
    if not any(t.tied_to for c in arch.components for p in c.parts for t in p.tensors):
        return arch
    comps = []
    how = arch.adapted
    for c in arch.components:
        parts = []
        for p in c.parts:
            if not any(t.tied_to for t in p.tensors):
                parts.append(p)
                continue
            q = dataclasses.replace(p, tensors=tuple(
                dataclasses.replace(t, trainable=flags.get(t.tied_to, t.trainable)) if t.tied_to else t
                for t in p.tensors))
            if how is not None:
                how.origin[id(q)] = how.origin[id(p)]
                if id(p) in how.ranks:
                    how.ranks[id(q)] = how.ranks[id(p)]
            parts.append(q)
        comps.append(dataclasses.replace(c, parts=tuple(parts)))
    return dataclasses.replace(arch, components=tuple(comps))


def trainable_parameters(arch: Architecture) -> int:
    """Unique parameters with requires_grad: a tied tensor is counted in the one it is tied to."""
    return arch.trainable_parameters
