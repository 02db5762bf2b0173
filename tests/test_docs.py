"""Documentation must keep up with the CLI: a command without help, an example or docs fails here."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import typer

from bertcalc.cli import app

from .conftest import ROOT

COMMAND = typer.main.get_command(app)
NAMES = sorted(COMMAND.commands)  # type: ignore[attr-defined]
DOCS = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


@pytest.mark.parametrize("name", NAMES)
def test_command_has_summary_and_example(name: str) -> None:
    cmd = COMMAND.commands[name]  # type: ignore[attr-defined]
    doc = cmd.help or ""
    assert doc.strip().splitlines()[0].endswith("."), f"{name}: first line must be a one-line summary"
    assert re.search(rf"Example: bertcalc {name}\b", doc), f"{name}: docstring needs 'Example: bertcalc {name} ...'"


@pytest.mark.parametrize("name", NAMES)
def test_every_option_has_help(name: str) -> None:
    cmd = COMMAND.commands[name]  # type: ignore[attr-defined]
    for p in cmd.params:
        assert getattr(p, "help", None), f"{name} {p.name}: no help text"


@pytest.mark.parametrize("name", NAMES)
def test_command_is_documented(name: str) -> None:
    assert f"bertcalc {name}" in DOCS, f"'bertcalc {name}' appears in neither README.md nor docs/"


@pytest.mark.parametrize("name", NAMES)
def test_help_runs(cli, name: str) -> None:
    r = cli(name, "--help")
    assert r.exit_code == 0 and "Example" in r.stdout
    assert "<bool>" not in r.stdout, "a flag takes no value; its help should not show a type"


def test_readme_quick_start_is_two_command_lines() -> None:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"^## Quick start\s*\n(.*?)^```\w*\n(.*?)^```", text, re.S | re.M)
    assert m, "README.md needs a '## Quick start' section with a code block"
    assert re.findall(r"^## (.+)$", text, re.M)[0] == "Quick start", "Quick start must be the first section"
    lines = [ln for ln in m.group(2).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(lines) == 2, lines
    assert "bertcalc count --preset base" in lines[0]
    assert "pytest" in lines[1]


def test_ci_runs_the_readme_test_command() -> None:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"^## Quick start\s*\n.*?^```\w*\n(.*?)^```", text, re.S | re.M).group(1)
    test_line = [ln for ln in block.splitlines() if ln.strip()][1].strip()
    assert test_line in (ROOT / ".ci" / "run").read_text()


def test_readme_examples_are_real_output(tmp_path) -> None:
    """Every 'bertcalc ...' example shown with its output in README.md must print that output today. Hub ids are
    read from the local Hub of tests/hubserver.py, as scripts/update_readme.py reads them, into an empty cache."""
    from .hubserver import HubServer, readme_env, readme_repos

    text = (ROOT / "README.md").read_text()
    examples = re.findall(r"^```console\n\$ (bertcalc [^\n]+)\n(.*?)^```", text, re.S | re.M)
    assert examples, "README.md should show examples as ```console blocks: '$ bertcalc ...' then the output"
    with HubServer(readme_repos()) as hub:
        outs = [subprocess.run([sys.executable, "-m", "bertcalc", *command.split()[1:]], capture_output=True,
                               text=True, env=readme_env(tmp_path / "hf", hub.url), cwd=ROOT)
                for command, _ in examples]
    for (command, shown), out in zip(examples, outs, strict=True):
        assert out.returncode == 0, (command, out.stderr)
        norm = lambda s: "\n".join(ln.rstrip() for ln in s.strip().splitlines())  # noqa: E731
        assert norm(out.stdout) == norm(shown), f"README example out of date: {command}"


def test_docs_preset_table_matches_bertcalc() -> None:
    """docs/usage.md lists the presets with their totals, in the order ``bertcalc presets`` lists them; those
    figures must be bertcalc's."""
    import bertcalc

    text = (ROOT / "docs" / "usage.md").read_text()
    rows = re.findall(r"^\| ([a-z0-9-]+) \| ([a-z0-9_]+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| ([\d,]+) \|",
                      text, re.M)
    from bertcalc import catalog

    assert sorted(r[0] for r in rows) == sorted(catalog.names())
    assert [r[0] for r in rows] == [r.name for r in bertcalc.presets().rows], "not in `bertcalc presets` order"
    for name, family, L, H, A, I, V, total in rows:  # noqa: E741
        r = bertcalc.count(preset=name)
        d = r.dims
        assert r.family == family, name
        assert (d["L"], d["H"], d["A"], d["I"], d["V"]) == tuple(map(int, (L, H, A, I, V))), name
        assert r.total_parameters == int(total.replace(",", "")), name


def test_memory_accuracy_tables_in_the_docs_are_current() -> None:
    """docs/memory.md shows bench/memory_accuracy.py's tables; they must be what it prints today."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("memory_accuracy", ROOT / "bench" / "memory_accuracy.py")
    acc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(acc)
    text = (ROOT / "docs" / "memory.md").read_text()
    for tag, path in (("h100", acc.H100), ("cpu", acc.CPU)):
        shown = re.search(rf"<!-- accuracy: {tag} -->\n(.*?)<!-- /accuracy: {tag} -->", text, re.S).group(1)
        fresh = acc.markdown(*acc.evaluate(path))
        assert shown == fresh, f"regenerate with: python bench/memory_accuracy.py --markdown ({tag})"


def test_docs_gpu_table_matches_bertcalc() -> None:
    from bertcalc.flopcount import GPUS

    text = (ROOT / "docs" / "memory.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0] in GPUS:
            rows[cells[0]] = cells[1:]
    assert set(rows) == set(GPUS), "docs/memory.md's --gpu table lists other GPUs than bertcalc knows"
    for name, cells in rows.items():
        spec = GPUS[name]
        for key, cell in zip(("fp32", "tf32", "bf16", "fp16", "memory_gib"), cells, strict=True):
            assert (None if cell == "—" else float(cell)) == spec[key], (name, key, cell)


def test_usage_names_every_gpu() -> None:
    """docs/usage.md lists the --gpu names in the flops section: every one bertcalc knows, and no other."""
    import re

    from bertcalc.flopcount import GPUS

    text = (ROOT / "docs" / "usage.md").read_text()
    line = next(x for x in text.splitlines() if "names ignore case" in x)
    assert set(re.findall(r"`([A-Z0-9-]+)`", line)) == set(GPUS)


def test_usage_error_examples_are_real_output() -> None:
    """The error lines docs/usage.md shows are what bertcalc prints today, with exit code 2."""
    text = (ROOT / "docs" / "usage.md").read_text()
    section = text[text.index("## Errors and exit codes"):]
    examples = re.findall(r"^\$ (bertcalc [^\n]+)\n(bertcalc [^\n]+)\n", section, re.M)
    assert len(examples) >= 3
    for command, shown in examples:
        out = subprocess.run([sys.executable, "-m", "bertcalc", *command.split()[1:]], capture_output=True,
                             text=True, env={"NO_COLOR": "1", "PATH": ""})
        assert out.returncode == 2, command
        assert out.stderr.strip() == shown.strip(), f"docs/usage.md error example out of date: {command}"
