"""Golden rendered tables: fixed width, no colour. Regenerate with ``pytest --update-golden``.

A golden file pins the *layout*; the numbers in it are checked against independent sources elsewhere
(test_published, test_hf_fixtures), and each case below also names a figure it must contain.
"""

from __future__ import annotations

import difflib

import pytest

import bertcalc
from bertcalc.render import render

from .conftest import GOLDEN

WIDTH = 120  # a common terminal; "-80" cases pin the narrow layouts

CASES = {
    "count-base": (lambda: bertcalc.count(preset="base"), {}, "109,482,240"),
    "count-base-80": (lambda: bertcalc.count(preset="base"), {"width": 80}, "109.5 M"),
    "compare-families-80": (lambda: bertcalc.compare(["base", "large", "roberta-large", "distilbert-base",
                                                       "albert-base-v2"]), {"width": 80}, "11,683,584"),
    "presets-80": (lambda: bertcalc.presets(), {"width": 80}, "base-multilingual-cased"),
    "count-base-explain": (lambda: bertcalc.count(preset="base"), {"explain": True}, "109,482,240"),
    "count-tiny-nopooler": (lambda: bertcalc.count(preset="tiny", pooler=False), {}, f"{4_385_920 - 16_512:,}"),
    "count-large-hidden-flag": (lambda: bertcalc.count(preset="base", hidden_size=1024, num_attention_heads=16),
                                {}, "intermediate_size=4096"),
    "shapes-tiny-activations": (lambda: bertcalc.shapes(preset="tiny", batch=2, seq=16), {}, "4,385,920"),
    "shapes-tiny-tf-collapse": (lambda: bertcalc.shapes(preset="tiny", layout="tf", collapse=True), {}, "[128, 512]"),
    "compare-base-half-large": (lambda: bertcalc.compare(["base", "base:num_hidden_layers=6", "large"]), {},
                                "335,141,888"),
    "presets": (lambda: bertcalc.presets(), {}, "177,853,440"),
    "count-albert-mlm": (lambda: bertcalc.count(preset="albert-base-v2", head="mlm"), {}, "shared × 12"),
    "count-bert-mlm-explain": (lambda: bertcalc.count(preset="tiny", head="mlm"), {"explain": True},
                               "cls.predictions.decoder.weight → bert.embeddings.word_embeddings.weight"),
    "shapes-tiny-mlm-tf-80": (lambda: bertcalc.shapes(preset="tiny", head="mlm", layout="tf", collapse=True),
                              {"width": 80}, "cls.predictions.decoder.weight"),
    "memory-base-mlm-amp": (lambda: bertcalc.memory(preset="base", head="mlm", batch=32, seq=512,
                                                    precision="amp-bf16", fit="80GiB"), {}, "peak allocated"),
    "memory-base-infer": (lambda: bertcalc.memory(preset="base", mode="infer", batch=64, seq=128), {}, "◀ peak"),
    "compare-families": (lambda: bertcalc.compare(["base", "roberta-base", "distilbert-base", "albert-base-v2"]),
                         {}, "11,683,584"),
    "memory-base-zero3-offload": (lambda: bertcalc.memory(preset="base", precision="amp-bf16", zero=3, gpus=8,
                                                          offload="optimizer", link_gbps=400), {}, "CPU per rank"),
    # LoRA on query and value, r=8 (12 layers × 2 × 2·8·768) + the classifier PEFT saves (2·768 + 2): 296,450
    "count-base-seqcls-lora": (lambda: bertcalc.count(preset="base", head="seq-cls",
                                                      lora="r=8,alpha=16,targets=query+value"), {},
                               "trainable params: 296,450 || all params: 109,780,228 || trainable%: 0.2700"),
    "count-base-seqcls-lora-80": (lambda: bertcalc.count(preset="base", head="seq-cls",
                                                         lora="r=8,alpha=16,targets=query+value"), {"width": 80},
                                  "296,450"),
    # frozen: the embeddings (23,837,184) and layers 0-5 (6 × 7,087,872): the layers split into two runs
    "count-base-freeze": (lambda: bertcalc.count(preset="base", freeze="embeddings,layers=0-5"), {},
                          f"{109_482_240 - 23_837_184 - 6 * 7_087_872:,}"),
    "shapes-tiny-lora-collapse": (lambda: bertcalc.shapes(preset="tiny", lora="r=4,targets=all-linear,bias=lora_only",
                                                          collapse=True), {}, "lora_B.default.weight"),
    "memory-base-fsdp-fit": (lambda: bertcalc.memory(preset="base", gpus=4, fsdp=True, fit="8GiB"), {},
                             "largest batch per GPU"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_table(name: str, update_golden: bool) -> None:
    make, kw, must_contain = CASES[name]
    kw = {"width": WIDTH, **kw}
    text = render(make(), "table", **kw)
    assert must_contain in text
    assert "\x1b[" not in text
    assert "…" not in text, "a name or number was cut"
    assert max(len(line) for line in text.splitlines()) <= kw["width"]
    path = GOLDEN / f"{name}.txt"
    if update_golden:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    if not path.exists():
        pytest.fail(f"missing golden file {path.name}; run: pytest tests/test_golden.py --update-golden")
    want = path.read_text()
    if text != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True), "golden", "now"))
        pytest.fail(f"{path.name} differs (pytest --update-golden to accept):\n{diff}")


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("head", ["model", "mlm"])
def test_narrow_shapes_never_split_a_name(width: int, head: str) -> None:
    """State-dict names are what people copy: at any common width each one appears whole on a line."""
    r = bertcalc.shapes(preset="large", head=head)
    text = render(r, "table", width=width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    for name, _spec, _rep in r.tensors():
        assert any(name in line for line in lines), name
