"""Typed errors raised by the core.

The core never prints or exits. Each error carries a one-line, user-facing message that names the field or
file at fault and says how to fix it; ``cli.py`` turns it into a line on stderr and an exit code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping


# A library parameter named inside a message is marked, so that each reader sees it in its own vocabulary:
# ``str(err)`` spells it as the library's keyword, ``cli.py`` as the flag that sets it. The marks are characters
# of Unicode's private use area, which no message of ours holds otherwise.
_OPEN, _SEP, _CLOSE = "\ue000", "\ue001", "\ue002"


def arg(name: str, shown: str | None = None, py: str | None = None) -> str:
    """The library parameter ``name`` inside an error message, optionally with a value.

    ``str(err)`` spells it ``name``, or ``name=VALUE`` with ``py`` (the value as Python would write it) or else
    ``shown``; the CLI spells it as its flag, followed by ``shown`` (the value as a shell would take it):
    ``arg("attention", "eager", "'eager'")`` is ``attention='eager'`` to the library and ``--attention eager``
    on the command line."""
    return f"{_OPEN}{name}{_SEP}{shown or ''}{_SEP}{py or ''}{_CLOSE}"


def spell(text: str, flags: Mapping[str, str] | None = None) -> str:
    """``text`` with each :func:`arg` spelled for its reader: as the library's keyword, or, where ``flags``
    maps the parameter to a flag, as that flag. Text between the marks that is not a mark is kept as it is."""
    if _OPEN not in text:
        return text
    first, *chunks = text.split(_OPEN)
    out = [first]
    for chunk in chunks:
        body, closed, rest = chunk.partition(_CLOSE)
        parts = body.split(_SEP)
        if not closed or len(parts) != 3:
            out.append(_OPEN + chunk)
            continue
        name, shown, py = parts
        flag = flags.get(name) if flags is not None else None
        if flag is not None:
            out.append(f"{flag} {shown}" if shown else flag)
        else:
            value = py or shown
            out.append(f"{name}={value}" if value else name)
        out.append(rest)
    return "".join(out)


class BertcalcError(Exception):
    """Base class. ``str(err)`` is one line, fit to show a user as is; it names library parameters
    (``gpus``, ``fit=SIZE``). ``text`` is the same line with its parameters marked (:func:`arg`), which
    ``cli.py`` spells as flags."""

    exit_code = 2

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(spell(message))
        self.text = message
        self.param = param  # the option or field at fault, when there is one: "seq", "hidden_size"

    @property
    def message(self) -> str:
        return spell(self.text)

    @property
    def lines(self) -> list[str]:
        """The message's lines with their marks: one here, one per problem in a :class:`ConfigError`."""
        return [self.text]

    def __str__(self) -> str:
        return self.message


class ConfigError(BertcalcError):
    """A configuration value is invalid. ``problems`` holds one line per field at fault."""

    def __init__(self, problems: list[str]) -> None:
        self.marked = list(problems)
        super().__init__("; ".join(self.marked))

    @property
    def problems(self) -> list[str]:
        return [spell(p) for p in self.marked]

    @property
    def lines(self) -> list[str]:
        return list(self.marked)


class ConfigFileError(BertcalcError):
    """A config file is missing, unreadable, malformed, not a mapping, or holds an unsafe YAML tag."""


class PresetNotFoundError(BertcalcError):
    """No shipped preset has this name."""


class UsageError(BertcalcError):
    """The request itself is inconsistent (a sequence longer than the model allows, too few configs...)."""


class TableTooLargeError(UsageError):
    """A table would have more rows than a terminal table can sensibly show; CSV and JSON have no limit."""
