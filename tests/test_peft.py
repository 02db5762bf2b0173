"""LoRA adapters and frozen parts against real ``peft`` and ``requires_grad``, for every family and head.

``tests/fixtures/peft/`` was written by ``scripts/make_peft_fixtures.py``: real ``transformers`` models built from
small configs, wrapped by ``peft.get_peft_model`` in several ``LoraConfig`` s (default targets, explicit ones,
all-linear, every bias mode, DoRA, rank/alpha patterns, layers_to_transform, a regex, modules_to_save and the
classifier PEFT saves by task type), and frozen by parameter-name groups. Every name (``named_parameters``, tied
ones included), shape and ``requires_grad`` must match, and the pair ``get_nb_trainable_parameters()``; where peft
refused a config, bertcalc must refuse it too.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path

import pytest

from bertcalc import adapters, architecture
from bertcalc.config import config_class, family_names
from bertcalc.errors import UsageError

FIXTURES = [json.loads(Path(p).read_text()) for p in
            sorted(glob.glob(str(Path(__file__).parent / "fixtures" / "peft" / "*.json")))]
ADAPTER_CASES = [(fx, name) for fx in FIXTURES for name in fx["adapters"]]
FREEZE_CASES = [(fx, name) for fx in FIXTURES for name in fx["freezes"]]


def _arch(fx: dict):
    cfg = config_class(fx["family"]).model_validate(fx["config"])
    return architecture.build(cfg, head=fx["head"])


def _listing(arch) -> list[list]:
    return [[name, list(t.shape), t.trainable] for name, t in arch.tensors()]


def _model_type(family: str) -> str:
    return family.replace("_", "-")


def test_every_family_and_head_covered() -> None:
    from bertcalc.architecture import heads_of

    assert {fx["family"] for fx in FIXTURES} == set(family_names())
    for family in family_names():
        assert {fx["head"] for fx in FIXTURES if fx["family"] == family} == set(heads_of(family)), family
    assert len(ADAPTER_CASES) >= 800


@pytest.mark.parametrize(("fx", "name"), ADAPTER_CASES, ids=[f"{fx['case']}-{fx['head']}-{n}" for fx, n in
                                                             ADAPTER_CASES])
def test_lora_matches_peft(fx: dict, name: str) -> None:
    rec = fx["adapters"][name]
    spec = adapters.adapter_from_dict(rec["config"])
    arch = _arch(fx)
    if "error" in rec:
        with pytest.raises(UsageError):
            adapters.apply(arch, spec, model_type=_model_type(fx["family"]))
        return
    if name == "modules-to-save-nested":  # PEFT wraps word_embeddings inside the embeddings' copy: refused
        with pytest.raises(UsageError, match="does not model"):
            adapters.apply(arch, spec, model_type=_model_type(fx["family"]))
        return
    new, _ = adapters.apply(arch, spec, model_type=_model_type(fx["family"]))
    assert _listing(new) == rec["parameters"]
    assert (adapters.trainable_parameters(new), new.total_parameters) == (rec["trainable"], rec["total"])


@pytest.mark.parametrize(("fx", "name"), FREEZE_CASES, ids=[f"{fx['case']}-{fx['head']}-{n}" for fx, n in
                                                            FREEZE_CASES])
def test_freeze_matches_requires_grad(fx: dict, name: str) -> None:
    rec = fx["freezes"][name]
    spec = adapters.FreezeSpec(adapters.parse_groups(",".join(rec["freeze"]), "freeze") if rec["freeze"] else (),
                               adapters.parse_groups(",".join(rec["train"]), "train") if rec["train"] else ())
    new, _ = adapters.apply(_arch(fx), freeze=spec)
    assert _listing(new) == rec["parameters"]
    assert (adapters.trainable_parameters(new), new.total_parameters) == (rec["trainable"], rec["total"])
