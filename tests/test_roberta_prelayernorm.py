"""RoBERTa-PreLayerNorm beside its fixtures (tests/fixtures/hf/roberta-prelayernorm-*.json and the storage records
in tests/fixtures/memory/cpu_storage_fp32_eager_roberta_prelayernorm.jsonl): the pre-norm layer's replay, the
final LayerNorm, and the config.json path."""

from __future__ import annotations

import itertools
import json

import pytest

import bertcalc
from bertcalc import memsim
from bertcalc.architecture import build, heads_of
from bertcalc.config import config_class

from .conftest import hf_fixtures

FIXTURES = [f for f in hf_fixtures() if f["family"] == "roberta_prelayernorm"]
ODD = next(f["config"] for f in FIXTURES if f["case"] == "roberta-prelayernorm-odd-model")


def _cfg(**kw):
    return config_class("roberta_prelayernorm").model_validate({**ODD, **kw})


@pytest.mark.parametrize("head", heads_of("roberta_prelayernorm"))
def test_after_the_backward_nothing_saved_is_left(head: str) -> None:
    cfg = _cfg()
    arch = build(cfg, head=head)
    for prec, attn, gc in itertools.product(("fp32", "bf16", "amp-bf16"), ("eager", "sdpa"), (False, True)):
        t = memsim.training_peak(arch, cfg, memsim.Options(precision=prec, attention=attn, grad_checkpointing=gc,
                                                           batch=2, seq=16))
        assert t.saved_left == 0, (head, prec, attn, gc)


def test_two_layernorms_per_layer_and_one_after_the_encoder() -> None:
    for layers in (0, 1, 5):
        tensors = bertcalc.shapes(_cfg(num_hidden_layers=layers), head="model").to_dict()["tensors"]
        norms = [t["name"] for t in tensors if t["name"].endswith("LayerNorm.weight")]
        assert len(norms) == 2 * layers + 2 and norms[-1] == "LayerNorm.weight"


def test_memory_is_o1_in_layers() -> None:
    r = bertcalc.memory(_cfg(num_hidden_layers=10**9), batch=2, seq=16)
    assert r.peak_bytes > 10**9


@pytest.mark.parametrize("fx", [f for f in FIXTURES if f["pooler"]], ids=lambda f: f["case"])
def test_a_saved_config_json_counts_as_hf(cli, fx, tmp_path) -> None:
    """A config.json as save_pretrained writes it (model_type roberta-prelayernorm) gives HF's state dict,
    totals and FlopCounterMode FLOPs for each class."""
    transformers = pytest.importorskip("transformers")
    cfg = transformers.RobertaPreLayerNormConfig(**fx["config"])
    cfg.architectures = [fx["model_class"]]
    cfg.save_pretrained(tmp_path)
    path = str(tmp_path / "config.json")

    def run(*args: str) -> dict:
        r = cli(*args, "--config", path, "--head", fx["head"], "-f", "json")
        assert r.exit_code == 0, r.stderr
        return json.loads(r.stdout)

    got = run("count")
    assert got["model_class"] == fx["model_class"] and got["total_parameters"] == fx["num_parameters"]
    assert [[t["name"], t["shape"]] for t in run("shapes")["tensors"]] == fx["state_dict"]
    f = fx["flops"]
    got = run("flops", "--batch", str(f["batch"] * f.get("choices", 1)), "--seq", str(f["seq"]))
    assert (got["forward_flops"], got["training_flops"]) == (f["forward"], f["training_step"])
