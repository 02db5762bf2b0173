"""Looking at a path the user gave, without letting the operating system's refusals escape as bugs.

``Path.is_dir()`` and friends raise ``OSError`` for a name longer than the file system allows
(ENAMETOOLONG), for a folder in the path that cannot be searched (EACCES) and for a symlink loop (ELOOP).
Those are bad input, not bugs: :func:`kind` turns them into the caller's typed error, naming the path.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .errors import BertcalcError

NAME_MAX = 255  # bytes in one path component, on every common file system


def problem(exc: OSError) -> str:
    """What an OSError means for a path the user gave, in words, with the fix."""
    code = exc.errno
    if code == errno.ENAMETOOLONG:
        return f"the name is too long (a file or folder name is at most {NAME_MAX} bytes); use a shorter path"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied (on the file or a folder above it); make it readable"
    if code == errno.ELOOP:
        return "too many levels of symbolic links; the link points back at itself"
    if code == errno.ENOTDIR:
        return "a part of the path is a file, not a folder; check the path"
    if code == errno.ENOENT:
        return "no such file or folder; check the path"
    return f"cannot read ({exc.strerror or exc})"


def kind(path: str | Path, error: type[BertcalcError], label: str = "") -> str | None:
    """``"dir"``, ``"file"``, ``"other"`` (a device, FIFO or socket) or ``None`` when nothing is there.

    Any other refusal raises ``error`` with one line that names ``label`` (or the path) and the fix."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            return None
        raise error(f"{label or p}: {problem(exc)}") from None
    except ValueError:  # an embedded NUL byte
        raise error(f"{label or p}: a path cannot hold a NUL character") from None
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISREG(st.st_mode):
        return "file"
    return "other"


def exists(path: str | Path) -> bool:
    """Whether anything is at ``path``; a path the system refuses to look at counts as absent."""
    try:
        os.stat(path)
    except (OSError, ValueError):
        return False
    return True
