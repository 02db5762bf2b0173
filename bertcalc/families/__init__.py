"""One module per model family: its config class, tensors, forward program, heads and HF names.

A family module defines ``CONFIG`` (its pydantic config class), ``HEADS``, ``build(cfg, head, pooler_)``,
``HF_CONFIG`` and ``HF_PREFIX`` (transformers' config and model class names), ``BASE_PREFIX`` (the base
model's name in a task model's state dict), ``POOLER_ARG`` (whether the bare model takes
``add_pooling_layer``) and ``ORDER`` (where it lists among the families). Every registry of family facts is
read from these modules: adding a family is adding a file here (and its presets).
"""

import importlib
import sys
from functools import lru_cache
from pathlib import Path
from types import ModuleType

DEFAULT = "bert"  # the family of a bertcalc YAML without a ``family`` key, and of bare overrides
_HERE = Path(__file__).resolve().parent


def exists(family: str) -> bool:
    return isinstance(family, str) and family.isidentifier() and not family.startswith("_") and _has_file(family)


@lru_cache(maxsize=64)
def _has_file(family: str) -> bool:  # asked on every resolve and build: stat the folder once per name
    return (_HERE / f"{family}.py").is_file()


def module(family: str) -> ModuleType:
    name = f"{__name__}.{family}"
    # sys.modules first: import_module walks importlib's Python-level machinery even for a loaded module
    return sys.modules.get(name) or importlib.import_module(name)


@lru_cache(maxsize=1)
def names() -> tuple[str, ...]:
    found = [p.stem for p in _HERE.glob("*.py") if not p.stem.startswith("_")]
    return tuple(sorted(found, key=lambda f: (getattr(module(f), "ORDER", 99), f)))
