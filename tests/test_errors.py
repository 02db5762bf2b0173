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
