"""Typed errors raised by the core.

The core never prints or exits. Each error carries a one-line, user-facing message that names the field or
file at fault and says how to fix it; ``cli.py`` turns it into a line on stderr and an exit code.
"""

from __future__ import annotations


class BertcalcError(Exception):
    """Base class. ``str(err)`` is one line, fit to show a user as is."""

    exit_code = 2

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param  # the option or field at fault, when there is one: "seq", "hidden_size"

    def __str__(self) -> str:
        return self.message


class ConfigError(BertcalcError):
    """A configuration value is invalid. ``problems`` holds one line per field at fault."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class ConfigFileError(BertcalcError):
    """A config file is missing, unreadable, malformed, not a mapping, or holds an unsafe YAML tag."""


class PresetNotFoundError(BertcalcError):
    """No shipped preset has this name."""


class UsageError(BertcalcError):
    """The request itself is inconsistent (a sequence longer than the model allows, too few configs...)."""


class TableTooLargeError(UsageError):
    """A table would have more rows than a terminal table can sensibly show; CSV and JSON have no limit."""
