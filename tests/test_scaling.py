"""Totals come from one layer template × L: no per-layer work, whatever L is.

Timing belongs in bench/ (bench/scaling.py prints the figures); here we check the structure that makes it
true: counting never expands the layer template, and the answer for 10^7 layers is exact.
"""

from __future__ import annotations

import pytest

import bertcalc
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
