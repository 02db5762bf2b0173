"""bertcalc's tensor list against real HuggingFace state dicts, for every family and head.

The fixtures in ``tests/fixtures/hf/`` were written by ``scripts/make_hf_fixtures.py`` from models that
``transformers`` built from a config on the meta device. Names, order and shapes must match exactly, the
total must equal ``model.num_parameters()``, and the tied pairs must be HF's ``_tied_weights_keys``.
"""

from __future__ import annotations

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
    assert len(FIXTURES) >= 100, "run scripts/make_hf_fixtures.py"
    assert {f["family"] for f in FIXTURES} >= {"bert", "roberta", "distilbert", "albert", "electra", "mpnet",
                                               "roberta_prelayernorm", "xlm_roberta_xl"}
    assert {f["head"] for f in FIXTURES} >= {"model", "mlm", "pretraining", "seq-cls", "token-cls", "qa",
                                             "multiple-choice"}
    assert {f["family"] for f in FIXTURES if "flops" in f} >= {"mpnet", "roberta_prelayernorm", "xlm_roberta_xl"}


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


FLOP_FIXTURES = [f for f in FIXTURES if "flops" in f]


@pytest.mark.parametrize("fx", FLOP_FIXTURES, ids=[f["case"] for f in FLOP_FIXTURES])
def test_flops_match_flop_counter_mode(fx: dict) -> None:
    """FlopCounterMode on the HF class (eager): a no-grad forward, and a training step (forward, the head's loss,
    backward). A multiple-choice input [B, C, S] runs as B·C rows."""
    f = fx["flops"]
    rows = f["batch"] * f.get("choices", 1)
    r = bertcalc.flops(_config(fx), head=fx["head"], pooler=fx["pooler"], batch=rows, seq=f["seq"])
    assert (r.forward_flops, r.training_flops) == (f["forward"], f["training_step"])


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
