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
    with pytest.raises(UsageError, match=r"^pooler=False applies to head='model' only"):
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


@pytest.mark.parametrize("head", ["model", "mlm", "pretraining", "seq-cls", "token-cls", "qa", "multiple-choice"])
def test_cli_shapes_activations_for_every_head(cli, head: str) -> None:
    r = cli("shapes", "-p", "albert-base-v2", "--head", head, "-b", "2", "-s", "8", "-f", "json")
    assert r.exit_code == 0, r.stderr
    acts = json.loads(r.stdout)["activations"]
    layer = [a for a in acts if "albert_layers.0.attention.query" in a["name"]]
    assert layer and layer[0]["repeat"] == 12  # the shared group runs 12 times


def test_a_qa_head_of_other_than_two_labels_is_counted_with_a_note() -> None:
    """HF builds BertForQuestionAnswering with num_labels 3 (tests/fixtures/hf/bert-tiny-qa-3labels.json), but
    its forward unpacks logits.split(1, dim=-1) into start and end, and fails."""
    r = bertcalc.count(preset="tiny", head="qa", num_labels=3)
    assert r.component("QA head").parameters == 3 * 128 + 3
    assert any("forward fails" in n and "num_labels 2" in n for n in r.notes)
    assert not any("forward fails" in n for n in bertcalc.count(preset="tiny", head="qa").notes)
    from bertcalc.errors import UsageError

    with pytest.raises(UsageError, match="num_labels 2"):  # DistilBertForQuestionAnswering refuses at build time
        bertcalc.count(preset="distilbert-base", head="qa", num_labels=3)


def test_new_heads_names_and_ties() -> None:
    lm = bertcalc.count(preset="tiny", head="causal-lm")
    assert lm.model_class == "BertLMHeadModel"
    assert lm.total_parameters == bertcalc.count(preset="tiny", head="mlm").total_parameters  # the same head
    assert ["cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight"] in [list(t) for t in lm.tied]
    nsp = bertcalc.count(preset="tiny", head="nsp")
    assert nsp.component("NSP head").parameters == 2 * 128 + 2 and nsp.tied == ()
    mc = bertcalc.count(preset="roberta-base", head="multiple-choice")
    assert mc.component("multiple-choice classifier").parameters == 768 + 1
    assert mc.component("pooler").parameters == 768 * 768 + 768  # RobertaForMultipleChoice keeps the pooler
    xlmr = bertcalc.shapes(preset="xlm-roberta-base", head="mlm").to_dict()["tensors"]
    assert xlmr[0]["name"] == "lm_head.bias" and xlmr[-1]["name"].startswith("roberta.encoder.layer.11.")


def test_electra_multiple_choice_summary() -> None:
    """ElectraSequenceSummary: summary_use_proj adds sequence_summary.summary [H, H]; without it, none."""
    with_proj = bertcalc.count(preset="electra-small-discriminator", head="multiple-choice")
    assert with_proj.component("sequence summary").parameters == 256 * 256 + 256
    plain = bertcalc.count(preset="electra-small-discriminator", head="multiple-choice", summary_use_proj=False)
    assert with_proj.total_parameters - plain.total_parameters == 256 * 256 + 256
    odd = bertcalc.count(preset="electra-small-discriminator", head="multiple-choice", summary_proj_to_labels=True,
                         num_labels=3)
    assert odd.component("sequence summary").parameters == 3 * 256 + 3
    assert any("forward fails" in n for n in odd.notes)


def test_cli_choices(cli) -> None:
    d = json.loads(cli("flops", "-p", "tiny", "--head", "multiple-choice", "-b", "2", "-s", "64", "--choices", "2",
                       "-f", "json").stdout)
    assert d["choices"] == 2 and d["batch"] == 2
    d = json.loads(cli("memory", "-p", "tiny", "--head", "multiple-choice", "-b", "2", "-s", "64", "--choices", "2",
                       "-f", "json").stdout)
    assert d["options"]["choices"] == 2
    d = json.loads(cli("shapes", "-p", "tiny", "--head", "multiple-choice", "-b", "2", "-s", "8", "-f", "json").stdout)
    assert d["choices"] == 4  # the default
    assert d["activations"][0]["shape"] == [8, 8] and d["activations"][0]["symbols"] == ["B·C", "S"]
    _bad(cli("flops", "-p", "tiny", "--choices", "2"), "--choices", "BertModel")
