"""MPNet: what is new in it beside the fixtures (tests/fixtures/hf/mpnet-*.json, the storage records in
tests/fixtures/memory/cpu_storage_fp32_eager_mpnet.jsonl): the shared position bias, the config.json path, and
what transformers cannot run for it."""

from __future__ import annotations

import pytest

import bertcalc
from bertcalc import memsim
from bertcalc.architecture import build

from .conftest import hf_fixtures

MPNET = [f for f in hf_fixtures() if f["family"] == "mpnet"]


def test_the_position_bias_is_one_tensor_after_the_layers() -> None:
    r = bertcalc.shapes(preset="mpnet-base", head="mlm", batch=2, seq=16)
    names = [t["name"] for t in r.to_dict()["tensors"]]
    i = names.index("mpnet.encoder.relative_attention_bias.weight")
    assert names[i - 1] == "mpnet.encoder.layer.11.output.LayerNorm.bias" and names.count(names[i]) == 1
    assert dict((t["name"], t["shape"]) for t in r.to_dict()["tensors"])[names[i]] == [32, 12]
    bias = [a for a in r.activations if a.name == "mpnet.encoder.relative_attention_bias"]
    assert len(bias) == 1 and bias[0].shape == (2, 12, 16, 16) and bias[0].repeat == 1


def test_positions_start_after_the_fixed_padding_index() -> None:
    assert bertcalc.flops(preset="mpnet-base", seq=512).forward_flops > 0
    with pytest.raises(bertcalc.BertcalcError, match="514 minus the padding offset 2"):
        bertcalc.flops(preset="mpnet-base", seq=513)
    with pytest.raises(bertcalc.BertcalcError, match=r"max_position_embeddings.*must be ≥ 2"):
        bertcalc.resolve(preset="mpnet-base", overrides={"max_position_embeddings": 1})


def test_the_bias_saves_its_bucket_ids_and_its_gradient_is_one_buffer() -> None:
    """Written out: the embeddings keep word/position LayerNorm input + statistics + dropout mask, and the
    bias lookup its int64 [S, S] bucket ids; the bias adds one [B, A, S, S] gradient to the backward of the
    encoder (made by the last layer, added into by the others), not one per layer."""
    cfg = bertcalc.resolve(preset="mpnet-base", overrides={"num_hidden_layers": 2}).config
    B, S, H, A = 2, 64, 768, 12
    t = memsim.training_peak(build(cfg, head="model"), cfg, memsim.Options(batch=B, seq=S))
    rows = B * S
    expected_embeddings = memsim.alloc(rows * H * 4) + 2 * memsim.alloc(rows * 4) + memsim.alloc(rows * H) \
        + memsim.alloc(S * S * 8)
    assert t.saved_embeddings == expected_embeddings
    arch = build(cfg, head="model")
    x = memsim.Ctx.of(memsim.Options(batch=B, seq=S))
    dt = memsim.dtypes(arch.program, x)
    _, net_last, _ = memsim._layer_run(arch, arch.program, x, dt, True)
    _, net_later, _ = memsim._layer_run(arch, arch.program, x, dt, True, accumulate=True)
    assert net_last - net_later == memsim.alloc(B * A * S * S * 4)
    peaks = {}
    for L in (2, 3, 4):
        c = bertcalc.resolve(preset="mpnet-base", overrides={"num_hidden_layers": L}).config
        peaks[L] = memsim.training_peak(build(c, head="model"), c, memsim.Options(batch=8, seq=512)).peak
    assert peaks[3] - peaks[2] == peaks[4] - peaks[3]  # one template: the later layers are alike


def test_memory_at_a_billion_layers_is_the_template_times_l() -> None:
    """10^9 layers are answered (no per-layer walk could be), exactly: every layer past the first adds the
    same bytes, so the peak at 10^9 is the peak at 4 plus (10^9 - 4) layers' worth."""
    peak = {L: bertcalc.memory(preset="mpnet-base", layers=L, batch=2, seq=64).peak_bytes for L in (3, 4, 10**9)}
    assert peak[10**9] - peak[4] == (10**9 - 4) * (peak[4] - peak[3])


@pytest.mark.parametrize(("kw", "needle"), [({"attention": "sdpa"}, "use attention='eager'$"),
                                            ({"grad_checkpointing": True}, "leave out grad_checkpointing$")])
def test_what_transformers_cannot_run_is_refused(kw, needle) -> None:
    with pytest.raises(bertcalc.BertcalcError, match=needle):
        bertcalc.memory(preset="mpnet-base", **kw)
    bertcalc.memory(preset="mpnet-base", mode="infer", grad_checkpointing=True)  # only training checkpoints


@pytest.mark.parametrize("args", [("--attention", "sdpa"), ("--grad-checkpointing",)])
def test_cli_refusal_is_one_line(cli, args) -> None:
    from .test_cli import _bad

    _bad(cli("memory", "-p", "mpnet-base", *args), args[0])
