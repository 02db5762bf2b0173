"""Writing output files atomically: a failed or interrupted run never leaves a half-written file."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import BertcalcError


class OutputError(BertcalcError):
    """The output file cannot be written."""


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``.

    A path that is not a regular file (``/dev/null``, ``/dev/stdout``, a FIFO) is written in place: it
    cannot be replaced, and a rename would turn the device or pipe into a plain file."""
    target = Path(path)
    try:
        st = os.stat(target)  # follows links: /dev/stdout -> /proc/self/fd/1 -> the pipe itself
    except OSError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        try:
            with open(target, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        except OSError as exc:
            raise _cannot_write(path, exc) from None
        return
    if target.is_symlink():  # write through the link, keeping it a link
        target = Path(os.path.realpath(target))
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise OutputError(f"-o {target}: is a directory; give a file name")
    if not parent.is_dir():
        raise OutputError(f"-o {target}: directory {parent} does not exist; create it first")
    fd, tmp = None, None
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fd = None
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if target.exists():  # keep the permissions of the file being replaced
            mode = os.stat(target).st_mode & 0o7777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise _cannot_write(target, exc) from None
    finally:
        if fd is not None:
            os.close(fd)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _cannot_write(where: str | Path, exc: OSError) -> OutputError:
    if isinstance(exc, PermissionError):
        return OutputError(f"-o {where}: permission denied; choose a writable location")
    return OutputError(f"-o {where}: cannot write ({exc.strerror or exc})")
