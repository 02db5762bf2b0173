"""Core errors name library parameters; the CLI names flags. One message, marked once (``errors.arg``), read in
both vocabularies: ``zero is DeepSpeed and fsdp is PyTorch FSDP2`` to a Python caller, ``--zero is DeepSpeed and
--fsdp is PyTorch FSDP2`` on the command line."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import bertcalc
from bertcalc import api
from bertcalc.cli import FLAGS, NAMED
from bertcalc.config import config_class, family_names
from bertcalc.errors import ConfigError, UsageError, arg, spell

PACKAGE = Path(bertcalc.__file__).parent
# The modules whose errors reach the CLI only: the CLI itself, its output file (``-o``), and the table renderer.
CLI_SIDE = {"cli.py", "fileio.py"}
FLAG = re.compile(r"(?<![\w-])--[a-z]")


def _core_modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if p.name not in CLI_SIDE and "render" not in p.parts]


def _error_calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", "")
            if name.endswith("Error"):
                yield node


def test_no_core_error_message_spells_a_flag() -> None:
    """A literal ``--flag`` in a core error would reach a Python caller as a flag it cannot pass: mark the
    parameter with ``arg(...)`` instead."""
    found = []
    for path in _core_modules():
        src = path.read_text()
        for call in _error_calls(ast.parse(src)):
            for node in ast.walk(call):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and FLAG.search(node.value):
                    found.append(f"{path.name}:{node.lineno}: {node.value[:70]!r}")
    assert not found, found


def _marked_names() -> list[tuple[str, str]]:
    out = []
    for path in _core_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "arg" and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    out.append((path.name, first.value))
                elif not (isinstance(first, ast.IfExp) and all(isinstance(x, ast.Constant)
                                                                for x in (first.body, first.orelse))):
                    out.append((path.name, f"<not a literal at line {node.lineno}>"))
                else:
                    out += [(path.name, first.body.value), (path.name, first.orelse.value)]
    return out


def _library_parameters() -> set[str]:
    names: set[str] = set()
    for fn in (api.count, api.shapes, api.flops, api.memory, api.sweep, api.inspect, api.spec_of, api.compare,
               bertcalc.resolve):
        names |= set(inspect.signature(fn).parameters)
    return names


def test_every_marked_name_is_a_library_parameter_with_a_flag() -> None:
    marked = _marked_names()
    assert len(marked) > 40  # the scan found the marks (a scan that finds none would pass anything)
    params = _library_parameters()
    assert [m for m in marked if m[1] not in params] == []
    assert [m for m in marked if m[1] not in NAMED] == []


def test_flags_are_keyed_by_library_parameters() -> None:
    """FLAGS maps what the library calls a thing to the flag that sets it: a call's parameter, a family's
    override name or config field, or ``format`` (the renderer's, which ``TableTooLargeError`` names)."""
    params = _library_parameters() | {"format"}
    for family in family_names():
        params |= set(config_class(family).FLAGS) | set(config_class(family).model_fields)
    assert sorted(k for k in FLAGS if k not in params) == []


@pytest.mark.parametrize(("mark", "library", "cli"), [
    (arg("gpus"), "gpus", "--gpus"),
    (arg("fit", "SIZE"), "fit=SIZE", "--fit SIZE"),
    (arg("attention", "eager", "'eager'"), "attention='eager'", "--attention eager"),
    (arg("pooler", py="False"), "pooler=False", "--no-pooler"),
    (arg("config_file", "FILE"), "config_file=FILE", "--config FILE"),
    (arg("axes", "batch=0", "'batch=0'"), "axes='batch=0'", "--sweep batch=0"),
])
def test_a_mark_is_spelled_for_each_reader(mark: str, library: str, cli: str) -> None:
    assert spell(f"use {mark} here") == f"use {library} here"
    assert spell(f"use {mark} here", NAMED) == f"use {cli} here"


def test_a_name_without_a_flag_is_spelled_as_the_library_does() -> None:
    assert spell(arg("download_bytes", "True"), NAMED) == "download_bytes=True"


@pytest.mark.parametrize("text", ["\ue000", "a\ue000b", "\ue000zero\ue001x\ue002", "\ue002\ue001", "x\ue000y\ue001z"])
def test_text_that_only_looks_like_a_mark_is_kept(text: str) -> None:
    assert spell(text) == text
    assert spell(text, NAMED) == text


def test_a_library_caller_reads_parameters() -> None:
    with pytest.raises(UsageError) as info:
        bertcalc.memory(preset="base", zero=2, fsdp=True, gpus=2)
    assert str(info.value) == "zero is DeepSpeed and fsdp is PyTorch FSDP2: give one of them"
    assert info.value.message == str(info.value) == info.value.args[0]
    assert info.value.param == "fsdp"
    with pytest.raises(UsageError, match=r"^offload_param needs ZeRO-3 .*; use offload='optimizer', or zero=3$"):
        bertcalc.memory(preset="base", offload="param", zero=2, gpus=2)
    with pytest.raises(UsageError, match=r"^axes='batch=x': 'x' is not a positive whole number"):
        bertcalc.sweep(preset="base", axes="batch=x")
    with pytest.raises(UsageError, match=r"^T4 has no bf16 tensor cores; use precision='fp16' \(its best\), or give "
                                         r"peak_tflops$"):
        bertcalc.flops(preset="base", gpu="T4", precision="bf16")


def test_the_cli_reads_flags(cli) -> None:
    r = cli("memory", "-p", "base", "--zero", "2", "--fsdp", "--gpus", "2")
    assert r.exit_code == 2
    assert r.stderr == ("bertcalc memory: error: --fsdp: --zero is DeepSpeed and --fsdp is PyTorch FSDP2: give one of "
                        "them\n")
    r = cli("memory", "-p", "base", "--sweep", "batch=x")
    assert r.stderr == ("bertcalc memory: error: --sweep batch=x: 'x' is not a positive whole number or a range such "
                        "as 8..256\n")


def test_a_config_problem_keeps_its_marks_for_the_cli(cli, tmp_path: Path) -> None:
    cfg = tmp_path / "m.yaml"
    cfg.write_text("pooler: false\n")
    with pytest.raises(ConfigError) as info:
        bertcalc.count(config_file=cfg)
    assert any("use pooler=False" in p for p in info.value.problems), info.value.problems
    assert "\ue000" not in str(info.value)
    r = cli("count", "--config", str(cfg))
    assert r.exit_code == 2
    assert "use --no-pooler (or :pooler=false in compare)" in r.stderr


def test_an_unknown_gpu_beside_a_peak_says_the_peak_is_enough(cli) -> None:
    """The fix offered for an unknown card is the one that is missing: with a peak given, leave the card out."""
    r = cli("flops", "-p", "base", "--gpu", "A99", "--peak-tflops", "10")
    assert r.exit_code == 2
    assert r.stderr.endswith("RTX3090 (or leave --gpu out: --peak-tflops sets the rate alone)\n")
    r = cli("flops", "-p", "base", "--gpu", "A99")
    assert r.stderr.endswith("RTX3090 (or give --peak-tflops for any other)\n")
    r = cli("memory", "-p", "base", "--gpu", "A99")
    assert r.stderr.endswith("RTX3090 (or give --fit SIZE for any other)\n")


# ------------------------------------------------------------------------------------ rates and bounds


def test_a_huge_peak_times_a_tiny_mfu_is_a_finite_rate() -> None:
    """peak × MFU first: 1e308 TFLOP/s at MFU 1e-308 is 1 TFLOP/s, not an overflow that times a step at 0 s."""
    r = bertcalc.flops(preset="base", peak_tflops=1e308, mfu=1e-308)
    assert r.seconds()["forward"] == pytest.approx(r.forward_flops / 1e12)


@pytest.mark.parametrize(("kw", "param", "says"), [
    (dict(peak_tflops=1e308), "peak_tflops", "is not a finite rate"),
    (dict(peak_tflops=5e-324), "peak_tflops", "too small a rate"),
    (dict(gpu="H100", mfu=5e-324), "mfu", "give the fraction of the peak it reaches"),  # the MFU, not the peak
])
def test_a_rate_that_cannot_time_a_step_names_its_cause(kw: dict, param: str, says: str) -> None:
    with pytest.raises(UsageError, match=says) as info:
        bertcalc.flops(preset="base", **kw)
    assert info.value.param == param


@pytest.mark.parametrize("gbps", [1e-320, 5e-7, 1e10, float("inf")])
def test_a_link_bandwidth_outside_its_range_is_refused(gbps: float) -> None:
    """A link of 1e-320 Gbit/s made the time infinite, and strict JSON then failed (exit 70)."""
    with pytest.raises(UsageError, match="must be a bandwidth from 1e-06 to 1e\\+09 Gbit/s") as info:
        bertcalc.memory(preset="base", zero=3, gpus=8, link_gbps=gbps)
    assert info.value.param == "link_gbps"


def test_the_slowest_link_still_has_a_finite_time(cli) -> None:
    import json

    r = cli("memory", "-p", "base", "--zero", "3", "--gpus", "8", "--link-gbps", "1e-6", "-f", "json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["communication"]["seconds"] > 0


@pytest.mark.parametrize("call", ["flops", "memory"])
def test_a_training_step_with_nothing_to_train_is_refused(call: str) -> None:
    """PyTorch's backward() fails when nothing requires a gradient; counting such a model is still fine."""
    with pytest.raises(UsageError, match="leaves nothing to train") as info:
        getattr(bertcalc, call)(preset="base", freeze="embeddings,layers=0-11,pooler")
    assert info.value.param == "freeze"
    assert bertcalc.count(preset="base", freeze="embeddings,layers=0-11,pooler").trainable_parameters == 0


@pytest.mark.parametrize(("call", "kw", "says"), [
    ("shapes", dict(batch=2.5, seq=5), "batch must be a whole number, got 2.5"),
    ("memory", dict(batch=True), "batch must be a whole number, got True"),
    ("flops", dict(seq=127.5), "seq must be a whole number, got 127.5"),
    ("flops", dict(batch="8"), "batch must be a whole number, got '8'"),
])
def test_a_library_caller_gets_whole_numbers_checked(call: str, kw: dict, says: str) -> None:
    """The CLI's typer options take integers only; a library caller's 2.5 made shapes of 2.5 and float bytes."""
    with pytest.raises(UsageError, match=f"^{re.escape(says)}$"):
        getattr(bertcalc, call)(preset="tiny", **kw)


@pytest.mark.parametrize(("kw", "says"), [
    (dict(r=-4, targets=("query", "value")), "LoraSpec.r must be a whole number from 1 to 1,048,576, got -4"),
    (dict(r=0), "LoraSpec.r must be a whole number from 1"),
    (dict(alpha=float("nan")), "LoraSpec.alpha must be a number from 0 to 1e+09, got nan"),
    (dict(rank_pattern=(("query", 2.5),)), "LoraSpec.rank_pattern['query'] must be a whole number"),
])
def test_a_lora_spec_built_by_hand_is_held_to_the_parsers_bounds(kw: dict, says: str) -> None:
    """r=-4 counted -147,456 trainable parameters; alpha=nan broke strict JSON."""
    from bertcalc.adapters import LoraSpec

    with pytest.raises(UsageError, match=re.escape(says)):
        bertcalc.count(preset="tiny", lora=LoraSpec(**kw))
    assert bertcalc.count(preset="tiny", lora=LoraSpec(r=8, targets=("query",))).trainable_parameters == 2 * 8 * 128 * 2


def test_an_adapter_files_error_names_the_adapter(cli, tmp_path: Path) -> None:
    """The spec's errors name lora; from --adapter FILE they are the file's, not a --lora the user never gave."""
    import json

    f = tmp_path / "adapter_config.json"
    f.write_text(json.dumps({"peft_type": "LORA", "r": 8, "target_modules": "nomatch.*"}))
    r = cli("count", "-p", "base", "--adapter", str(f))
    assert r.exit_code == 2
    assert r.stderr.startswith("bertcalc count: error: --adapter: target modules 'nomatch.*' match no module"), r.stderr
    with pytest.raises(UsageError) as info:
        bertcalc.count(preset="base", adapter=str(f))
    assert info.value.param == "adapter"
