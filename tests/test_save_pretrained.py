"""A config.json as ``save_pretrained`` writes it is counted as the class it was saved from, without --head.

For one fixture of every family × head (tests/fixtures/hf/, made by scripts/make_hf_fixtures.py from real
transformers models), transformers writes the config.json (``architectures`` naming the class, and every key
a saved config holds); bertcalc reads it with no head given, and must give the fixture's state dict, totals,
tied pairs, and FlopCounterMode's forward and training-step FLOPs (``--choices 2`` for multiple choice).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

import bertcalc

from .conftest import hf_fixtures


def _one_per_class() -> list[dict]:
    seen, out = set(), []
    for fx in hf_fixtures():  # sorted by case name: the odd configs of each family come first where they exist
        key = (fx["family"], fx["model_class"])
        if key in seen or not fx["pooler"] or not fx.get("flops"):
            continue
        seen.add(key)
        out.append(fx)
    return out


CASES = _one_per_class()


def _saved_config(fx: dict, folder: Path) -> Path:
    try:
        import transformers
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("transformers is a test dependency and must be installed in CI")
        pytest.skip("transformers not installed")
    from bertcalc import families

    cfg = getattr(transformers, families.module(fx["family"]).HF_CONFIG)(**fx["config"])
    cfg.architectures = [fx["model_class"]]
    cfg.save_pretrained(folder)
    return folder / "config.json"


def test_every_class_is_covered() -> None:
    from bertcalc.architecture import heads_of
    from bertcalc.config import family_names

    assert {(f["family"], f["head"]) for f in CASES} == {(fam, h) for fam in family_names() for h in heads_of(fam)}


@pytest.mark.parametrize("fx", CASES, ids=[f["case"] for f in CASES])
def test_saved_config_gives_the_class_without_head(fx: dict, tmp_path: Path, cli) -> None:
    path = str(_saved_config(fx, tmp_path))
    assert json.loads(Path(path).read_text())["architectures"] == [fx["model_class"]]
    r = cli("count", "-c", path, "-f", "json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert (d["model_class"], d["head"]) == (fx["model_class"], fx["head"])
    assert d["total_parameters"] == fx["num_parameters"]
    assert d["state_dict_parameters"] == sum(math.prod(s) for _, s in fx["state_dict"])
    assert sorted(d["tied"]) == fx["tied"]
    assert not any("counted here as" in n for n in d["notes"])
    shapes = json.loads(cli("shapes", "-c", path, "-f", "json").stdout)
    assert [[t["name"], t["shape"]] for t in shapes["tensors"]] == fx["state_dict"]
    f = fx["flops"]
    args = ["flops", "-c", path, "--batch", str(f["batch"]), "--seq", str(f["seq"]), "-f", "json"]
    if "choices" in f:
        args += ["--choices", str(f["choices"])]
    got = json.loads(cli(*args).stdout)
    assert (got["forward_flops"], got["training_flops"]) == (f["forward"], f["training"])
    spec = bertcalc.resolve(config_file=path)
    assert spec.head == fx["head"]
