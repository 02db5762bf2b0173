"""The ``bertcalc`` command line: resolve the config, call the core, render.

This is the only module that prints, exits, or turns exceptions into messages. Every bad input becomes one
line on stderr (``bertcalc count: error: ...``) and exit code 2; a traceback is never shown.
"""

from __future__ import annotations

import enum
import functools
import inspect as _inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from .errors import BertcalcError
from .families._heads import HEADS
from .render import FORMATS

if TYPE_CHECKING:
    from .loading import ModelSpec


def _defer_unused_adapters() -> bool:
    """typer (0.2x) coerces each option's value through a pydantic ``TypeAdapter`` that it builds when it first
    processes the option, even for an option left at ``None``, which ``RuntimeParam.coerce`` returns before it
    reads the adapter: ``memory`` builds 44 of them, 4.5 ms of its start-up, for values it never coerces. This
    defers each build to the first value that needs it: the coercion of every value is typer's own, unchanged
    (tests/test_cli_options.py checks that typer's coerce gives None for None). A choice (``-f json``,
    ``--head mlm``) is coerced by the function typer's choice adapter wraps, ``coerce_cli_choice``, without the
    adapter: building the first adapter of a process costs about 18 ms (pydantic's schema machinery and its
    plugin loader, which imports importlib.metadata), a tenth of a command's start-up; a value that is no
    choice goes to typer's adapter, which words the error (the tests compare both ways on every choice of every
    option). Returns whether it applied: a typer without that machinery is left as it is."""
    try:
        from typer.core import _TyperParameter
    except ImportError:  # pragma: no cover - typer before its pydantic coercion
        return False
    build = getattr(_TyperParameter, "get_runtime_param", None)
    if build is None or getattr(build, "_bertcalc_deferred", False):
        return build is not None
    try:
        from typer._param_types import coerce_cli_choice
    except ImportError:  # pragma: no cover - a typer that words its choices otherwise: its adapter does it all
        coerce_cli_choice = None

    class Deferred:
        __slots__ = ("owner",)

        def __init__(self, owner: Any) -> None:
            self.owner = owner

        def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
            many = param.multiple or param.nargs == -1
            if value is None and not many:
                return None  # what RuntimeParam.coerce gives for None, before it reads its adapter
            d = self.owner.type_descriptor
            if coerce_cli_choice is not None and not many and isinstance(d.annotation, type) \
                    and issubclass(d.annotation, enum.Enum) and d.parameter_info.parser is None \
                    and d.file_annotation is None:
                try:  # the function typer's choice adapter wraps, on the values it would pass it
                    return coerce_cli_choice(value, choices=tuple(d.annotation),
                                             case_sensitive=d.parameter_info.case_sensitive, ctx=ctx)
                except ValueError:
                    pass  # not a choice: typer's adapter words the error
            return build(self.owner).coerce(value, param=param, ctx=ctx)

    def get_runtime_param(self: Any) -> Any:
        built = getattr(self, "_runtime_param", None)
        return built if built is not None else Deferred(self)

    get_runtime_param._bertcalc_deferred = True  # type: ignore[attr-defined]
    _TyperParameter.get_runtime_param = get_runtime_param
    return True


_defer_unused_adapters()


def _choice(name: str, values: tuple[str, ...]) -> Any:
    """A typer choice enum over the core's values (member ``seq_cls`` is ``"seq-cls"``), never re-declared."""
    return enum.Enum(name, {v.replace("-", "_"): v for v in values}, type=str, module=__name__)


Format = _choice("Format", FORMATS)
Head = _choice("Head", HEADS)


# The run options' choice enums and the tuple of bertcalc.choices each is built from.
_RUN_SOURCES = {"Precision": "PRECISIONS", "OptimizerChoice": "OPTIMIZERS", "AttentionChoice": "ATTENTIONS",
                "Mode": "MODES"}


class _RunChoices(dict):
    """The run options' choice enums, built from :mod:`bertcalc.choices` the first time a command's signature
    names one (only flops and memory do)."""

    def __missing__(self, name: str) -> Any:
        if name not in _RUN_SOURCES:
            raise KeyError(name)
        from . import choices

        self[name] = made = _choice(name, getattr(choices, _RUN_SOURCES[name]))
        return made


_RUN_CHOICES = _RunChoices()


def __getattr__(name: str) -> Any:
    """``cli.Precision``, ``cli.Mode``...: the run choices, built on first use."""
    try:
        return _RUN_CHOICES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


class Layout(str, enum.Enum):
    pt = "pt"
    tf = "tf"


INTERNAL_ERROR = 70  # EX_SOFTWARE: a bug, never confused with inspect/verify's 1 ("found a difference")


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _flags_show_no_type() -> None:
    """typer's rich help prints ``<bool>`` beside flags such as --untie and --help, which take no value;
    users then type ``--untie true`` and get an error. Show nothing there instead."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "_bertcalc", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return "" if getattr(self, "is_flag", False) and self.metavar is None else shown(self, ctx)

    display_type_rich._bertcalc = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_type()


class _Sanitized:
    """A text stream that shows control characters instead of sending them: a tensor name in a checkpoint's
    header, a config's description or a Hub repo's ``architectures`` is someone else's text, and an ESC in it
    must not move the cursor, retitle the window or write the clipboard of whoever reads the output. C0 and C1
    controls (but newline and tab), DEL and the bidirectional controls become ``\\u001b``, ``\\u202e``; on a
    terminal the colour sequences bertcalc (or rich) writes itself, ``ESC [ ... m``, pass."""

    _CONTROL = None

    def __init__(self, stream: Any) -> None:
        import re

        self._stream = stream
        try:
            self._sgr = bool(stream.isatty())
        except (AttributeError, ValueError, OSError):
            self._sgr = False
        if _Sanitized._CONTROL is None:
            # and the bidirectional controls ("Trojan Source": U+202A-202E, U+2066-2069, LRM, RLM, ALM), which
            # reorder what a terminal shows: a name would read as another
            _Sanitized._CONTROL = re.compile(
                r"\x1b\[[0-9;:]*m|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")

    def _shown(self, m: Any) -> str:
        s = m.group()
        return s if self._sgr and len(s) > 1 else "".join(f"\\u{ord(c):04x}" for c in s[:1]) + s[1:]

    def write(self, text: str) -> int:
        if self._CONTROL.search(text):
            text = self._CONTROL.sub(self._shown, text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class BertcalcGroup(TyperGroup):
    """Runs a command and owns the outcome: one line per error on stderr, and the exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        prog = prog_name or "bertcalc"
        argv = sys.argv[1:] if args is None else list(args)
        sub = next((a for a in argv if not a.startswith("-")), None)
        where_cmd = f"{prog} {sub}" if sub in self.commands else prog
        _NOTES.clear()
        streams = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = (None if f is None else _Sanitized(f) for f in streams)
        try:
            return self._main(args, argv, prog, where_cmd, complete_var, extra)
        finally:
            sys.stdout, sys.stderr = streams

    def _main(self, args: Any, argv: list[str], prog: str, where_cmd: str, complete_var: Any, extra: dict) -> Any:
        from typer._click import exceptions as click_exc
        from typer.exceptions import Abort

        try:
            rv = super().main(args=args, prog_name=prog, complete_var=complete_var, standalone_mode=False, **extra)
            if sys.stdout is not None:
                _to_stdout(sys.stdout.flush)  # here, not at exit: a full disk must be said, not ignored
        except BertcalcError as exc:
            for line in _messages(exc):
                _stderr(f"{where_cmd}: error: {line}\n")
            sys.exit(exc.exit_code)
        except UnicodeEncodeError as exc:
            enc = getattr(sys.stdout, "encoding", None) or exc.encoding
            _stderr(f"{where_cmd}: error: standard output's encoding ({enc}) cannot write "
                    f"U+{ord(exc.object[exc.start]):04X}; set PYTHONIOENCODING=utf-8, or write a file with -o FILE "
                    "(always UTF-8)\n")
            _quiet_stdout()
            sys.exit(1)
        except click_exc.NoArgsIsHelpError as exc:
            sys.stdout.write(exc.ctx.get_help() + "\n")
            sys.exit(0)
        except click_exc.ClickException as exc:
            where = exc.ctx.command_path if getattr(exc, "ctx", None) else prog
            if where == prog:  # click raised before the subcommand had a context: name it anyway
                where = where_cmd
            hint = f" (see '{where} --help')" if isinstance(exc, click_exc.UsageError) else ""
            msg = _plain(_one_line(exc.format_message()))
            param = getattr(exc, "param", None)
            if isinstance(exc, click_exc.BadParameter) and param is not None:
                given = _given(argv, getattr(param, "opts", []))
                if given is not None and repr(given) not in msg:
                    shown = repr(given) if len(given) <= 60 else f"{given[:40]!r}... ({len(given):,} characters)"
                    msg += f", got {shown}"
            _stderr(f"{where}: error: {msg}{hint}\n")
            sys.exit(2 if isinstance(exc, click_exc.UsageError) else exc.exit_code)
        except Abort:
            _stderr(f"{prog}: aborted\n")
            sys.exit(1)
        except BrokenPipeError:
            # the reader went away (| head): stop quietly
            _quiet_stdout()
            sys.exit(0)
        except KeyboardInterrupt:
            sys.exit(130)
        except _StdoutError as err:  # /dev/full, a closed descriptor, an I/O error: the output failed (exit 1)
            exc = err.original
            _stderr(f"{where_cmd}: error: cannot write to standard output ({exc.strerror or exc}); the output is "
                    "incomplete\n")
            _quiet_stdout()
            sys.exit(1)
        except OSError as exc:
            if exc.filename is None or os.environ.get("BERTCALC_DEBUG"):
                raise _Bug(exc) from exc
            from .paths import problem  # a path the system refused, that no check above named: still bad input

            _stderr(f"{where_cmd}: error: {str(exc.filename)[:200]}: {problem(exc)}\n")
            sys.exit(2)
        except Exception as exc:  # a bug: say so in one line; BERTCALC_DEBUG=1 shows the traceback
            if os.environ.get("BERTCALC_DEBUG"):
                raise
            if isinstance(exc, _Bug):
                exc = exc.original
            _stderr(
                f"{where_cmd}: internal error: {type(exc).__name__}: {_one_line(str(exc))[:500]} "
                "(please report it; set BERTCALC_DEBUG=1 for details)\n"
            )
            sys.exit(INTERNAL_ERROR)
        sys.exit(rv if isinstance(rv, int) else 0)


class _Bug(Exception):
    """An OSError that no input explains: reported as an internal error."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


class _StdoutError(Exception):
    """Writing or flushing standard output failed (a full disk or device, a closed descriptor)."""

    def __init__(self, original: OSError) -> None:
        super().__init__(str(original))
        self.original = original


def _to_stdout(write: Any) -> None:
    """Run ``write()``, which writes to stdout; an OSError there (not a closed pipe) is an output failure."""
    try:
        write()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise _StdoutError(exc) from None


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's own flush at exit finds nothing to complain of."""
    import contextlib

    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _plain(msg: str) -> str:
    """Say pydantic's coercion messages in the words the rest of bertcalc uses."""
    msg = msg.replace("Value error, ", "")
    msg = msg.replace("Input should be a valid integer, unable to parse string as an integer", "must be a whole number")
    msg = msg.replace("Input should be a valid number, unable to parse string as a number", "must be a number")
    msg = msg.replace("Input should be greater than or equal to ", "must be ≥ ")
    msg = msg.replace("Input should be less than or equal to ", "must be ≤ ")
    return msg


def _given(args: list[str], opts: list[str]) -> str | None:
    """The raw text the user gave for an option, to quote it back in an error."""
    for i, a in enumerate(args):
        for o in opts:
            if a == o and i + 1 < len(args):
                return args[i + 1]
            if a.startswith(o + "="):
                return a[len(o) + 1 :]
    return None


# The library's parameter -> the flag that sets it: the one place the two vocabularies meet. Core errors name
# the parameter (``param="pooler"``); the message line names the flag. Config overrides are recorded by flag too.
FLAGS = {
    # the model
    "layers": "--layers", "hidden": "--hidden", "heads": "--heads", "intermediate": "--intermediate",
    "vocab": "--vocab", "max_positions": "--max-positions", "type_vocab": "--type-vocab",
    "embedding_size": "--embedding-size", "labels": "--labels", "tie_word_embeddings": "--untie",
    "head": "--head", "pooler": "--no-pooler",
    "model": "--model",  # MODEL or --model
    # the run
    "batch": "--batch", "seq": "--seq", "choices": "--choices", "gpu": "--gpu", "mfu": "--mfu",
    "peak_tflops": "--peak-tflops",
    "precision": "--precision", "mode": "--mode", "optimizer": "--optimizer", "attention": "--attention",
    "fit": "--fit", "zero": "--zero", "gpus": "--gpus", "axes": "--sweep", "context": "--context",
    "reserved": "--reserved", "alloc_conf": "--alloc-conf", "grad_checkpointing": "--grad-checkpointing",
    "nodes": "--nodes", "offload": "--offload", "fsdp": "--fsdp", "reshard": "--no-reshard", "link_gbps": "--link-gbps",
    # fine-tuning
    "lora": "--lora", "adapter": "--adapter", "freeze": "--freeze", "train": "--train",
    # the output
    "format": "--format",
}


# Parameters that core messages name (errors.arg) beyond FLAGS': how the model is given. They are not in FLAGS, whose
# keys also say which flag an error's ``param`` puts in front of its line.
NAMED = {**FLAGS, "preset": "--preset", "config_file": "--config", "revision": "--revision", "offline": "--offline"}


def _messages(exc: BertcalcError) -> list[str]:
    from .errors import ConfigError, spell

    lines = [spell(line, NAMED) for line in exc.lines]
    flag = FLAGS.get(exc.param) if exc.param and not isinstance(exc, ConfigError) else None
    if flag:
        lines = [line if line.startswith(flag) else f"{flag}: {line}" for line in lines]
    return lines


app = typer.Typer(
    cls=BertcalcGroup,
    name="bertcalc",
    help="Exact shapes and parameter counts for BERT-family models, in closed form, without PyTorch.",
    epilog="Docs: https://github.com/bertcalc/bertcalc/tree/main/docs  ·  Example: bertcalc count --preset base",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

def _version(value: bool) -> None:
    if value:
        from . import __version__

        sys.stdout.write(f"bertcalc {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", "-V", help="Print the version and exit.", is_eager=True,
                                          callback=_version)] = False,
) -> None:
    """Exact shapes and parameter counts for BERT-family models, in closed form, without PyTorch."""


# ----------------------------------------------------------------------------------------- shared options

PANEL_MODEL = "Model"
PANEL_OUT = "Output"

PresetOpt = Annotated[
    str | None,
    typer.Option("--preset", "-p", help="A shipped preset (see 'bertcalc presets'), e.g. base.",
                 rich_help_panel=PANEL_MODEL, show_default=False),
]
ConfigOpt = Annotated[
    str | None,
    typer.Option("--config", "-c", help="A config: bertcalc YAML, HF config.json, or a model folder; - reads "
                 "standard input.", rich_help_panel=PANEL_MODEL, show_default=False, metavar="PATH"),
]
ModelArg = Annotated[str | None, typer.Argument(
    help="The model: a preset, a config file or model folder, or a Hugging Face Hub id (org/name). A preset name "
         "wins, then a path that exists.", show_default=False, metavar="[MODEL]")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", "-m", help="The model, as MODEL: a preset, a path, or a Hub id such as google-bert/bert-base-uncased.",
    rich_help_panel=PANEL_MODEL, show_default=False)]
RevisionOpt = Annotated[str | None, typer.Option(
    "--revision", help="Hub id: the branch, tag or commit to read (default: main).", rich_help_panel=PANEL_MODEL,
    show_default=False)]
OfflineOpt = Annotated[bool, typer.Option(
    "--offline", help="Hub id: the local HF cache only, no network (as HF_HUB_OFFLINE=1).",
    rich_help_panel=PANEL_MODEL)]
LayersOpt = Annotated[int | None, typer.Option("--layers", help="num_hidden_layers (L).",
                                               rich_help_panel=PANEL_MODEL, show_default=False)]
HiddenOpt = Annotated[int | None, typer.Option(
    "--hidden", help="hidden_size (H). Without --intermediate, intermediate_size becomes 4 × H.",
    rich_help_panel=PANEL_MODEL, show_default=False)]
HeadsOpt = Annotated[int | None, typer.Option("--heads", help="num_attention_heads (A); must divide H.",
                                              rich_help_panel=PANEL_MODEL, show_default=False)]
InterOpt = Annotated[int | None, typer.Option("--intermediate", help="intermediate_size (I), the FFN width.",
                                              rich_help_panel=PANEL_MODEL, show_default=False)]
VocabOpt = Annotated[int | None, typer.Option("--vocab", help="vocab_size (V).",
                                              rich_help_panel=PANEL_MODEL, show_default=False)]
MaxPosOpt = Annotated[int | None, typer.Option("--max-positions", help="max_position_embeddings (P).",
                                               rich_help_panel=PANEL_MODEL, show_default=False)]
TypeVocabOpt = Annotated[int | None, typer.Option("--type-vocab", help="type_vocab_size (T).",
                                                  rich_help_panel=PANEL_MODEL, show_default=False)]
NoPoolerOpt = Annotated[bool, typer.Option("--no-pooler", help="Drop the pooler (HF add_pooling_layer=False).",
                                           rich_help_panel=PANEL_MODEL)]
EmbOpt = Annotated[int | None, typer.Option("--embedding-size", help="embedding_size (E), ALBERT and ELECTRA.",
                                            rich_help_panel=PANEL_MODEL, show_default=False)]
LabelsOpt = Annotated[int | None, typer.Option(
    "--labels", help="num_labels, for --head seq-cls, token-cls or qa (default 2).", rich_help_panel=PANEL_MODEL,
    show_default=False)]
UntieOpt = Annotated[bool, typer.Option("--untie", help="Give the MLM decoder its own weight "
                                        "(tie_word_embeddings: false).", rich_help_panel=PANEL_MODEL)]
HeadOpt = Annotated[Head | None, typer.Option(
    "--head", help="Model class: model (BertModel...), mlm, pretraining, seq-cls, token-cls, qa, multiple-choice, "
    "causal-lm, nsp (default: the class config.json's architectures names, else model; compare: model).",
    rich_help_panel=PANEL_MODEL, case_sensitive=False, show_default=False)]
CheckpointConfigOpt = Annotated[str | None, typer.Option(
    "--config", "-c", help="The config to check against (default: config.json beside the checkpoint).",
    rich_help_panel=PANEL_MODEL, show_default=False)]
CheckpointHeadOpt = Annotated[Head | None, typer.Option(
    "--head", help="Model class (default: from config.json's architectures, else model).",
    rich_help_panel=PANEL_MODEL, case_sensitive=False, show_default=False)]
FormatOpt = Annotated[Format | None, typer.Option(
    "--format", "-f", help="Output format (default: table, or the -o file's extension).", rich_help_panel=PANEL_OUT,
    case_sensitive=False, show_default=False)]
# str, not Path: typer turns '' into Path('.'), and the message would then be about the current folder
OutputOpt = Annotated[str | None, typer.Option(
    "--output", "-o", help="Write to FILE (atomically) instead of stdout; - is stdout.", rich_help_panel=PANEL_OUT,
    show_default=False, metavar="FILE")]
ForceOpt = Annotated[bool, typer.Option(
    "--force", help="With -o: replace the file even if it is read-only.", rich_help_panel=PANEL_OUT)]


def _overrides(flags: dict[str, Any], untie: bool = False) -> tuple[dict[str, Any], dict[str, str]]:
    """Flags -> overrides keyed by flag name (the family's config maps them to its own fields), and origins."""
    overrides = {flag: value for flag, value in flags.items() if value is not None}
    origins = {flag: FLAGS[flag] for flag in overrides}
    if untie:
        overrides["tie_word_embeddings"] = False
        origins["tie_word_embeddings"] = FLAGS["tie_word_embeddings"]
    return overrides, origins


_NOTES: list[str] = []


def _note(command: str, text: str) -> None:
    """A flag that has no effect here: said once on stderr, and the run goes on. Held until the report is
    made, so that a run that fails shows its one error line and nothing else."""
    _NOTES.append(f"bertcalc {command}: note: {text}\n")


def _set_by_user(name: str) -> bool:
    """Whether the option behind parameter ``name`` was set on the command line or from the environment,
    not left at its default."""
    from typer._click.core import ParameterSource
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    source = ctx.get_parameter_source(name) if ctx is not None else None
    return source not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def _check_heads_use(spec: ModelSpec, labels: int | None, untie: bool, command: str) -> None:
    if labels is None and not untie:
        return
    from .architecture import build

    unused = build(spec.config, head=spec.head).unused_fields
    if labels is not None and "num_labels" in unused:
        _note(command, f"--labels has no effect on --head {spec.head}; it sizes seq-cls, token-cls and qa heads")
    if untie and "tie_word_embeddings" in unused:
        _note(command, f"--untie has no effect on --head {spec.head}, which has no decoder tied to the embeddings")


# ------------------------------------------------------------------------------------------ option groups


class OptionGroup:
    """Options several commands share, declared once, in the style of sqlite-utils' option decorators.

    ``@group`` on a command replaces its parameter named ``into`` with the group's options, in that place of
    its signature (so ``--help`` lists them there), and calls it with what ``collect(command, values)``
    makes of their values: a resolved :class:`~bertcalc.loading.ModelSpec`, or keyword arguments for the API.
    """

    def __init__(self, into: str, collect: Callable[[str, dict[str, Any]], Any], **options: tuple[Any, Any]):
        self.into = into
        self.collect = collect
        self.params = tuple(_inspect.Parameter(name, _inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                                               default=default) for name, (annotation, default) in options.items())

    def __call__(self, fn: Callable[..., Any]) -> _Command:
        return _Command(fn, self)


class _Command:
    """A command callback whose signature is the function's own, with a group's options in place of ``into``.

    typer reads ``__signature__`` when it builds a command, and ``main`` builds only the command being run, so
    the signature (and the choice enums it names: flops' and memory's come from memsim) is made then, once.
    """

    def __init__(self, fn: Callable[..., Any], group: OptionGroup) -> None:
        functools.update_wrapper(self, fn)
        self.__annotations__: dict[str, Any] = {}  # the types are in __signature__; fn's are unevaluated strings
        self._fn = fn
        self._group = group

    @functools.cached_property
    def __signature__(self) -> _inspect.Signature:  # type: ignore[override]
        params: list[_inspect.Parameter] = []
        for p in _inspect.signature(self._fn).parameters.values():
            if p.name == self._group.into:
                params.extend(self._group.params)
                continue
            annotation = p.annotation  # a string (postponed annotations): evaluate it as get_type_hints would
            if isinstance(annotation, str):
                annotation = eval(annotation, self._fn.__globals__, _RUN_CHOICES)  # as get_type_hints does
            params.append(p.replace(kind=_inspect.Parameter.KEYWORD_ONLY, annotation=annotation))
        return _inspect.Signature(params)

    def __call__(self, **kwargs: Any) -> Any:
        values = {p.name: kwargs.pop(p.name) for p in self._group.params}
        kwargs[self._group.into] = self._group.collect(self.__name__, values)
        return self._fn(**kwargs)


def _model_name(model: str | None, model_opt: str | None) -> str | None:
    """MODEL or --model, given at most once."""
    if model is not None and model_opt is not None:
        from .errors import UsageError

        raise UsageError(f"MODEL {model!r} and --model {model_opt!r} both name the model; give one", param="model")
    return model if model is not None else model_opt


def _model_spec(command: str, o: dict[str, Any]) -> ModelSpec:
    """The model options -> the resolved spec, with a note for --labels or --untie on a head they do not size,
    and for --revision or --offline on a model that is not a Hub id."""
    from .config import FLAG_NAMES
    from .loading import resolve

    overrides, origins = _overrides({name: o[name] for name in FLAG_NAMES}, o["untie"])
    preset, config, hub_id = o["preset"], o["config"], None
    name = _model_name(o["model"], o["model_opt"])
    if name is not None:
        from .api import model_sources
        from .errors import UsageError

        try:
            src = model_sources(name, preset, config)
        except UsageError as exc:
            if exc.param != "model" or o["model"] is None:
                raise
            raise UsageError(f"MODEL {exc.text}") from None  # the positional argument: no --model to prefix
        preset, config, hub_id = src["preset"], src["config_file"], src["model"]
    if hub_id is None and (o["revision"] is not None or o["offline"]):
        _note(command, "--revision and --offline apply to a Hub model id (org/name); this model is not one")
    spec = resolve(preset=preset, config_file=config, overrides=overrides, override_origins=origins,
                   model=hub_id, revision=o["revision"], offline=o["offline"] or None,
                   head=o["head"].value if o["head"] else None, pooler=not o["no_pooler"])
    _check_heads_use(spec, o["labels"], o["untie"], command)
    return spec


def _checkpoint_model(command: str, o: dict[str, Any]) -> dict[str, Any]:
    """inspect's model options -> api.inspect's keywords: the config beside the checkpoint is its default."""
    overrides, origins = _overrides(dict(labels=o["labels"]), o["untie"])
    return dict(preset=o["preset"], config_file=o["config"], head=o["head"].value if o["head"] else None,
                override_origins=origins, revision=o["revision"], offline=o["offline"] or None, **overrides)


def _model_class(command: str, o: dict[str, Any]) -> dict[str, Any]:
    """compare's model options -> api.compare's keywords: one class for every config."""
    return dict(head=o["head"].value if o["head"] else "model", pooler=not o["no_pooler"])


model_options = OptionGroup(
    "spec", _model_spec,
    model=(ModelArg, None), model_opt=(ModelOpt, None), revision=(RevisionOpt, None), offline=(OfflineOpt, False),
    preset=(PresetOpt, None), config=(ConfigOpt, None), layers=(LayersOpt, None), hidden=(HiddenOpt, None),
    heads=(HeadsOpt, None), intermediate=(InterOpt, None), vocab=(VocabOpt, None), max_positions=(MaxPosOpt, None),
    type_vocab=(TypeVocabOpt, None), embedding_size=(EmbOpt, None), head=(HeadOpt, None),
    labels=(LabelsOpt, None), untie=(UntieOpt, False), no_pooler=(NoPoolerOpt, False),
)
checkpoint_model_options = OptionGroup(
    "model_kw", _checkpoint_model,
    preset=(PresetOpt, None), config=(CheckpointConfigOpt, None), head=(CheckpointHeadOpt, None),
    labels=(LabelsOpt, None), untie=(UntieOpt, False), revision=(RevisionOpt, None), offline=(OfflineOpt, False),
)
model_class_options = OptionGroup("model_kw", _model_class, head=(HeadOpt, None), no_pooler=(NoPoolerOpt, False))


PANEL_TUNE = "Fine-tuning"


def _tune_kw(command: str, o: dict[str, Any]) -> dict[str, Any]:
    """The fine-tuning options -> the API's keywords (lora, adapter, freeze, train)."""
    return {k: v for k, v in o.items() if v is not None}


tune_options = OptionGroup(
    "tune", _tune_kw,
    lora=(Annotated[str | None, typer.Option(
        "--lora", help="A LoRA adapter as PEFT adds it: r=8,alpha=16,targets=query+value (or all-linear), and "
        "optionally dropout=, bias=none|all|lora_only, dora=true, layers=0-5, save=classifier (modules_to_save), "
        "exclude=, rank=query:16, alpha_of=query:32, task=auto|none|SEQ_CLS|TOKEN_CLS|QUESTION_ANS.",
        rich_help_panel=PANEL_TUNE, show_default=False)], None),
    adapter=(Annotated[str | None, typer.Option(
        "--adapter", help="A peft adapter_config.json (or the folder holding it) instead of --lora.",
        rich_help_panel=PANEL_TUNE, show_default=False)], None),
    freeze=(Annotated[str | None, typer.Option(
        "--freeze", help="Freeze parts without an adapter: embeddings, layers=0-5, pooler, head, base.",
        rich_help_panel=PANEL_TUNE, show_default=False)], None),
    train=(Annotated[str | None, typer.Option(
        "--train", help="Train only these parts (the rest frozen): head, pooler, embeddings, layers=10-11.",
        rich_help_panel=PANEL_TUNE, show_default=False)], None),
)


_EXTENSIONS = {".json": Format.json, ".yaml": Format.yaml, ".yml": Format.yaml, ".csv": Format.csv,
               ".md": Format.markdown, ".markdown": Format.markdown, ".svg": Format.svg}


def _emit(report: Any, fmt: Any, output: str | Path | None, explain: bool = False,
          force: bool = False) -> None:
    """Render and write: to stdout, or atomically to ``-o FILE`` (``-o -`` is stdout). Without --format the
    file's extension picks it (.json, .yaml, .csv, .md), else the table."""
    while _NOTES:
        _stderr(_NOTES.pop(0))
    if output is not None and str(output) == "-":
        output = None
    if fmt is None:
        fmt = _EXTENSIONS.get(Path(output).suffix.lower(), Format.table) if output else Format.table
    if output is not None:
        from .fileio import write_atomic

        write_atomic(output, _output(report, fmt, explain), force=force)
        return
    if sys.stdout is None:
        from .fileio import OutputError

        raise OutputError("standard output is closed; give -o FILE to write a file", exit_code=1)
    if fmt is Format.table:
        from .render.text import print_report

        _to_stdout(lambda: print_report(report, explain=explain))
    else:
        text = _output(report, fmt, explain)
        _to_stdout(lambda: _write_all(text))


def _output(report: Any, fmt: Format, explain: bool) -> Any:
    """The rendered text, or its pieces where the report streams (shapes as CSV or JSON: 10^5 layers are
    written as they are made, in constant memory)."""
    from .render import render
    from .render.stream import chunks, streams

    return chunks(report, fmt.value) if streams(report, fmt.value) else render(report, fmt.value, explain=explain)


def _write_all(text: Any) -> None:
    for piece in [text] if isinstance(text, str) else text:
        sys.stdout.write(piece)


def _stderr(text: str) -> None:
    """A line on stderr, if there is one (a closed stderr is None)."""
    if sys.stderr is not None:
        import contextlib

        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(text)


# ------------------------------------------------------------------------------------------------ commands


@app.command()
@tune_options
@model_options
def count(
    spec: ModelSpec,
    tune: dict[str, Any],
    explain: Annotated[bool, typer.Option("--explain", "-e", help="Show each row's formula, with numbers.",
                                          rich_help_panel=PANEL_OUT)] = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """Count parameters by component: embeddings, one encoder layer × L, pooler, total.

    With --lora/--adapter (PEFT's LoRA) or --freeze/--train, also the trainable and frozen figures, equal to
    PEFT's get_nb_trainable_parameters().

    Example: bertcalc count --preset base --explain
    """
    from .api import count as count_

    _emit(count_(spec, **tune), fmt, output, explain, force=force)


@app.command()
@tune_options
@model_options
def shapes(
    spec: ModelSpec,
    tune: dict[str, Any],
    layout: Annotated[Layout, typer.Option(
        "--layout", help="Linear weights as PyTorch \\[out, in] (pt) or TensorFlow/Keras \\[in, out] (tf).",
        case_sensitive=False)] = Layout.pt,
    batch: Annotated[int | None, typer.Option("--batch", "-b", min=1, show_default=False,
                                              help="Batch size B: also show activation shapes.")] = None,
    seq: Annotated[int | None, typer.Option("--seq", "-s", min=1, show_default=False,
                                            help="Sequence length S (≤ max_position_embeddings).")] = None,
    collapse: Annotated[bool, typer.Option(
        "--collapse", help="One row per layer template (encoder.layer.{i}.…) instead of one per layer.")] = False,
    choices: ChoicesOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """List every weight tensor by its HF state-dict name, with shape and parameters.

    With --batch and --seq, also list the activations of one forward pass, in order.

    Example: bertcalc shapes --preset tiny --batch 8 --seq 128
    """
    from .api import shapes as shapes_

    _emit(shapes_(spec, layout=layout.value, batch=batch, seq=seq, collapse=collapse, choices=choices, **tune), fmt,
          output, force=force)


@app.command()
@model_class_options
def compare(
    items: Annotated[list[str] | None, typer.Argument(
        help="Two or more configs: a preset, a config file or a Hub id (org/name), each optionally with "
             "':key=value,...' overrides, e.g. base base:num_hidden_layers=6 large.", show_default=False)] = None,
    *,
    model_kw: dict[str, Any],
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """Compare two or more configs side by side, each against the first.

    Overrides take HF field names or flag names: base:layers=6,hidden=512,heads=8 (hidden alone sets I = 4H).

    Example: bertcalc compare base base:num_hidden_layers=6 large
    """
    from .api import compare as compare_

    _emit(compare_(list(items or []), **model_kw), fmt, output, force=force)


@app.command()
@checkpoint_model_options
def inspect(
    path: Annotated[str, typer.Argument(help="A model.safetensors file, a model folder, a shard index "
                                             "(model.safetensors.index.json), or a Hub model id (org/name).",
                                        show_default=False, metavar="PATH|ID")],
    model_kw: dict[str, Any],
    download_bytes: Annotated[bool, typer.Option(
        "--download-bytes", help="Hub id: report the bytes read from the Hub (config, index, headers).",
        rich_help_panel=PANEL_OUT)] = False,
    diff: Annotated[bool, typer.Option(
        "--diff", help="List only the differing tensors, in every format (the counts stay whole).",
        rich_help_panel=PANEL_OUT)] = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """Check a safetensors checkpoint against its config: matched, missing, unexpected, shape mismatch.

    Reads the header only (no tensor data, no torch). Exits 0 on a full match, 1 on any difference. A Hub id's
    headers are read from the HF cache, else with HTTP range requests: no weight byte is downloaded.

    Example: bertcalc inspect ./all-MiniLM-L6-v2
    """
    from .api import inspect as inspect_

    if (model_kw["revision"] is not None or model_kw["offline"]) and os.path.exists(path):
        _note("inspect", "--revision and --offline apply to a Hub model id (org/name); this is a local path")
    report = inspect_(path, download_bytes=download_bytes, **model_kw)
    if diff:
        import dataclasses

        report = dataclasses.replace(report, only_differences=True)
    _emit(report, fmt, output, force=force)
    raise typer.Exit(0 if report.ok else 1)


@app.command()
@model_options
def verify(spec: ModelSpec, fmt: FormatOpt = None, output: OutputOpt = None, force: ForceOpt = False) -> None:
    """Build the model with real transformers (meta device, no weights) and compare every name, shape, total.

    Needs torch and transformers: pip install 'bertcalc\\[verify]'. Exits 0 only on an exact match.

    Example: bertcalc verify --preset base --head mlm
    """
    from .api import verify as verify_

    report = verify_(spec)
    _emit(report, fmt, output, force=force)
    raise typer.Exit(0 if report.ok else 1)


BatchOpt = Annotated[int, typer.Option("--batch", "-b", min=1, help="Batch size B.", rich_help_panel="Run")]
ChoicesOpt = Annotated[int | None, typer.Option(
    "--choices", min=1, help="--head multiple-choice: candidates per example C; the input [B, C, S] runs as B·C "
    "rows (default 4).", rich_help_panel="Run", show_default=False)]
SeqOpt = Annotated[int, typer.Option("--seq", "-s", min=1, help="Sequence length S (≤ max_position_embeddings).",
                                     rich_help_panel="Run")]
GpuOpt = Annotated[str | None, typer.Option(
    "--gpu", help="A100, A100-40GB, H100, H200, L4, T4, A10G, RTX4090 or RTX3090: peak TFLOP/s (flops) or "
    "memory size (memory --fit).",
    rich_help_panel="Run", show_default=False)]


@app.command()
@tune_options
@model_options
def flops(
    spec: ModelSpec,
    tune: dict[str, Any],
    batch: BatchOpt = 8,
    seq: SeqOpt = 128,
    choices: ChoicesOpt = None,
    gpu: GpuOpt = None,
    precision: Annotated[Precision | None, typer.Option(  # noqa: F821 (a run choice: see _RunChoices)
        "--precision", help="Which peak the GPU time uses (default bf16, or the --gpu card's best: fp16 on a T4).",
        rich_help_panel="Run",
        case_sensitive=False, show_default=False)] = None,
    mfu: Annotated[float | None, typer.Option(
        "--mfu", help="Model FLOPs utilisation for the time (default 0.40).",
        rich_help_panel="Run", show_default=False)] = None,
    peak_tflops: Annotated[float | None, typer.Option(
        "--peak-tflops", help="Peak TFLOP/s of any other accelerator (with --gpu: overrides its peak).",
        rich_help_panel="Run", show_default=False)] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """Count matmul FLOPs of a forward pass and a training step, by component, as FlopCounterMode does.

    With --gpu (or --peak-tflops), also the time per step at the given MFU.

    Example: bertcalc flops --preset base --batch 32 --seq 512 --gpu H100
    """
    from .api import flops as flops_

    if gpu is None and peak_tflops is None and (mfu is not None or precision is not None):
        _note("flops", "--mfu and --precision set the time per step, which needs --gpu or --peak-tflops")
    _emit(flops_(spec, **tune, batch=batch, seq=seq, gpu=gpu, mfu=0.40 if mfu is None else mfu, peak_tflops=peak_tflops,
                 precision=None if precision is None else precision.value, choices=choices), fmt, output, force=force)


def _fit_size(value: str | None) -> str | None:
    """Catch the sizes the parser would turn into an overflow or a zero, and say what is wrong with them;
    everything else (units, syntax) is the core's to check."""
    import re
    from decimal import Decimal, InvalidOperation

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", value or "")
    if m is None:
        return value
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:  # pragma: no cover - the pattern only admits decimals
        return value
    if number > 0 and len(m.group(1).split(".")[0].lstrip("0")) > 30:
        raise typer.BadParameter("the size is larger than any memory; give a size such as 80GiB")
    units = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20,
             "gib": 2**30, "tib": 2**40}
    scale = units.get(m.group(2).lower())
    if scale is not None and 0 < number * scale < 1:
        raise typer.BadParameter("the size is less than one byte; give a size such as 80GiB")
    return value


def _zero_stage(value: int | None) -> int | None:
    if value is not None and value not in (1, 2, 3):
        raise typer.BadParameter("a ZeRO stage is 1, 2 or 3")
    return value


PANEL_DIST = "Multi-GPU"


def _dist_kw(command: str, o: dict[str, Any]) -> dict[str, Any]:
    """The multi-GPU options -> api.memory's keywords."""
    return dict(zero=o["zero"], gpus=o["gpus"], nodes=o["nodes"], offload=None if o["offload"] is None else
                o["offload"].value, fsdp=o["fsdp"], reshard=not o["no_reshard"], link_gbps=o["link_gbps"])


Offload = enum.Enum("Offload", {"optimizer": "optimizer", "param": "param", "both": "both"}, type=str,
                    module=__name__)

dist_options = OptionGroup(
    "dist", _dist_kw,
    zero=(Annotated[int | None, typer.Option(
        "--zero", callback=_zero_stage, help="DeepSpeed ZeRO stage 1, 2 or 3: per-rank GPU and CPU memory, "
        "DeepSpeed's own estimate and the paper's formulas.", rich_help_panel=PANEL_DIST, show_default=False)], None),
    fsdp=(Annotated[bool, typer.Option("--fsdp", help="PyTorch FSDP2 fully_shard, one unit per encoder layer + "
                                       "the root; --precision bf16/fp16 is its MixedPrecisionPolicy.",
                                       rich_help_panel=PANEL_DIST)], False),
    gpus=(Annotated[int | None, typer.Option(
        "--gpus", min=1, help="GPUs per node (data-parallel ranks; alone: DDP). --batch is per GPU.",
        rich_help_panel=PANEL_DIST, show_default=False)], None),
    nodes=(Annotated[int, typer.Option("--nodes", min=1, help="Nodes (world size = gpus × nodes).",
                                       rich_help_panel=PANEL_DIST)], 1),
    offload=(Annotated[Offload | None, typer.Option(
        "--offload", help="ZeRO CPU offload: optimizer (offload_optimizer), param (offload_param, ZeRO-3) or both.",
        rich_help_panel=PANEL_DIST, case_sensitive=False, show_default=False)], None),
    no_reshard=(Annotated[bool, typer.Option("--no-reshard", help="FSDP2 reshard_after_forward=False for the layer "
                                             "units.", rich_help_panel=PANEL_DIST)], False),
    link_gbps=(Annotated[float | None, typer.Option(
        "--link-gbps", help="Per-GPU link bandwidth in Gbit/s: the step's communication time.",
        rich_help_panel=PANEL_DIST, show_default=False)], None),
)


@app.command()
@tune_options
@dist_options
@model_options
def memory(
    spec: ModelSpec,
    tune: dict[str, Any],
    batch: BatchOpt = 8,
    seq: SeqOpt = 128,
    choices: ChoicesOpt = None,
    mode: Annotated[Mode, typer.Option("--mode", help="A training step (forward, backward, optimizer) or a "  # noqa: F821
                                       "no-grad forward.", rich_help_panel="Run", case_sensitive=False)] = "train",
    precision: Annotated[Precision, typer.Option(  # noqa: F821
        "--precision", help="fp32; fp16/bf16 (model cast to half); amp-bf16/amp-fp16 (fp32 weights, autocast).",
        rich_help_panel="Run", case_sensitive=False)] = "fp32",
    optimizer: Annotated[OptimizerChoice | None, typer.Option(  # noqa: F821
        "--optimizer", help="Optimizer states (--mode train; default adamw, PyTorch's fused AdamW).",
        rich_help_panel="Run", case_sensitive=False, show_default=False)] = None,
    attention: Annotated[AttentionChoice, typer.Option(  # noqa: F821
        "--attention", help="HF attn_implementation: eager materialises \\[B, A, S, S]; sdpa does not.",
        rich_help_panel="Run", case_sensitive=False)] = "eager",
    grad_checkpointing: Annotated[bool, typer.Option(
        "--grad-checkpointing", help="Keep only each layer's input; recompute the layer in the backward.",
        rich_help_panel="Run")] = False,
    fit: Annotated[str | None, typer.Option(
        "--fit", help="The card's memory (80GiB, 24GB): the largest batch whose reserved memory and CUDA context "
        "fit at this --seq.",
        rich_help_panel="Run", show_default=False, callback=_fit_size)] = None,
    gpu: GpuOpt = None,
    dist: dict[str, Any] | None = None,
    reserved: Annotated[bool, typer.Option(
        "--reserved", help="Also show peak reserved memory (the caching allocator replayed) without a budget; "
        "with --fit or --gpu it is always shown, and decides.", rich_help_panel="Run")] = False,
    context: Annotated[str | None, typer.Option(
        "--context", help="CUDA context left out of the --fit/--gpu budget (default 512MiB).",
        rich_help_panel="Run", show_default=False, callback=_fit_size)] = None,
    alloc_conf: Annotated[str | None, typer.Option(
        "--alloc-conf", help="PYTORCH_CUDA_ALLOC_CONF for the reserved replay: expandable_segments:True, "
        "max_split_size_mb:N, roundup_power2_divisions:N.", rich_help_panel="Run", show_default=False)] = None,
    sweep: Annotated[list[str] | None, typer.Option(
        "--sweep", help="A grid instead: AXIS=VALUES over batch, seq, precision, attention, e.g. --sweep "
        "batch=8..256 --sweep seq=128,256,512 (or one quoted value with both).", rich_help_panel="Sweep",
        show_default=False)] = None,
    mfu: Annotated[float | None, typer.Option(
        "--mfu", help="--sweep: also the time per step at this model FLOPs utilisation (with --gpu or "
        "--peak-tflops).", rich_help_panel="Sweep", show_default=False)] = None,
    peak_tflops: Annotated[float | None, typer.Option(
        "--peak-tflops", help="--sweep: the peak TFLOP/s the time per step uses (default: the --gpu card's).",
        rich_help_panel="Sweep", show_default=False)] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """Estimate peak GPU memory of a training step or inference, term by term, with the formula behind each.

    With --zero, --fsdp or --gpus, also each rank's GPU and CPU memory under DeepSpeed ZeRO, FSDP2 or DDP, term
    by term with the engine's rule behind each, and the communication per step.

    With --sweep, a grid: rows of sequence length (and precision, attention), a column per batch, each cell the
    peak in GiB, coloured against --fit/--gpu, and the largest batch per row; -o grid.svg writes it as an image.

    Example: bertcalc memory --preset base --head mlm --batch 32 --seq 512 --precision amp-bf16 --fit 80GiB
    """
    from .api import memory as memory_

    dist = dict(dist or {})
    context_bytes = None
    if context is not None:
        from .memsim import parse_size

        context_bytes = parse_size(context, param="context")
    if sweep:
        from .api import sweep as sweep_

        if dist.get("zero") is not None or dist.get("gpus") is not None or dist.get("fsdp"):
            _note("memory", "--zero, --fsdp and --gpus do not apply to --sweep; the grid is per GPU")
        swept = {item.partition("=")[0].strip().lower() for raw in sweep for item in raw.split()}
        for axis in ("batch", "seq", "precision", "attention"):
            if axis in swept and _set_by_user(axis):
                _note("memory", f"--{axis} does nothing here: --sweep {axis}=... gives the values")
        _emit(sweep_(spec, axes=sweep, batch=batch, seq=seq, mode=mode.value, precision=precision.value,
                     optimizer="adamw" if optimizer is None else optimizer.value, attention=attention.value,
                     grad_checkpointing=grad_checkpointing, fit=fit, gpu=gpu, reserved=reserved or None,
                     context=context_bytes, mfu=mfu, peak_tflops=peak_tflops, alloc_conf=alloc_conf,
                     choices=choices, **tune), fmt, output,
              force=force)
        return
    if alloc_conf is not None and mode.value == "infer":
        _note("memory", "--alloc-conf shapes the training step's allocator replay; inference is not replayed, so "
              "it does nothing here")
    if reserved and mode.value == "infer":
        _note("memory", "--reserved replays a training step through the caching allocator; inference is not "
              "replayed (its figure is the allocated peak)")
    if mfu is not None or peak_tflops is not None:
        _note("memory", "--mfu and --peak-tflops time the cells of --sweep; without it they do nothing "
              "(bertcalc flops gives the time of one step)")

    infer = mode.value == "infer"
    if infer and (optimizer is not None or grad_checkpointing):
        _note("memory", "--optimizer and --grad-checkpointing apply to --mode train; inference has neither")
    if dist.get("zero") is not None and dist.get("gpus") is None and not infer:
        _note("memory", "--zero without --gpus assumes one GPU, which divides nothing; give --gpus N")
    if dist.get("fsdp") and dist.get("gpus") is None and not infer:
        _note("memory", "--fsdp without --gpus assumes one GPU, which shards nothing; give --gpus N")
    if infer and dist.get("zero") is None and not dist.get("fsdp") and (dist.get("gpus") or 1) > 1:
        _note("memory", "--gpus with --mode infer: each GPU runs its own replica, so the estimate is per GPU")
    if not dist.get("reshard", True) and not dist.get("fsdp"):
        _note("memory", "--no-reshard is FSDP2's reshard_after_forward; it applies with --fsdp")
    dist["gpus"] = dist.get("gpus") or 1
    _emit(memory_(spec, batch=batch, seq=seq, mode=mode.value, precision=precision.value,
                  optimizer="adamw" if optimizer is None else optimizer.value, attention=attention.value,
                  grad_checkpointing=grad_checkpointing, fit=fit, gpu=gpu, reserved=reserved or None,
                  context=context_bytes, alloc_conf=alloc_conf, choices=choices, **dist, **tune), fmt, output,
          force=force)


@app.command()
def presets(fmt: FormatOpt = None, output: OutputOpt = None, force: ForceOpt = False) -> None:
    """List the shipped presets with L, H, A, I, V and their parameter totals.

    Example: bertcalc presets --format markdown
    """
    from .api import presets as presets_

    _emit(presets_(), fmt, output, force=force)


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    """Console-script entry point.

    typer builds every registered command's options before it parses anything. When the first argument
    names a command, only that command is registered, so start-up pays for one command, not all of them;
    help and unknown commands still see the full list.
    """
    import signal

    # a TERM (timeout, kill, a closing terminal) unwinds as an exit, as Ctrl-C does: a file being written by -o
    # is a temporary one, removed on the way out, never left beside the target
    signal.signal(signal.SIGTERM, _terminated)
    argv = sys.argv[1:]
    if argv and not argv[0].startswith("-"):
        chosen = [c for c in app.registered_commands if _command_name(c) == argv[0]]
        if chosen:
            app.registered_commands = chosen
    app()


def _command_name(info: Any) -> str:
    return info.name or info.callback.__name__.replace("_", "-")
