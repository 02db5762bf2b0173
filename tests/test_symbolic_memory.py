"""Memory templates: memsim's replay of a training step, traced once per structure, answers other sizes exactly.

``bertcalc.memory`` of a full fine-tuning step (allocated peak, one GPU) takes the step from a template traced
with the config's sizes, the batch and the sequence as symbols (``bertcalc.symbolic``). The allocator's
rounding is called, not guarded (``symbolic.opaque``), a ledger's high-water mark is a max the template
computes (``symbolic.top``), and the moment that is highest a label it picks (``symbolic.largest``). These
tests hold every template to memsim's own replay of the config and batch it answers, and the compiler that
simplifies those maxima to plain evaluation.
"""

from __future__ import annotations

import dataclasses
import operator

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import bertcalc
from bertcalc import memsim, symbolic
from bertcalc.architecture import build, rows
from bertcalc.errors import BertcalcError
from bertcalc.loading import resolve
from bertcalc.symbolic import Sym, Templates, Untraceable
from tests.test_symbolic import CLASSES, pairs

OPTIONS = [dict(), dict(precision="amp-bf16"), dict(precision="bf16", optimizer="sgd"),
           dict(attention="sdpa"), dict(grad_checkpointing=True), dict(optimizer="adafactor"),
           dict(precision="amp-fp16", attention="sdpa", grad_checkpointing=True), dict(optimizer="adamw-8bit")]


def _step_real(cfg, head, pooler, batch, seq, choices=None, **opts):
    arch = build(cfg, head=head, pooler=pooler)
    o = memsim.Options(batch=batch, seq=seq, choices=rows(arch, batch, choices)[1], **opts)
    memsim.check(cfg, o)
    memsim.unsupported(arch, cfg, o)
    return o.choices, memsim.step(arch, cfg, o)


def _step_templated(t: Templates, cfg, head, pooler, batch, seq, choices=None, **opts):
    def run(c, b, s, *rest):
        return _step_real(c, head, pooler, b, s, rest[0] if rest else choices, **opts)

    sizes = (batch, seq) if choices is None else (batch, seq, choices)
    return t.call("memory", cfg, head, pooler, sizes, (tuple(sorted(opts.items())), choices is None), run,
                  operator.eq)


def _supported(cfg, head, pooler, opts) -> bool:
    try:
        _step_real(cfg, head, pooler, 2, 16, **opts)
    except BertcalcError:
        return False
    return True


@pytest.mark.parametrize(("preset", "head", "pooler"), CLASSES)
def test_every_class_has_a_memory_template_that_answers_other_sizes(preset: str, head: str, pooler: bool) -> None:
    """Traced on the preset at batch 4, the template answers more layers, a larger vocabulary, another batch
    and length (a hit: both sides of 3072 tokens, the CUDA embedding backward's switch), with the step memsim
    replays for them, term for term."""
    cfg = resolve(preset=preset).config
    other = resolve(preset=preset, overrides={"layers": cfg.dims.L + 2, "vocab": cfg.dims.V + 11}).config
    t = Templates()
    for _ in range(2):
        _step_templated(t, cfg, head, pooler, 4, 128)
    got = _step_templated(t, other, head, pooler, 3, 96)
    assert t.hits == 1, "the template should answer a config of the same structure"
    assert got == _step_real(other, head, pooler, 3, 96)


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults")
@pytest.mark.parametrize("preset", ["base", "modernbert-base", "deberta-v3-small", "albert-base-v2", "mpnet-base"])
def test_memory_templates_under_every_option(preset: str, opts: dict) -> None:
    cfg = resolve(preset=preset).config
    if not _supported(cfg, "mlm", True, opts):
        pytest.skip("transformers cannot run it (sdpa or checkpointing)")
    t = Templates()
    for _ in range(2):
        _step_templated(t, cfg, "mlm", True, 4, 64, **opts)
    for layers, b, s in ((1, 1, 1), (cfg.dims.L + 5, 7, 100), (2 * cfg.dims.L, 30, 200), (3, 64, 512)):
        other = resolve(preset=preset, overrides={"layers": layers}).config
        assert _step_templated(t, other, "mlm", True, b, s, **opts) == _step_real(other, "mlm", True, b, s, **opts)
    assert t.hits >= 2


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(pairs(), st.integers(1, 64), st.integers(1, 600), st.integers(1, 64), st.integers(1, 600),
       st.sampled_from(OPTIONS))
def test_a_memory_template_answers_only_as_the_replay_would(case, b1: int, s1: int, b2: int, s2: int,
                                                             opts: dict) -> None:
    """Traced on config A at one batch and length, the template gives for config B at another exactly the step
    memsim replays, or declines and B is replayed; what the replay refuses, the templated call refuses."""
    head, pooler, a, b = case
    t = Templates()
    try:
        for _ in range(2):
            _step_templated(t, a, head, pooler, b1, s1, **opts)
    except BertcalcError:
        assume(False)
    try:
        real = _step_real(b, head, pooler, b2, s2, **opts)
    except BertcalcError:
        with pytest.raises(BertcalcError):
            _step_templated(t, b, head, pooler, b2, s2, **opts)
        return
    got = _step_templated(t, b, head, pooler, b2, s2, **opts)
    event("answered by the template" if t.hits else "replayed")
    assert got == real


def _full_path(**kw):
    """bertcalc.memory's report as memsim.estimate gives it from the built architecture (no template)."""
    from bertcalc.api import spec_of

    spec = spec_of(preset=kw.pop("preset"), head=kw.pop("head", None), overrides=kw.pop("ov"))
    fit = kw.pop("fit", None)
    budget = None if fit is None else memsim.parse_size(fit)
    arch = build(spec.config, head=spec.head, pooler=spec.pooler)
    choices = kw.pop("choices", None)
    opts = {k: kw.pop(k) for k in ("batch", "seq", "precision", "optimizer", "attention", "grad_checkpointing")
            if k in kw}
    o = memsim.Options(**opts, choices=rows(arch, opts["batch"], choices)[1])
    return memsim.estimate(arch, spec.config, o, label=spec.label, budget=budget, **kw)


CALLS = [
    dict(preset="base", batch=8, seq=128),
    dict(preset="base", head="mlm", batch=3, seq=512, precision="amp-bf16"),
    dict(preset="modernbert-base", head="seq-cls", batch=5, seq=77, fit="24GiB", reserved=False),
    dict(preset="deberta-v3-small", head="mlm", batch=8, seq=128, fit="80GiB", reserved=False,
         grad_checkpointing=True),
    dict(preset="albert-base-v2", batch=2, seq=64, fit="1GiB", reserved=False),  # nothing fits: batch 1's peak
    dict(preset="base", head="multiple-choice", batch=8, seq=128, choices=3, fit="40GiB", reserved=False),
    dict(preset="roberta-base", batch=8, seq=128, fit="80GiB", reserved=False, context=0),
    dict(preset="base", batch=8, seq=128, reserved=False),
]


@pytest.mark.parametrize("kw", CALLS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_the_public_memory_call_through_templates_is_the_full_report(kw: dict) -> None:
    """The first call replays; later calls of the structure (other layer counts) come from its templates, fits
    included; every report equals memsim.estimate's from the built architecture, field for field."""
    saved = symbolic.TEMPLATES.by_key
    symbolic.TEMPLATES.by_key = {}
    hits = symbolic.TEMPLATES.hits
    try:
        for layers in (2, 3, 4, 5):
            got = bertcalc.memory(**kw, layers=layers)
            want = _full_path(**kw, ov={"layers": layers})
            assert got.to_dict() == want.to_dict()
            assert all(getattr(got, f.name) == getattr(want, f.name) for f in dataclasses.fields(want))
        assert symbolic.TEMPLATES.hits > hits
    finally:
        symbolic.TEMPLATES.by_key = saved


def test_the_reserved_figure_and_adapters_take_the_full_path() -> None:
    """What a template does not model (the allocator's replay, an adapter, ZeRO) is computed as before."""
    for _ in range(3):
        r = bertcalc.memory(preset="mini", fit="24GiB")
        assert r.reserved is not None
        assert bertcalc.memory(preset="mini", lora="r=4").parameters > 0


# ---------------------------------------------------------------------------------------------- the compiler

def _expr(draw, leaves: list, depth: int):
    """A random expression over Syms and ints, with what memsim uses: + - * //, top, opaque(alloc)."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return leaves[draw(st.integers(0, len(leaves) - 1))] if draw(st.booleans()) else draw(st.integers(-3, 40))
    kind = draw(st.sampled_from(["+", "-", "*", "//", "top", "alloc", "top3"]))
    a = _expr(draw, leaves, depth - 1)
    if kind == "alloc":
        return memsim.alloc(a * 1000)
    b = _expr(draw, leaves, depth - 1)
    if kind == "+":
        return a + b
    if kind == "-":
        return a - b
    if kind == "*":
        return a * b
    if kind == "//":
        return a // (b * b + 1)  # never by 0, on any values
    if kind == "top":
        return symbolic.top(a, b)
    return symbolic.top(a, b, _expr(draw, leaves, depth - 1))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_compiled_template_computes_what_the_trace_did(data) -> None:
    """Any expression of +, -, *, //, top and the allocator's rounding, traced on some values and compiled
    (sums of products, maxima pruned of what another argument is at least everywhere, guards on signs),
    gives on other values either None or exactly what the expression gives there."""
    n = data.draw(st.integers(1, 4))
    first = tuple(data.draw(st.lists(st.integers(-5, 60), min_size=n, max_size=n)))
    second = tuple(data.draw(st.lists(st.one_of(st.integers(-5, 60), st.sampled_from(first)), min_size=n,
                                      max_size=n)))
    choices: list = []  # the draws, replayed on the second values

    class Replay:
        def __init__(self, live: bool) -> None:
            self.live, self.i = live, 0

        def draw(self, strategy):
            if self.live:
                choices.append(data.draw(strategy))
                return choices[-1]
            self.i += 1
            return choices[self.i - 1]

    def program(values, replay):
        return tuple(_expr(replay.draw, list(values), 3) for _ in range(3))

    try:
        fn = symbolic.trace_call(lambda syms: program(syms, Replay(True)), first)
    except Untraceable:
        assume(False)
    try:
        want = program(second, Replay(False))
    except ArithmeticError:
        assume(False)
    got = fn(second)
    event("answered" if got is not None else "declined")
    if got is not None:
        assert got == want


def test_top_is_a_max_without_a_guard() -> None:
    g: list = []
    x, y = Sym(3, ("f", 0), g), Sym(5, ("f", 1), g)
    m = symbolic.top(x, y, 4)
    assert m.v == 5 and g == []
    assert symbolic.top(1, 2) == 2


def test_opaque_calls_the_function_in_the_template() -> None:
    fn = symbolic.trace_call(lambda s: (memsim.alloc(s[0] * 7),), (100,))
    assert fn((100,)) == (memsim.alloc(700),)
    assert fn((3_000_000,)) == (memsim.alloc(21_000_000),)  # past 10 MiB: the 2 MiB rounding, no guard
    assert fn((0,)) == (0,)


def test_a_picked_label_follows_the_sizes_and_refuses_anything_else() -> None:
    fn = symbolic.trace_call(lambda s: (symbolic.largest(((s[0], "a"), (s[1], "b"))),), (1, 2))
    assert fn((1, 2)) == ("b",) and fn((9, 2)) == ("a",) and fn((2, 2)) == ("b",)  # a tie: the larger label
    with pytest.raises(Untraceable):
        symbolic.trace_call(lambda s: (symbolic.largest(((s[0], "a"), (s[1], "b"))) == "a",), (1, 2))


def test_a_max_is_pruned_only_where_signs_are_known() -> None:
    """max(x, x + y) is x + y only while y >= 0: a template traced with y >= 0 checks it; one traced with y < 0
    keeps both."""
    fn = symbolic.trace_call(lambda s: (symbolic.top(s[0], s[0] + s[1]),), (5, 2))
    assert fn((5, 2)) == (7,) and fn((1, -4)) is None  # the sign check turns a negative y away
    fn = symbolic.trace_call(lambda s: (symbolic.top(s[0], s[0] + s[1]),), (5, -2))
    assert fn((5, -2)) == (5,) and fn((5, 3)) == (8,)
    fn = symbolic.trace_call(lambda s: (symbolic.top(2 * s[0], s[0]),), (-3,))  # 2x >= x only for x >= 0
    assert fn((-3,)) == (-3,) and fn((-1,)) == (-1,) and fn((4,)) == (8,)
    fn = symbolic.trace_call(lambda s: (symbolic.top(2 * s[0], s[0]),), (3,))
    assert fn((7,)) == (14,) and fn((-1,)) is None


@pytest.mark.parametrize("preset", ["base", "albert-base-v2", "modernbert-base", "deberta-v3-xsmall", "mpnet-base"])
def test_a_template_traced_at_twelve_layers_answers_a_billion(preset: str) -> None:
    """Sizes are integers of any size in a template: 10^9 layers (and the fit's probes up to 2^40 rows) come
    out as memsim's own replay gives them."""
    cfg = resolve(preset=preset).config
    deep = resolve(preset=preset, overrides={"layers": 10**9}).config
    t = Templates()
    for _ in range(2):
        _step_templated(t, cfg, "mlm", True, 4, 64)
    for b in (1, 4, 2**40):
        got = _step_templated(t, deep, "mlm", True, b, 64)
        assert got == _step_real(deep, "mlm", True, b, 64)
    assert t.hits >= 2
