"""Totals come from one layer template × L: no per-layer work, whatever L is.

Timing belongs in bench/ (bench/scaling.py prints the figures); here we check the structure that makes it
true: counting never expands the layer template, and the answer for 10^7 layers is exact.
"""

from __future__ import annotations

import pytest

import bertcalc
from bertcalc import symbolic
from bertcalc.model import Architecture


def test_count_never_expands_layers(monkeypatch) -> None:
    def boom(self):
        raise AssertionError("count() expanded the per-layer tensors")

    monkeypatch.setattr(Architecture, "tensors", boom)
    r = bertcalc.count(preset="base", num_hidden_layers=10**7)
    layer = r.component("encoder layer")
    assert layer.repeat == 10**7
    assert r.total_parameters == 23_837_184 + 10**7 * 7_087_872 + 590_592


@pytest.mark.parametrize("layers", [0, 1, 12, 10**6, 10**7, 10**12])
def test_exact_at_any_depth(layers: int) -> None:
    r = bertcalc.count(preset="base", num_hidden_layers=layers)
    assert r.total_parameters == 23_837_184 + layers * 7_087_872 + 590_592
    assert isinstance(r.total_parameters, int)


def test_collapsed_shapes_do_not_expand(monkeypatch) -> None:
    monkeypatch.setattr(Architecture, "tensors", lambda self: (_ for _ in ()).throw(AssertionError("expanded")))
    d = bertcalc.shapes(preset="base", num_hidden_layers=10**7, collapse=True).to_dict()
    assert len(d["tensors"]) == 23


# ---------------------------------------------------------------------------------- every command, bounded work
#
# Without timing: the Python lines a call executes (sys.settrace line events: each loop iteration is one) at
# 10^9 layers, against the same call at a depth past every threshold (48: the reserved replay's exact range).
# A loop over the layers would run 10^9 times; the tracer stops it after a budget a few times the shallow
# count, so an O(L) path fails at once instead of hanging.


class _Budget(Exception):
    pass


def _lines(fn, budget: int | None = None) -> int:
    import sys

    n = 0

    def tracer(frame, event, arg):
        nonlocal n
        if event == "line":
            n += 1
            if budget is not None and n > budget:
                raise _Budget(f"more than {budget:,} lines executed")
        return tracer

    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(old)
    return n


def _layers_kw(preset: str, layers: int) -> dict:
    return {"preset": preset, "layers": layers}


SHALLOW = 60  # past memsim's and the reserved replay's thresholds, so the deep call takes no other branch
DEEP = 10**9

CALLS = {
    "count": lambda p, L: bertcalc.count(**_layers_kw(p, L)),
    "count mlm": lambda p, L: bertcalc.count(head="mlm", **_layers_kw(p, L)).to_dict(),
    "flops": lambda p, L: bertcalc.flops(**_layers_kw(p, L)).to_dict(),
    "memory": lambda p, L: bertcalc.memory(**_layers_kw(p, L)).to_dict(),
    "memory mlm amp": lambda p, L: bertcalc.memory(head="mlm", precision="amp-bf16", **_layers_kw(p, L)),
    "memory gc": lambda p, L: bertcalc.memory(grad_checkpointing=True, **_layers_kw(p, L)),
    "memory inference": lambda p, L: bertcalc.memory(mode="inference", **_layers_kw(p, L)),
    "memory fit": lambda p, L: bertcalc.memory(fit="80GiB", reserved=False, **_layers_kw(p, L)).to_dict(),
    "memory zero-3": lambda p, L: bertcalc.memory(zero=3, gpus=8, **_layers_kw(p, L)).to_dict(),
    "memory zero-2 offload": lambda p, L: bertcalc.memory(zero=2, gpus=8, offload="optimizer", **_layers_kw(p, L)),
    "memory fsdp": lambda p, L: bertcalc.memory(fsdp=True, gpus=8, **_layers_kw(p, L)).to_dict(),
    "memory ddp": lambda p, L: bertcalc.memory(gpus=8, **_layers_kw(p, L)).to_dict(),
    "compare": lambda p, L: bertcalc.compare([p, f"{p}:layers={L}"]).to_dict(),
    # frozen parts and LoRA (bertcalc.tuned): layer runs and their first layers, replayed block by block
    "memory lora": lambda p, L: bertcalc.memory(head="seq-cls", lora="r=8,alpha=16,dropout=0.1,targets=all-linear",
                                                **_layers_kw(p, L)).to_dict(),
    "memory lora fit": lambda p, L: bertcalc.memory(lora="r=4,targets=all-linear", fit="80GiB",
                                                    **_layers_kw(p, L)).to_dict(),
    "memory freeze": lambda p, L: bertcalc.memory(head="mlm", freeze="embeddings,layers=0-5",
                                                  **_layers_kw(p, L)).to_dict(),
    "memory lora bare": lambda p, L: bertcalc.memory(lora="r=8,dropout=0.1,targets=all-linear",
                                                     **_layers_kw(p, L)).to_dict(),
    "memory freeze embeddings": lambda p, L: bertcalc.memory(freeze="embeddings", **_layers_kw(p, L)).to_dict(),
    "memory train head": lambda p, L: bertcalc.memory(head="seq-cls", train="head", **_layers_kw(p, L)).to_dict(),
}
FAMILY_PRESETS = ("base", "albert-base-v2", "modernbert-base", "deberta-v3-xsmall", "mpnet-base", "distilbert-base")


def _same_work(call: str, preset: str) -> None:
    """The computation itself, with no template answering (bertcalc.symbolic): a template is a function of
    the sizes, O(1) by construction, but whether a call traces, hits or misses depends on what came before it,
    which would make the two counts incomparable."""
    fn = CALLS[call]
    real = symbolic.TEMPLATES.answer
    symbolic.TEMPLATES.answer = lambda key, ints, compute, traced, same: (compute(), False)
    try:
        fn(preset, SHALLOW)  # imports and one-time work out of the way
        shallow = _lines(lambda: fn(preset, SHALLOW))
        deep = _lines(lambda: fn(preset, DEEP), budget=2 * shallow + 2_000)
    finally:
        symbolic.TEMPLATES.answer = real
    assert deep <= 1.05 * shallow + 500, (call, preset, shallow, deep)


@pytest.mark.parametrize("call", sorted(CALLS))
def test_deep_costs_the_same_as_shallow(call: str) -> None:
    _same_work(call, "base")


@pytest.mark.parametrize("preset", FAMILY_PRESETS[1:])
def test_every_family_memory_is_o1_in_layers(preset: str) -> None:
    """ALBERT's groups, ModernBERT's distinct layer 0, DeBERTa's and MPNet's shared inputs, DistilBERT."""
    for call in ("memory", "memory gc", "memory inference", "memory fit", "flops", "count", "memory lora bare",
                 "memory freeze embeddings"):
        if call == "memory gc" and preset == "mpnet-base":
            continue  # transformers cannot checkpoint MPNet's layers: refused
        _same_work(call, preset)


def test_reserved_replay_is_bounded_in_layers(monkeypatch) -> None:
    """The reserved figure replays at most EXACT_LAYERS layers, whatever the depth (beyond, it extrapolates
    from probes): the replays' layer counts are bounded, so 10^9 layers cost the same as 100."""
    from bertcalc import reserved

    seen: list[int] = []
    real = reserved._run

    def spy(arch, o, n, config):
        seen.append(n)
        return real(arch, o, n, config)

    monkeypatch.setattr(reserved, "_run", spy)
    r = bertcalc.memory(preset="mini", layers=DEEP, reserved=True)
    assert r.reserved is not None and seen
    assert max(seen) <= reserved.EXACT_LAYERS
    deep_calls = len(seen)
    seen.clear()
    bertcalc.memory(preset="mini", layers=100, reserved=True)
    assert len(seen) == deep_calls


def test_count_report_pickles_with_its_lazy_fields() -> None:
    """The rows and formulas are derived when first read; a pickled report carries them, not the architecture."""
    import pickle

    r = bertcalc.count(preset="base", head="mlm")
    back = pickle.loads(pickle.dumps(r))
    assert back.to_dict() == bertcalc.count(preset="base", head="mlm").to_dict()
    assert back.closed_form == r.closed_form and back.total_formula_values == r.total_formula_values
