"""Properties that must hold for every valid config (hypothesis)."""

from __future__ import annotations

import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st

import bertcalc
from bertcalc.architecture import build
from bertcalc.config import BertConfig
from bertcalc.render import render


@st.composite
def configs(draw, max_layers: int = 24) -> BertConfig:
    heads = draw(st.integers(1, 16))
    head_dim = draw(st.integers(1, 96))
    return BertConfig(
        vocab_size=draw(st.integers(1, 250_000)),
        hidden_size=heads * head_dim,
        num_hidden_layers=draw(st.integers(0, max_layers)),
        num_attention_heads=heads,
        intermediate_size=draw(st.integers(1, 16_384)),
        max_position_embeddings=draw(st.integers(1, 8192)),
        type_vocab_size=draw(st.integers(1, 16)),
    )


@given(configs(), st.booleans())
def test_one_more_layer_adds_exactly_one_layer(cfg: BertConfig, pooler: bool) -> None:
    here = bertcalc.count(cfg, pooler=pooler)
    more = bertcalc.count(cfg.model_copy(update={"num_hidden_layers": cfg.num_hidden_layers + 1}), pooler=pooler)
    assert more.total_parameters - here.total_parameters == here.component("encoder layer").parameters


@given(configs(), st.booleans())
def test_rows_add_up_to_the_total(cfg: BertConfig, pooler: bool) -> None:
    r = bertcalc.count(cfg, pooler=pooler)
    assert sum(c.total_parameters for c in r.components) == r.total_parameters
    for c in r.components:
        assert sum(p.parameters for p in c.parts) == c.parameters
        assert c.total_parameters == c.parameters * c.repeat


@given(configs(max_layers=6), st.booleans())
def test_count_is_the_sum_of_products_of_shapes(cfg: BertConfig, pooler: bool) -> None:
    tensors = bertcalc.shapes(cfg, pooler=pooler).to_dict()["tensors"]
    assert sum(math.prod(t["shape"]) for t in tensors) == bertcalc.count(cfg, pooler=pooler).total_parameters
    assert all(t["parameters"] == math.prod(t["shape"]) for t in tensors)


@given(configs(max_layers=6), st.booleans())
def test_state_dict_names_are_unique(cfg: BertConfig, pooler: bool) -> None:
    names = [t["name"] for t in bertcalc.shapes(cfg, pooler=pooler).to_dict()["tensors"]]
    assert len(names) == len(set(names))
    assert all("{" not in n for n in names)


@given(configs(), st.booleans())
def test_layer_norms_are_2L_plus_1(cfg: BertConfig, pooler: bool) -> None:
    """BertModel holds exactly one LayerNorm after the embeddings and two per layer, each counted once."""
    arch = build(cfg, pooler=pooler)
    norms = sum(sum(p.kind == "layernorm" for p in c.parts) * c.repeat for c in arch.components)
    assert norms == 2 * cfg.num_hidden_layers + 1


@given(configs(), st.booleans())
def test_polynomial_evaluates_to_the_count(cfg: BertConfig, pooler: bool) -> None:
    arch = build(cfg, pooler=pooler)
    assert arch.polynomial().evaluate(arch.values) == arch.total_parameters
    for c in arch.components:
        assert c.polynomial().evaluate(arch.values) == c.parameters


@settings(max_examples=30)
@given(configs(), st.booleans())
def test_printed_rows_add_up_to_printed_total(cfg: BertConfig, pooler: bool) -> None:
    """Read the rendered table back, like a reader would: component totals must sum to the Total line."""
    text = render(bertcalc.count(cfg, pooler=pooler), "table")
    totals, printed_total = [], None
    for line in text.splitlines():
        m = re.match(r"^\s*(Embeddings|Encoder layer|Pooler|Total)\b", line)
        if not m:
            continue
        nums = [int(x.replace(",", "")) for x in re.findall(r"(?<![\w.])\d[\d,]*(?![\w.%])", line)]
        if m.group(1) == "Total":
            printed_total = nums[0]
        else:
            totals.append(nums[-1])  # the "total" column is the last integer on the row
    assert printed_total is not None
    assert sum(totals) == printed_total


@given(st.integers(min_value=1000, max_value=10**15 - 1))
def test_human_figure_is_the_exact_count_rounded_to_a_tenth(n: int) -> None:
    from bertcalc.render import human

    value, unit = human(n).split()
    size = {"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}[unit]
    tenths = int(value.replace(".", ""))
    assert 10 <= tenths < 10000 or unit == "T"
    assert abs(20 * n - 2 * tenths * size) <= size  # |n - shown| ≤ half a tenth of the unit
    assert human(-n) == "-" + human(n)
