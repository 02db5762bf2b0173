"""Preset totals against independent published figures.

Source: the keras-hub BERT presets table (``keras_hub`` ``bert`` presets, "params" column), which counts the
backbone with its pooler, as HF ``BertModel`` does. These numbers were not produced by bertcalc.
"""

from __future__ import annotations

import pytest

import bertcalc

KERAS_HUB = {
    "tiny": 4_385_920,  # bert_tiny_en_uncased
    "small": 28_763_648,  # bert_small_en_uncased
    "medium": 41_373_184,  # bert_medium_en_uncased
    "base": 109_482_240,  # bert_base_en_uncased
    "base-cased": 108_310_272,  # bert_base_en
    "base-chinese": 102_267_648,  # bert_base_zh
    "base-multilingual-cased": 177_853_440,  # bert_base_multi
    "large": 335_141_888,  # bert_large_en_uncased
    "large-cased": 333_579_264,  # bert_large_en
}


@pytest.mark.parametrize(("preset", "published"), sorted(KERAS_HUB.items()))
def test_preset_matches_published_total(preset: str, published: int) -> None:
    assert bertcalc.count(preset=preset).total_parameters == published


def test_default_config_is_bert_base() -> None:
    assert bertcalc.count().total_parameters == 109_482_240


def test_every_bert_preset_but_mini_has_a_published_total() -> None:
    """mini has no keras-hub entry; it, like every preset, is checked against transformers in test_hf_fixtures."""
    from bertcalc import catalog

    bert = {n for n in catalog.names() if bertcalc.resolve(preset=n).config.family == "bert"}
    assert bert - set(KERAS_HUB) == {"mini"}
