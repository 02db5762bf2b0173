"""bertcalc's tensor list against real HuggingFace state dicts, for every family and head.

The fixtures in ``tests/fixtures/hf/`` were written by ``scripts/make_hf_fixtures.py`` from models that
``transformers`` built from a config on the meta device. Names, order and shapes must match exactly, the
total must equal ``model.num_parameters()``, the tied pairs must be HF's ``_tied_weights_keys``, and the
forward and training-step FLOPs what ``FlopCounterMode`` counted on the HF model (batch 2, sequence 64, 2
choices for a multiple-choice class).
"""

from __future__ import annotations

import json
import math

import pytest

import bertcalc
from bertcalc.config import config_class

from .conftest import hf_fixtures

FIXTURES = hf_fixtures()
IDS = [f["case"] for f in FIXTURES]


def _config(fx: dict):
    return config_class(fx["family"]).model_validate(fx["config"])


def test_fixtures_present() -> None:
    from bertcalc.architecture import heads_of
    from bertcalc.config import family_names

    assert len(FIXTURES) >= 100, "run scripts/make_hf_fixtures.py"
    assert {f["family"] for f in FIXTURES} == set(family_names())
    for family in family_names():  # every head of every family, in at least two configs
        for head in heads_of(family):
            configs = {json.dumps(f["config"], sort_keys=True) for f in FIXTURES
                       if f["family"] == family and f["head"] == head}
            assert len(configs) >= 2, (family, head)


@pytest.mark.parametrize("fx", FIXTURES, ids=IDS)
def test_state_dict_names_and_shapes_match_transformers(fx: dict) -> None:
    report = bertcalc.shapes(_config(fx), head=fx["head"], pooler=fx["pooler"])
    ours = report.to_dict()["tensors"]
    assert [[t["name"], t["shape"]] for t in ours] == fx["state_dict"]
    assert report.model_class == fx["model_class"]


@pytest.mark.parametrize("fx", FIXTURES, ids=IDS)
def test_totals_and_ties_match_transformers(fx: dict) -> None:
    report = bertcalc.count(_config(fx), head=fx["head"], pooler=fx["pooler"])
    assert report.total_parameters == fx["num_parameters"]
    assert report.state_dict_parameters == sum(math.prod(s) for _, s in fx["state_dict"])
    assert sorted(list(p) for p in report.tied) == fx["tied"]


FLOP_FIXTURES = [f for f in FIXTURES if f.get("flops")]  # None: a QA head whose HF forward fails


def test_flop_fixtures_present() -> None:
    """ModernBERT's fixtures carry FlopCounterMode's figures for every head, at two sizes and the odd ones."""
    cases = {(f["family"], f["head"]) for f in FLOP_FIXTURES}
    assert {h for fam, h in cases if fam == "modernbert"} == {"model", "mlm", "seq-cls", "token-cls", "qa"}
    assert len(FLOP_FIXTURES) >= 20


@pytest.mark.parametrize("fx", FLOP_FIXTURES, ids=[f["case"] for f in FLOP_FIXTURES])
def test_flops_match_flop_counter_mode(fx: dict) -> None:
    """Forward FLOPs (no grad) and a training step's (forward, HF's own loss, backward), as FlopCounterMode
    counted them on the HF model with eager attention: bertcalc's forward and training_flops. A
    multiple-choice input [B, C, S] runs as B·C rows."""
    f = fx["flops"]
    r = bertcalc.flops(_config(fx), head=fx["head"], pooler=fx["pooler"], batch=f["batch"], seq=f["seq"],
                       choices=f.get("choices"))  # a multiple-choice class: [batch, choices, seq] input
    assert (r.forward_flops, r.training_flops) == (f["forward"], f["training"])


PRESET_FIXTURES = [f for f in FIXTURES if f["preset"]]


def test_every_preset_has_fixtures() -> None:
    from bertcalc import catalog

    assert {f["preset"] for f in PRESET_FIXTURES} == set(catalog.names())


@pytest.mark.parametrize("fx", PRESET_FIXTURES, ids=[f["case"] for f in PRESET_FIXTURES])
def test_presets_match_their_fixture(fx: dict) -> None:
    """Each shipped preset is the config transformers was given, so the preset's counts are HF's."""
    r = bertcalc.count(preset=fx["preset"], head=fx["head"], pooler=fx["pooler"])
    assert r.family == fx["family"]
    assert {k: r.config[k] for k in fx["config"]} == fx["config"]
    assert r.total_parameters == fx["num_parameters"]


def test_flops_were_recorded_for_every_head() -> None:
    assert {(f["family"], f["head"]) for f in FLOP_FIXTURES} == {(f["family"], f["head"]) for f in FIXTURES}
    assert all(f["flops"] is None for f in FIXTURES if f["head"] == "qa" and f["config"].get("num_labels", 2) != 2)


def test_a_saved_modernbert_config_json_counts_as_transformers_built_it() -> None:
    """``config.json`` exactly as ``save_pretrained`` writes it for ModernBertForMaskedLM (5.x: ``layer_types``
    listed per layer, ``rope_parameters``, token ids outside a small vocabulary) gives the fixture's state dict,
    totals and FLOPs."""
    from .conftest import ROOT

    path = ROOT / "tests" / "fixtures" / "modernbert-odd-mlm-config.json"
    fx = next(f for f in FIXTURES if f["case"] == "modernbert-odd-mlm")
    shapes = bertcalc.shapes(config_file=path, head="mlm")
    assert [[t["name"], t["shape"]] for t in shapes.to_dict()["tensors"]] == fx["state_dict"]
    assert bertcalc.count(config_file=path, head="mlm").total_parameters == fx["num_parameters"]
    f = fx["flops"]
    r = bertcalc.flops(config_file=path, head="mlm", batch=f["batch"], seq=f["seq"])
    assert (r.forward_flops, r.training_flops) == (f["forward"], f["training"])
