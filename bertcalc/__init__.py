"""bertcalc: exact shapes and parameter counts for BERT-family models, in closed form, without PyTorch.

    >>> import bertcalc
    >>> bertcalc.count(preset="base").total_parameters
    109482240

The names below are imported on first use, so ``import bertcalc`` (and the CLI's start-up) stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "count": "bertcalc.api",
    "shapes": "bertcalc.api",
    "compare": "bertcalc.api",
    "presets": "bertcalc.api",
    "inspect": "bertcalc.api",
    "verify": "bertcalc.api",
    "flops": "bertcalc.api",
    "memory": "bertcalc.api",
    "sweep": "bertcalc.api",
    "BertConfig": "bertcalc.families.bert",
    "ModelConfig": "bertcalc.config",
    "config_class": "bertcalc.config",
    "resolve": "bertcalc.loading",
    "ModelSpec": "bertcalc.loading",
    "build": "bertcalc.architecture",
    "LoraSpec": "bertcalc.adapters",
    "FreezeSpec": "bertcalc.adapters",
    "BertcalcError": "bertcalc.errors",
    "ConfigError": "bertcalc.errors",
    "ConfigFileError": "bertcalc.errors",
    "PresetNotFoundError": "bertcalc.errors",
    "UsageError": "bertcalc.errors",
    "CheckpointError": "bertcalc.checkpoint",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bertcalc' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
