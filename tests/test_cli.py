"""The command line, in-process through typer's CliRunner."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml

# ----------------------------------------------------------------------------------------------- count


def test_count_base_table(cli) -> None:
    r = cli("count", "--preset", "base")
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert "109,482,240" in out and "109.5 M" in out
    for row in ("Embeddings", "word_embeddings", "position_embeddings", "token_type_embeddings", "LayerNorm",
                "Encoder layer", "query", "key", "value", "attention output dense", "attention LayerNorm",
                "intermediate dense", "output dense", "output LayerNorm", "Pooler", "Total"):
        assert row in out
    assert "× 12" in out
    assert "[3072, 768] + [3072]" in out  # sub-rows show shapes
    assert "hidden_size=768" in out and "intermediate_size=3072" in out  # effective config in the header
    assert "\x1b[" not in out  # not a terminal: no colour codes


def test_count_json_contract(cli) -> None:
    r = cli("count", "--preset", "base", "--format", "json")
    assert r.exit_code == 0
    d = json.loads(r.stdout)
    assert d["total_parameters"] == 109_482_240 and isinstance(d["total_parameters"], int)
    assert d["config"]["hidden_size"] == 768 and d["config"]["num_hidden_layers"] == 12
    comps = {c["name"]: c for c in d["components"]}
    assert comps["encoder layer"]["repeat"] == 12
    assert comps["encoder layer"]["parameters"] * 12 + comps["embeddings"]["parameters"] + comps["pooler"][
        "parameters"] == d["total_parameters"]
    assert all({"name", "parameters", "repeat"} <= set(c) for c in d["components"])


def test_count_flags_override_preset(cli) -> None:
    d = json.loads(cli("count", "-p", "base", "--layers", "6", "-f", "json").stdout)
    assert d["config"]["num_hidden_layers"] == 6
    assert d["total_parameters"] == 109_482_240 - 6 * 7_087_872


def test_hidden_alone_sets_intermediate_to_4h_and_says_so(cli) -> None:
    r = cli("count", "--hidden", "1024", "--heads", "16")
    assert r.exit_code == 0, r.stderr
    assert "intermediate_size=4096" in r.stdout
    assert "4 × hidden_size" in r.stdout
    d = json.loads(cli("count", "--hidden", "1024", "--heads", "16", "--intermediate", "2000", "-f", "json").stdout)
    assert d["config"]["intermediate_size"] == 2000


def test_no_pooler_drops_the_pooler(cli) -> None:
    d = json.loads(cli("count", "-p", "base", "--no-pooler", "-f", "json").stdout)
    assert "pooler" not in [c["name"] for c in d["components"]]
    assert d["total_parameters"] == 109_482_240 - (768 * 768 + 768)


def test_config_file_overrides_preset_and_flags_override_file(cli, tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    f.write_text("num_hidden_layers: 3\nhidden_size: 256\nnum_attention_heads: 4\n")
    d = json.loads(cli("count", "-p", "large", "-c", str(f), "-f", "json").stdout)
    assert d["config"]["num_hidden_layers"] == 3 and d["config"]["hidden_size"] == 256
    assert d["config"]["intermediate_size"] == 4096  # from the preset: only flags derive it
    d = json.loads(cli("count", "-p", "large", "-c", str(f), "--layers", "5", "-f", "json").stdout)
    assert d["config"]["num_hidden_layers"] == 5


def test_explain_shows_formulas(cli) -> None:
    r = cli("count", "--preset", "base", "--explain")
    assert r.exit_code == 0
    assert "vocab_size × hidden_size = 30522 × 768 = 23,440,896" in r.stdout
    assert "closed form:" in r.stdout


@pytest.mark.parametrize("fmt", ["json", "yaml", "csv", "markdown"])
def test_non_table_formats_have_no_decoration(cli, fmt: str) -> None:
    r = cli("count", "-p", "tiny", "-f", fmt)
    assert r.exit_code == 0
    out = r.stdout
    assert "\x1b[" not in out and "━" not in out and "─" not in out
    if fmt == "json":
        assert json.loads(out)["total_parameters"] == 4_385_920
    elif fmt == "yaml":
        assert yaml.safe_load(out)["total_parameters"] == 4_385_920
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert rows[-1]["component"] == "total" and int(rows[-1]["total_parameters"]) == 4_385_920
        comps = [r for r in rows if r["part"] == "" and r["component"] != "total"]
        assert sum(int(r["total_parameters"]) for r in comps) == 4_385_920
    else:
        lines = out.splitlines()
        assert lines[0].startswith("| component") and set(lines[1]) <= set("|-: ")
        assert "4,385,920" in out


def test_format_is_case_insensitive(cli) -> None:
    assert cli("count", "-f", "JSON").exit_code == 0


def test_table_output_to_file_is_plain(cli, tmp_path: Path) -> None:
    out = tmp_path / "t.txt"
    r = cli("count", "-p", "base", "-o", str(out))
    assert r.exit_code == 0 and r.stdout == ""
    text = out.read_text()
    assert "109,482,240" in text and "\x1b[" not in text


def test_output_file_written_atomically(cli, tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    assert cli("count", "-p", "tiny", "-f", "json", "-o", str(out)).exit_code == 0
    assert json.loads(out.read_text())["total_parameters"] == 4_385_920
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]  # no temporary left behind


# ---------------------------------------------------------------------------------------------- shapes


def test_shapes_lists_every_tensor_by_hf_name(cli) -> None:
    d = json.loads(cli("shapes", "-p", "base", "-f", "json").stdout)
    names = [t["name"] for t in d["tensors"]]
    assert len(names) == 199
    assert "encoder.layer.3.attention.self.key.weight" in names
    t = next(t for t in d["tensors"] if t["name"] == "encoder.layer.0.intermediate.dense.weight")
    assert t["shape"] == [3072, 768] and t["parameters"] == 3072 * 768
    assert "activations" not in d


def test_shapes_tf_layout_transposes_linear_weights_only(cli) -> None:
    out = cli("shapes", "-p", "base", "--layout", "tf", "-f", "json").stdout
    d = {t["name"]: t["shape"] for t in json.loads(out)["tensors"]}
    assert d["encoder.layer.0.intermediate.dense.weight"] == [768, 3072]
    assert d["embeddings.word_embeddings.weight"] == [30522, 768]
    assert d["encoder.layer.0.output.LayerNorm.weight"] == [768]


def test_shapes_activations_in_forward_order(cli) -> None:
    d = json.loads(cli("shapes", "-p", "base", "--batch", "8", "--seq", "128", "-f", "json").stdout)
    acts = {a["name"]: a["shape"] for a in d["activations"]}
    order = [a["name"] for a in d["activations"]]
    B, S, H, A, I = 8, 128, 768, 12, 3072  # noqa: E741
    assert acts["input_ids"] == [B, S] and acts["token_type_ids"] == [B, S] and acts["position_ids"] == [B, S]
    assert acts["embeddings"] == [B, S, H]
    for qkv in ("query", "key", "value"):
        assert acts[f"encoder.layer.{{i}}.attention.self.{qkv}.heads"] == [B, A, S, H // A]
    assert acts["encoder.layer.{i}.attention.self.scores"] == [B, A, S, S]
    assert acts["encoder.layer.{i}.attention.self.probs"] == [B, A, S, S]
    assert acts["encoder.layer.{i}.attention.self.context"] == [B, S, H]
    assert acts["encoder.layer.{i}.intermediate.dense"] == [B, S, I]
    assert acts["encoder.layer.{i}.output.LayerNorm"] == [B, S, H]
    assert acts["pooler.activation"] == [B, H]
    want = ["input_ids", "embeddings", "encoder.layer.{i}.attention.self.query.heads",
            "encoder.layer.{i}.attention.self.scores", "encoder.layer.{i}.attention.self.probs",
            "encoder.layer.{i}.attention.self.context", "encoder.layer.{i}.intermediate.dense",
            "encoder.layer.{i}.output.LayerNorm", "pooler.activation"]
    assert [order.index(n) for n in want] == sorted(order.index(n) for n in want)


def test_shapes_collapse_shows_templates(cli) -> None:
    d = json.loads(cli("shapes", "-p", "base", "--collapse", "-f", "json").stdout)
    assert len(d["tensors"]) == 5 + 16 + 2
    assert d["tensors"][5]["name"] == "encoder.layer.{i}.attention.self.query.weight"
    assert d["tensors"][5]["repeat"] == 12


def test_shapes_table_and_csv(cli) -> None:
    r = cli("shapes", "-p", "tiny", "-b", "2", "-s", "16")
    assert r.exit_code == 0 and "encoder.layer.1.output.LayerNorm.bias" in r.stdout
    assert "[B, A, S, H/A]" in r.stdout
    rows = list(csv.DictReader(io.StringIO(cli("shapes", "-p", "tiny", "-f", "csv").stdout)))
    assert len(rows) == 39 and rows[0]["name"] == "embeddings.word_embeddings.weight"


# --------------------------------------------------------------------------------------------- compare


def test_compare_side_by_side(cli) -> None:
    r = cli("compare", "base", "base:num_hidden_layers=6", "large")
    assert r.exit_code == 0, r.stderr
    assert "109,482,240" in r.stdout and "335,141,888" in r.stdout and "vs base" in r.stdout
    d = json.loads(cli("compare", "base", "base:layers=6", "large", "-f", "json").stdout)
    assert [c["total_parameters"] for c in d["configs"]] == [109_482_240, 109_482_240 - 6 * 7_087_872, 335_141_888]
    assert [c["label"] for c in d["configs"]] == ["base", "base:layers=6", "large"]
    total = next(r for r in d["rows"] if r["name"] == "total")
    assert total["delta"][1] == -6 * 7_087_872


def test_compare_shows_no_table_where_a_family_has_none(cli) -> None:
    """DeBERTa-v3 (relative positions) and ModernBERT (rotary) have no position table, DistilBERT no token
    types: their P or T is absent (null, "—"), not 0 against BERT's 512 (a −100% that is no change of size)."""
    d = json.loads(cli("compare", "base", "deberta-v3-base", "modernbert-base", "distilbert-base",
                       "-f", "json").stdout)
    rows = {r["name"]: r for r in d["rows"]}
    assert rows["P"]["values"] == [512, None, None, 512] and rows["P"]["delta"] == [0, None, None, 0]
    assert rows["T"]["values"] == [2, None, None, None]
    assert d["configs"][2]["dims"]["P"] == 0  # ModernBERT: no rows of a position table
    r = cli("memory", "-p", "modernbert-base", "--seq", "8193")
    assert r.exit_code == 2 and "8192, from max_position_embeddings)" in r.stderr, r.stderr


def test_compare_files_and_pooler_override(cli, tmp_path: Path) -> None:
    f = tmp_path / "half.yaml"
    f.write_text("num_hidden_layers: 6\n")
    d = json.loads(cli("compare", "base", str(f), "base:pooler=false", "-f", "json").stdout)
    assert d["configs"][1]["config"]["num_hidden_layers"] == 6
    assert d["configs"][2]["total_parameters"] == 109_482_240 - 590_592


@pytest.mark.parametrize("fmt", ["csv", "markdown", "yaml"])
def test_compare_other_formats(cli, fmt: str) -> None:
    r = cli("compare", "tiny", "mini", "-f", fmt)
    assert r.exit_code == 0 and "4385920" in r.stdout.replace(",", "")


# --------------------------------------------------------------------------------------------- presets


def test_presets_lists_all_with_totals(cli) -> None:
    r = cli("presets")
    assert r.exit_code == 0
    for name in ("tiny", "mini", "small", "medium", "base", "large", "base-cased", "large-cased", "base-chinese",
                 "base-multilingual-cased"):
        assert name in r.stdout
    d = json.loads(cli("presets", "-f", "json").stdout)
    by = {p["name"]: p for p in d["presets"]}
    assert by["large"]["total_parameters"] == 335_141_888 and by["large"]["config"]["num_hidden_layers"] == 24


def test_python_dash_m_runs() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "bertcalc", "count", "-p", "base", "-f", "json"],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["total_parameters"] == 109_482_240


def test_no_args_prints_help(cli) -> None:
    r = cli()
    assert r.exit_code == 0 and "count" in r.stdout and "compare" in r.stdout


# ------------------------------------------------------------------------------------------- bad input


def _bad(result, *needles: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    err = result.stderr
    assert "Traceback" not in err and "Traceback" not in result.stdout
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for n in needles:
        assert n in err, (n, err)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["count", "--layers", "-1"], ["--layers", "num_hidden_layers", "≥ 0"]),
        (["count", "--hidden", "0"], ["--hidden", "hidden_size", "≥ 1"]),
        (["count", "--vocab", "0"], ["--vocab", "vocab_size"]),
        (["count", "--layers", "abc"], ["--layers", "abc"]),
        (["count", "--hidden", "770"], ["hidden_size", "num_attention_heads", "divisible", "768"]),
        (["count", "--heads", "5"], ["--heads", "divisible"]),
        (["count", "--preset", "bsae"], ["bsae", "'base'", "bertcalc presets"]),
        (["count", "--preset", "../etc/passwd"], ["not a path", "--config"]),
        (["count", "--format", "xml"], ["--format", "xml", "json"]),
        (["count", "--hiden", "768"], ["--hiden", "--hidden"]),
        (["shapes", "--batch", "1", "--seq", "513"], ["--seq", "513", "max_position_embeddings", "512"]),
        (["shapes", "-p", "tiny", "--seq", "8"], ["--batch", "missing"]),
        (["shapes", "--batch", "0", "--seq", "8"], ["--batch"]),
        (["compare", "base"], ["at least two"]),
        (["compare"], ["at least two"]),
        (["compare", "base", "base:layerz=3"], ["layerz", "'layers'"]),
        (["compare", "base", "base:layers"], ["base:layers"]),
        (["compare", "base", "nope"], ["nope"]),
    ],
)
def test_bad_input_one_line_exit_2(cli, args: list[str], needles: list[str]) -> None:
    _bad(cli(*args), *needles)


def test_missing_config_file(cli, tmp_path: Path) -> None:
    _bad(cli("count", "-c", str(tmp_path / "nope.yaml")), "nope.yaml", "no such file")


def test_unreadable_config_file(cli, tmp_path: Path, monkeypatch) -> None:
    f = tmp_path / "locked.yaml"
    f.write_text("hidden_size: 768\n")
    real_open = Path.open

    def deny(self, *a, **kw):  # chmod 0 does not stop root, so refuse the read the way the OS would
        if self.name == "locked.yaml":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *a, **kw)

    monkeypatch.setattr(Path, "open", deny)
    _bad(cli("count", "-c", str(f)), "locked.yaml", "permission")


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        ("hidden_size: [1, 2\n", ["malformed YAML", "line"]),
        ("- 1\n- 2\n", ["expected a mapping", "list"]),
        ("just a string\n", ["expected a mapping", "string"]),
        ("", ["empty"]),
        ("hidden_szie: 768\n", ["hidden_szie", "unknown key", "'hidden_size'"]),
        ("hidden_size: 768.5\n", ["hidden_size", "whole number"]),
        ("hidden_size: true\n", ["hidden_size", "whole number"]),
        ("hidden_size: '768'\n", ["hidden_size", "whole number"]),
        ("num_hidden_layers: -2\n", ["num_hidden_layers", "≥ 0"]),
        ("hidden_size: 770\n", ["divisible"]),
    ],
)
def test_bad_config_file(cli, tmp_path: Path, content: str, needles: list[str]) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(content)
    _bad(cli("count", "-c", str(f)), "bad.yaml", *needles)


def test_yaml_python_tag_is_refused_and_never_executed(cli, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    f = tmp_path / "evil.yaml"
    f.write_text(f'hidden_size: !!python/object/apply:os.system ["touch {marker}"]\n')
    _bad(cli("count", "-c", str(f)), "evil.yaml", "safe_load")
    assert not marker.exists()


def test_directory_as_config(cli, tmp_path: Path) -> None:
    _bad(cli("count", "-c", str(tmp_path)), "directory")


def test_failed_run_never_touches_the_output_file(cli, tmp_path: Path) -> None:
    out = tmp_path / "keep.json"
    out.write_text("precious\n")
    _bad(cli("count", "--hidden", "770", "-f", "json", "-o", str(out)), "divisible")
    _bad(cli("shapes", "-b", "1", "-s", "9999", "-f", "json", "-o", str(out)), "--seq")
    assert out.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.json"]


def test_output_into_missing_directory(cli, tmp_path: Path) -> None:
    _bad(cli("count", "-o", str(tmp_path / "no" / "such" / "x.json")), "does not exist")


def test_multiple_bad_fields_one_line_each(cli, tmp_path: Path) -> None:
    f = tmp_path / "two.yaml"
    f.write_text("hidden_size: 0\nvocab_size: -3\n")
    r = cli("count", "-c", str(f))
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and any("hidden_size" in ln for ln in lines) and any("vocab_size" in ln for ln in lines)
