"""The library's front door: a few calls that each return a frozen report.

>>> import bertcalc
>>> bertcalc.count(preset="base").total_parameters
109482240
>>> bertcalc.count(num_hidden_layers=6).component("encoder layer").repeat
6
>>> r = bertcalc.count(preset="base", head="mlm")
>>> r.total_parameters, r.state_dict_parameters  # the decoder is tied to the word embeddings
(109514298, 132985716)
"""

from __future__ import annotations

import dataclasses
import functools
import inspect as _inspect
import operator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import architecture
from .config import ModelConfig
from .errors import arg
from .loading import ModelSpec, parse_overrides, resolve

if TYPE_CHECKING:
    from collections.abc import Callable

    from .comparing import CompareReport
    from .counting import CountReport
    from .flopcount import FlopsReport
    from .inspection import InspectReport
    from .listing import Layout, ShapesReport
    from .memsim import MemoryReport
    from .model import Architecture
    from .overview import PresetsReport
    from .sweeping import SweepReport
    from .verification import VerifyReport


def model_sources(name: str, preset: str | None = None, config_file: str | Path | None = None) -> dict[str, Any]:
    """A model name -> ``resolve()``'s ``preset``, ``config_file`` or ``model`` (a Hub id).

    A preset name wins, then a path that exists, then anything path-like; else it is a Hub id (``hub.classify``).
    """
    from .errors import BertcalcError, UsageError
    from .hub import classify

    kind, value = classify(name)
    if (kind == "preset" and preset is not None) or (kind != "preset" and config_file is not None):
        other = arg("preset" if kind == "preset" else "config_file")
        raise UsageError(f"{name!r} and {other} both name the model; give it once", param="model")
    if kind == "preset":
        from . import catalog

        if value not in catalog.names():
            try:
                catalog.path_of(value)
            except BertcalcError as exc:
                exc.text += "; a Hub model id is written org/name, e.g. google-bert/bert-base-uncased"
                raise
    out: dict[str, Any] = {"preset": preset, "config_file": config_file, "model": None}
    out[{"preset": "preset", "path": "config_file", "hub": "model"}[kind]] = value
    return out


def spec_of(
    config: ModelSpec | ModelConfig | str | None = None,
    *,
    preset: str | None = None,
    config_file: str | Path | None = None,
    head: str | None = None,
    pooler: bool | None = None,
    overrides: dict[str, Any] | None = None,
) -> ModelSpec:
    """The model a call names: a spec as given, a config object, a model name (a preset, a path or a Hub id,
    as :func:`model_sources` tells them apart), or a preset, file and overrides resolved.

    ``head`` and ``pooler``, when given, replace a spec's own; otherwise the spec's apply (for anything else:
    the class a config.json's ``architectures`` names, else ``model``; and ``True``).
    """
    overrides = overrides or {}
    if config is None or isinstance(config, str):
        sources = model_sources(config, preset, config_file) if isinstance(config, str) else {
            "preset": preset, "config_file": config_file}
        return resolve(**sources, overrides=overrides, head=head, pooler=True if pooler is None else pooler)
    if preset or config_file or overrides:
        raise TypeError("pass either a config object or preset/config_file/overrides, not both")
    if isinstance(config, ModelConfig):
        spec = ModelSpec(config, label=f"custom {config.display}")
    elif isinstance(config, ModelSpec):
        spec = config
    else:
        raise TypeError(f"config must be a ModelSpec, a ModelConfig or a model name, got "
                        f"{type(config).__name__}; for a preset, pass 'base' or preset='base'")
    if head is not None or pooler is not None:
        spec = dataclasses.replace(spec, head=spec.head if head is None else head,
                                   pooler=spec.pooler if pooler is None else pooler)
    return spec


_P = _inspect.Parameter
# The model every call below is about, as its keyword arguments: written here once.
_MODEL = (
    _P("preset", _P.KEYWORD_ONLY, default=None, annotation="str | None"),
    _P("config_file", _P.KEYWORD_ONLY, default=None, annotation="str | Path | None"),
    _P("head", _P.KEYWORD_ONLY, default=None, annotation="str | None"),
    _P("pooler", _P.KEYWORD_ONLY, default=True, annotation="bool"),
)


def takes_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn(spec, **options)`` -> the public call ``fn(config=None, *, preset=None, config_file=None,
    head=None, pooler=True, **options, **overrides)``, with that signature (``help()`` shows it). ``head=None``
    is the class a config.json's ``architectures`` names, else the bare model.

    ``config`` is a :class:`ModelSpec`, a config object or a model name (a preset, a path or a Hub id); without
    one, ``preset``, ``config_file`` and the keyword overrides (HF field names, ``hidden_size=1024``, or flag
    names, ``hidden=1024``) are resolved.
    ``head`` and ``pooler`` given here replace a spec's own.
    """
    own = list(_inspect.signature(fn).parameters.values())[1:]
    first = _P("config", _P.POSITIONAL_OR_KEYWORD, default=None, annotation="ModelSpec | ModelConfig | str | None")
    sig = _inspect.Signature([first, *_MODEL, *own, _P("overrides", _P.VAR_KEYWORD, annotation="Any")],
                             return_annotation=_inspect.signature(fn).return_annotation)

    fast = all(p.kind == _P.KEYWORD_ONLY for p in own)
    own_names = frozenset(p.name for p in own)
    model_names = frozenset(p.name for p in _MODEL)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if fast and len(args) <= 1 and not (args and "config" in kwargs):
            # what sig.bind would give, without its cost (a tenth of a count): config, the model's keywords,
            # fn's own options; every other keyword is an override, in the order given
            config = args[0] if args else kwargs.pop("config", None)
            model: dict[str, Any] = {}
            overrides: dict[str, Any] = {}
            for k in [k for k in kwargs if k not in own_names]:  # the keywords given, not those fn could take
                (model if k in model_names else overrides)[k] = kwargs.pop(k)
            return fn(spec_of(config, overrides=overrides or None, **model), **kwargs)
        given = sig.bind(*args, **kwargs).arguments  # only what the caller passed: the rest keeps fn's defaults
        model = {p.name: given.pop(p.name) for p in _MODEL if p.name in given}
        spec = spec_of(given.pop("config", None), overrides=given.pop("overrides", None), **model)
        return fn(spec, **given)

    call.__signature__ = sig  # type: ignore[attr-defined]
    return call


def build(spec: ModelSpec) -> Architecture:
    """The tensor list of the model class the spec selects."""
    return architecture.build(spec.config, head=spec.head, pooler=spec.pooler)


def _notes(spec: ModelSpec, arch: Architecture) -> tuple[str, ...]:
    """Point out when the config was saved from a task model but is counted as another class (naming the
    ``--head`` of that class, or saying that bertcalc has none), and what the family says about the class."""
    notes = list(spec.notes)
    arch_class = arch.model_class
    if spec.architectures and arch_class not in spec.architectures:
        from .architecture import heads_of
        from .families._heads import head_from_architectures

        hint = head_from_architectures(spec.architectures)
        if hint is not None and hint != spec.head and hint in heads_of(arch.family):
            tip = f"; use --head {hint} to count that class"
        elif hint is None or hint not in heads_of(arch.family):
            tip = f"; bertcalc has no head for that class (heads: {', '.join(heads_of(arch.family))})"
        else:
            tip = ""
        notes.append(f"the config was saved from {spec.architectures[0]}, counted here as {arch_class}{tip}")
    return (*notes, *arch.notes)


def tuned(arch: Architecture, *, lora: Any = None, adapter: Any = None, freeze: Any = None,
          train: Any = None, step: bool = False) -> Architecture:
    """``arch`` with a LoRA adapter (``lora="r=8,alpha=16,targets=query+value"`` or a
    :class:`~bertcalc.adapters.LoraSpec`; ``adapter``: a peft adapter_config.json path, or its dict) or a freeze
    (``freeze="embeddings,layers=0-5"``, ``train="head"``) applied as PEFT / ``requires_grad`` would; unchanged
    when none is given. ``step``: the model is for a training step, so a freeze must leave something to train."""
    if lora is None and adapter is None and freeze is None and train is None:
        return arch
    from . import adapters
    from .errors import UsageError

    if lora is not None and adapter is not None:
        raise UsageError(f"{arg('lora')} and {arg('adapter')} both describe the adapter; give one", param="adapter")
    spec = None
    if lora is not None:
        spec = adapters.checked(lora) if isinstance(lora, adapters.LoraSpec) else adapters.parse_lora(str(lora))
    elif adapter is not None:
        spec = (adapters.adapter_from_dict(adapter) if isinstance(adapter, dict)
                else adapters.read_adapter_config(adapter))
    fz = None
    if freeze is not None or train is not None:
        def groups(v: Any, param: str) -> tuple:
            return () if v is None else tuple(v) if isinstance(v, (tuple, list)) else adapters.parse_groups(v, param)

        fz = adapters.FreezeSpec(groups(freeze, "freeze"), groups(train, "train"))
    try:
        new = adapters.apply(arch, spec, fz)[0]
    except UsageError as exc:  # the adapter's own errors name lora; from a file, the file's parameter
        if adapter is not None and exc.param == "lora":
            exc.param = "adapter"
        raise
    if step and new.trainable_parameters == 0:
        which, named = ("train", arg("train")) if train is not None else ("freeze", arg("freeze"))
        raise UsageError(f"{named} leaves nothing to train, and a training step needs something to train "
                         "(PyTorch's backward() refuses a loss that requires no gradient); train at least one part",
                         param=which)
    return new


@takes_model
def count(spec: ModelSpec, *, lora: Any = None, adapter: Any = None, freeze: Any = None,
          train: Any = None) -> CountReport:
    """Parameters by component and in total. Overrides use HF field names (``hidden_size=1024``) or flag
    names (``hidden=1024``). With ``lora``/``adapter`` or ``freeze``/``train`` (see :func:`tuned`), also the
    trainable parameters, as PEFT's ``get_nb_trainable_parameters()`` counts them."""
    from . import counting, symbolic  # imported here: memory, flops and shapes never need them

    made = None
    if lora is None and adapter is None and freeze is None and train is None:
        # the totals from the build traced once for this structure
        arch, built = symbolic.TEMPLATES.totals(spec.config, spec.head, spec.pooler, _build_of)
        if built is not None:
            arch = built
        else:
            def made() -> Architecture:
                return build(spec)
    else:
        arch = tuned(build(spec), lora=lora, adapter=adapter, freeze=freeze, train=train)
    return counting.report(
        arch, spec.config, label=spec.label, notes=_notes(spec, arch), sources=spec.sources,
        description=spec.description, build=made,
    )


def _build_of(cfg: Any, head: str, pooler: bool) -> Architecture:
    return architecture.build(cfg, head=head, pooler=pooler)


@takes_model
def shapes(
    spec: ModelSpec, *, layout: Layout = "pt", batch: int | None = None, seq: int | None = None, collapse: bool = False,
    choices: int | None = None, lora: Any = None, adapter: Any = None, freeze: Any = None, train: Any = None,
) -> ShapesReport:
    """Every state-dict tensor with its shape; with ``batch`` and ``seq``, the forward pass's activations
    (over ``batch × choices`` rows for a multiple-choice model: ``choices`` defaults to 4 there). With an adapter
    or a freeze (see :func:`tuned`), PEFT's names, the adapter's tensors and which tensors train."""
    from . import listing

    arch = tuned(build(spec), lora=lora, adapter=adapter, freeze=freeze, train=train)
    acts = None
    if batch is not None or seq is not None:
        from .errors import UsageError

        if batch is None or seq is None:
            missing = "batch" if batch is None else "seq"
            raise UsageError(f"activations need both batch and seq; {missing} is missing", param=missing)
        acts = architecture.forward(arch, spec.config, batch, seq, choices)
        choices = architecture.rows(arch, batch, choices)[1]
    elif choices is not None:
        from .errors import UsageError

        raise UsageError("choices sizes the activations: give batch and seq too", param="choices")
    return listing.report(
        arch, spec.config, label=spec.label, layout=layout, activations=acts, batch=batch, seq=seq, collapse=collapse,
        choices=choices,
    )


def parse_item(item: str) -> tuple[str | None, str | None, str]:
    """``base:num_hidden_layers=6`` -> ``("base", None, "num_hidden_layers=6")``.

    The part before the last ``:`` is a preset name, or a file or model folder when it looks like a path (has
    a ``/`` or a ``.yaml``/``.yml``/``.json`` suffix, or exists on disk).
    """
    source, overrides = item, ""
    head, sep, tail = item.rpartition(":")
    if sep and "=" in tail and "=" not in head:
        source, overrides = head, tail
    elif sep and not tail and head:
        source = head
    elif sep and head and not Path(item).exists() and "/" not in tail and "\\" not in tail:
        from .errors import ConfigError

        raise ConfigError([f"compare item {item!r}: after ':' come key=value overrides, e.g. {head}:layers=6"])
    looks_like_file = "/" in source or "\\" in source or source.endswith((".yaml", ".yml", ".json"))
    if looks_like_file or Path(source).exists():
        return None, source, overrides
    return source, None, overrides


def _hub_item(source: str) -> str | None:
    """The Hub id a compare item names, if it is one (``hub.classify``: presets and existing paths win)."""
    from .hub import classify

    kind, value = classify(source)
    return value if kind == "hub" else None


def resolve_item(item: str) -> tuple[ModelSpec, bool]:
    """One ``compare`` item -> its resolved config, and whether it keeps the pooler."""
    preset, file, text = parse_item(item)
    model = _hub_item(file) if file else None
    if model is not None:
        preset = file = None
    ov = parse_overrides(text, f"compare item {item!r}") if text else {}
    pooler = ov.pop("pooler", True)
    if not isinstance(pooler, bool):
        from .errors import ConfigError

        raise ConfigError([f"compare item {item!r}: pooler must be true or false, got {pooler!r}"])
    origins = dict.fromkeys(ov, f"compare item {item!r}")
    return resolve(preset=preset, config_file=file, overrides=ov, override_origins=origins, label=item,
                   model=model), pooler


def compare(
    items: list[str | ModelSpec | ModelConfig], *, head: str = "model", pooler: bool = True
) -> CompareReport:
    """Two or more configs side by side; each item is a preset, a file, or either with ``:key=value,...``, or a
    spec or config object. ``head`` and ``pooler`` apply to every item (``pooler=false`` in an item drops its
    own): one class for all, the bare model unless given."""
    from .comparing import compare as line_up
    from .errors import UsageError

    if isinstance(items, (str, Path, ModelConfig)) or not hasattr(items, "__iter__"):
        raise UsageError(f"compare takes a list of configs, got {items!r}; e.g. compare(['base', 'large'])")
    items = list(items)
    if len(items) < 2:
        raise UsageError("compare needs at least two configs, e.g. 'bertcalc compare base large'")
    reports = []
    for item in items:
        keep = pooler
        if isinstance(item, str):
            resolved, item_pooler = resolve_item(item)
            keep = pooler and item_pooler
        else:
            resolved = spec_of(item)
        reports.append(count(resolved, head=head, pooler=keep))
    return line_up(reports)


def inspect(
    path: str | Path,
    config: ModelSpec | ModelConfig | None = None,
    *,
    preset: str | None = None,
    config_file: str | Path | None = None,
    head: str | None = None,
    pooler: bool | None = None,
    override_origins: dict[str, str] | None = None,
    revision: str | None = None,
    offline: bool | None = None,
    download_bytes: bool = False,
    **overrides: Any,
) -> InspectReport:
    """A safetensors checkpoint (file, folder, or shard index) against what its config predicts.

    ``path`` may be a Hub model id (when no such path exists): its headers are read from the HF cache, or with
    HTTP range requests (the header only; ``download_bytes=True`` reports the bytes read).

    The config is the one given, else the ``config.json`` beside the checkpoint. The head is the one given,
    else the one the config's ``architectures`` names, else a spec's own (``model``). With ``pooler=None`` a
    bare model checkpoint without ``pooler.*`` tensors is checked as ``add_pooling_layer=False``.
    """
    from . import checkpoint, inspection
    from .errors import UsageError
    from .families._heads import head_from_architectures

    transfer = None
    if isinstance(path, str) and not Path(path).exists():
        from . import hub

        if hub.classify(path)[0] == "hub":
            transfer = hub.Transfer()
            ckpt, _ = hub.read_checkpoint(path, revision, offline, transfer)
        else:
            ckpt = checkpoint.read(path)
    else:
        ckpt = checkpoint.read(path)
    if config is None and preset is None and config_file is None:
        if ckpt.config_path is None:
            raise UsageError(f"{path}: no config.json beside the checkpoint; pass {arg('config_file', 'FILE')} or "
                             f"{arg('preset', 'NAME')}")
        config_file = ckpt.config_path
    if isinstance(config, (ModelConfig, ModelSpec)):
        r = spec_of(config)
    else:
        label = None
        if transfer is not None and config_file == ckpt.config_path:
            label = ckpt.path + (":" + ",".join(f"{k}={v}" for k, v in overrides.items()) if overrides else "")
        r = resolve(preset=preset, config_file=config_file, overrides=overrides, override_origins=override_origins,
                    label=label)
    head = head or head_from_architectures(r.architectures) or r.head
    notes = []
    if pooler is None:
        pooler = True
        bare = not architecture.build(r.config, head=head).prefix  # the base model itself, not a task model
        if bare and not any(".pooler." in f".{t.name}" for t in ckpt.tensors):
            pooler = False
            notes.append("no pooler.* tensors stored: checked as a bare model without pooler (add_pooling_layer=False)")
    arch = architecture.build(r.config, head=head, pooler=pooler)
    report = inspection.compare(ckpt, arch, r.config.fields(), r.label, model_config=r.config)
    from .hub import declared_bytes

    declared = declared_bytes(config_file) if config_file is not None and preset is None else {}
    download = None
    if download_bytes:
        download = {"source": "local path", "bytes": 0, "requests": []}  # a local checkpoint: nothing downloaded
        if transfer is not None:
            download = {"source": "Hub" if transfer.reads else "HF cache", **transfer.to_dict()}
    return dataclasses.replace(report, notes=(*notes, *report.notes), declared=declared, download=download)


@takes_model
def verify(spec: ModelSpec) -> VerifyReport:
    """Build the HF model with real transformers on the meta device and compare it with bertcalc's."""
    from . import verification

    return verification.verify(build(spec), spec.config, label=spec.label, pooler=spec.pooler)


@takes_model
def flops(
    spec: ModelSpec,
    *,
    batch: int = 8,
    seq: int = 128,
    gpu: str | None = None,
    mfu: float = 0.40,
    peak_tflops: float | None = None,
    precision: str | None = "bf16",
    choices: int | None = None,
    lora: Any = None,
    adapter: Any = None,
    freeze: Any = None,
    train: Any = None,
) -> FlopsReport:
    """Forward and training matmul FLOPs, as torch.utils.flop_counter counts them; with a GPU, the time.
    ``choices``: a multiple-choice model's input is ``[batch, choices, seq]`` (4 choices unless given).
    With an adapter or a freeze (see :func:`tuned`): the adapter's matmuls, and a backward that computes only
    the gradients autograd needs."""
    from . import flopcount as _flops

    if lora is None and adapter is None and freeze is None and train is None:
        from . import symbolic

        def run(cfg: ModelConfig, batch: int, seq: int, *rest: int) -> FlopsReport:
            return _flops.count(architecture.build(cfg, head=spec.head, pooler=spec.pooler), cfg, batch, seq,
                                label=spec.label, gpu=gpu, peak_tflops=peak_tflops, precision=precision, mfu=mfu,
                                choices=rest[0] if rest else choices)

        # the report from the program traced once for this structure (bertcalc.symbolic); the label is this one's
        report = symbolic.TEMPLATES.call(
            "flops", spec.config, spec.head, spec.pooler, (batch, seq) if choices is None else (batch, seq, choices),
            (gpu, repr(mfu), repr(peak_tflops), precision, choices is None), run, _same_but_label)  # 1, 1.0, True
        if report.label != spec.label:
            report.__dict__["label"] = spec.label
        return report
    arch = tuned(build(spec), lora=lora, adapter=adapter, freeze=freeze, train=train, step=True)
    return _flops.count(arch, spec.config, batch, seq, label=spec.label, gpu=gpu, peak_tflops=peak_tflops,
                        precision=precision, mfu=mfu, choices=choices)


def _same_but_label(template: Any, real: Any) -> bool:
    """A template's report is the real one's, field for field and in its JSON, but for the label (each call's
    own)."""
    return {**template.to_dict(), "label": real.label} == real.to_dict() and all(
        getattr(template, f.name) == getattr(real, f.name) for f in dataclasses.fields(real) if f.name != "label")


def _alloc_conf(text: str | None) -> Any:
    if text is None:
        return None
    from .allocator import parse_alloc_conf

    return parse_alloc_conf(text)


def _budget(fit: str | int | None, gpu: str | None) -> tuple[int | None, str | None]:
    """The memory budget in bytes, from ``fit`` (``"80GiB"`` or bytes) or a card's total, and the card's name."""
    if fit is None and gpu is None:
        return None, None
    from . import memsim as _memory
    from .errors import UsageError

    if fit is not None and gpu is not None:
        raise UsageError(f"{arg('fit', 'SIZE')} and {arg('gpu', 'NAME')} both set the memory budget: give one of them",
                         param="fit")
    if fit is not None:
        return (fit if isinstance(fit, int) else _memory.parse_size(fit)), None
    if gpu is not None:
        from .flopcount import gpu_spec

        gpu_name, card = gpu_spec(gpu, other=f"give {arg('fit', 'SIZE')} for any other")
        exact = card.get("memory_bytes")
        return (int(exact) if exact else int(float(card["memory_gib"]) * (1 << 30))), gpu_name
    return None, None


@takes_model
def memory(
    spec: ModelSpec,
    *,
    batch: int = 8,
    seq: int = 128,
    mode: str = "train",
    precision: str = "fp32",
    optimizer: str = "adamw",
    attention: str = "eager",
    grad_checkpointing: bool = False,
    fit: str | int | None = None,
    gpu: str | None = None,
    zero: int | None = None,
    gpus: int = 1,
    reserved: bool | None = None,
    context: int | None = None,
    alloc_conf: str | None = None,
    nodes: int = 1,
    offload: str | None = None,
    fsdp: bool = False,
    reshard: bool = True,
    link_gbps: float | None = None,
    choices: int | None = None,
    lora: Any = None,
    adapter: Any = None,
    freeze: Any = None,
    train: Any = None,
) -> MemoryReport:
    """Peak GPU memory (what torch.cuda.max_memory_allocated reports), term by term.

    ``fit`` is a budget (``"80GiB"`` or bytes); ``gpu`` names a card whose memory is the budget. A training
    step fits when its reserved memory (``max_memory_reserved``, the caching allocator replayed) and the CUDA
    context (``context`` bytes, default 512 MiB) fit in the budget. ``reserved=True`` reports the reserved
    figure without a budget; ``reserved=False`` fits on the allocated peak instead (fast, optimistic).
    ``alloc_conf``: ``PYTORCH_CUDA_ALLOC_CONF``'s options for the replay (``"expandable_segments:True"``).

    ``zero`` (DeepSpeed stage), ``fsdp`` (FSDP2 ``fully_shard``; ``reshard``: ``reshard_after_forward``), or
    ``gpus`` > 1 alone (DDP) add ``report.distributed``: per-rank memory for ``gpus`` × ``nodes`` ranks at
    ``batch`` per rank (``bertcalc.distributed``), with ``offload`` (optimizer, param, both) for ZeRO.
    ``choices``: a multiple-choice model's input is ``[batch, choices, seq]`` (4 choices unless given).
    ``lora``/``adapter``/``freeze``/``train`` (see :func:`tuned`): a training step of the PEFT model or the
    partly frozen one: gradients and optimizer states of the trainable parameters only, and what autograd then
    saves (``bertcalc.tuned``; fp32/eager checked against the CPU harness, docs/memory.md).
    """
    from . import memsim as _memory

    if (mode == "train" and lora is None and adapter is None and freeze is None and train is None and zero is None
            and not fsdp and offload is None and gpus * nodes == 1 and alloc_conf is None
            and (reserved is False or (reserved is None and fit is None and gpu is None))):
        return _step_memory(spec, batch, seq, precision, optimizer, attention, grad_checkpointing, fit, gpu, context,
                            choices)
    arch = tuned(build(spec), lora=lora, adapter=adapter, freeze=freeze, train=train, step=mode == "train")
    o = _memory.Options(mode=mode, precision=precision, optimizer=optimizer, attention=attention,
                        grad_checkpointing=grad_checkpointing, batch=batch, seq=seq,
                        choices=architecture.rows(arch, batch, choices)[1])
    budget, gpu_name = _budget(fit, gpu)
    report = _memory.estimate(arch, spec.config, o, label=spec.label, budget=budget, gpu=gpu_name,
                              reserved=reserved, context=context, allocator=_alloc_conf(alloc_conf))
    ddp_only = zero is None and not fsdp and offload is None
    if arch.adapted is not None and not (ddp_only and gpus * nodes == 1):
        from .errors import UsageError

        raise UsageError("per-rank memory with an adapter or a freeze is not modelled (ZeRO, FSDP and DDP shard or "
                         f"reduce the trainable parameters only); leave out {arg('zero')}/{arg('fsdp')}/{arg('gpus')}",
                         param="zero" if zero is not None else "fsdp" if fsdp else "gpus")
    if not (ddp_only and (mode != "train" or gpus * nodes == 1)):
        from . import distributed
        from .errors import UsageError

        if zero is not None and fsdp:
            raise UsageError(f"{arg('zero')} is DeepSpeed and {arg('fsdp')} is PyTorch FSDP2: give one of them",
                             param="fsdp")
        setup = distributed.Setup("zero" if zero is not None else "fsdp" if fsdp else "ddp", stage=zero or 0,
                                  gpus=gpus, nodes=nodes, offload=offload, reshard=reshard, link_gbps=link_gbps)
        room = None if budget is None else budget - (report.context or 0)  # the card less the CUDA context
        report = dataclasses.replace(report, distributed=distributed.plan(arch, spec.config, o, setup, room))
    return report


def _step_memory(spec: ModelSpec, batch: int, seq: int, precision: str, optimizer: str, attention: str,
                 grad_checkpointing: bool, fit: str | int | None, gpu: str | None, context: int | None,
                 choices: int | None) -> Any:
    """:func:`memory` of a full fine-tuning step on one GPU, allocated peak only: the step from a template of
    the config's structure where one answers (:mod:`bertcalc.symbolic`: memsim's own replay, traced with the
    sizes as symbols), so that neither the build nor the replay runs; the report, and a fit's search over
    the batch, from that."""
    from . import memsim as _memory
    from . import symbolic

    def options(b: int, s: int, c: int | None) -> Any:
        return _memory.Options(mode="train", precision=precision, optimizer=optimizer, attention=attention,
                               grad_checkpointing=grad_checkpointing, batch=b, seq=s, choices=c)

    def run(cfg: ModelConfig, b: int, s: int, *rest: int) -> tuple[int | None, Any]:
        arch = architecture.build(cfg, head=spec.head, pooler=spec.pooler)
        c = architecture.rows(arch, b, rest[0] if rest else choices)[1]
        o = options(b, s, c)
        _memory.check(cfg, o)
        _memory.unsupported(arch, cfg, o)
        return c, _memory.step(arch, cfg, o)

    key = tuple(map(repr, (precision, optimizer, attention, grad_checkpointing, choices is None)))  # True is not 1

    def at(b: int) -> tuple[int | None, Any]:
        sizes = (b, seq) if choices is None else (b, seq, choices)
        return symbolic.TEMPLATES.call("memory", spec.config, spec.head, spec.pooler, sizes, key, run, operator.eq)

    if choices is None:  # the order of the errors the full path gives: the budget's, then the step's
        budget, gpu_name = _budget(fit, gpu)
        c, s = at(batch)
    else:
        c, s = at(batch)
        budget, gpu_name = _budget(fit, gpu)
    return _memory.estimate(None, spec.config, options(batch, seq, c), label=spec.label, budget=budget,
                            gpu=gpu_name, context=context, known=s,
                            peak_at=lambda b: at(b)[1].peak.peak)  # a fit's probes: the same templates


@takes_model
def sweep(
    spec: ModelSpec,
    *,
    axes: dict[str, Any] | list[str] | str,
    batch: int = 8,
    seq: int = 128,
    mode: str = "train",
    precision: str = "fp32",
    optimizer: str = "adamw",
    attention: str = "eager",
    grad_checkpointing: bool = False,
    fit: str | int | None = None,
    gpu: str | None = None,
    reserved: bool | None = None,
    context: int | None = None,
    mfu: float | None = None,
    peak_tflops: float | None = None,
    alloc_conf: str | None = None,
    choices: int | None = None,
    lora: Any = None,
    adapter: Any = None,
    freeze: Any = None,
    train: Any = None,
) -> SweepReport:
    """Peak memory over a grid: ``axes`` is ``"batch=8..256 seq=128,256,512"`` (or a list of such items, or a
    dict of axis -> values), over batch, seq, precision and attention. With ``fit``/``gpu``: each cell against
    the budget, and the largest batch per row; with ``mfu`` (and ``gpu`` or ``peak_tflops``): time per step.
    ``lora``/``adapter``/``freeze``/``train``: the adapted model's training step (:func:`memory`), fitted on the
    allocated peak."""
    from . import memsim as _memory
    from . import sweeping

    if isinstance(axes, dict):
        parsed = sweeping.parse_sweep([f"{k}={','.join(str(v) for v in vs)}" for k, vs in axes.items()])
    else:
        parsed = sweeping.parse_sweep([axes] if isinstance(axes, str) else list(axes))
    budget, gpu_name = _budget(fit, gpu)
    arch = tuned(build(spec), lora=lora, adapter=adapter, freeze=freeze, train=train, step=mode == "train")
    o = _memory.Options(mode=mode, precision=precision, optimizer=optimizer, attention=attention,
                        grad_checkpointing=grad_checkpointing, batch=batch, seq=seq,
                        choices=architecture.rows(arch, batch, choices)[1])
    if arch.adapted is not None:
        from .errors import UsageError
        from .tuned import check

        check(arch, o)
        if reserved:
            raise UsageError(f"{arg('reserved')} with an adapter or a freeze is not modelled; leave it out",
                             param="reserved")
        if mfu is not None or peak_tflops is not None:
            raise UsageError(f"{arg('mfu')} in a sweep with an adapter or a freeze is not modelled yet (flops takes "
                             f"them, and times one cell); leave {arg('mfu')} out", param="mfu")
        reserved = False
    return sweeping.sweep(arch, spec.config, parsed, o, label=spec.label, budget=budget,
                          gpu=gpu_name or gpu, context=context, reserved=reserved, mfu=mfu, peak_tflops=peak_tflops,
                          allocator=_alloc_conf(alloc_conf))


def presets() -> PresetsReport:
    """Every shipped preset with its size, smallest first within each family."""
    from . import catalog
    from .overview import PresetRow, PresetsReport

    rows = []
    for name in catalog.names():
        r = resolve(preset=name)
        rows.append(PresetRow(name, r.description, r.config, architecture.build(r.config).total_parameters))
    from .config import family_names

    order = list(family_names())
    rows.sort(key=lambda r: (order.index(r.config.family), r.total_parameters, r.name))
    return PresetsReport(tuple(rows))
