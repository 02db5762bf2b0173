"""Task heads and tied weights."""

from __future__ import annotations

import json

import pytest

import bertcalc
from bertcalc.errors import UsageError

from .test_cli import _bad


def test_mlm_counts_tied_tensors_once() -> None:
    r = bertcalc.count(preset="base", head="mlm")
    assert r.model_class == "BertForMaskedLM"
    # transform dense + LayerNorm + the vocabulary bias; the decoder's weight and bias are the tied copies
    extra = (768 * 768 + 768) + 2 * 768 + 30522
    assert r.total_parameters == 109_482_240 - 590_592 + extra
    assert r.state_dict_parameters == r.total_parameters + 30522 * 768 + 30522
    assert sorted(r.tied) == [("cls.predictions.decoder.bias", "cls.predictions.bias"),
                              ("cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight")]


def test_untie_gives_the_decoder_its_own_weight() -> None:
    tied = bertcalc.count(preset="base", head="mlm")
    untied = bertcalc.count(preset="base", head="mlm", tie_word_embeddings=False)
    assert untied.tied == ()
    assert untied.total_parameters == untied.state_dict_parameters == tied.state_dict_parameters


def test_labels_size_the_classifier() -> None:
    r = bertcalc.count(preset="base", head="token-cls", labels=9)
    assert r.component("token classifier").parameters == 9 * 768 + 9


@pytest.mark.parametrize(("preset", "head"), [("roberta-base", "pretraining"), ("distilbert-base", "pretraining")])
def test_heads_a_family_lacks(preset: str, head: str) -> None:
    with pytest.raises(UsageError, match="no pretraining head"):
        bertcalc.count(preset=preset, head=head)


def test_no_pooler_only_for_the_bare_model() -> None:
    with pytest.raises(UsageError, match="--head model only"):
        bertcalc.count(preset="base", head="seq-cls", pooler=False)


def test_albert_shares_one_layer_group() -> None:
    r = bertcalc.count(preset="albert-base-v2")
    group = r.component("shared layer group")
    assert group.repeat == 1 and r.config["num_hidden_layers"] == 12
    assert r.total_parameters == 11_683_584  # albert-base-v2, AlbertModel


def test_electra_project_only_when_widths_differ() -> None:
    small = bertcalc.count(preset="electra-small-discriminator")
    base = bertcalc.count(preset="electra-base-discriminator")
    assert "embeddings project" in [c.name for c in small.components]
    assert "embeddings project" not in [c.name for c in base.components]


def test_roberta_positions_offset() -> None:
    with pytest.raises(UsageError, match="512"):
        bertcalc.shapes(preset="roberta-base", batch=1, seq=513)
    assert bertcalc.shapes(preset="roberta-base", batch=1, seq=512).activations


# --------------------------------------------------------------------------------------------------- CLI


def test_cli_head_json_contract(cli) -> None:
    d = json.loads(cli("count", "-p", "base", "--head", "mlm", "-f", "json").stdout)
    assert d["total_parameters"] == 109_514_298
    assert d["state_dict_parameters"] == 132_985_716
    assert ["cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight"] in d["tied"]


def test_cli_head_table_says_what_is_tied(cli) -> None:
    r = cli("count", "-p", "base", "--head", "mlm")
    assert r.exit_code == 0
    assert "BertForMaskedLM" in r.stdout and "(tied)" in r.stdout
    assert "cls.predictions.decoder.weight → bert.embeddings.word_embeddings.weight" in r.stdout
    assert "132,985,716" in r.stdout  # state-dict figure shown beside the unique total


def test_cli_untie_and_labels(cli) -> None:
    d = json.loads(cli("count", "-p", "tiny", "--head", "mlm", "--untie", "-f", "json").stdout)
    assert d["tied"] == [] and d["total_parameters"] == d["state_dict_parameters"]
    d = json.loads(cli("count", "-p", "tiny", "--head", "seq-cls", "--labels", "5", "-f", "json").stdout)
    assert d["config"]["num_labels"] == 5


def test_cli_bad_head(cli) -> None:
    _bad(cli("count", "--head", "lm"), "--head", "mlm")
    _bad(cli("count", "-p", "roberta-base", "--head", "pretraining"), "RoBERTa", "pretraining")
    _bad(cli("count", "--labels", "0", "--head", "seq-cls"), "--labels", "num_labels")


@pytest.mark.parametrize("head", ["model", "mlm", "pretraining", "seq-cls", "token-cls", "qa"])
def test_cli_shapes_activations_for_every_head(cli, head: str) -> None:
    r = cli("shapes", "-p", "albert-base-v2", "--head", head, "-b", "2", "-s", "8", "-f", "json")
    assert r.exit_code == 0, r.stderr
    acts = json.loads(r.stdout)["activations"]
    layer = [a for a in acts if "albert_layers.0.attention.query" in a["name"]]
    assert layer and layer[0]["repeat"] == 12  # the shared group runs 12 times
