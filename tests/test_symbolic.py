"""Templates (``bertcalc.symbolic``): a build traced on one config answers another exactly as its own build does.

``count`` takes its totals from a template traced on an earlier config of the same structure; these tests hold
every template to the real build of the config it answers, for every family and head, on configs the trace
never saw (hypothesis), and hold the tracer to its rule: what it cannot follow is pinned or refused, never
baked in.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import bertcalc
from bertcalc import catalog, symbolic
from bertcalc.architecture import build, heads_of
from bertcalc.errors import BertcalcError
from bertcalc.loading import resolve
from bertcalc.symbolic import Sym, Templates, Untraceable


def _build(cfg, head, pooler):
    return build(cfg, head=head, pooler=pooler)


def _facts(arch) -> tuple:
    return (arch.total_parameters, arch.state_dict_parameters, arch.family, arch.model_class, arch.head,
            tuple(arch.unused_fields), tuple(arch.notes))


# one preset per family, plus the ones whose structure differs within a family
PRESETS = [*sorted({resolve(preset=p).config.family: p for p in catalog.names()}.values()),
           "deberta-v3-xsmall", "electra-base-discriminator", "modernbert-large", "tiny"]
CLASSES = [(p, h, pooler) for p in PRESETS for h in heads_of(resolve(preset=p).config.family)
           for pooler in ((True, False) if h == "model" else (True,))]


def _ints(cfg) -> list[str]:
    return list(symbolic._fields(type(cfg))[0])


@pytest.mark.parametrize(("preset", "head", "pooler"), CLASSES)
def test_every_class_is_traced_and_its_template_answers_other_sizes(preset: str, head: str, pooler: bool) -> None:
    """Traced on the preset, the template answers the preset with more layers and a larger vocabulary (a hit,
    not a fallback), with the figures the build of that config gives."""
    cfg = resolve(preset=preset).config
    other = resolve(preset=preset, overrides={"layers": cfg.dims.L + 3, "vocab": cfg.dims.V + 101}).config
    t = Templates()
    for _ in range(2):  # built; built and traced
        assert t.totals(cfg, head, pooler, _build)[0] is None
    totals, arch = t.totals(other, head, pooler, _build)
    assert arch is None and totals is not None, "the template should answer a config of the same structure"
    assert _facts(totals) == _facts(_build(other, head, pooler))


def _near(base: dict, names: list[str]):
    """A config's integer fields, each kept or moved: to a small value (0 to 3, where branches are), near the
    original, or to another field's value (where equality is a branch: embedding_size == hidden_size)."""
    def one(name: str):
        v = base[name]
        return st.one_of(st.just(v), st.integers(0, 3), st.integers(max(0, v - 3), v + 3),
                         st.sampled_from([base[n] for n in names]), st.integers(1, 4).map(lambda k: v * k))

    return st.fixed_dictionaries({n: one(n) for n in names})


@st.composite
def pairs(draw):
    preset, head, pooler = draw(st.sampled_from(CLASSES))
    cfg = resolve(preset=preset).config
    names = _ints(cfg)
    made = []
    for _ in range(2):
        values = draw(_near(cfg.__dict__, names))
        for _ in range(len(names)):  # a value validation refuses goes back to the preset's, one at a time
            try:
                c = type(cfg).model_validate({**cfg.model_dump(), **values})
                break
            except ValidationError as exc:
                wrong = [e["loc"][0] for e in exc.errors() if e["loc"]]
                moved = [n for n in names if values[n] != cfg.__dict__[n]]
                for n in wrong or moved[-1:]:
                    values[n] = cfg.__dict__[n]
        else:
            assume(False)
        try:
            _build(c, head, pooler)
        except BertcalcError:
            assume(False)
        made.append(c)
    return head, pooler, made[0], made[1]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(pairs())
def test_a_template_answers_only_as_the_build_would(case) -> None:
    """Traced on config A, the template either declines config B (a guard comes out otherwise: B is built) or
    gives exactly what building B gives. Both configs move every integer field, to the values where families
    branch (0, 1, equal to another field)."""
    head, pooler, a, b = case
    t = Templates()
    t.totals(a, head, pooler, _build)
    t.totals(a, head, pooler, _build)
    totals, arch = t.totals(b, head, pooler, _build)
    event("answered by the template" if totals is not None else "built")
    real = _build(b, head, pooler)
    if totals is not None:
        assert _facts(totals) == _facts(real)
    else:
        assert _facts(arch) == _facts(real)


def test_count_from_a_template_is_the_count_from_the_build() -> None:
    """The report's rows, formulas and JSON come from the real tensor list, built when first read."""
    from bertcalc import api, counting

    spec = resolve(preset="albert-base-v2", overrides={"layers": 7}, head="mlm")
    for n in (4, 5):  # the structure is traced the second time
        bertcalc.count(preset="albert-base-v2", head="mlm", layers=n)
    fast = bertcalc.count(spec)
    assert fast._arch is None  # answered by the template: nothing built yet
    arch = api.build(spec)
    slow = counting.report(arch, spec.config, label=spec.label, notes=api._notes(spec, arch), sources=spec.sources,
                           description=spec.description)
    assert fast.to_dict() == slow.to_dict()
    assert fast.total_parameters == sum(c.total_parameters for c in fast.components)


def test_bert_base_from_a_template() -> None:
    """The published figure, through the template path (traced on another size first)."""
    bertcalc.count(preset="base", layers=3)
    bertcalc.count(preset="base", layers=4)
    assert bertcalc.count(preset="base").total_parameters == 109_482_240


def test_a_branch_on_a_size_is_a_guard() -> None:
    """ELECTRA projects the embeddings only where embedding_size != hidden_size: a template traced with the
    projection does not answer a config without it."""
    t = Templates()
    small = resolve(preset="electra-small-discriminator").config  # E 128, H 256
    t.totals(small, "model", True, _build)
    t.totals(small, "model", True, _build)
    same = resolve(preset="electra-small-discriminator", overrides={"embedding_size": 256}).config
    totals, arch = t.totals(same, "model", True, _build)
    assert totals is None and arch is not None
    assert "embeddings_project" not in {p.module.split(".")[-1] for c in arch.components for p in c.parts}
    # and now both structures have a template
    assert t.totals(same, "model", True, _build)[0] is not None
    assert t.totals(small, "model", True, _build)[0] is not None


def test_what_a_sym_cannot_follow_is_pinned() -> None:
    guards: list = []
    x = Sym(4, ("f", 0), guards)
    assert list(range(x)) == [0, 1, 2, 3]  # through __index__
    assert hash(x) == hash(4) and f"{x:,}" == "4" and str(x) == "4" and [0] * x == [0, 0, 0, 0]
    assert all(g == ("==", ("f", 0), ("c", 4), True) for g in guards) and len(guards) == 5
    assert x / 2 == 2.0  # a float: pinned too
    assert len(guards) == 6


def test_a_comparison_is_recorded_with_its_outcome() -> None:
    guards: list = []
    x, y = Sym(4, ("f", 0), guards), Sym(6, ("f", 1), guards)
    assert (x < y, x == 4, bool(x - 4)) == (True, True, False)
    assert [g[0] for g in guards] == ["<", "==", "!="] and [g[3] for g in guards] == [True, True, False]
    assert (x == "4", x != None) == (False, True)  # noqa: E711 - text and None: no guard, whatever the value
    assert len(guards) == 3


def test_an_operation_a_sym_does_not_define_stops_the_trace() -> None:
    x = Sym(4, ("f", 0), [])
    for op in (lambda: x * 1.5, lambda: divmod(x, 3), lambda: x << 1, lambda: x & 1):
        with pytest.raises(TypeError):
            op()


def test_a_whole_power_is_products_and_any_other_is_pinned() -> None:
    guards: list = []
    x = Sym(4, ("f", 0), guards)
    square = x ** 2
    assert type(square) is Sym and square.v == 16 and square.n == ("*", ("*", ("c", 1), ("f", 0)), ("f", 0))
    assert x ** 0 == 1 and not guards
    assert x ** -1 == 0.25 and guards == [("==", ("f", 0), ("c", 4), True)]


def test_a_build_that_fails_under_trace_is_built_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = resolve(preset="base").config
    calls = []

    def fussy(c, head, pooler):
        calls.append(c)
        if isinstance(c.hidden_size, Sym):
            return divmod(c.hidden_size, 2)  # what a Sym refuses
        return _build(c, head, pooler)

    t = Templates()
    for n in (1, 2, 3):
        c = resolve(preset="base", overrides={"layers": n}).config
        totals, arch = t.totals(c, "model", True, fussy)
        assert totals is None and arch.total_parameters == _build(c, "model", True).total_parameters
    assert t.by_key[symbolic.key_of(cfg, "model", True)[0]] is None  # untraceable: never traced again
    assert len(calls) == 4  # three builds and the one failed trace (the second time)
    with pytest.raises(Untraceable):
        symbolic.trace(cfg, "model", True, fussy)


def test_a_config_built_without_validation_is_not_templated() -> None:
    """``model_construct`` can put a bool where an int belongs; such a config is built, never templated."""
    from bertcalc.config import BertConfig

    cfg = BertConfig.model_construct(type_vocab_size=True)
    t = Templates()
    totals, arch = t.totals(cfg, "model", True, _build)
    assert totals is None and arch.total_parameters == _build(cfg, "model", True).total_parameters
    assert not t.by_key


def test_templates_are_bounded() -> None:
    t = Templates()
    t.KEYS = 3
    for p in ("base", "roberta-base", "mpnet-base", "distilbert-base", "albert-base-v2"):
        t.totals(resolve(preset=p).config, "model", True, _build)
    assert len(t.by_key) == 3


def test_a_build_too_large_to_trace_is_built() -> None:
    """ALBERT writes every layer of a group: 3,000 layers per group are 10^5 operations on sizes, past the
    tracer's budget, so the trace stops there and that structure is built each time, as before."""
    cfg = resolve(preset="albert-base-v2", overrides={"inner_group_num": 3000}).config
    with pytest.raises(Untraceable, match="operations on sizes"):
        symbolic.trace(cfg, "model", True, _build)
    t = Templates()
    t.totals(cfg, "model", True, _build)
    totals, arch = t.totals(cfg, "model", True, _build)
    assert totals is None and t.by_key[symbolic.key_of(cfg, "model", True)[0]] is None
    assert arch.total_parameters == _build(cfg, "model", True).total_parameters


# ------------------------------------------------------------------------------------------------ flops


def _flops_real(cfg, head, pooler, batch, seq, choices=None, **opts):
    from bertcalc import flopcount

    return flopcount.count(_build(cfg, head, pooler), cfg, batch, seq, label="x", choices=choices, **opts)


def _flops_templated(t: Templates, cfg, head, pooler, batch, seq, choices=None, **opts):
    from bertcalc.api import _same_but_label

    def run(c, b, s, *rest):
        return _flops_real(c, head, pooler, b, s, rest[0] if rest else choices, **opts)

    sizes = (batch, seq) if choices is None else (batch, seq, choices)
    return t.call("flops", cfg, head, pooler, sizes, (tuple(sorted(opts.items())), choices is None), run,
                  _same_but_label)


@pytest.mark.parametrize(("preset", "head", "pooler"), CLASSES)
def test_every_class_has_a_flops_template_that_answers_other_sizes(preset: str, head: str, pooler: bool) -> None:
    cfg = resolve(preset=preset).config
    other = resolve(preset=preset, overrides={"layers": cfg.dims.L + 2, "vocab": cfg.dims.V + 11}).config
    t = Templates()
    for _ in range(2):
        _flops_templated(t, cfg, head, pooler, 8, 128)
    key = ("flops", symbolic.key_of(cfg, head, pooler)[0], ((), True))
    assert t.by_key[key], "traced, and the template kept"
    got = _flops_templated(t, other, head, pooler, 3, 96)
    assert t.hits == 1
    real = _flops_real(other, head, pooler, 3, 96)
    assert got.to_dict() == real.to_dict() and got.rows == real.rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(pairs(), st.integers(1, 64), st.integers(1, 600), st.integers(1, 64), st.integers(1, 600))
def test_a_flops_template_answers_only_as_the_program_would(case, b1: int, s1: int, b2: int, s2: int) -> None:
    """Traced on config A at one batch and length, the flops template gives for config B at another exactly the
    report the program of B counts, or it declines and B is counted (a length past the position table is
    refused by the count itself, as it would be)."""
    head, pooler, a, b = case
    t = Templates()
    try:
        for _ in range(2):
            _flops_templated(t, a, head, pooler, b1, s1)
    except BertcalcError:
        assume(False)
    try:
        real = _flops_real(b, head, pooler, b2, s2)
    except BertcalcError:
        with pytest.raises(BertcalcError):
            _flops_templated(t, b, head, pooler, b2, s2)
        return
    got = _flops_templated(t, b, head, pooler, b2, s2)
    event("answered by the template" if t.hits else "counted")
    assert got.to_dict() == real.to_dict() and got.rows == real.rows


def test_flops_with_a_gpu_and_choices_through_templates() -> None:
    """The options are part of the key (a GPU's peak and MFU), and choices is a size like the batch."""
    t = Templates()
    cfg = resolve(preset="base").config
    for n in (4, 5, 6):
        got = _flops_templated(t, cfg, "multiple-choice", True, n, 64, choices=n - 2, gpu="H100", mfu=0.5)
        real = _flops_real(cfg, "multiple-choice", True, n, 64, choices=n - 2, gpu="H100", mfu=0.5)
        assert got.to_dict() == real.to_dict()
    assert t.hits == 0  # a GPU's time divides the total by a float: pinned, so each size is its own template


def test_the_public_flops_call_keeps_each_calls_label() -> None:
    for n in (2, 3, 4):
        r = bertcalc.flops(preset="base", layers=n, batch=2, seq=32)
        assert r.label == f"base:layers={n}" and r.layers == n


@pytest.mark.parametrize(("first", "then"), [
    (dict(hidden_dropout_prob=0.0), dict(hidden_dropout_prob=-0.0)),  # equal, and hashed alike, but shown apart
    (dict(gpu="A100", mfu=1.0), dict(gpu="A100", mfu=1)),
    (dict(gpu="A100", mfu=1), dict(gpu="A100", mfu=True)),
    (dict(peak_tflops=100.0), dict(peak_tflops=100)),
])
def test_values_that_compare_equal_do_not_share_a_template(first: dict, then: dict) -> None:
    """A template's report carries the traced call's non-integer values; one given as 0.0 and one as -0.0 (or
    1.0, 1 and True) are keyed apart, so each report shows what its own call was given (found in review)."""
    saved = symbolic.TEMPLATES.by_key
    try:
        symbolic.TEMPLATES.by_key = {}
        for _ in range(2):
            bertcalc.flops(preset="tiny", batch=2, seq=16, **first)
        got = bertcalc.flops(preset="tiny", batch=2, seq=16, **then).to_dict()
        symbolic.TEMPLATES.by_key = {}
        want = bertcalc.flops(preset="tiny", batch=2, seq=16, **then).to_dict()
        assert json.dumps(got) == json.dumps(want)
    finally:
        symbolic.TEMPLATES.by_key = saved
