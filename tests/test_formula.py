"""The formulas bertcalc shows (--explain, closed form) against the tensor list and an independent formula."""

from __future__ import annotations

import re

import pytest
from hypothesis import given

import bertcalc
from bertcalc.config import BertConfig

from .test_properties import configs


def independent_bert_total(c: BertConfig, pooler: bool = True) -> int:
    """BertModel's parameters, written out by hand from the HF modules (not from bertcalc)."""
    V, P, T, H, I, L = (c.vocab_size, c.max_position_embeddings, c.type_vocab_size, c.hidden_size,  # noqa: E741
                        c.intermediate_size, c.num_hidden_layers)
    embeddings = V * H + P * H + T * H + 2 * H  # three tables + LayerNorm(γ, β)
    attention = 4 * (H * H + H) + 2 * H  # Q, K, V, output dense + LayerNorm
    ffn = (H * I + I) + (I * H + H) + 2 * H  # intermediate, output dense + LayerNorm
    pool = H * H + H if pooler else 0
    return embeddings + L * (attention + ffn) + pool


@given(configs(), __import__("hypothesis").strategies.booleans())
def test_tensor_list_matches_independent_formula(cfg: BertConfig, pooler: bool) -> None:
    assert bertcalc.count(cfg, pooler=pooler).total_parameters == independent_bert_total(cfg, pooler)


def _evaluate(expr: str) -> int:
    """Evaluate '4 × 768² + 2 × 768 × 3072 + 3072' as integer arithmetic."""
    sup = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
    expr = re.sub(r"([⁰¹²³⁴⁵⁶⁷⁸⁹]+)", lambda m: "**" + m.group(1).translate(sup), expr)
    expr = expr.replace("×", "*").replace(",", "")
    assert re.fullmatch(r"[\d\s*+]+", expr), expr
    return eval(expr, {"__builtins__": {}})  # digits, * and + only, checked above


@pytest.mark.parametrize("preset", ["tiny", "base", "large", "base-multilingual-cased"])
def test_every_explained_row_evaluates_to_its_count(preset: str) -> None:
    r = bertcalc.count(preset=preset)
    for c in r.components:
        assert _evaluate(c.formula_values) == c.parameters
        for p in c.parts:
            assert _evaluate(p.formula_values) == p.parameters
    assert _evaluate(r.total_formula_values) == r.total_parameters


def test_explain_shows_symbols_and_numbers() -> None:
    r = bertcalc.count(preset="base")
    word = r.component("embeddings").parts[0]
    assert f"{word.formula} = {word.formula_values}" == "vocab_size × hidden_size = 30522 × 768"
    assert r.closed_form == "(V + P + T + 2)·H + L·(4H² + 2H·I + 9H + I) + (H + 1)·H"


def test_closed_form_evaluates_to_the_count_for_every_preset() -> None:
    from bertcalc import catalog
    from bertcalc.architecture import build

    for name in catalog.names():
        cfg = bertcalc.resolve(preset=name).config
        arch = build(cfg)
        assert arch.polynomial().evaluate(arch.values) == arch.total_parameters


def test_layer_norm_correction_numbers() -> None:
    """The numbers docs/layernorm.md quotes. The seed's formula is transcribed here, not imported."""
    H, V, P, T, L = 768, 30522, 512, 2, 12
    embedding_params = V * H + P * H + T * H  # the seed: no LayerNorm in the embeddings
    layer_norm_params = 2 * H
    attention_params = 4 * (H * H + H)
    feed_forward_literal = 2 * (4 * H * H + 4 * H)  # as printed: both FFN biases 4H wide
    feed_forward = (H * 4 * H + 4 * H) + (4 * H * H + H)  # as the seed's prose describes: b2 is [H]
    pooler_params = H * H + H

    def seed(ffn: int) -> int:
        return embedding_params + L * (attention_params + ffn + 2 * layer_norm_params) + pooler_params

    truth = bertcalc.count(preset="base").total_parameters
    assert truth == 109_482_240
    assert seed(feed_forward) == 109_480_704
    embeddings_layer_norm = bertcalc.count(preset="base").component("embeddings").parts[3]
    assert embeddings_layer_norm.module == "embeddings.LayerNorm"
    assert truth - seed(feed_forward) == 1_536 == embeddings_layer_norm.parameters
    assert seed(feed_forward_literal) == 109_508_352  # the code as printed also over-counts b2 by 3H per layer
    # following the prose ("subtract one LayerNorm per layer") instead would lose 12 more LayerNorms
    assert embedding_params + L * (attention_params + feed_forward + layer_norm_params) + pooler_params == 109_462_272
