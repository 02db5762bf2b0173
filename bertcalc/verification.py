"""Check bertcalc against real HuggingFace ``transformers``: same names, same order, same shapes, same totals.

The HF model is built from the config on the meta device: no weights are allocated and nothing is
downloaded. Needs ``torch`` and ``transformers`` (``pip install 'bertcalc[verify]'``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from .config import ModelConfig
from .errors import BertcalcError
from .model import Architecture, ModelReport, identify
from .records import frozen


class MissingDependencyError(BertcalcError):
    """torch or transformers is not installed."""


class VerifyError(BertcalcError):
    """transformers refused to build the model that bertcalc counted."""

    exit_code = 1


@frozen
class Difference:
    what: str  # "name", "shape", "order", "total", "state dict", "tied"
    name: str
    bertcalc: Any
    transformers: Any


@frozen
class VerifyReport(ModelReport):
    kind: ClassVar[str] = "verify"

    tensors: int
    total_bertcalc: int
    total_transformers: int
    state_dict_bertcalc: int
    state_dict_transformers: int
    differences: tuple[Difference, ...]
    versions: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            **self.identity(),
            "tensors": self.tensors,
            "total_parameters": {"bertcalc": self.total_bertcalc, "transformers": self.total_transformers},
            "state_dict_parameters": {"bertcalc": self.state_dict_bertcalc,
                                      "transformers": self.state_dict_transformers},
            "differences": [{"what": d.what, "name": d.name, "bertcalc": d.bertcalc, "transformers": d.transformers}
                            for d in self.differences],
            "versions": dict(self.versions),
        }


def _import():
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise MissingDependencyError(
            f"verify needs torch and transformers ({exc.name} is not installed): "
            "pip install 'bertcalc[verify]'  (or: pip install torch==2.13.0 transformers)"
        ) from None
    return torch, transformers


def hf_model(cfg: ModelConfig, model_class: str, pooler: bool):
    """The transformers model for ``cfg``, on the meta device."""
    from . import families

    torch, transformers = _import()
    family = families.module(cfg.family)  # its HF names: HF_CONFIG, POOLER_ARG
    hf_cfg = getattr(transformers, family.HF_CONFIG)(**cfg.fields())
    cls = getattr(transformers, model_class)
    with torch.device("meta"):
        if model_class == family.HF_PREFIX + "Model" and family.POOLER_ARG:  # the bare model (not BertLMHeadModel)
            return cls(hf_cfg, add_pooling_layer=pooler)
        return cls(hf_cfg)


# transformers builds every module, one Python object per layer: about 0.1 s per BERT-base layer on the meta
# device. Past this many state-dict tensors (about 300 BERT layers) the build would take minutes; since every
# layer is built from the same code, a smaller num_hidden_layers checks the same names and shapes.
MAX_TENSORS = 5_000


def verify(arch: Architecture, cfg: ModelConfig, label: str = "", pooler: bool = True) -> VerifyReport:
    n = arch.tensor_count()
    if n > MAX_TENSORS:
        from .errors import UsageError

        raise UsageError(
            f"this model has {n:,} state-dict tensors; verify builds each with transformers, which is too slow "
            f"past {MAX_TENSORS:,} (about 300 layers): verify fewer layers (every layer is built by the same code)",
            param="layers")
    torch, transformers = _import()
    try:
        model = hf_model(cfg, arch.model_class, pooler)
    except Exception as exc:  # transformers refused a config bertcalc accepted: that is a difference too
        raise VerifyError(f"transformers could not build {arch.model_class} from this config: "
                          f"{type(exc).__name__}: {exc}") from None
    theirs = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    ours = [(name, t.shape) for name, t in arch.tensors()]
    diffs: list[Difference] = []
    their_map, our_map = dict(theirs), dict(ours)
    for name, shape in ours:
        if name not in their_map:
            diffs.append(Difference("name", name, list(shape), None))
        elif their_map[name] != shape:
            diffs.append(Difference("shape", name, list(shape), list(their_map[name])))
    for name, shape in theirs:
        if name not in our_map:
            diffs.append(Difference("name", name, None, list(shape)))
    if not diffs and [n for n, _ in ours] != [n for n, _ in theirs]:
        first = next(i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a[0] != b[0])
        diffs.append(Difference("order", f"position {first}", ours[first][0], theirs[first][0]))
    n_theirs = model.num_parameters()
    if n_theirs != arch.total_parameters:
        diffs.append(Difference("total", "num_parameters()", arch.total_parameters, n_theirs))
    sd_theirs = sum(v.numel() for v in model.state_dict().values())
    if sd_theirs != arch.state_dict_parameters:
        diffs.append(Difference("state dict", "sum of state-dict sizes", arch.state_dict_parameters, sd_theirs))
    ties = getattr(model, "_tied_weights_keys", None) or {}
    their_ties = sorted(ties.items()) if isinstance(ties, dict) and cfg.tie_word_embeddings else []
    our_ties = sorted(arch.tied())
    if [tuple(t) for t in their_ties] != our_ties:
        diffs.append(Difference("tied", "tied pairs", [list(t) for t in our_ties], [list(t) for t in their_ties]))
    return VerifyReport(
        **identify(arch, label, cfg.fields()),
        tensors=len(ours),
        total_bertcalc=arch.total_parameters,
        total_transformers=n_theirs,
        state_dict_bertcalc=arch.state_dict_parameters,
        state_dict_transformers=sd_theirs,
        differences=tuple(diffs),
        # str(): torch's version is a TorchVersion (a str subclass), which YAML cannot represent
        versions={"transformers": str(transformers.__version__), "torch": str(torch.__version__)},
    )
