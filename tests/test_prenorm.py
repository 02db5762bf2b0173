"""The pre-norm families beside their fixtures (tests/fixtures/hf/roberta-prelayernorm-*.json, xlm-roberta-xl-*.json
and the storage records in tests/fixtures/memory/cpu_storage_fp32_eager_{roberta_prelayernorm,xlm_roberta_xl}.jsonl):
the pre-norm layer's replay, the final LayerNorm, and the config.json path."""

from __future__ import annotations

import itertools

import pytest

import bertcalc
from bertcalc import memsim
from bertcalc.architecture import build, heads_of
from bertcalc.config import config_class

from .conftest import hf_fixtures

ODD = {"roberta_prelayernorm": "roberta-prelayernorm-odd-model", "xlm_roberta_xl": "xlm-roberta-xl-odd-model"}
FIXTURES = [f for f in hf_fixtures() if f["family"] in ODD]
CONFIGS = {f["family"]: f["config"] for f in FIXTURES if f["case"] in ODD.values()}
HF_CONFIG = {"roberta_prelayernorm": "RobertaPreLayerNormConfig", "xlm_roberta_xl": "XLMRobertaXLConfig"}
EMBEDDING_NORMS = {"roberta_prelayernorm": 1, "xlm_roberta_xl": 0}


def _cfg(family: str, **kw):
    return config_class(family).model_validate({**CONFIGS[family], **kw})


@pytest.mark.parametrize(("family", "head"), [(f, h) for f in ODD for h in heads_of(f)])
def test_after_the_backward_nothing_saved_is_left(family: str, head: str) -> None:
    cfg = _cfg(family)
    arch = build(cfg, head=head)
    for prec, attn, gc in itertools.product(("fp32", "bf16", "amp-bf16"), ("eager", "sdpa"), (False, True)):
        t = memsim.training_peak(arch, cfg, memsim.Options(precision=prec, attention=attn, grad_checkpointing=gc,
                                                           batch=2, seq=16))
        assert t.saved_left == 0, (head, prec, attn, gc)


@pytest.mark.parametrize("family", ODD)
def test_two_layernorms_per_layer_and_one_after_the_encoder(family: str) -> None:
    for layers in (0, 1, 5):
        tensors = bertcalc.shapes(_cfg(family, num_hidden_layers=layers), head="model").to_dict()["tensors"]
        norms = [t["name"] for t in tensors if t["name"].endswith(("LayerNorm.weight", "layer_norm.weight"))]
        assert len(norms) == 2 * layers + 1 + EMBEDDING_NORMS[family]
        assert norms[-1] in ("LayerNorm.weight", "encoder.LayerNorm.weight")


@pytest.mark.parametrize("family", ODD)
def test_memory_is_o1_in_layers(family: str) -> None:
    assert bertcalc.memory(_cfg(family, num_hidden_layers=10**9), batch=2, seq=16).peak_bytes > 10**9
