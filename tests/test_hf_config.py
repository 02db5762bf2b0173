"""Reading HuggingFace config.json files (and model folders) leniently, by model_type."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import bertcalc
from bertcalc.config import config_class
from bertcalc.errors import ConfigError, ConfigFileError
from bertcalc.loading import resolve

from .test_cli import _bad

MINILM_CONFIG = {
    "_name_or_path": "nreimers/MiniLM-L6-H384-uncased", "architectures": ["BertModel"],
    "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": False, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "hidden_size": 384, "initializer_range": 0.02, "intermediate_size": 1536,
    "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert", "num_attention_heads": 12,
    "num_hidden_layers": 6, "pad_token_id": 0, "position_embedding_type": "absolute",
    "transformers_version": "4.8.2", "type_vocab_size": 2, "use_cache": True, "vocab_size": 30522,
}


def write(tmp_path: Path, data: dict, name: str = "config.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


def test_irrelevant_keys_are_ignored(tmp_path: Path) -> None:
    r = bertcalc.count(config_file=write(tmp_path, MINILM_CONFIG))
    assert r.config["hidden_size"] == 384 and r.config["num_hidden_layers"] == 6
    # 6 layers of H=384, I=1536 with embeddings and pooler, written out independently
    H, I, V, P, T, L = 384, 1536, 30522, 512, 2, 6  # noqa: E741
    assert r.total_parameters == (V + P + T + 2) * H + L * (4 * H * H + 2 * H * I + 9 * H + I) + H * H + H


def test_model_folder_is_read_through_its_config_json(tmp_path: Path) -> None:
    write(tmp_path, MINILM_CONFIG)
    assert bertcalc.count(config_file=tmp_path).config["hidden_size"] == 384
    assert bertcalc.count(config_file=tmp_path).label == tmp_path.name


def test_missing_keys_take_hf_defaults_not_4h(tmp_path: Path) -> None:
    """HF's BertConfig(hidden_size=1024) keeps intermediate_size=3072: a file is taken as HF would."""
    r = bertcalc.count(config_file=write(tmp_path, {"model_type": "bert", "hidden_size": 1024,
                                                    "num_attention_heads": 16}))
    assert r.config["intermediate_size"] == 3072 and r.config["vocab_size"] == 30522


def test_id2label_sets_num_labels(tmp_path: Path) -> None:
    cfg = write(tmp_path, {"model_type": "bert", "id2label": {"0": "a", "1": "b", "2": "c"}})
    r = bertcalc.count(config_file=cfg, head="seq-cls")
    assert r.config["num_labels"] == 3
    assert r.component("sequence classifier").parameters == 3 * 768 + 3


@pytest.mark.parametrize(("model_type", "family"), [("roberta", "roberta"), ("distilbert", "distilbert"),
                                                    ("albert", "albert"), ("electra", "electra")])
def test_model_type_picks_the_family(tmp_path: Path, model_type: str, family: str) -> None:
    r = bertcalc.count(config_file=write(tmp_path, {"model_type": model_type}))
    assert r.family == family


def test_distilbert_field_names(tmp_path: Path) -> None:
    cfg = write(tmp_path, {"model_type": "distilbert", "dim": 256, "n_layers": 2, "n_heads": 4, "hidden_dim": 512,
                           "activation": "gelu", "qa_dropout": 0.1, "seq_classif_dropout": 0.2})
    r = bertcalc.count(config_file=cfg)
    assert r.config["dim"] == 256 and r.component("encoder layer").repeat == 2


def test_unsupported_model_type_lists_supported(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match=r"'gpt2' is not supported.*bert, roberta, distilbert, albert, electra"):
        bertcalc.count(config_file=write(tmp_path, {"model_type": "gpt2"}))


@pytest.mark.parametrize("model_type", ["gpt2", "t5", "llama"])
def test_every_unsupported_model_type_is_one_line_naming_every_family(cli, tmp_path: Path, model_type: str) -> None:
    """The list comes from bertcalc/families/ (one file per family), so a family added there is named here."""
    from bertcalc import families

    r = cli("count", "-c", str(write(tmp_path, {"model_type": model_type})))
    assert r.exit_code == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    named = r.stderr.strip().rsplit("bertcalc reads ", 1)[1].split(", ")
    assert named == [f.replace("_", "-") for f in families.names()]
    assert {"xlm-roberta", "camembert"} <= set(named)
    for supported in named:  # and each one it names is read
        assert cli("count", "-c", str(write(tmp_path, {"model_type": supported}))).exit_code == 0, supported


def test_json_without_model_type(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="no model_type"):
        bertcalc.count(config_file=write(tmp_path, {"hidden_size": 768}))


def test_cross_attention_is_refused_not_miscounted(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="add_cross_attention"):
        bertcalc.count(config_file=write(tmp_path, {"model_type": "bert", "is_decoder": True,
                                                    "add_cross_attention": True}))


def test_yaml_with_model_type_is_lenient(tmp_path: Path) -> None:
    p = tmp_path / "hf.yaml"
    p.write_text("model_type: bert\nhidden_dropout_prob: 0.3\nnum_hidden_layers: 4\n")
    assert bertcalc.count(config_file=p).config["num_hidden_layers"] == 4


def test_bertcalc_yaml_is_strict_even_for_families(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("family: roberta\ninitializer_range: 0.02\n")
    with pytest.raises(ConfigError, match="initializer_range"):
        bertcalc.count(config_file=p)


def test_malformed_json(tmp_path: Path) -> None:
    p = tmp_path / "config.json"
    p.write_text('{"model_type": "bert",')
    with pytest.raises(ConfigFileError, match="malformed JSON"):
        bertcalc.count(config_file=p)


def test_folder_without_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match=r"no config\.json"):
        bertcalc.count(config_file=tmp_path)


def test_preset_and_file_of_different_families(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="RoBERTa config but preset 'base' is BERT"):
        bertcalc.count(preset="base", config_file=write(tmp_path, {"model_type": "roberta"}))


def test_note_when_config_was_saved_from_a_task_model(tmp_path: Path) -> None:
    r = bertcalc.count(config_file=write(tmp_path, {"model_type": "bert", "architectures": ["BertForMaskedLM"]}),
                       head="model")
    assert any("BertForMaskedLM" in n and "--head mlm" in n for n in r.notes)


def test_the_class_architectures_names_is_the_default_head(tmp_path: Path) -> None:
    """Every class bertcalc has, named in architectures, is counted without --head (a ForXxx class the family
    lacks falls back to the bare model, with a note saying so); BertLMHeadModel is causal-lm, not model."""
    from bertcalc.architecture import heads_of
    from bertcalc.config import family_names

    for family in family_names():
        for head in heads_of(family):
            model_class = bertcalc.count(config_class(family)(), head=head).model_class
            cfg = write(tmp_path, {"model_type": family.replace("_", "-"), "architectures": [model_class]})
            r = bertcalc.count(config_file=cfg)
            assert (r.head, r.model_class) == (head, model_class)
            assert not any("counted here as" in n for n in r.notes)
    r = bertcalc.count(config_file=write(tmp_path, {"model_type": "bert", "architectures": ["BertLMHeadModel"]}),
                       head="model")
    assert any("--head causal-lm" in n for n in r.notes)
    r = bertcalc.count(config_file=write(tmp_path, {"model_type": "distilbert",
                                                    "architectures": ["DistilBertForCausalLM"]}))
    assert r.head == "model" and any("no head for that class" in n for n in r.notes)


# --------------------------------------------------------------------------------------------------- CLI


def test_cli_config_json_and_compare(cli, tmp_path: Path) -> None:
    cfg = write(tmp_path, MINILM_CONFIG)
    r = cli("count", "--config", str(cfg), "-f", "json")
    assert r.exit_code == 0, r.stderr
    total = json.loads(r.stdout)["total_parameters"]
    d = json.loads(cli("compare", str(cfg), "base", "-f", "json").stdout)
    assert d["configs"][0]["total_parameters"] == total
    d = json.loads(cli("compare", f"{tmp_path}:layers=3", "base", "-f", "json").stdout)
    assert d["configs"][0]["config"]["num_hidden_layers"] == 3


def test_cli_flags_map_to_family_fields(cli) -> None:
    d = json.loads(cli("count", "-p", "distilbert-base", "--layers", "3", "--hidden", "512", "--heads", "8",
                       "-f", "json").stdout)
    assert d["config"]["n_layers"] == 3 and d["config"]["dim"] == 512 and d["config"]["hidden_dim"] == 2048


def test_cli_flag_the_family_lacks(cli) -> None:
    _bad(cli("count", "-p", "distilbert-base", "--type-vocab", "2"), "--type-vocab", "DistilBERT")


def test_cli_unsupported_model_type(cli, tmp_path: Path) -> None:
    _bad(cli("count", "-c", str(write(tmp_path, {"model_type": "t5"}))), "config.json", "'t5'", "electra")


def test_a_misspelt_field_in_config_json_gets_a_note(tmp_path: Path) -> None:
    f = tmp_path / "config.json"
    f.write_text(json.dumps({"model_type": "bert", "hidden_szie": 512, "num_attention_heads": 8}))
    r = resolve(config_file=f)
    assert r.config.hidden_size == 768  # lenient: the misspelt key is ignored, as HF would ...
    assert any("'hidden_szie'" in n and "did you mean 'hidden_size'" in n for n in r.notes)  # ... but said


@pytest.mark.parametrize("family", ["bert", "roberta", "distilbert", "albert", "electra"])
def test_no_typo_note_for_a_real_config(tmp_path: Path, family: str) -> None:
    """Every key transformers itself writes to a config.json is read or ignored without a typo note."""
    transformers = pytest.importorskip("transformers") if not os.environ.get("CI") else __import__("transformers")
    cls = {"bert": "BertConfig", "roberta": "RobertaConfig", "distilbert": "DistilBertConfig",
           "albert": "AlbertConfig", "electra": "ElectraConfig"}[family]
    f = tmp_path / "config.json"
    f.write_text(getattr(transformers, cls)().to_json_string())
    assert not [n for n in resolve(config_file=f).notes if "did you mean" in n]
