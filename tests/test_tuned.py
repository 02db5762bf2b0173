"""Memory with frozen parts and LoRA adapters (bertcalc/tuned.py), against the CPU storage harness run on real
peft models and requires_grad_(False) freezes (tests/fixtures/memory/cpu_storage_fp32_eager_lora.jsonl, made by
``scripts/measure_cpu_storage.py ... --lora``), and the rules' consequences."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import bertcalc
from bertcalc import memsim
from bertcalc.cli import app
from bertcalc.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
LORA_FIXTURE = ROOT / "tests" / "fixtures" / "memory" / "cpu_storage_fp32_eager_lora.jsonl"


def _msa():
    spec = importlib.util.spec_from_file_location("memory_storage_accuracy", ROOT / "bench" /
                                                  "memory_storage_accuracy.py")
    msa = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(msa)
    return msa


def test_every_lora_and_freeze_case_agrees_with_the_storage_harness() -> None:
    """Real peft (get_peft_model with a LoraConfig) and requires_grad_(False) freezes, measured storage by
    storage: the peak within the accuracy target (0.1 %), weights and trainable counts exact."""
    msa = _msa()
    assert LORA_FIXTURE in msa.FIXTURES
    _, _, summary = msa.evaluate([LORA_FIXTURE])
    records = [json.loads(x) for x in LORA_FIXTURE.read_text().splitlines() if x.strip() and '"meta"' not in x]
    assert {r["family"] for r in records} >= {"bert", "roberta", "distilbert", "albert", "deberta_v2", "modernbert"}
    assert {r["head"] for r in records} >= {"model", "mlm", "seq-cls"}
    assert {r["adapter_name"] for r in records} >= {"lora-qv-dropout", "lora-all-linear", "lora-qv-save-norm",
                                                    "lora-all-linear-dropout-bias", "freeze-embeddings-layer0",
                                                    "train-head"}
    assert summary["cases"] == len(records) >= 100
    assert summary["max_abs_error"] <= 0.001, summary
    assert summary["params_mismatches"] == 0 and summary["weights_mismatches"] == 0
    # the optimizer states and gradients the harness's AdamW made are those of the trainable tensors only
    for r in records:
        p = msa.predict(r)
        assert p["steady"] == r["steady_bytes"], (r["config"], r["head"], r["adapter_name"])


def test_frozen_layers_below_everything_trainable_save_nothing() -> None:
    """Frozen embeddings and layers 0-5 under trainable 6-11: the first six layers build no graph, layer 6 saves
    what a fully trained layer saves (its weights train), and the embeddings keep nothing; the MLM decoder, tied
    to the frozen word embeddings, keeps no input."""
    kw = dict(preset="base", head="mlm", batch=4, seq=128)
    full = bertcalc.memory(**kw)
    frozen = bertcalc.memory(**kw, freeze="embeddings,layers=0-5")
    detail = {t.name: t.bytes for t in full.saved_detail}
    fdetail = {t.name: t.bytes for t in frozen.saved_detail}
    assert fdetail["embeddings"] == 0
    assert fdetail["all layers (× 12)"] == 6 * detail["one layer"]
    # the decoder's weight is the frozen word embeddings' (tied): it keeps no input, the [B·S, H] transform output
    assert detail["head and loss"] - fdetail["head and loss"] == memsim.alloc(4 * 128 * 768 * 4)


def test_gradients_and_optimizer_states_follow_the_trainable_tensors() -> None:
    arch = bertcalc.api.tuned(bertcalc.api.build(bertcalc.api.spec_of(preset="base", head="seq-cls")),
                              lora="r=8,alpha=16,targets=query+value")
    trainable = [(t, c.repeat) for c in arch.components for p in c.parts for t in p.tensors
                 if t.trainable and t.tied_to is None]
    grads = sum(rep * memsim.alloc(4 * t.parameters) for t, rep in trainable)
    r = bertcalc.memory(preset="base", head="seq-cls", lora="r=8,alpha=16,targets=query+value")
    b = r.breakdown
    assert b["gradients"] == grads
    assert b["optimizer states"] == 2 * grads + sum(rep for _, rep in trainable) * 512
    assert sum(t.parameters * rep for t, rep in trainable) == 296_450  # peft: LoRA + the classifier copy (README)


@pytest.mark.parametrize(("kw", "param"), [
    (dict(lora="r=8,dora=true"), "lora"),
    (dict(lora="r=8", mode="infer"), "mode"),
    (dict(lora="r=8", grad_checkpointing=True), "grad_checkpointing"),
    (dict(freeze="embeddings", reserved=True), "reserved"),
    (dict(freeze="embeddings", zero=2, gpus=2), "zero"),
])
def test_what_is_not_modelled_is_refused_by_parameter(kw: dict, param: str) -> None:
    with pytest.raises(UsageError) as e:
        bertcalc.memory(preset="base", **kw)
    assert e.value.param == param


def test_a_billion_layers_in_runs() -> None:
    r = bertcalc.memory(preset="base", layers=10**9, freeze="embeddings,layers=0-499999999")
    assert r.peak_bytes > 0


def test_cli_memory_takes_the_fine_tuning_options() -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["memory", "--preset", "base", "--head", "seq-cls", "--lora", "r=8,alpha=16",
                              "-f", "json"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)
    assert d["peak_bytes"] == bertcalc.memory(preset="base", head="seq-cls", lora="r=8,alpha=16").peak_bytes
    bad = runner.invoke(app, ["memory", "--preset", "base", "--lora", "r=8", "--mode", "infer"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    sweep = runner.invoke(app, ["memory", "--preset", "base", "--freeze", "embeddings", "--sweep", "batch=8,16",
                                "-f", "json"])
    assert sweep.exit_code == 0, sweep.output
    cells = json.loads(sweep.stdout)["rows"][0]["cells"]
    assert [c["peak_bytes"] for c in cells] == [bertcalc.memory(preset="base", freeze="embeddings", batch=b).peak_bytes
                                                for b in (8, 16)]
    timed = runner.invoke(app, ["memory", "--preset", "base", "--lora", "r=8", "--sweep", "batch=8", "--gpu", "h100",
                                "--mfu", "0.4"])
    assert timed.exit_code == 2 and "Traceback" not in timed.output
