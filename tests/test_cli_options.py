"""The CLI's options and messages are built from the core's vocabulary, each in one place."""

from __future__ import annotations

import enum
import re

import pytest

import bertcalc
from bertcalc import cli as cli_module

from .conftest import ROOT


def _core_params() -> set[str]:
    """Every ``param="..."`` a core module names in an error."""
    found: set[str] = set()
    for path in (ROOT / "bertcalc").rglob("*.py"):
        if path.name != "cli.py":
            found |= set(re.findall(r'\bparam="([A-Za-z_]+)"', path.read_text()))
    return found


def test_every_parameter_a_core_error_names_has_its_flag_in_the_table() -> None:
    params = _core_params()
    assert {"pooler", "head", "seq", "batch", "fit", "peak_tflops"} <= params
    assert params <= set(cli_module.FLAGS), f"add these to cli.FLAGS: {sorted(params - set(cli_module.FLAGS))}"


def test_core_errors_name_the_library_parameter() -> None:
    with pytest.raises(bertcalc.UsageError) as err:
        bertcalc.count(preset="base", head="mlm", pooler=False)
    assert err.value.param == "pooler"
    assert not [p for p in _core_params() if p.startswith("no_")], "name the parameter (pooler), not the flag"


def test_an_error_line_names_the_flag(cli) -> None:
    r = cli("count", "--preset", "base", "--head", "mlm", "--no-pooler")
    assert r.exit_code == 2
    assert r.stderr == ("bertcalc count: error: --no-pooler applies to --head model only; the mlm class decides "
                        "its own pooler\n")
    r = cli("flops", "--preset", "base", "--gpu", "H100", "--peak-tflops", "-1")
    assert r.stderr.startswith("bertcalc flops: error: --peak-tflops: ")


def test_the_choice_enums_are_the_cores_tuples() -> None:
    from bertcalc import memsim
    from bertcalc.families._heads import HEADS
    from bertcalc.render import FORMATS

    pairs = [(cli_module.Head, HEADS), (cli_module.Format, FORMATS), (cli_module.Precision, memsim.PRECISIONS),
             (cli_module.OptimizerChoice, memsim.OPTIMIZERS), (cli_module.AttentionChoice, memsim.ATTENTIONS),
             (cli_module.Mode, memsim.MODES)]
    for enum_, values in pairs:
        assert tuple(m.value for m in enum_) == tuple(values), enum_.__name__
        assert all(isinstance(m, str) for m in enum_)


GROUPS = (cli_module.model_options, cli_module.checkpoint_model_options, cli_module.model_class_options)


def _callbacks() -> dict[str, object]:
    return {cli_module._command_name(c): c.callback for c in cli_module.app.registered_commands}


def test_no_command_declares_the_model_options_itself() -> None:
    import inspect

    grouped = {p.name for g in GROUPS for p in g.params}
    for name, callback in _callbacks().items():
        fn = callback
        while hasattr(fn, "_fn"):  # groups stack (memory: the multi-GPU options over the model options)
            fn = fn._fn
        own = inspect.signature(fn).parameters
        assert not grouped & set(own), f"{name} declares {sorted(grouped & set(own))}; use an option group"


def test_the_model_commands_take_the_whole_group_in_one_order() -> None:
    import typer

    group = typer.main.get_command(cli_module.app)
    expected = [p.name for p in cli_module.model_options.params]
    for name in ("count", "shapes", "verify", "flops", "memory"):
        fn, groups = _callbacks()[name], []
        while hasattr(fn, "_group"):
            groups.append(fn._group)
            fn = fn._fn
        assert groups[-1] is cli_module.model_options, name  # the innermost: its options come first
        names = [p.name for p in group.commands[name].params]  # type: ignore[attr-defined]
        assert names[: len(expected)] == expected, name
    assert [p.name for p in group.commands["inspect"].params][:6] == ["path", "preset", "config", "head", "labels",
                                                                      "untie"]
    assert [p.name for p in group.commands["compare"].params][:3] == ["items", "head", "no_pooler"]


def test_count_does_not_import_memsim() -> None:
    import subprocess
    import sys

    code = ("import sys; sys.argv = ['bertcalc', 'count', '--preset', 'tiny', '-f', 'json']\n"
            "from bertcalc.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write(str(sorted(m for m in sys.modules if m.startswith('bertcalc.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert "bertcalc.api" in out.stderr and "bertcalc.memsim" not in out.stderr, out.stderr


def test_unused_options_build_no_type_adapter_and_none_coerces_as_typer_would() -> None:
    """cli defers typer's per-option pydantic TypeAdapter to the first value that needs coercing. For that to
    change nothing, typer's own coercion of None must be what the deferral gives without building: None (or ()
    for an option that takes many values), for every option of every command."""
    import typer.main
    from typer._click import Context
    from typer._coercion import build_runtime_param

    assert cli_module._defer_unused_adapters(), "the installed typer has no deferrable coercion"
    group = typer.main.get_command(cli_module.app)
    checked = 0
    for name, command in group.commands.items():
        ctx = Context(command, info_name=name)
        for p in command.params:
            if not hasattr(p, "type_descriptor"):
                continue
            real = build_runtime_param(p.type_descriptor).coerce(None, param=p, ctx=ctx)
            deferred = p.get_runtime_param().coerce(None, param=p, ctx=ctx)
            assert deferred == real and type(deferred) is type(real), (name, p.name)
            checked += 1
    assert checked > 100


def test_memory_builds_adapters_only_for_given_values() -> None:
    """``memory --preset base -f json`` coerces the few options that have a value, not its 44."""
    import subprocess
    import sys

    code = ("import sys, typer._adapters as A\n"
            "n = [0]; build = A.try_build_adapter\n"
            "def counted(*a, **k):\n    n[0] += 1\n    return build(*a, **k)\n"
            "A.try_build_adapter = counted\n"
            "from bertcalc.cli import main\n"
            "sys.argv = ['bertcalc', 'memory', '--preset', 'base', '-f', 'json']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write(f'ADAPTERS {n[0]}')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    built = int(r.stderr.rsplit("ADAPTERS ", 1)[1])
    assert 0 < built <= 12, r.stderr
    import json

    assert json.loads(r.stdout)["peak_bytes"] > 0  # and the run is the same run


def test_choices_coerce_as_typer_s_adapter_does() -> None:
    """cli coerces a choice (``-f json``) with typer's own ``coerce_cli_choice``, without building the pydantic
    adapter typer wraps it in (the first adapter of a process costs a tenth of a command's start-up). For each
    choice of every option of every command, as given, upper-cased and misspelt, both ways give the same member
    or the same error."""
    import typer.main
    from typer._click import Context
    from typer._click.exceptions import BadParameter
    from typer._coercion import build_runtime_param

    assert cli_module._defer_unused_adapters()
    group = typer.main.get_command(cli_module.app)
    checked = 0
    for name, command in group.commands.items():
        ctx = Context(command, info_name=name)
        for p in command.params:
            ann = getattr(getattr(p, "type_descriptor", None), "annotation", None)
            if not (isinstance(ann, type) and issubclass(ann, enum.Enum)):
                continue
            for value in [*(m.value for m in ann), *(m.value.upper() for m in ann), "no-such-choice", ""]:
                real = build_runtime_param(p.type_descriptor)
                try:
                    want: object = real.coerce(value, param=p, ctx=ctx)
                except BadParameter as exc:
                    want = ("error", exc.format_message())
                try:
                    got: object = p.get_runtime_param().coerce(value, param=p, ctx=ctx)
                except BadParameter as exc:
                    got = ("error", exc.format_message())
                assert got == want and type(got) is type(want), (name, p.name, value, got, want)
                checked += 1
    assert checked > 200


def test_a_choice_builds_no_type_adapter() -> None:
    """``presets -f json`` builds no pydantic adapter at all, so pydantic's plugin loader (importlib.metadata)
    stays unimported, as it does for ``presets`` alone."""
    import subprocess
    import sys

    code = ("import sys, typer._adapters as A\n"
            "n = [0]; build = A.try_build_adapter\n"
            "def counted(*a, **k):\n    n[0] += 1\n    return build(*a, **k)\n"
            "A.try_build_adapter = counted\n"
            "from bertcalc.cli import main\n"
            "sys.argv = ['bertcalc', 'presets', '-f', 'JSON']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write(f'ADAPTERS {n[0]}')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.stderr.rsplit("ADAPTERS ", 1)[1] == "0", r.stderr
    import json

    assert json.loads(r.stdout)["presets"]  # and it printed JSON
