"""Model configurations: pydantic v2 models with HuggingFace's field names and meanings.

Validation is strict: sizes are integers (``true`` or ``"768"`` are rejected), every size is at least 1
(``num_hidden_layers`` may be 0), ``hidden_size`` must divide evenly into heads, and unknown keys are errors.
:func:`validate` turns pydantic's errors into one plain line per field, naming where the value came from.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError

Size = Annotated[int, Field(ge=1, strict=True)]
Count = Annotated[int, Field(ge=0, strict=True)]


class BertConfig(BaseModel):
    """The shape-relevant fields of HuggingFace's ``BertConfig``, with its defaults (BERT-base)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: ClassVar[str] = "bert"

    vocab_size: Size = Field(30522, description="Tokens in the vocabulary (rows of word_embeddings).")
    hidden_size: Size = Field(768, description="Width of every hidden state (H).")
    num_hidden_layers: Count = Field(12, description="Encoder layers (L).")
    num_attention_heads: Size = Field(12, description="Attention heads per layer (A); must divide H.")
    intermediate_size: Size = Field(3072, description="Width of the feed-forward layer (I), usually 4H.")
    max_position_embeddings: Size = Field(512, description="Longest sequence: rows of position_embeddings.")
    type_vocab_size: Size = Field(2, description="Segment (token type) ids: rows of token_type_embeddings.")
    hidden_act: str = Field("gelu", description="Feed-forward activation. Shown, not counted.")
    layer_norm_eps: Annotated[float, Field(gt=0)] = Field(1e-12, description="LayerNorm epsilon. Shown, not counted.")

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> BertConfig:
        h, a = self.hidden_size, self.num_attention_heads
        if h % a:
            lower = h - h % a
            options = " or ".join(f"{x}" for x in (lower, lower + a) if x >= a)
            raise ValueError(
                f"hidden_size {h} is not divisible by num_attention_heads {a}; "
                f"use a hidden_size such as {options}, or a head count that divides {h}"
            )
        return self

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


# The command-line flags and the HF field each one sets. Shared by every family that has the field.
FLAG_FIELDS: dict[str, str] = {
    "layers": "num_hidden_layers",
    "hidden": "hidden_size",
    "heads": "num_attention_heads",
    "intermediate": "intermediate_size",
    "vocab": "vocab_size",
    "max_positions": "max_position_embeddings",
    "type_vocab": "type_vocab_size",
}

# What ``--hidden`` does to the feed-forward width when no ``--intermediate`` is given: BERT's convention.
INTERMEDIATE_RATIO = 4

CONFIG_CLASSES: dict[str, type[BertConfig]] = {"bert": BertConfig}


def config_class(family: str) -> type[BertConfig]:
    return CONFIG_CLASSES[family]


def field_names(cls: type[BaseModel]) -> list[str]:
    return list(cls.model_fields)


def suggest(word: str, choices: list[str], n: int = 3) -> list[str]:
    return difflib.get_close_matches(word, choices, n=n, cutoff=0.6)


def validate(cls: type[BertConfig], data: Mapping[str, Any], origins: Mapping[str, str] | None = None) -> BertConfig:
    """Validate ``data`` as ``cls``; on failure raise :class:`ConfigError` with one line per problem.

    ``origins`` maps a field to where its value came from (``"--hidden"``, ``"model.yaml"``), so the
    message can name the flag or file the user has to change.
    """
    origins = origins or {}
    try:
        return cls.model_validate(dict(data))
    except ValidationError as exc:
        known = field_names(cls)
        problems = [_describe(err, known, origins) for err in exc.errors()]
        raise ConfigError(problems) from None


def _where(key: str, origins: Mapping[str, str]) -> str:
    src = origins.get(key)
    if src is None:
        return key
    if src.startswith("--"):
        return f"{src} ({key})"
    return f"{src}: {key}"


def _describe(err: Any, known: list[str], origins: Mapping[str, str]) -> str:
    loc = err.get("loc") or ()
    key = str(loc[0]) if loc else ""
    kind = err.get("type", "")
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        close = suggest(key, known)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else f"known keys: {', '.join(known)}"
        return f"{_where(key, origins)}: unknown key; {hint}"
    if not key:  # a model-level check: heads must divide hidden
        msg = str(ctx.get("error", err.get("msg", "")))
        return f"{_where('hidden_size', origins)} / {_where('num_attention_heads', origins)}: {msg}"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        op = "≥" if kind == "greater_than_equal" else ">"
        return f"{_where(key, origins)}: must be {op} {bound}, got {value!r}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"{_where(key, origins)}: must be a whole number, got {value!r}"
    if kind in ("float_type", "float_parsing"):
        return f"{_where(key, origins)}: must be a number, got {value!r}"
    if kind == "string_type":
        return f"{_where(key, origins)}: must be text, got {value!r}"
    return f"{_where(key, origins)}: {err.get('msg', 'invalid value')}, got {value!r}"
