"""Model configurations: pydantic v2 models with HuggingFace's field names, meanings and defaults.

The shared base class is here; each family's class is in its file in ``families/`` (``BertConfig`` in
``families/bert.py``), loaded on first use. Validation is strict: sizes are integers (``true`` or ``"768"``
are rejected), every size is at least 1 (layer counts may be 0), the hidden size must split evenly into
heads, and unknown keys are errors. :func:`validate` turns pydantic's errors into one plain line per field,
naming where the value came from.
"""

import difflib
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError, arg

# No tensor dimension can exceed int64, PyTorch's index type; a larger size is a typo, and would make numbers
# too long to print (Python refuses int/str conversions past 4,300 digits).
MAX_SIZE = 2**63 - 1


def digits(n: int) -> str:
    """How many decimal digits ``n`` has, for a message about a size past :data:`MAX_SIZE` ("over 4,300" where
    Python would refuse to write it out)."""
    return str(len(str(n))) if n.bit_length() < 14000 else "over 4,300"


Size = Annotated[int, Field(ge=1, le=MAX_SIZE, strict=True)]
Count = Annotated[int, Field(ge=0, le=MAX_SIZE, strict=True)]
# strict: a number, never text ("1e-12" in a YAML file is a string, which torch's LayerNorm would refuse)
Eps = Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)]
Prob = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False, strict=True)]


class Dims(NamedTuple):
    """A config's sizes under family-neutral names, for code that works across families."""

    L: int  # layers
    H: int  # hidden width
    A: int  # attention heads
    I: int  # noqa: E741  feed-forward width
    V: int  # vocabulary
    P: int  # rows of the position table
    T: int  # token types (0: the family has none)
    E: int  # embedding width (H unless factorized)
    C: int  # num_labels
    max_seq: int  # longest sequence the position table allows


def _heads_for(h: int, field: str) -> str:
    """A head count that divides ``h``: the one nearest a head size of 64, as BERT's sizes all use."""
    divisors = [d for d in range(1, h + 1) if h % d == 0] if h <= 1 << 20 else [1]
    best = min(divisors, key=lambda d: (abs(h // d - 64), d))
    return f"{field} {best} (head size {h // best})" if best > 1 else f"a {field} that divides {h}"


_DUMPED: dict[type, tuple[str, ...]] = {}  # config class -> the fields ModelConfig.field_values reads
_FIELDS: dict[type, tuple[str, ...]] = {}  # config class -> those fields in ModelConfig.fields' order
_CLASSES: "dict[str, type[ModelConfig]]" = {}  # family -> its config class, once its module is imported


class ModelConfig(BaseModel):
    """What every family shares: HF ``PretrainedConfig`` fields that change shapes, and validation."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    family: ClassVar[str] = ""
    display: ClassVar[str] = ""  # "BERT"
    # flag name -> this family's field; fields the family lacks are absent
    FLAGS: ClassVar[dict[str, str]] = {}
    HIDDEN: ClassVar[str] = "hidden_size"
    HEADS: ClassVar[str] = "num_attention_heads"
    INTERMEDIATE: ClassVar[str] = "intermediate_size"

    # config field -> its one-letter symbol in formulas (``hidden_size`` -> ``H``), and fields that change
    # memory (dropout masks) but never a shape, left out of count and shapes headers
    SYMBOLS: ClassVar[dict[str, str]] = {"num_labels": "C"}
    MEMORY_ONLY: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        from .formula import register

        register(cls.SYMBOLS)

    num_labels: Size = Field(2, description="Classes of a classification head (--labels).")
    pad_token_id: Count | None = Field(0, description="Padding token id: the word table's padding row.")
    tie_word_embeddings: Annotated[bool, Field(strict=True)] = Field(
        True, description="Share the MLM decoder weight with word_embeddings (--untie: false)."
    )

    @model_validator(mode="after")
    def _padding_row_exists(self) -> "ModelConfig":
        # nn.Embedding(vocab_size, ..., padding_idx=pad_token_id) asserts this; so does transformers
        if self.pad_token_id is not None and self.pad_token_id >= self.vocab_size:
            raise ValueError(
                f"pad_token_id {self.pad_token_id} is not a row of the vocabulary (vocab_size {self.vocab_size}); "
                f"use a pad_token_id below {self.vocab_size}"
            )
        return self

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> "ModelConfig":
        h, a = getattr(self, self.HIDDEN), getattr(self, self.HEADS)
        if h % a:
            lower = h - h % a
            options = " or ".join(f"{x}" for x in (lower, lower + a) if x >= a)
            raise ValueError(
                f"{self.HIDDEN} {h} is not divisible by {self.HEADS} {a}; "
                f"use a {self.HIDDEN} such as {options}, or {_heads_for(h, self.HEADS)}"
            )
        return self

    @property
    def dims(self) -> Dims:  # pragma: no cover - every family overrides
        raise NotImplementedError

    @property
    def head_dim(self) -> int:
        d = self.dims
        return d.H // d.A

    def field_values(self) -> dict[str, Any]:
        """Every field's value, in declaration order: what ``model_dump()`` gives for these flat configs (ints,
        floats, text, tuples of text), read straight off the instance, since ``model_dump`` builds the family's
        pydantic serializer on first use, which a shipped preset (``loading.preset_config``) never needs."""
        cls = type(self)
        names = _DUMPED.get(cls)
        if names is None:  # the fields model_dump() writes: all but those declared ``exclude=True``
            names = _DUMPED[cls] = tuple(k for k, f in cls.model_fields.items() if not f.exclude)
        d = self.__dict__
        return {k: d[k] for k in names}

    def fields(self) -> dict[str, Any]:
        """The config as HF field names: the family's own fields first, then the shared ones."""
        cls = type(self)
        order = _FIELDS.get(cls)
        if order is None:
            names = self.field_values()
            shared = ModelConfig.model_fields
            order = _FIELDS[cls] = (*(k for k in names if k not in shared), *(k for k in shared if k in names))
        d = self.__dict__
        return {k: d[k] for k in order}

    def symbol_values(self) -> dict[str, int]:
        """Every integer field, for formulas: ``{"hidden_size": 768, ...}``."""
        return {k: v for k, v in self.field_values().items() if type(v) is int}  # validated ints are ints; not bools


# The flags every family understands (each maps them to its own field names, see ModelConfig.FLAGS).
FLAG_NAMES = ("layers", "hidden", "heads", "intermediate", "vocab", "max_positions", "type_vocab",
              "embedding_size", "labels")

# What ``--hidden`` does to the feed-forward width when no ``--intermediate`` is given: BERT's convention.
INTERMEDIATE_RATIO = 4

def family_names() -> tuple[str, ...]:
    """Every family, one module each in ``bertcalc/families/`` (in their ``ORDER``: by publication)."""
    from . import families

    return families.names()


def config_class(family: str) -> type[ModelConfig]:
    """The config class of ``family``: its module's ``CONFIG``, imported on first use (start-up pays for the
    one family it needs)."""
    cls = _CLASSES.get(family) if isinstance(family, str) else None  # asked on every resolve and build
    if cls is not None:
        return cls
    from . import families

    if not families.exists(family):
        raise ConfigError([f"unknown family {family!r}; supported: {', '.join(family_names())}"])
    cls = _CLASSES[family] = families.module(family).CONFIG
    return cls


def __getattr__(name: str):
    if name == "BertConfig":  # BERT's config lives in its family's file, like every family's
        from .families.bert import BertConfig

        return BertConfig
    if name == "FAMILIES":
        return family_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def field_names(cls: type[BaseModel]) -> list[str]:
    return list(cls.model_fields)


def suggest(word: str, choices: list[str], n: int = 3) -> list[str]:
    return difflib.get_close_matches(word, choices, n=n, cutoff=0.6)


_PLAIN = frozenset((int, float, str, bool, type(None), list, tuple, dict))  # what YAML, JSON and flags give


def validate(cls: type[ModelConfig], data: Mapping[str, Any], origins: Mapping[str, str] | None = None) -> Any:
    """Validate ``data`` as ``cls``; on failure raise :class:`ConfigError` with one line per problem.

    ``origins`` maps a field to where its value came from (``"--hidden"``, ``"model.yaml"``), so the
    message can name the flag or file the user has to change.
    """
    origins = origins or {}
    kinds = set(map(type, data.values()))  # a handful of types: the scans below run only where one is binary
    binary = [k for k, v in data.items() if isinstance(v, (bytes, bytearray))] \
        if not kinds <= _PLAIN and any(issubclass(t, (bytes, bytearray)) for t in kinds) else ()
    if binary:  # pydantic would decode it into a text field (hidden_act: !!binary aGVsbG8= is "hello")
        raise ConfigError([f"{_where(k, origins)}: binary data (a YAML !!binary value) is no config value; write it "
                           "as plain text" for k in binary])
    try:
        return cls.model_validate(data if type(data) is dict else dict(data))  # pydantic reads it, never writes
    except ValidationError as exc:
        known = field_names(cls)
        problems = [_describe(err, known, origins, cls) for err in exc.errors()]
        raise ConfigError(problems) from None


def _shown(value: Any) -> str:
    """A rejected value as the user wrote it: ``true``, not ``True``; ``null``, not ``None``; text quoted;
    a number too long to read whole (or to convert: 4,300 digits) said by its length."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, int) and value.bit_length() > 200:
        return f"a {len(hex(abs(value))) - 2}-hex-digit number (about 10^{int(value.bit_length() * 0.30103)})"
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return "binary data (a YAML !!binary value)"
    if not isinstance(value, (str, int, float, list, tuple, dict)):  # a YAML date or time: not Python's repr
        return f"{value} (a YAML {type(value).__name__}; quote it to make it text)"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _where(key: str, origins: Mapping[str, str]) -> str:
    src = origins.get(key)
    if src is None or src == key:
        return key
    if src.startswith("--"):
        return f"{src} ({key})"
    return f"{src}: {key}"


def _about(key: str, origins: Mapping[str, str]) -> str:
    """A field in a list of several: ``--hidden (hidden_size)``, ``num_attention_heads (from preset 'base')``."""
    src = origins.get(key)
    if src is None or src == key:
        return key
    return f"{src} ({key})" if src.startswith("--") else f"{key} (from {src})"


def _describe(err: Any, known: list[str], origins: Mapping[str, str], cls: type[ModelConfig]) -> str:
    loc = err.get("loc") or ()
    key = str(loc[0]) if loc else ""
    kind = err.get("type", "")
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        flag_field = cls.FLAGS.get(key.replace("-", "_"))
        if flag_field:  # a flag's name where a file wants the HF field's
            hint = f"did you mean {flag_field!r}? (files use HF field names; {key} is the flag's)"
        elif key in ("pooler", "no_pooler", "add_pooling_layer"):
            hint = f"the pooler is not a config field: use {arg('pooler', py='False')} (or :pooler=false in compare)"
        else:
            close = suggest(key, known)
            if close:
                hint = f"did you mean {' or '.join(repr(c) for c in close)}?"
            else:
                hint = f"known keys: {', '.join(known)}"
        return f"{_where(key, origins)}: unknown key for {cls.display or cls.family}; {hint}"
    if not key:  # a model-level check: name the fields it is about
        msg = str(ctx.get("error", err.get("msg", "")))
        if msg.startswith("pad_token_id"):
            about = ["pad_token_id", "vocab_size" if "vocab" in msg else "max_position_embeddings"]
        else:  # the fields the check's message names, in its order (the head check names hidden and heads)
            import re

            named = {w for w in re.findall(r"[a-z_][a-z0-9_]*", msg) if w in known}
            about = sorted(named, key=msg.index) or [cls.HIDDEN, cls.HEADS]
        return f"{' / '.join(_about(f, origins) for f in about)}: {msg}"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        op = "≥" if kind == "greater_than_equal" else ">"
        return f"{_where(key, origins)}: must be {op} {bound}, got {_shown(value)}"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        op = "≤" if kind == "less_than_equal" else "<"
        shown_bound = "2^63 - 1 (int64, the largest size a tensor can have)" if bound == MAX_SIZE else bound
        return f"{_where(key, origins)}: must be {op} {shown_bound}, got {_shown(value)}"
    if kind == "finite_number":
        return f"{_where(key, origins)}: must be a finite number, got {_shown(value)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"{_where(key, origins)}: must be a whole number, got {_shown(value)}"
    if kind in ("float_type", "float_parsing"):
        return f"{_where(key, origins)}: must be a number, got {_shown(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"{_where(key, origins)}: must be true or false, got {_shown(value)}"
    if kind == "string_type":
        return f"{_where(key, origins)}: must be text, got {_shown(value)}"
    if kind in ("list_type", "tuple_type"):
        return f"{_where(key, origins)}: must be a list, got {_shown(value)}"
    if kind == "value_error":  # a field's own check: its message says what is wrong, without pydantic's prefix
        return f"{_where(key, origins)}: {ctx.get('error', err.get('msg', 'invalid value'))}"
    msg = str(err.get("msg", "invalid value")).replace("Input should be", "must be")
    return f"{_where(key, origins)}: {msg}, got {_shown(value)}"
