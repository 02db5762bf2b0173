"""The CLI's edges: where output goes, flags that conflict or do nothing, and what a bug looks like."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import yaml

from tests.test_cli import _bad

# ------------------------------------------------------------------------------------------------ output


def test_dash_output_is_stdout(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = cli("count", "-p", "base", "-f", "json", "-o", "-")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["total_parameters"] == 109_482_240
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize(("name", "check"), [
    ("r.json", lambda t: json.loads(t)["total_parameters"] == 109_482_240),
    ("r.yaml", lambda t: yaml.safe_load(t)["total_parameters"] == 109_482_240),
    ("r.YML", lambda t: yaml.safe_load(t)["total_parameters"] == 109_482_240),
    ("r.csv", lambda t: t.splitlines()[0].startswith("component,")),
    ("r.md", lambda t: t.lstrip().startswith("|") or "| component" in t),
    ("r.txt", lambda t: "109,482,240" in t and "BertModel" in t),
])
def test_output_extension_picks_the_format(cli, tmp_path: Path, name: str, check) -> None:
    out = tmp_path / name
    r = cli("count", "-p", "base", "-o", str(out))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert check(out.read_text())


def test_explicit_format_beats_the_extension(cli, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert cli("count", "-p", "base", "-f", "csv", "-o", str(out)).exit_code == 0
    assert out.read_text().startswith("component,")


def test_rewriting_a_file_keeps_its_mode(cli, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    out.write_text("{}")
    out.chmod(0o640)
    assert cli("count", "-p", "base", "-o", str(out)).exit_code == 0
    assert (out.stat().st_mode & 0o777) == 0o640
    assert json.loads(out.read_text())["total_parameters"] == 109_482_240


def test_writing_through_a_symlink_keeps_the_link(cli, tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert cli("count", "-p", "base", "-o", str(link)).exit_code == 0
    assert link.is_symlink()
    assert json.loads(target.read_text())["total_parameters"] == 109_482_240


def test_no_temporary_file_is_left_behind(cli, tmp_path: Path) -> None:
    assert cli("count", "-p", "base", "-o", str(tmp_path / "r.json")).exit_code == 0
    assert os.listdir(tmp_path) == ["r.json"]


# ---------------------------------------------------------------------------------- conflicting flags


@pytest.mark.parametrize(("args", "needles"), [
    (["flops", "-p", "base", "--peak-tflops", "0"], ["--peak-tflops", "positive"]),
    (["flops", "-p", "base", "--peak-tflops", "-5"], ["--peak-tflops", "positive"]),
    (["memory", "-p", "base", "--fit", "80"], ["--fit", "unit", "80GiB"]),
    (["memory", "-p", "base", "--fit", "80GiB", "--gpu", "h100"], ["--fit", "--gpu", "one"]),
    (["memory", "-p", "base", "--zero", "0"], ["--zero", "1, 2 or 3"]),
    (["memory", "-p", "base", "--zero", "2", "--mode", "infer"], ["--zero", "--mode train"]),
    (["memory", "-p", "base", "--gpus", "0"], ["--gpus"]),
    # each says what is wrong, not "cannot read it"
    (["memory", "-p", "base", "--fit", "-1GiB"], ["--fit", "positive"]),
    (["memory", "-p", "base", "--fit", "1e30GiB"], ["--fit", "exponent", "80GiB"]),
    (["memory", "-p", "base", "--fit", "80GiBs"], ["--fit", "unknown unit 'GiBs'"]),
    (["count", "-p", "base", "--lora", "r=-1"], ["--lora", "r=-1 is negative", "1.."]),
    (["count", "-p", ""], ["empty", "bertcalc presets"]),
    (["count", "-p", "b a s e"], ["no preset is named 'b a s e'", "bertcalc presets"]),
])
def test_conflicting_or_out_of_range_flags(cli, args, needles) -> None:
    _bad(cli(*args), *needles)


def test_the_flag_is_named_once(cli) -> None:
    err = cli("memory", "-p", "base", "--zero", "2", "--mode", "infer").stderr
    assert err.count("--zero") == 1, err


@pytest.mark.parametrize(("args", "needle"), [
    (["memory", "-p", "base", "--mode", "infer", "--optimizer", "sgd"], "--optimizer"),
    (["memory", "-p", "base", "--mode", "infer", "--grad-checkpointing"], "--grad-checkpointing"),
    (["memory", "-p", "base", "--gpus", "8", "--no-reshard"], "--no-reshard"),  # --gpus alone is DDP (#13)
    (["memory", "-p", "tiny", "--mode", "infer", "--alloc-conf", "expandable_segments:True"], "--alloc-conf"),
    (["memory", "-p", "tiny", "--sweep", "batch=1,2", "--batch", "4"], "--batch does nothing"),
    (["memory", "-p", "tiny", "--sweep", "batch=1,2 seq=32", "--seq", "64"], "--seq does nothing"),
    (["memory", "-p", "tiny", "--sweep", "attention=all", "--attention", "sdpa"], "--attention does nothing"),
])
def test_a_flag_with_no_effect_gets_a_note_and_the_run_goes_on(cli, args, needle) -> None:
    r = cli(*args)
    assert r.exit_code == 0, r.stderr
    assert "note:" in r.stderr and needle in r.stderr
    assert "Peak" in r.stdout or "peak" in r.stdout


def test_a_swept_axis_left_at_its_default_gets_no_note(cli) -> None:
    r = cli("memory", "-p", "tiny", "--sweep", "batch=1,2 seq=32,64")
    assert r.exit_code == 0 and "note:" not in r.stderr, r.stderr



def test_gpu_label_says_which_peak_was_used(cli) -> None:
    r = cli("flops", "-p", "base", "--gpu", "h100", "--peak-tflops", "400", "-f", "json")
    assert r.exit_code == 0, r.stderr
    gpu = json.loads(r.stdout)["gpu"]
    assert gpu["name"] == "H100" and gpu["peak_tflops"] == 400 and gpu["peak_source"] == "--peak-tflops"
    table = json.loads(cli("flops", "-p", "base", "--gpu", "h100", "-f", "json").stdout)["gpu"]
    assert table["peak_source"] == "table" and table["peak_tflops"] != 400
    assert "from --peak-tflops" in cli("flops", "-p", "base", "--gpu", "h100", "--peak-tflops", "400").stdout


# -------------------------------------------------------------------------------------- names and help


def test_preset_names_ignore_case(cli) -> None:
    a = cli("count", "-p", "BASE", "-f", "json")
    b = cli("count", "-p", "base", "-f", "json")
    assert a.exit_code == 0 and json.loads(a.stdout)["total_parameters"] == json.loads(b.stdout)["total_parameters"]


def test_help_shows_square_brackets(cli) -> None:
    r = cli("memory", "--help", env={"COLUMNS": "200"})
    assert r.exit_code == 0
    assert "[B, A, S, S]" in r.stdout


@pytest.mark.parametrize("pet", ["relative_key", "relative_key_query"])
def test_relative_position_embeddings_count_what_transformers_5_builds(cli, tmp_path: Path, pet: str) -> None:
    """transformers 5 accepts position_embedding_type relative_key(_query) and builds the absolute-position
    model (checked: BertModel of this config has no distance_embedding, 109,482,240 parameters as BERT-base):
    counted as built, with a note."""
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model_type": "bert", "position_embedding_type": pet}))
    r = cli("count", "-c", str(cfg), "-f", "json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["total_parameters"] == 109_482_240
    assert any("position_embedding_type" in n and pet in n and "absolute" in n for n in d["notes"])


# ------------------------------------------------------------------------------------------- a bug


def test_an_internal_error_is_one_line_and_exit_70(cli, monkeypatch) -> None:
    import bertcalc.api

    def boom(*a, **k):
        raise RuntimeError("something broke\non two lines")

    monkeypatch.setattr(bertcalc.api, "count", boom)
    monkeypatch.delenv("BERTCALC_DEBUG", raising=False)
    r = cli("count", "-p", "base")
    assert r.exit_code == 70
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "internal error" in lines[0] and "RuntimeError" in lines[0]
    assert "Traceback" not in r.stderr


def test_a_device_is_written_to_not_replaced(cli) -> None:
    before = os.stat(os.devnull)
    assert cli("count", "-p", "base", "-o", os.devnull).exit_code == 0
    after = os.stat(os.devnull)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_a_fifo_gets_the_output_and_stays_a_fifo(cli, tmp_path: Path) -> None:
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    r = cli("count", "-p", "base", "-f", "csv", "-o", str(fifo))
    reader.join(timeout=10)
    assert r.exit_code == 0, r.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert got and got[0].startswith("component,")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_a_fifo_no_one_reads_is_an_error_not_a_hang(cli, tmp_path: Path, monkeypatch) -> None:
    """open() of a FIFO for writing waits for a reader for ever; -o waits a bounded time, then says so."""
    from bertcalc import fileio

    monkeypatch.setattr(fileio, "FIFO_WAIT_SECONDS", 0.2)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    r = cli("count", "-p", "base", "-o", str(fifo))
    assert r.exit_code == 2
    assert r.stderr == f"bertcalc count: error: -o {fifo}: no process opened this FIFO for reading within 0.2 s; " \
                       "start its reader first\n"


def test_a_terminated_run_leaves_no_temporary_file(tmp_path: Path) -> None:
    """SIGTERM (timeout, kill) unwinds like Ctrl-C: the temporary file beside the target is removed."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "big.txt"
    proc = subprocess.Popen([sys.executable, "-m", "bertcalc", "shapes", "--layers", "100000000", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".big.txt.*.tmp")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.glob(".big.txt.*.tmp")), "the run never started writing"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_path_too_long_as_a_whole_is_told_apart_from_a_long_name(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = cli("count", "-p", "base", "-o", "d/" * 2100 + "x.json")
    assert r.exit_code == 2 and "the path is too long for the system" in r.stderr, r.stderr
    r = cli("count", "-p", "base", "-o", "x" * 300 + ".json")
    assert r.exit_code == 2 and "a file or folder name is at most 255 bytes" in r.stderr, r.stderr


# ---------------------------------------------------------------------------------- hostile config files


@pytest.mark.parametrize(("name", "text"), [
    ("deep.json", "[" * 100_000 + "]" * 100_000),
    ("deep.yaml", "a: " + "[" * 100_000 + "]" * 100_000),
])
def test_deeply_nested_files_are_bad_input_not_a_crash(cli, tmp_path: Path, name: str, text: str) -> None:
    f = tmp_path / name
    f.write_text(text)
    _bad(cli("count", "-c", str(f)), name, "nested too deeply")


@pytest.mark.parametrize(("name", "text"), [
    ("dup.yaml", "hidden_size: 512\nnum_attention_heads: 8\nhidden_size: 768\n"),
    ("dup.json", '{"hidden_size": 512, "hidden_size": 768}'),
])
def test_a_key_given_twice_is_refused(cli, tmp_path: Path, name: str, text: str) -> None:
    f = tmp_path / name
    f.write_text(text)
    _bad(cli("count", "-c", str(f)), name, "'hidden_size'", "twice")


# ------------------------------------------------------------------------------- what the header names


def test_an_overridden_preset_is_not_named_as_the_preset(cli) -> None:
    d = json.loads(cli("count", "-p", "base", "--layers", "6", "-f", "json").stdout)
    assert d["label"] == "base:layers=6"
    assert d["description"].startswith("based on ")
    assert json.loads(cli("count", "-p", "base", "-f", "json").stdout)["label"] == "base"


def test_a_preset_under_a_file_names_both(cli, tmp_path: Path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text("hidden_size: 384\nnum_attention_heads: 6\nintermediate_size: 1536\n")
    d = json.loads(cli("count", "-p", "large", "-c", str(f), "-f", "json").stdout)
    assert d["label"] == "large + mine.yaml" and d["description"].startswith("based on BERT-Large")


@pytest.mark.parametrize("item", ["base:layers=6,layers=8", "base:layers=6,num_hidden_layers=8"])
def test_a_compare_override_given_twice_is_refused(cli, item: str) -> None:
    _bad(cli("compare", "base", item), item, "once")


def test_a_wide_hidden_size_suggests_the_usual_head_count(cli) -> None:
    """H = 1024 with BERT-base's 12 heads: the fix a user wants is 16 heads of 64, not H = 1020."""
    _bad(cli("count", "--hidden", "1024"), "--hidden", "num_attention_heads 16", "head size 64")


def test_library_errors_name_each_field_once() -> None:
    import bertcalc

    with pytest.raises(bertcalc.ConfigError) as e:
        bertcalc.count(preset="base", num_hidden_layers=-1)
    assert str(e.value).count("num_hidden_layers") == 1
    with pytest.raises(bertcalc.ConfigError) as e:
        bertcalc.count(preset="base", hidden_size=770)
    assert "num_attention_heads (from preset 'base')" in str(e.value)


def test_library_compare_wants_a_list_and_component_lists_the_names() -> None:
    import bertcalc

    for bad in ("base", bertcalc.BertConfig()):
        with pytest.raises(bertcalc.UsageError, match="list of configs"):
            bertcalc.compare(bad)
    assert len(bertcalc.compare(("base", "large")).to_dict()["configs"]) == 2
    with pytest.raises(KeyError, match="'encoder layer'"):
        bertcalc.count(preset="base").component("encoder")


@pytest.mark.parametrize(("given", "card"), [("a100 80gb", "A100"), ("A100-80GB", "A100"), ("a100_40g", "A100-40GB"),
                                             ("H100 SXM", "H100"), ("rtx 4090", "RTX4090"), ("4090", "RTX4090")])
def test_gpu_names_as_people_write_them(given: str, card: str) -> None:
    from bertcalc.flopcount import gpu_spec

    assert gpu_spec(given)[0] == card


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("where", ["file", "folder", "config", "adapter"])
def test_a_fifo_is_refused_not_read(cli, tmp_path: Path, where: str) -> None:
    """A FIFO with no writer blocks whoever opens it: bertcalc must refuse it unopened (a hang here is the bug;
    the alarm turns it into a failure)."""
    import signal

    target = tmp_path / {"config": "config.yaml", "adapter": "adapter_config.json"}.get(where, "model.safetensors")
    os.mkfifo(target)
    arg = target if where != "folder" else tmp_path
    args = {"config": ("count", "-c", str(arg)), "adapter": ("count", "-p", "tiny", "--adapter", str(arg))}.get(
        where, ("inspect", str(arg), "-p", "tiny"))

    def hung(*_: object) -> None:
        raise AssertionError(f"bertcalc opened the FIFO {target} and blocked")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    try:
        _bad(cli(*args), target.name, "not a regular file")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown", "yaml"])
def test_control_characters_in_names_are_shown_not_sent(cli, tmp_path: Path, fmt: str) -> None:
    """A checkpoint's tensor names and a config's description are someone else's text: an ESC, BEL or C1
    control in them reaches the output escaped, never raw (it could move the cursor or retitle the window of
    whoever reads it); JSON still parses to the exact name."""
    import struct

    name = "evil\x1b[31mRED\x1b]0;pwned\x07\x1b[2K\x9b\u202etxt.exe\u2066"  # and bidi controls (Trojan Source)
    header = json.dumps({name: {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    r = cli("inspect", str(tmp_path / "model.safetensors"), "-p", "tiny", "-f", fmt)
    assert r.exit_code == 1, r.stderr  # inspect's "differences found"
    assert not any(c in r.stdout for c in "\x1b\x07\x9b\u202e\u2066"), repr(r.stdout[:300])
    assert "evil" in r.stdout and "RED" in r.stdout
    if fmt == "json":
        assert json.dumps(name)[1:-1] in json.dumps(json.loads(r.stdout))  # the exact name, parsed back
    cfg = tmp_path / "c.yaml"
    cfg.write_text('description: "bad \\e]0;title\\a \\e[2J here"\nnum_hidden_layers: 2\n')
    r = cli("count", "-c", str(cfg), "-f", fmt)
    assert r.exit_code == 0 and not any(c in r.stdout for c in "\x1b\x07"), repr(r.stdout)
    assert "bad" in r.stdout or fmt in ("csv", "markdown")  # the description is in the table, JSON and YAML


def test_a_budget_the_cuda_context_eats_is_refused(cli) -> None:
    _bad(cli("memory", "-p", "tiny", "--fit", "1B"), "--fit", "CUDA context", "leaves nothing")
    _bad(cli("memory", "-p", "tiny", "--fit", "512MiB"), "--fit", "CUDA context")
    _bad(cli("memory", "-p", "tiny", "--fit", "99999999999999999999999GiB"), "--fit", "past any memory")


def test_a_fit_at_the_search_cap_says_at_least(cli) -> None:
    r = cli("memory", "-p", "tiny", "--mode", "infer", "--seq", "8", "--fit", "1000000000000GiB")
    assert r.exit_code == 0, r.stderr
    assert f"is at least {2**40:,}" in r.stdout


def test_with_a_budget_the_cuda_context_is_not_listed_as_left_out(cli) -> None:
    d = json.loads(cli("memory", "-p", "tiny", "--gpu", "H100", "-f", "json").stdout)
    assert not any(n.startswith("the CUDA context (") for n in d["not_counted"])
    assert any("sets 512 MiB of the budget aside" in n for n in d["not_counted"])
    d = json.loads(cli("memory", "-p", "tiny", "-f", "json").stdout)
    assert any(n.startswith("the CUDA context (") for n in d["not_counted"])


@pytest.mark.parametrize(("name", "preset", "repo"), [("bert-base-uncased", "base", "google-bert/bert-base-uncased"),
                                                      ("distilbert-base-uncased", "distilbert-base",
                                                       "distilbert/distilbert-base-uncased")])
def test_a_hub_model_name_given_as_a_preset_points_to_its_preset(cli, name: str, preset: str, repo: str) -> None:
    """The name most people type first is the Hub model's: say which preset holds its config."""
    _bad(cli("count", "-p", name), f"--preset {preset}", repo)


@pytest.mark.parametrize("fmt", ["yaml", "markdown"])
def test_yaml_and_markdown_are_bounded_like_the_table(cli, fmt: str) -> None:
    """YAML and Markdown are built whole in memory (YAML of 20,000 BERT layers took 85 s and 1 GB): past the
    table's row limit they are refused, pointing at the streamed CSV and JSON."""
    _bad(cli("shapes", "-p", "base", "--layers", "20000", "-f", fmt), "--format", "320,007 rows", "csv or json")
    assert cli("shapes", "-p", "base", "--layers", "20000", "--collapse", "-f", fmt).exit_code == 0


@pytest.mark.parametrize(("name", "text", "needles", "never"), [
    ("eps.yaml", 'model_type: bert\nlayer_norm_eps: "1e-12"\n', ["layer_norm_eps", "must be a number", "'1e-12'"], ""),
    ("drop.yaml", 'model_type: bert\nhidden_dropout_prob: "0.1"\n', ["hidden_dropout_prob", "number"], ""),
    ("date.yaml", "model_type: bert\nhidden_act: 2019-01-01\n", ["hidden_act", "2019-01-01", "a YAML date", "quote"],
     "datetime"),
    ("pos.json", '{"model_type": "deberta-v2", "pos_att_type": 5}', ["pos_att_type", "must be a list"], "tuple"),
    ("term.json", '{"model_type": "deberta-v2", "pos_att_type": ["p2c", "x"]}',
     ["pos_att_type", "'x'", "c2p and p2c"], "Value error"),
])
def test_a_config_value_is_named_in_the_files_terms(cli, tmp_path: Path, name, text, needles, never) -> None:
    """Text where a number goes is refused (torch's LayerNorm would refuse eps='1e-12'); the message speaks
    YAML/JSON (a date, a list), not Python's reprs or pydantic's prefixes."""
    (tmp_path / name).write_text(text)
    r = cli("count", "-c", str(tmp_path / name))
    _bad(r, name, *needles)
    if never:
        assert never not in r.stderr, r.stderr


def test_a_model_level_check_names_the_fields_it_is_about(cli, tmp_path: Path) -> None:
    f = tmp_path / "mb.json"
    f.write_text('{"model_type": "modernbert", "num_hidden_layers": 4, "layer_types": ["full_attention"]}')
    r = cli("count", "-c", str(f))
    _bad(r, "layer_types (from ", "mb.json) / num_hidden_layers (from ", "one per layer")
    assert "hidden_size" not in r.stderr


@pytest.mark.parametrize(("index", "needle"), [
    ('{"weight_map": 5}', "weight_map is a number"),
    ('{"weight_map": ["a"]}', "weight_map is a list"),
    ('{"weight_map": {}}', "weight_map is empty"),
    ('{"metadata": {}}', "no weight_map"),
])
def test_a_bad_shard_index_says_what_is_wrong_with_it(cli, tmp_path: Path, index: str, needle: str) -> None:
    (tmp_path / "model.safetensors.index.json").write_text(index)
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    _bad(cli("inspect", str(tmp_path)), "model.safetensors.index.json", needle)


def test_the_positional_model_is_called_model_not_its_flag(cli) -> None:
    _bad(cli("count", "base", "--preset", "mini"), "MODEL 'base' and --preset")
    assert "--model" not in cli("count", "base", "--preset", "mini").stderr
    _bad(cli("count", "--model", "base", "--preset", "mini"), "--model: 'base' and --preset")


def test_a_sequence_past_a_model_without_a_position_table_names_the_config(cli) -> None:
    """ModernBERT has no position table (rotary): its limit is the length its config declares, and the message
    says so rather than naming a table it lacks."""
    r = cli("flops", "--preset", "modernbert-base", "--seq", "9000")
    assert r.exit_code == 2
    assert "exceeds what the config allows (8192, from max_position_embeddings)" in r.stderr
    assert "position table" not in r.stderr
    r = cli("flops", "--preset", "base", "--seq", "9000")
    assert r.exit_code == 2 and "exceeds what the position table allows (512" in r.stderr


def test_binary_yaml_in_a_text_field_is_refused(cli, tmp_path) -> None:
    """``!!binary`` is safe YAML but no config value: pydantic would decode it into a text field."""
    p = tmp_path / "bin.yaml"
    p.write_text("hidden_act: !!binary aGVsbG8=\n")  # "hello"
    r = cli("count", "--config", str(p))
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == [
        f"bertcalc count: error: {p}: hidden_act: binary data (a YAML !!binary value) is no config value; write "
        "it as plain text"]


@pytest.mark.parametrize("command", ["flops", "memory", "shapes"])
def test_choices_beyond_int64_are_refused_like_the_batch(cli, command: str) -> None:
    extra = ["--batch", "2", "--seq", "8"] if command == "shapes" else []
    r = cli(command, "--preset", "tiny", "--head", "multiple-choice", "--choices", str(2**70), *extra)
    assert r.exit_code == 2
    assert r.stderr.strip() == (f"bertcalc {command}: error: --choices: choices of 22 digits is beyond int64; "
                                "give at most 2^63 - 1")
