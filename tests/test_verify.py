"""``bertcalc verify`` against real transformers: every preset, every head, and random configs.

These build HF models on the meta device, so they need torch and transformers (the test extra installs
``torch==2.13.0`` and ``transformers``). In CI (``CI=true``) their absence is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bertcalc
from bertcalc import catalog
from bertcalc.architecture import heads_of
from bertcalc.config import FAMILIES, config_class

from .test_cli import _bad


def _need_torch() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("torch and transformers are test dependencies and must be installed in CI")
        pytest.skip("torch/transformers not installed")


HEADS = {family: heads_of(family) for family in FAMILIES}
CASES = [(name, head) for name in catalog.names() for head in HEADS[bertcalc.resolve(preset=name).config.family]]


@pytest.mark.parametrize(("preset", "head"), CASES, ids=[f"{p}-{h}" for p, h in CASES])
def test_every_preset_and_head_verifies(preset: str, head: str) -> None:
    _need_torch()
    r = bertcalc.verify(preset=preset, head=head)
    assert r.ok, r.differences
    assert r.total_bertcalc == r.total_transformers


@pytest.mark.parametrize("preset", ["base", "roberta-base", "albert-base-v2"])
def test_without_pooler_and_untied(preset: str) -> None:
    _need_torch()
    assert bertcalc.verify(preset=preset, pooler=False).ok
    assert bertcalc.verify(preset=preset, head="mlm", tie_word_embeddings=False).ok


@st.composite
def random_config(draw):
    family = draw(st.sampled_from(sorted(HEADS)))
    cls = config_class(family)
    heads = draw(st.integers(1, 6))
    hidden = heads * draw(st.integers(1, 12))
    data = {cls.HIDDEN: hidden, cls.HEADS: heads, cls.INTERMEDIATE: draw(st.integers(1, 80)),
            "vocab_size": draw(st.integers(2, 300)), "max_position_embeddings": draw(st.integers(3, 64)),
            "num_labels": draw(st.integers(1, 7)), "tie_word_embeddings": draw(st.booleans())}
    layers = draw(st.integers(0, 4))
    data["n_layers" if family == "distilbert" else "num_hidden_layers"] = layers
    if family == "modernbert":
        data["num_hidden_layers"] = max(layers, 1)  # transformers builds no ModernBertConfig without layers
        data["pad_token_id"] = 0
        data["global_attn_every_n_layers"] = draw(st.integers(1, 4))
        for flag in ("attention_bias", "mlp_bias", "norm_bias", "decoder_bias", "classifier_bias"):
            data[flag] = draw(st.booleans())
    elif "type_vocab_size" in cls.model_fields:
        data["type_vocab_size"] = draw(st.integers(1, 4))
    if "relative_attention_num_buckets" in cls.model_fields:  # MPNet
        data["relative_attention_num_buckets"] = draw(st.integers(1, 40))
    if family in ("albert", "electra"):
        data["embedding_size"] = draw(st.sampled_from([hidden, draw(st.integers(1, 40))]))
    if family == "albert":
        data["num_hidden_groups"] = draw(st.integers(1, max(layers, 1)))
        data["inner_group_num"] = draw(st.integers(1, 3))
    head = draw(st.sampled_from(HEADS[family]))
    if family == "distilbert" and head == "qa":
        data["num_labels"] = 2  # DistilBertForQuestionAnswering refuses anything else (so does bertcalc)
    return cls.model_validate(data), head


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_config())
def test_random_configs_verify(case) -> None:
    _need_torch()
    cfg, head = case
    r = bertcalc.verify(cfg, head=head)
    assert r.ok, (cfg, head, r.differences)


def test_verify_finds_a_difference(monkeypatch) -> None:
    """A deliberately wrong tensor list must be caught: the check is not a tautology."""
    _need_torch()
    from bertcalc.families import bert
    from bertcalc.model import Dim

    real = bert.dims

    def wrong(cfg):
        d = real(cfg)
        return {**d, "I": Dim(d["I"].size + 1, "intermediate_size")}

    monkeypatch.setattr(bert, "dims", wrong)
    r = bertcalc.verify(preset="tiny")
    assert not r.ok
    assert {d.what for d in r.differences} >= {"shape", "total"}
    assert any(d.name == "encoder.layer.0.intermediate.dense.weight" for d in r.differences)


def test_distilbert_qa_needs_two_labels() -> None:
    from bertcalc.errors import UsageError

    with pytest.raises(UsageError, match="num_labels 2"):
        bertcalc.count(preset="distilbert-base", head="qa", labels=3)


def test_cli_verify(cli) -> None:
    _need_torch()
    r = cli("verify", "--preset", "base", "--head", "mlm")
    assert r.exit_code == 0, r.stderr
    assert "exact match" in r.stdout
    d = json.loads(cli("verify", "-p", "distilbert-base", "--head", "seq-cls", "--labels", "3", "-f", "json").stdout)
    assert d["ok"] and d["model_class"] == "DistilBertForSequenceClassification"
    assert d["total_parameters"]["bertcalc"] == d["total_parameters"]["transformers"]


def test_cli_verify_reports_differences_and_exits_1(cli, monkeypatch) -> None:
    _need_torch()
    from bertcalc.families import bert
    from bertcalc.model import Dim

    real = bert.dims
    monkeypatch.setattr(bert, "dims", lambda cfg: {**real(cfg), "V": Dim(real(cfg)["V"].size - 1, "vocab_size")})
    r = cli("verify", "--preset", "tiny")
    assert r.exit_code == 1
    assert "differences" in r.stdout and "embeddings.word_embeddings.weight" in r.stdout


def test_cli_verify_without_torch(cli, monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *a, **kw):
        if name in ("torch", "transformers") or name.startswith("torch."):
            raise ImportError(name=name)
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    _bad(cli("verify", "--preset", "base"), "pip install 'bertcalc[verify]'")


@pytest.mark.parametrize("family", sorted(HEADS))
def test_family_defaults_are_hf_defaults(family: str) -> None:
    """A config file that leaves a key out gets HF's default for it: bertcalc's defaults must be HF's."""
    _need_torch()
    import transformers

    from bertcalc import families

    ours = config_class(family)().fields()
    hf = getattr(transformers, families.module(family).HF_CONFIG)
    theirs = hf()
    stored = {k: v for k, v in ours.items() if hasattr(theirs, k) and v is not None}
    assert {k: getattr(theirs, k) for k in stored} == stored
    # a field transformers derives when it is left out (ModernBERT's layer_types) or only reads while it builds
    # the config (global_attn_every_n_layers): our defaults, given to transformers, build its default config
    built, default = hf(**ours).to_dict(), theirs.to_dict()
    assert {k: built.get(k) for k in default} == default
    # A field the config class lacks is one the modeling code reads with getattr(config, "key", default)
    # (DeBERTa-v2's position_buckets, share_att_key...): bertcalc's default must be that default.
    import ast
    import inspect
    import re

    source = Path(inspect.getsourcefile(getattr(transformers, families.module(family).HF_PREFIX + "Model"))).read_text()
    config_source = inspect.getsource(hf)
    absent = set(getattr(config_class(family), "HF_ABSENT", ()))
    for k in (k for k in ours if not hasattr(theirs, k) and k not in absent):
        found = re.findall(rf'getattr\(config, "{k}", ([^)]*)\)', source)
        if not found:  # read only while the config is built (ModernBERT's global_attn_every_n_layers): above
            assert k in config_source, f"{family}: {k} is neither a {hf.__name__} field nor read with getattr"
            continue
        defaults = [ast.literal_eval(d) if d != "config.hidden_size" else None for d in found]
        assert ours[k] in defaults, (k, found)  # conv_kernel_size: 0 decides that the ConvLayer exists
    # ELECTRA's summary fields that HF reads with hasattr only: not in its config class
    assert not any(hasattr(theirs, k) for k in getattr(config_class(family), "HF_ABSENT", ()))
