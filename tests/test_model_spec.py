"""The model spec: one object for a model, which every library call takes; the model keywords written once."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

import bertcalc
from bertcalc import api
from bertcalc.loading import ModelSpec

MODEL_CALLS = ("count", "shapes", "verify", "flops", "memory")
MODEL_KEYWORDS = ("preset", "config_file", "head", "pooler")


def test_resolve_gives_a_spec_with_head_pooler_and_origins() -> None:
    spec = bertcalc.resolve(preset="base", overrides={"layers": 6}, override_origins={"layers": "--layers"},
                            head="mlm")
    assert isinstance(spec, ModelSpec) and bertcalc.ModelSpec is ModelSpec
    assert (spec.head, spec.pooler) == ("mlm", True)
    assert spec.origin("num_hidden_layers") == "--layers"
    assert spec.origin("hidden_size") == "preset 'base'"
    assert spec.origin("hidden_dropout_prob") is None  # a default


@pytest.mark.parametrize("name", MODEL_CALLS)
def test_every_model_call_shows_the_model_keywords(name: str) -> None:
    params = inspect.signature(getattr(bertcalc, name)).parameters
    assert list(params)[:5] == ["config", *MODEL_KEYWORDS]
    # head None: the class a config.json's architectures names, else the bare model
    assert params["head"].default is None and params["pooler"].default is True
    assert params["overrides"].kind is inspect.Parameter.VAR_KEYWORD


@pytest.mark.parametrize("name", MODEL_CALLS)
def test_no_model_call_declares_the_model_keywords_itself(name: str) -> None:
    own = inspect.signature(getattr(api, name).__wrapped__).parameters
    assert next(iter(own)) == "spec"
    assert not set(MODEL_KEYWORDS) & set(own), f"api.{name} repeats the model keywords; use @takes_model"


def test_a_spec_can_be_passed_to_every_call() -> None:
    spec = bertcalc.resolve(preset="tiny", head="mlm")
    same = dict(preset="tiny", head="mlm")
    assert bertcalc.count(spec).to_dict() == bertcalc.count(**same).to_dict()
    assert bertcalc.shapes(spec, batch=2, seq=8).to_dict() == bertcalc.shapes(**same, batch=2, seq=8).to_dict()
    assert bertcalc.flops(spec, batch=2, seq=8).to_dict() == bertcalc.flops(**same, batch=2, seq=8).to_dict()
    assert bertcalc.memory(spec, seq=64, fit="8GiB").to_dict() == bertcalc.memory(**same, seq=64, fit="8GiB").to_dict()
    assert bertcalc.compare([spec, "tiny:layers=1"]).to_dict() == bertcalc.compare(["tiny", "tiny:layers=1"]).to_dict()
    assert bertcalc.count(config=spec).total_parameters == bertcalc.count(**same).total_parameters


def test_a_spec_can_be_verified() -> None:
    pytest.importorskip("transformers")
    assert bertcalc.verify(bertcalc.resolve(preset="tiny", head="seq-cls")).ok


def test_a_spec_can_be_checked_against_a_checkpoint() -> None:
    from .test_inspect import minilm_dir

    folder = minilm_dir()
    spec = bertcalc.resolve(config_file=folder / "config.json")
    assert bertcalc.inspect(folder, spec).to_dict() == bertcalc.inspect(folder).to_dict()


def test_head_and_pooler_given_replace_the_specs() -> None:
    spec = bertcalc.resolve(preset="tiny", head="mlm")
    assert bertcalc.count(spec, head="model").to_dict() == bertcalc.count(preset="tiny").to_dict()
    bare = bertcalc.count(dataclasses.replace(spec, head="model"), pooler=False)
    assert bare.to_dict() == bertcalc.count(preset="tiny", pooler=False).to_dict()


def test_a_spec_and_a_preset_or_overrides_are_refused() -> None:
    spec = bertcalc.resolve(preset="tiny")
    with pytest.raises(TypeError, match="not both"):
        bertcalc.count(spec, num_hidden_layers=3)
    with pytest.raises(TypeError, match="not both"):
        bertcalc.count(spec.config, preset="base")
    with pytest.raises(TypeError, match="preset='base'"):
        bertcalc.count(42)


def test_a_model_name_is_resolved_as_the_cli_resolves_it() -> None:
    assert bertcalc.count("base").to_dict() == bertcalc.count(preset="base").to_dict()
    assert bertcalc.count("tiny", head="mlm", layers=1).to_dict() == bertcalc.count(preset="tiny", head="mlm",
                                                                                     layers=1).to_dict()


def test_config_objects_still_work() -> None:
    cfg = bertcalc.BertConfig(hidden_size=512, num_attention_heads=8, intermediate_size=2048)
    r = bertcalc.count(cfg)
    assert r.total_parameters == bertcalc.count(hidden_size=512, num_attention_heads=8,
                                                intermediate_size=2048).total_parameters


@pytest.mark.parametrize("preset, overrides, origins", [
    ("base", {"layers": 6, "hidden-size": 384}, {"layers": "--layers", "hidden-size": "model.yaml"}),
    ("base", {"num_hidden_layers": 3, "vocab": 1000}, None),
    ("distilbert-base", {"layers": 2, "heads": 4, "hidden": 256}, {"layers": "--layers"}),
    ("deberta-v3-small", {"max_positions": 256, "labels": 5}, None),
])
def test_override_keys_map_the_same_from_the_cache(preset, overrides, origins) -> None:
    """resolve remembers how a run of override keys maps to fields; a spec resolved from that memory equals one
    resolved without it (fields, values, their order, origins, label, sources, notes)."""
    from bertcalc import loading

    loading._FIELDS_OF.clear()
    cold = bertcalc.resolve(preset=preset, overrides=overrides, override_origins=origins)
    assert loading._FIELDS_OF, "the mapping was not remembered"
    warm = bertcalc.resolve(preset=preset, overrides=dict(overrides), override_origins=origins)
    assert warm == cold and warm.origins == cold.origins and list(warm.config.fields()) == list(cold.config.fields())
    assert warm.label == cold.label and warm.sources == cold.sources and warm.notes == cold.notes
    flipped = dict(reversed(list(overrides.items())))  # the same keys in another order: a run of its own
    other = bertcalc.resolve(preset=preset, overrides=flipped, override_origins=origins)
    assert other.config == cold.config and dict(other.origins) == dict(cold.origins)


def test_a_duplicate_field_is_refused_whether_or_not_its_keys_were_mapped_before() -> None:
    from bertcalc.errors import ConfigError

    bertcalc.resolve(preset="base", overrides={"layers": 2})
    for _ in range(2):
        with pytest.raises(ConfigError, match="both set num_hidden_layers"):
            bertcalc.resolve(preset="base", overrides={"layers": 2, "num_hidden_layers": 3})
