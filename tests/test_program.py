"""The forward program: generic code reads it, and the backward replay over it is strict.

Every count, byte and FLOP past the tensor list derives from each family's program (bertcalc/program.py);
these tests check the structure that makes that true, on every family × head.
"""

from __future__ import annotations

import itertools
import re

import pytest

import bertcalc
from bertcalc import memsim
from bertcalc.architecture import build, heads_of

from .conftest import ROOT

PRESETS = ["tiny", "roberta-base", "distilbert-base", "albert-base-v2", "electra-small-discriminator",
           "electra-base-discriminator", "xlm-roberta-base", "camembert-base", "modernbert-base",
           "deberta-v3-xsmall", "mpnet-base"]


def _cases():
    for preset in PRESETS:
        cfg = bertcalc.resolve(preset=preset).config
        for head in heads_of(cfg.family):
            yield preset, head


@pytest.mark.parametrize(("preset", "head"), list(_cases()))
def test_after_the_backward_nothing_saved_is_left(preset: str, head: str) -> None:
    """Every tensor an op saved for the backward is freed by that op's backward, in every mode: a head
    branch the replay skipped (BertForPreTraining's NSP once was) would leave its saved tensors behind."""
    cfg = bertcalc.resolve(preset=preset).config
    arch = build(cfg, head=head)
    for prec, attn, gc in itertools.product(("fp32", "bf16", "amp-bf16"), ("eager", "sdpa"), (False, True)):
        t = memsim.training_peak(arch, cfg, memsim.Options(precision=prec, attention=attn, grad_checkpointing=gc,
                                                           batch=2, seq=16))
        assert t.saved_left == 0, (preset, head, prec, attn, gc)


def test_the_ledger_refuses_to_free_what_it_does_not_hold() -> None:
    sim = memsim.Sim()
    k = sim.alloc(1000)
    sim.free(k)
    with pytest.raises(KeyError):
        sim.free(k)
    with pytest.raises(KeyError):
        sim.free("never allocated")


def test_generic_code_names_no_family_or_head() -> None:
    """memsim, activations and flopcount read the program; no family or head name appears in them (nor in
    any other module outside families/)."""
    pattern = re.compile(r'"(bert|roberta|distilbert|albert|electra|xlm_roberta|camembert'
                         r'|multiple-choice|causal-lm|nsp)"|family ==|head ==')
    for path in sorted((ROOT / "bertcalc").glob("*.py")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            assert not pattern.search(line), f"{path.name}:{i}: {line.strip()}"


def test_pretraining_counts_the_last_hidden_state_once() -> None:
    """The pooler's [CLS] view and the MLM transform save the same tensor: one storage, counted once."""
    cfg = bertcalc.resolve(preset="tiny").config
    o = memsim.Options(batch=4, seq=32)
    mlm = memsim.training_peak(build(cfg, head="mlm"), cfg, o).saved_head
    pre = memsim.training_peak(build(cfg, head="pretraining"), cfg, o).saved_head
    T, H = 4 * 32, cfg.hidden_size
    assert pre - mlm < T * H * 4  # the pooler adds its tanh output and the NSP input, not another [T, H]


def test_every_family_lists_activations_from_its_program() -> None:
    for preset, head in _cases():
        acts = bertcalc.shapes(preset=preset, head=head, batch=2, seq=8).activations
        assert acts[0].name == "input_ids" and acts[0].dtype == "int64"
        assert any(a.name.endswith(".probs") for a in acts)


def test_memory_is_o1_in_layers() -> None:
    """One layer template × L: 10^9 layers cost the same replay as 12."""
    r = bertcalc.memory(preset="base", num_hidden_layers=10**9, batch=1, seq=8)
    small = bertcalc.memory(preset="base", num_hidden_layers=12, batch=1, seq=8)
    assert r.peak_bytes > small.peak_bytes * 10**7
    albert = bertcalc.memory(preset="albert-base-v2", num_hidden_layers=10**9, num_hidden_groups=7, batch=1, seq=8)
    assert albert.peak_bytes > 0
    # ModernBERT: layer 0 apart, then one template × (L - 1), whatever the pattern of global and local layers
    big = bertcalc.memory(preset="modernbert-base", num_hidden_layers=10**9, batch=1, seq=8)
    assert big.peak_bytes > bertcalc.memory(preset="modernbert-base", batch=1, seq=8).peak_bytes * 10**7
    assert bertcalc.flops(preset="modernbert-base", num_hidden_layers=10**9, batch=1, seq=8).forward_flops > 0


def test_a_table_every_layer_reads_gets_one_gradient() -> None:
    """DeBERTa's normalised relative table is read by every layer: its gradient exists once, made by the
    first layer replayed (the last one) and added into by the others, whose net change is smaller by exactly
    that [2·span, H] gradient; the peak grows by the same bytes per layer, and 10^9 layers are one replay."""
    def peak(n: int) -> int:
        return bertcalc.memory(preset="deberta-v3-xsmall", num_hidden_layers=n, batch=2, seq=64,
                               optimizer="sgd").peak_bytes

    p = [peak(n) for n in (2, 3, 4, 5)]
    assert p[1] - p[0] == p[2] - p[1] == p[3] - p[2] > 0
    arch = build(bertcalc.resolve(preset="deberta-v3-xsmall").config)
    table = next(t for c in arch.components for part in c.parts for t in part.tensors if "rel_embeddings" in t.name)
    one = memsim._layer_run(arch, arch.program, memsim.Ctx.of(memsim.Options(batch=2, seq=64)),
                            memsim.dtypes(arch.program, memsim.Ctx.of(memsim.Options(batch=2, seq=64))), True)
    again = memsim._layer_run(arch, arch.program, memsim.Ctx.of(memsim.Options(batch=2, seq=64)),
                              memsim.dtypes(arch.program, memsim.Ctx.of(memsim.Options(batch=2, seq=64))), True,
                              accumulate=True)
    assert one[1] - again[1] == memsim.alloc(table.parameters * 4)  # the first keeps the table's gradient
    assert bertcalc.memory(preset="deberta-v3-xsmall", num_hidden_layers=10**9, batch=1, seq=8).peak_bytes > 0


def test_albert_groups_are_bounded_work() -> None:
    """Groups that all run equally often are one closed form, whatever their number; unequal runs walk the
    groups, and past a million of them memory says so instead of looping."""
    r = bertcalc.memory(preset="albert-base-v2", num_hidden_layers=10**9, num_hidden_groups=10**9, batch=1, seq=8)
    assert r.peak_bytes > 0
    with pytest.raises(bertcalc.BertcalcError, match="num_hidden_groups"):
        bertcalc.memory(preset="albert-base-v2", num_hidden_layers=10**9 + 1, num_hidden_groups=10**9, batch=1,
                        seq=8)
