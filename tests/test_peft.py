"""LoRA adapters and frozen parts against real ``peft`` and ``requires_grad``, for every family and head.

``tests/fixtures/peft/`` was written by ``scripts/make_peft_fixtures.py``: real ``transformers`` models built from
small configs, wrapped by ``peft.get_peft_model`` in several ``LoraConfig`` s (default targets, explicit ones,
all-linear, every bias mode, DoRA, rank/alpha patterns, layers_to_transform, a regex, modules_to_save and the
classifier PEFT saves by task type), and frozen by parameter-name groups. Every name (``named_parameters``, tied
ones included), shape and ``requires_grad`` must match, and the pair ``get_nb_trainable_parameters()``; where peft
refused a config, bertcalc must refuse it too.
"""

from __future__ import annotations

import contextlib
import glob
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bertcalc import adapters, architecture
from bertcalc.config import config_class, family_names
from bertcalc.errors import UsageError

FIXTURES = [json.loads(Path(p).read_text()) for p in
            sorted(glob.glob(str(Path(__file__).parent / "fixtures" / "peft" / "*.json")))]
ADAPTER_CASES = [(fx, name) for fx in FIXTURES for name in fx["adapters"]]
FREEZE_CASES = [(fx, name) for fx in FIXTURES for name in fx["freezes"]]



def _peft():
    """peft, which the test extra installs: missing in CI is a failure, not a skip."""
    import os

    try:
        import peft
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("peft is a test dependency (the test extra) and must be installed in CI")
        pytest.skip("peft not installed")
    return peft

def _arch(fx: dict):
    cfg = config_class(fx["family"]).model_validate(fx["config"])
    return architecture.build(cfg, head=fx["head"])


def _listing(arch) -> list[list]:
    return [[name, list(t.shape), t.trainable] for name, t in arch.tensors()]


def test_every_family_and_head_covered() -> None:
    from bertcalc.architecture import heads_of

    assert {fx["family"] for fx in FIXTURES} == set(family_names())
    for family in family_names():
        assert {fx["head"] for fx in FIXTURES if fx["family"] == family} == set(heads_of(family)), family
    assert len(ADAPTER_CASES) >= 800


@pytest.mark.parametrize(("fx", "name"), ADAPTER_CASES, ids=[f"{fx['case']}-{fx['head']}-{n}" for fx, n in
                                                             ADAPTER_CASES])
def test_lora_matches_peft(fx: dict, name: str) -> None:
    rec = fx["adapters"][name]
    spec = adapters.adapter_from_dict(rec["config"])
    arch = _arch(fx)
    if "error" in rec:
        with pytest.raises(UsageError):
            adapters.apply(arch, spec)
        return
    if name == "modules-to-save-nested":  # PEFT wraps word_embeddings inside the embeddings' copy: refused
        with pytest.raises(UsageError, match="does not model"):
            adapters.apply(arch, spec)
        return
    new, _ = adapters.apply(arch, spec)
    assert _listing(new) == rec["parameters"]
    assert (adapters.trainable_parameters(new), new.total_parameters) == (rec["trainable"], rec["total"])


@pytest.mark.parametrize(("fx", "name"), FREEZE_CASES, ids=[f"{fx['case']}-{fx['head']}-{n}" for fx, n in
                                                            FREEZE_CASES])
def test_freeze_matches_requires_grad(fx: dict, name: str) -> None:
    rec = fx["freezes"][name]
    spec = adapters.FreezeSpec(adapters.parse_groups(",".join(rec["freeze"]), "freeze") if rec["freeze"] else (),
                               adapters.parse_groups(",".join(rec["train"]), "train") if rec["train"] else ())
    new, _ = adapters.apply(_arch(fx), freeze=spec)
    assert _listing(new) == rec["parameters"]
    assert (adapters.trainable_parameters(new), new.total_parameters) == (rec["trainable"], rec["total"])


# ------------------------------------------------------------------------------------- live peft, CLI, JSON

def test_json_contract_total_is_peft_all_params() -> None:
    """``count --format json`` with an adapter: ``trainable_parameters`` and ``total_parameters`` are the pair
    ``get_nb_trainable_parameters()`` gives (checked against the fixtures above); without one, no new keys."""
    import bertcalc

    plain = bertcalc.count(preset="tiny", head="seq-cls").to_dict()
    assert "trainable_parameters" not in plain and "adapter" not in plain
    d = bertcalc.count(preset="tiny", head="seq-cls", lora="r=8,alpha=16,targets=query+value").to_dict()
    assert d["total_parameters"] == plain["total_parameters"] + 2 * 128 + 2 + 2 * 2 * (2 * 8 * 128) \
        and d["trainable_parameters"] == 2 * 2 * (2 * 8 * 128) + 2 * 128 + 2
    assert d["frozen_parameters"] == d["total_parameters"] - d["trainable_parameters"]
    assert d["adapter"]["kind"] == "lora" and d["adapter"]["task_type"] == "SEQ_CLS"
    s = bertcalc.shapes(preset="tiny", lora="r=4,targets=query").to_dict()
    assert s["tensors"][5] == {"name": "base_model.model.encoder.layer.0.attention.self.query.base_layer.weight",
                               "shape": [128, 128], "parameters": 16384, "trainable": False}
    assert s["tensors"][7]["name"].endswith("query.lora_A.default.weight") and s["tensors"][7]["trainable"]


def test_a_billion_layers_cost_what_twelve_do() -> None:
    """The freeze and the adapter split the layer template into runs: never one entry per layer."""
    import bertcalc

    base = bertcalc.count(preset="tiny", num_hidden_layers=10**9)
    layer = base.component("encoder layer").parameters
    r = bertcalc.count(preset="tiny", num_hidden_layers=10**9, freeze="embeddings,layers=0-5")
    assert r.trainable_parameters == base.total_parameters - base.component("embeddings").parameters - 6 * layer
    assert len(r.components) == len(base.components) + 1
    lo = bertcalc.count(preset="tiny", num_hidden_layers=10**9,
                        lora=r"r=4,targets=query,layers=3+7,rank=layer\.7\.attention\.self\.query:2")
    assert lo.trainable_parameters == 4 * 2 * 128 + 2 * 2 * 128
    assert len(lo.components) <= len(base.components) + 4
    # unescaped, the dots are wildcards beside the index (layer.7.* would take layer 71 too): matched layer by
    # layer, which a billion layers are too many for; twelve are not
    with pytest.raises(UsageError, match=r"escaped dots: layer\\.7\\.attention"):
        bertcalc.count(preset="tiny", num_hidden_layers=10**9,
                       lora="r=4,targets=query,layers=3+7,rank=layer.7.attention.self.query:2")
    twelve = bertcalc.count(preset="tiny", num_hidden_layers=12,
                            lora="r=4,targets=query,layers=3+7,rank=layer.7.attention.self.query:2")
    assert twelve.trainable_parameters == 4 * 2 * 128 + 2 * 2 * 128


def test_cli_count_and_shapes(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bertcalc.cli import app

    r = CliRunner().invoke(app, ["count", "-p", "tiny", "--head", "seq-cls", "--lora", "r=8,targets=query+value",
                                 "-f", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["trainable_parameters"] == 2 * 2 * (2 * 8 * 128) + 2 * 128 + 2
    cfg = tmp_path / "adapter_config.json"
    cfg.write_text(json.dumps({"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["query", "value"],
                               "task_type": "SEQ_CLS", "bias": "none", "use_dora": False, "modules_to_save": None,
                               "init_lora_weights": True, "use_rslora": False}))
    r2 = CliRunner().invoke(app, ["count", "-p", "tiny", "--head", "seq-cls", "--adapter", str(tmp_path), "-f", "json"])
    assert r2.exit_code == 0, r2.output
    assert json.loads(r2.stdout)["trainable_parameters"] == d["trainable_parameters"]
    r3 = CliRunner().invoke(app, ["count", "-p", "tiny", "--head", "seq-cls", "--train", "head"])
    assert r3.exit_code == 0 and "trainable params: 258 ||" in r3.stdout
    r4 = CliRunner().invoke(app, ["shapes", "-p", "tiny", "--lora", "targets=query", "-f", "csv"])
    assert r4.exit_code == 0 and "lora_A.default.weight,[4, 128]" not in r4.stdout  # shapes as 4×128 text
    assert ",trainable" in r4.stdout and ",frozen" in r4.stdout


LIVE = [  # (family, head, HF config, LoraConfig keywords or a freeze): deeper than the fixtures, run live
    ("bert", "seq-cls", dict(vocab_size=50, hidden_size=16, num_hidden_layers=7, num_attention_heads=2,
                             intermediate_size=20, max_position_embeddings=20),
     dict(r=2, target_modules=["query", "dense"], layers_to_transform=[1, 4, 5],
          rank_pattern={"layer.5.output.dense": 3}, task_type="SEQ_CLS")),
    ("roberta", "token-cls", dict(vocab_size=50, hidden_size=16, num_hidden_layers=6, num_attention_heads=2,
                                  intermediate_size=20, max_position_embeddings=24),
     dict(r=3, target_modules=r".*layer\.(2|3)\..*(key|value)", bias="all", use_dora=True, task_type="TOKEN_CLS")),
    # patterns that pick layers by their digits inside a run no index literal cuts: every layer is matched
    *[("bert", "model", dict(vocab_size=30, hidden_size=4, num_hidden_layers=L, num_attention_heads=2,
                             intermediate_size=6, max_position_embeddings=8), kw) for L, kw in [
        (30, dict(r=2, target_modules=r".*layer\.(?!1[2-8]\.)\d+\.attention\.self\.query")),
        (30, dict(r=2, target_modules=r".*layer\.\d*[^5]\.attention\.self\.query")),
        (120, dict(r=2, target_modules=r".*layer\.(?!\d\d\.)\d+\.attention\.self\.query")),
        (30, dict(r=2, target_modules=["query"], rank_pattern={r"layer\.\d*[^5]\.attention\.self\.query": 3})),
        (100, dict(r=2, target_modules=r".*layer\.1\d\..*query")),
        (25, dict(r=2, target_modules=r".*\.1.*(query|dense)", exclude_modules=r".*\.\d{2}\.output\.dense")),
    ]],
]


@pytest.mark.parametrize("case", LIVE, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(LIVE)])
def test_live_peft(case) -> None:
    peft = _peft()
    transformers = pytest.importorskip("transformers")
    import torch

    family, head, hf, kw = case
    cls = {"bert-seq-cls": transformers.BertForSequenceClassification, "bert-model": transformers.BertModel,
           "roberta-token-cls": transformers.RobertaForTokenClassification}[f"{family}-{head}"]
    torch.manual_seed(0)
    pm = peft.get_peft_model(cls(getattr(transformers, {"bert": "BertConfig", "roberta": "RobertaConfig"}[family])(
        **hf)), peft.LoraConfig(**kw))
    want = [[n, list(p.shape), p.requires_grad] for n, p in pm.named_parameters(remove_duplicate=False)]
    arch = architecture.build(config_class(family).model_validate(hf), head=head)
    new, _ = adapters.apply(arch, adapters.adapter_from_dict(kw))
    assert _listing(new) == want
    assert (new.trainable_parameters, new.total_parameters) == pm.get_nb_trainable_parameters()


def test_readme_figure_is_peft_on_bert_base() -> None:
    """README's example (BERT-base, seq-cls, r=8 on query and value) is what peft says of the real model."""
    peft = _peft()
    transformers = pytest.importorskip("transformers")
    import torch

    import bertcalc

    with torch.device("meta"):
        model = transformers.BertForSequenceClassification(transformers.BertConfig())
    pm = peft.get_peft_model(model, peft.LoraConfig(r=8, lora_alpha=16, target_modules=["query", "value"],
                                                    task_type="SEQ_CLS"))
    r = bertcalc.count(preset="base", head="seq-cls", lora="r=8,alpha=16,targets=query+value")
    assert (r.trainable_parameters, r.total_parameters) == pm.get_nb_trainable_parameters() == (296_450, 109_780_228)


# ---------------------------------------------------------------------------------------------- properties


NAMES = ["query", "key", "value", "dense", "q_lin", "lin1", "Wqkv", "Wo", "query_proj", "classifier", "decoder",
         "qa_outputs", "pooler", "LayerNorm", "word_embeddings", "attention", "out_proj", "ffn", "q", "o"]


@settings(max_examples=150, deadline=None)
@given(fx=st.sampled_from(FIXTURES), targets=st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True),
       r=st.integers(1, 64), bias=st.sampled_from(adapters.BIASES), dora=st.booleans(),
       layers=st.none() | st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True),
       save=st.none() | st.lists(st.sampled_from(NAMES), max_size=2, unique=True),
       task=st.sampled_from(["auto", "none", "SEQ_CLS", "TOKEN_CLS", "QUESTION_ANS"]))
def test_any_lora_is_counted_or_refused(fx, targets, r, bias, dora, layers, save, task) -> None:
    """Any adapter on any family and head: a typed refusal, or a tensor list whose totals add up: the base
    model's tensors are all still there (under base_layer, or twice under modules_to_save), every added tensor
    is an adapter's or a copy, and what trains is at most the whole."""
    text = f"r={r},targets={'+'.join(targets)},bias={bias},dora={str(dora).lower()},task={task}"
    if layers:
        text += ",layers=" + "+".join(map(str, layers))
    if save:
        text += ",save=" + "+".join(save)
    arch = _arch(fx)
    try:
        new, _ = adapters.apply(arch, adapters.parse_lora(text))
    except UsageError:
        return
    lora = sum(t.parameters * c.repeat for c in new.components for p in c.parts for t in p.tensors
               if t.role == "lora")
    copies = sum(t.parameters * c.repeat for c in new.components for p in c.parts for t in p.tensors
                 if ".modules_to_save.default." in t.name and t.tied_to is None)
    assert new.total_parameters == arch.total_parameters + lora + copies
    assert lora <= new.trainable_parameters <= new.total_parameters
    assert all(t.trainable for _, t in new.tensors() if t.role == "lora")
    assert all(n.startswith("base_model.model.") for n, _ in new.tensors())
    assert new.tensor_count() >= arch.tensor_count()


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.sampled_from("r=,+:.-_01289aqkvtlsxbydoe()[]\\*"), max_size=60))
def test_any_lora_text_is_a_spec_or_a_usage_error(text: str) -> None:
    try:
        spec = adapters.parse_lora(text)
    except UsageError:
        return
    arch = architecture.build(config_class("bert").model_validate(
        {"num_hidden_layers": 3, "hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 20}), head="seq-cls")
    with contextlib.suppress(UsageError):
        adapters.apply(arch, spec)


@settings(max_examples=200, deadline=None)
@given(data=st.dictionaries(st.sampled_from(["r", "lora_alpha", "target_modules", "bias", "use_dora", "rank_pattern",
                                             "layers_to_transform", "modules_to_save", "task_type", "peft_type",
                                             "exclude_modules", "layers_pattern", "lora_dropout"]),
                            st.none() | st.booleans() | st.integers(-3, 40) | st.floats(allow_nan=False)
                            | st.text(max_size=8) | st.lists(st.text("qkvaluery(.*", max_size=6), max_size=3)
                            | st.dictionaries(st.text("query1.", max_size=6), st.integers(-1, 9), max_size=2),
                            max_size=6))
def test_any_adapter_config_is_a_spec_or_a_typed_error(data: dict) -> None:
    from bertcalc.errors import BertcalcError

    try:
        spec = adapters.adapter_from_dict(data)
        adapters.apply(architecture.build(config_class("bert").model_validate(
            {"num_hidden_layers": 2, "hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 20}),
            head="token-cls"), spec)
    except BertcalcError:
        pass


FLOPS = json.loads((Path(__file__).parent / "fixtures" / "peft_flops.json").read_text())


@pytest.mark.parametrize("rec", FLOPS, ids=[f"{r['case']}-{r['adapter']}" for r in FLOPS])
def test_flops_match_flop_counter_mode_on_peft(rec: dict) -> None:
    """FlopCounterMode on the real peft model (or the frozen HF one), a training step of the class's own loss:
    the adapter's matmuls forward, and a backward with only the gradients autograd computes (none for a frozen
    weight, none for an input nothing trainable lies under), every family."""
    import bertcalc

    cfg = config_class(rec["family"]).model_validate(rec["config"])
    kw = {"adapter": dict(rec["lora"])} if rec["lora"] else {
        k: ",".join(rec[k]) for k in ("freeze", "train") if rec[k]}
    r = bertcalc.flops(cfg, head=rec["head"], batch=rec["batch"], seq=rec["seq"], **kw)
    assert (r.forward_flops, r.training_flops) == (rec["forward"], rec["training"])


def test_flop_fixtures_cover_every_family() -> None:
    from bertcalc.config import family_names

    assert {r["family"] for r in FLOPS} == set(family_names())
    assert {r["adapter"] for r in FLOPS} >= {"lora-explicit", "lora-all-linear", "freeze-embeddings-layer0",
                                             "freeze-layer1", "train-head"}


# ------------------------------------------------------------------------------- patterns over layer digits

TOKENS = [".*", ".*?", ".", ".+", "\\.", "layer", "query", "attention", "self", "e", "(", ")", "|", "?", "*", "+",
          "1", "0", "7", "12", "\\.7\\.", "\\.1\\.", "\\.12\\.", "\\..+.+\\.", "[0-9]", "[^5]", "\\d", "\\w",
          "{2}", "(?!1)", "^", "$"]
INDICES = [*range(0, 131), 999, 1000, 10**9, 10**9 + 7]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=9))
def test_a_blind_pattern_matches_every_layer_of_a_run_alike(tokens: list[str]) -> None:
    """adapters._blind says one layer stands for a run (runs cut at each index the pattern names, as
    adapters._cuts cuts them): then re, PEFT's matcher, gives one answer across each run, at any index."""
    import bisect
    import re

    pattern = "".join(tokens)
    try:
        re.compile(pattern)
    except re.error:
        return
    if not adapters._blind(pattern):
        return
    cuts = sorted({c for d in re.findall(r"\d+", pattern) for c in (int(d), int(d) + 1)})
    for template in ("encoder.layer.{}.attention.self.query", "bert.encoder.layer.{}.output.dense"):
        runs: dict[int, set[bool]] = {}
        for i in INDICES:
            name = template.format(i)  # search, not only fullmatch: more patterns match a part of some names
            runs.setdefault(bisect.bisect_right(cuts, i), set()).add(
                (re.fullmatch(pattern, name) is not None, re.search(pattern, name) is not None))
        assert all(len(seen) == 1 for seen in runs.values()), (pattern, template, runs)


@pytest.mark.parametrize(("pattern", "blind"), [
    (".*query", True), (".*\\.attention\\.self\\.(query|value)", True), ("query|value", True),
    (".*layer\\.7\\.attention.*", True), ("layer.7.attention.self.query", False), (".*\\.7.*", False),
    (".*layer\\.\\d+\\.attention", False), (".*layer\\.1.*", False), (".*layer\\..\\.att.*", False),
    ("(.*)*query", False), (".+query", False), ("(?!.*pooler).*query", False), (".*[qk].*", False),
])
def test_blind_patterns(pattern: str, blind: bool) -> None:
    assert adapters._blind(pattern) is blind


def test_a_pattern_over_digits_is_matched_layer_by_layer_up_to_a_bound() -> None:
    """Past MAX_LAYERS_MATCHED layers a pattern that reads digits is refused (its answer there is not known),
    where one that cannot read them is counted at any depth."""
    spec = adapters.adapter_from_dict(dict(r=2, target_modules=r".*layer\.\d*[^5]\.attention\.self\.query"))
    cfg = config_class("bert").model_validate(dict(hidden_size=4, num_attention_heads=2, intermediate_size=6,
                                                   num_hidden_layers=adapters.MAX_LAYERS_MATCHED + 1))
    with pytest.raises(UsageError, match=r"may tell layers apart by their digits .* up to 2,048 of them; this "
                                         r"model has 2,049"):
        adapters.apply(architecture.build(cfg, head="model"), spec)
    blind = adapters.adapter_from_dict(dict(r=2, target_modules=r".*\.attention\.self\.query"))
    big = config_class("bert").model_validate(dict(hidden_size=4, num_attention_heads=2, intermediate_size=6,
                                                   num_hidden_layers=10**9))
    new, _ = adapters.apply(architecture.build(big, head="model"), blind)
    assert new.trainable_parameters == 10**9 * 2 * (4 + 4)


def test_a_pattern_that_backtracks_without_end_is_refused(monkeypatch) -> None:
    """re would run (.|..)*\\d for hours over a module name; the budget ends it with a usage error."""
    import time

    monkeypatch.setattr(adapters, "MATCH_SECONDS", 0.3)
    spec = adapters.adapter_from_dict(dict(r=2, target_modules=r"(.|..)*\d"))
    cfg = config_class("bert").model_validate(dict(hidden_size=4, num_attention_heads=2, intermediate_size=6,
                                                   num_hidden_layers=2))
    start = time.monotonic()
    with pytest.raises(UsageError, match=r"pattern '\(\.\|\.\.\)\*\\\\d' takes too long to match"):
        adapters.apply(architecture.build(cfg, head="model"), spec)
    assert time.monotonic() - start < 30  # the budget, not the pattern, ended it (no timing is asserted finer)
