"""bertcalc's tensor list against real HuggingFace state dicts.

The fixtures in ``tests/fixtures/hf/`` were written by ``scripts/make_hf_fixtures.py`` from models that
``transformers`` built from a config on the meta device. Names, order and shapes must match exactly, and
the total must equal ``model.num_parameters()``.
"""

from __future__ import annotations

import math

import pytest

import bertcalc
from bertcalc.config import BertConfig

from .conftest import hf_fixtures

FIXTURES = hf_fixtures()


def test_fixtures_present() -> None:
    assert len(FIXTURES) >= 20, "run scripts/make_hf_fixtures.py"


@pytest.mark.parametrize("fx", FIXTURES, ids=[f["case"] for f in FIXTURES])
def test_state_dict_names_and_shapes_match_transformers(fx: dict) -> None:
    cfg = BertConfig(**fx["config"])
    report = bertcalc.shapes(cfg, head=fx["head"], pooler=fx["pooler"])
    ours = report.to_dict()["tensors"]
    assert [[t["name"], t["shape"]] for t in ours] == fx["state_dict"]
    assert report.model_class == fx["model_class"]


@pytest.mark.parametrize("fx", FIXTURES, ids=[f["case"] for f in FIXTURES])
def test_totals_match_transformers(fx: dict) -> None:
    cfg = BertConfig(**fx["config"])
    report = bertcalc.count(cfg, head=fx["head"], pooler=fx["pooler"])
    assert report.total_parameters == fx["num_parameters"]
    assert report.state_dict_parameters == sum(math.prod(s) for _, s in fx["state_dict"])


def _preset_name(fx: dict) -> str:
    return fx["case"].removeprefix("bert-").removesuffix("-model")


PRESET_FIXTURES = [f for f in FIXTURES if f["case"].endswith("-model") and not f["case"].startswith("bert-odd")]


def test_every_preset_has_a_fixture() -> None:
    from bertcalc import catalog

    assert {_preset_name(f) for f in PRESET_FIXTURES} == set(catalog.names())


@pytest.mark.parametrize("fx", PRESET_FIXTURES, ids=lambda f: f["case"])
def test_presets_match_their_fixture(fx: dict) -> None:
    """Each shipped preset's config is the config transformers was given."""
    r = bertcalc.count(preset=_preset_name(fx))
    assert {k: r.config[k] for k in fx["config"]} == fx["config"]
    assert r.total_parameters == fx["num_parameters"]
