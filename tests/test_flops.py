"""FLOPs: exactly what torch.utils.flop_counter counts on the HF model with eager attention."""

from __future__ import annotations

import json
import os

import pytest

import bertcalc
from bertcalc import catalog
from bertcalc.architecture import heads_of
from bertcalc.config import FAMILIES

HEADS = {family: heads_of(family) for family in FAMILIES}
SHAPES = [(1, 1), (2, 16), (3, 77), (8, 128)]
CASES = [(p, h) for p in catalog.names() for h in HEADS[bertcalc.resolve(preset=p).config.family]]


def _torch():
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("torch and transformers are test dependencies and must be installed in CI")
        pytest.skip("torch/transformers not installed")


@pytest.mark.parametrize(("preset", "head"), CASES, ids=[f"{p}-{h}" for p, h in CASES])
def test_forward_flops_equal_flop_counter_mode(preset: str, head: str) -> None:
    _torch()
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from bertcalc.verification import hf_model

    r = bertcalc.resolve(preset=preset)
    model = hf_model(r.config, bertcalc.count(r, head=head).model_class, True)
    model.config._attn_implementation = "eager"
    model.config.pad_token_id = None  # only read by the padding warning, which cannot look at meta ids
    model.eval()
    for batch, seq in SHAPES:
        ids, flat = _inputs(head, batch, seq)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(input_ids=ids)
        assert bertcalc.flops(r, head=head, batch=flat, seq=seq).forward_flops == counter.get_total_flops(), (
            preset, head, batch, seq)


CHOICES = 2


def _inputs(head: str, batch: int, seq: int):
    """input_ids on the meta device, and the batch bertcalc is given: multiple choice reads [B, C, S] and runs
    the base model on the B·C flattened sequences."""
    import torch

    if head == "multiple-choice":
        return torch.zeros(batch, CHOICES, seq, dtype=torch.long, device="meta"), batch * CHOICES
    return torch.zeros(batch, seq, dtype=torch.long, device="meta"), batch


def _train_cases() -> list:
    from .conftest import hf_fixtures

    # DeBERTa-v2 (every head's loss reaches all its matmuls); its ConvLayer is not modelled
    return [f for f in hf_fixtures() if f["family"] == "deberta_v2" and not f["config"].get("conv_kernel_size")
            and f["preset"] in (None, "deberta-v3-xsmall")]


@pytest.mark.parametrize("fx", _train_cases(), ids=lambda f: f["case"])
def test_training_step_flops_equal_flop_counter_mode(fx: dict) -> None:
    """A training step (forward, loss of the logits' sum, backward) at batch 2, sequence 64, against
    FlopCounterMode on the HF model built from the fixture's config."""
    _torch()
    from torch.utils.flop_counter import FlopCounterMode

    from bertcalc.config import config_class
    from bertcalc.verification import hf_model

    cfg = config_class(fx["family"]).model_validate(fx["config"])
    model = hf_model(cfg, fx["model_class"], fx["pooler"])
    model.config._attn_implementation = "eager"
    model.config.pad_token_id = None  # only read by the padding warning, which cannot look at meta ids
    model.train()
    ids, flat = _inputs(fx["head"], 2, 64)
    with FlopCounterMode(display=False) as counter:
        out = model(input_ids=ids)
        y = next(getattr(out, k) for k in ("logits", "start_logits", "last_hidden_state") if getattr(out, k, None)
                 is not None)
        y.sum().backward()
    r = bertcalc.flops(cfg, head=fx["head"], batch=flat, seq=64)
    assert r.training_flops == counter.get_total_flops(), fx["case"]


def independent_bert_forward(B: int, S: int, H: int, I: int, A: int, L: int, pooler: bool = True) -> int:  # noqa: E741
    """Written out by hand: four H×H projections and two H×I matmuls per token, two S×S attention products."""
    T = B * S
    per_layer = 2 * T * (4 * H * H + 2 * H * I) + 2 * 2 * B * A * S * S * (H // A)
    return L * per_layer + (2 * B * H * H if pooler else 0)


@pytest.mark.parametrize("preset", ["tiny", "base", "large"])
def test_against_an_independent_formula(preset: str) -> None:
    r = bertcalc.flops(preset=preset, batch=4, seq=96)
    c = r.config
    assert r.forward_flops == independent_bert_forward(4, 96, c["hidden_size"], c["intermediate_size"],
                                                       c["num_attention_heads"], c["num_hidden_layers"])
    assert r.training_flops == 3 * r.forward_flops
    assert r.to_dict()["flops_per_token"]["forward"] == r.forward_flops / (4 * 96)


def test_components_add_up() -> None:
    r = bertcalc.flops(preset="base", head="mlm", batch=2, seq=64)
    assert sum(f for _, f in r.components()) == r.forward_flops
    names = [n for n, _ in r.components()]
    assert names == ["encoder layer", "MLM head"]  # embeddings and LayerNorms cost no matmul FLOPs


def test_albert_shared_layer_counts_every_application() -> None:
    r = bertcalc.flops(preset="albert-base-v2", batch=1, seq=128)
    layer = [x for x in r.rows if x.component == "shared layer group"]
    assert {x.repeat for x in layer} == {12}


def test_gpu_time_and_approximations() -> None:
    r = bertcalc.flops(preset="base", batch=32, seq=512, gpu="H100", precision="bf16", mfu=0.5)
    secs = r.seconds()
    assert secs["training_step"] == pytest.approx(r.training_flops / (989.4e12 * 0.5))
    ap = r.approximations()
    n = r.parameters
    assert ap["6N"] == 6 * n and ap["6N + 12·L·H·S (PaLM)"] == 6 * n + 12 * 12 * 768 * 512
    assert bertcalc.flops(preset="base", peak_tflops=100.0, mfu=1.0).seconds()["forward"] == pytest.approx(
        bertcalc.flops(preset="base").forward_flops / 1e14)


def test_t4_has_no_bf16() -> None:
    from bertcalc.errors import UsageError

    with pytest.raises(UsageError, match="no bf16"):
        bertcalc.flops(preset="base", gpu="T4", precision="bf16")
    assert bertcalc.flops(preset="base", gpu="T4", precision="fp16").peak_tflops == 65.0


def test_cli_flops_json_contract(cli) -> None:
    r = cli("flops", "-p", "base", "-b", "8", "-s", "128", "-f", "json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert isinstance(d["forward_flops"], int) and isinstance(d["training_flops"], int)
    assert d["training_flops"] == 3 * d["forward_flops"]
    assert d["forward_flops"] == independent_bert_forward(8, 128, 768, 3072, 12, 12)
    assert {"name", "forward_flops"} <= set(d["components"][0])


def test_cli_flops_table_and_gpu(cli) -> None:
    r = cli("flops", "-p", "base", "--gpu", "A100", "--mfu", "0.4")
    assert r.exit_code == 0, r.stderr
    assert "attention Q·Kᵀ" in r.stdout and "6N" in r.stdout and "A100" in r.stdout and "ms" in r.stdout


@pytest.mark.parametrize(("args", "needle"), [
    (["--gpu", "V100"], "V100"),
    (["--seq", "513"], "--seq"),
    (["--mfu", "1.5"], "--mfu"),
])
def test_cli_flops_bad_input(cli, args, needle) -> None:
    from .test_cli import _bad

    _bad(cli("flops", "-p", "base", *args), needle)


@pytest.mark.parametrize("preset", ["modernbert-base", "modernbert-large"])
def test_modernbert_against_an_independent_formula(preset: str) -> None:
    """Per layer: Wqkv 3H², Wo H², Wi 2H·I, Wo H·I per token, and the two S×S products, global and local
    layers alike; the MLM head adds the prediction head's H² and the decoder's H·V per token."""
    B, S = 2, 96
    c = bertcalc.resolve(preset=preset).config
    H, I, L, V = c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.vocab_size  # noqa: E741
    body = L * (2 * B * S * (4 * H * H + 3 * H * I) + 4 * B * S * S * H)
    assert bertcalc.flops(preset=preset, batch=B, seq=S).forward_flops == body
    assert bertcalc.flops(preset=preset, head="mlm", batch=B, seq=S).forward_flops == body + 2 * B * S * (H * H + H * V)
    r = bertcalc.flops(preset=preset, head="seq-cls", batch=B, seq=S)  # mean pooling: the head sees B rows
    assert r.forward_flops == body + 2 * B * (H * H + H * c.num_labels)
    assert r.training_flops == 3 * r.forward_flops
