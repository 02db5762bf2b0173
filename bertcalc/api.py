"""The library's front door: a few calls that each return a frozen report.

>>> import bertcalc
>>> bertcalc.count(preset="base").total_parameters
109482240
>>> bertcalc.count(num_hidden_layers=6).component("encoder layer").repeat
6
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import architecture, counting
from .config import BertConfig
from .loading import Resolved, parse_overrides, resolve

if TYPE_CHECKING:
    from .comparing import CompareReport
    from .listing import Layout, ShapesReport
    from .overview import PresetsReport


def _resolved(
    config: BertConfig | Resolved | None, preset: str | None, config_file: str | Path | None, overrides: dict
) -> Resolved:
    if isinstance(config, Resolved):
        return config
    if isinstance(config, BertConfig):
        if preset or config_file or overrides:
            raise TypeError("pass either a config object or preset/config_file/overrides, not both")
        return Resolved(config, label="custom")
    return resolve(preset=preset, config_file=config_file, overrides=overrides)


def count(
    config: BertConfig | Resolved | None = None,
    *,
    preset: str | None = None,
    config_file: str | Path | None = None,
    head: str = "model",
    pooler: bool = True,
    **overrides: Any,
) -> counting.CountReport:
    """Parameters by component and in total. Overrides use HF field names (``hidden_size=1024``)."""
    r = _resolved(config, preset, config_file, overrides)
    arch = architecture.build(r.config, head=head, pooler=pooler)
    return counting.report(
        arch, r.config, label=r.label, pooler=pooler, notes=r.notes, sources=r.sources, description=r.description
    )


def shapes(
    config: BertConfig | Resolved | None = None,
    *,
    preset: str | None = None,
    config_file: str | Path | None = None,
    head: str = "model",
    pooler: bool = True,
    layout: Layout = "pt",
    batch: int | None = None,
    seq: int | None = None,
    collapse: bool = False,
    **overrides: Any,
) -> ShapesReport:
    """Every state-dict tensor with its shape; with ``batch`` and ``seq``, the forward pass's activations."""
    from . import listing

    r = _resolved(config, preset, config_file, overrides)
    arch = architecture.build(r.config, head=head, pooler=pooler)
    acts = None
    if batch is not None or seq is not None:
        from .errors import UsageError

        if batch is None or seq is None:
            missing = "batch" if batch is None else "seq"
            raise UsageError(f"activations need both batch and seq; {missing} is missing", param=missing)
        acts = architecture.forward(arch, r.config, batch, seq)
    return listing.report(
        arch, r.config, label=r.label, layout=layout, activations=acts, batch=batch, seq=seq, collapse=collapse
    )


def parse_item(item: str) -> tuple[str | None, str | None, str]:
    """``base:num_hidden_layers=6`` -> ``("base", None, "num_hidden_layers=6")``.

    The part before the last ``:`` is a preset name, or a file when it looks like a path (has a ``/`` or a
    ``.yaml``/``.yml``/``.json`` suffix, or names a file that exists).
    """
    source, overrides = item, ""
    head, sep, tail = item.rpartition(":")
    if sep and "=" in tail and "=" not in head:
        source, overrides = head, tail
    elif sep and not tail and head:
        source = head
    looks_like_file = "/" in source or "\\" in source or source.endswith((".yaml", ".yml", ".json"))
    if looks_like_file or Path(source).is_file():
        return None, source, overrides
    return source, None, overrides


def resolve_item(item: str) -> tuple[Resolved, bool]:
    """One ``compare`` item -> its resolved config, and whether it keeps the pooler."""
    preset, file, text = parse_item(item)
    ov = parse_overrides(text, f"compare item {item!r}") if text else {}
    pooler = ov.pop("pooler", True)
    if not isinstance(pooler, bool):
        from .errors import ConfigError

        raise ConfigError([f"compare item {item!r}: pooler must be true or false, got {pooler!r}"])
    origins = dict.fromkeys(ov, f"compare item {item!r}")
    return resolve(preset=preset, config_file=file, overrides=ov, override_origins=origins, label=item), pooler


def compare(
    items: list[str | BertConfig | Resolved], *, head: str = "model", pooler: bool = True
) -> CompareReport:
    """Two or more configs side by side; each item is a preset, a file, or either with ``:key=value,...``."""
    reports = []
    for item in items:
        keep = pooler
        if isinstance(item, str):
            resolved, item_pooler = resolve_item(item)
            keep = pooler and item_pooler
        else:
            resolved = _resolved(item, None, None, {})
        reports.append(count(resolved, head=head, pooler=keep))
    from .comparing import compare as line_up

    return line_up(reports)


def presets() -> PresetsReport:
    """Every shipped preset with its size, smallest first within each family."""
    from . import catalog
    from .overview import PresetRow, PresetsReport

    rows = []
    for name in catalog.names():
        r = resolve(preset=name)
        rows.append(PresetRow(name, r.description, r.config, architecture.build(r.config).total_parameters))
    rows.sort(key=lambda r: (r.config.family != "bert", r.config.family, r.total_parameters, r.name))
    return PresetsReport(tuple(rows))
