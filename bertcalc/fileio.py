"""Writing output files atomically: a failed or interrupted run never leaves a half-written file."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import BertcalcError

# errno values that mean the output itself failed (the disk, the device), not that the path was wrong:
# exit 1, as for any other failure to deliver the output; a bad path is a usage error (exit 2).
_OUTPUT_FAILURES = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS}


class OutputError(BertcalcError):
    """The output file cannot be written."""

    def __init__(self, message: str, param: str | None = None, exit_code: int = 2) -> None:
        super().__init__(message, param)
        self.exit_code = exit_code


def write_atomic(path: str | Path, text: str | Iterable[str], *, force: bool = False) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``.

    A path that is not a regular file (``/dev/null``, ``/dev/stdout``, a FIFO) is written in place: it
    cannot be replaced, and a rename would turn the device or pipe into a plain file. An existing file that
    is read-only (no write permission bit, as ``chmod 444`` leaves it) is refused unless ``force``: the rename
    needs only the folder's permission, but the user asked for the file not to be written (``rm`` asks too)."""
    if str(path).strip() == "":
        raise OutputError("-o: the file name is empty; give a file name, or - for stdout")
    target = Path(path)
    try:
        st = os.stat(target)  # follows links: /dev/stdout -> /proc/self/fd/1 -> the pipe itself
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise _cannot_write(path, exc) from None
        st = None
    except ValueError:
        raise OutputError(f"-o {path!r}: a file name cannot hold a NUL character") from None
    if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        try:
            if stat.S_ISFIFO(st.st_mode):
                fh = os.fdopen(_open_fifo(target, path), "w", encoding="utf-8", newline="")
            else:
                fh = open(target, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed just below
            with fh:
                _write(fh, text)
        except OSError as exc:
            raise _cannot_write(path, exc) from None
        return
    if target.is_symlink():  # write through the link, keeping it a link
        target = Path(os.path.realpath(target))
    parent = target.parent if str(target.parent) else Path(".")
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(f"-o {path}: is a directory; give a file name")
    if st is not None and not force and not (st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)):
        raise OutputError(f"-o {path}: the file is read-only (mode {st.st_mode & 0o7777:04o}); give --force to "
                          "replace it, or choose another name")
    if st is not None and not force and not os.access(target, os.W_OK):
        raise OutputError(f"-o {path}: you may not write this file (permission denied); give --force to replace "
                          "it, or choose another name")
    try:
        pst = os.stat(parent)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise OutputError(f"-o {path}: directory {parent} does not exist; create it first") from None
        if exc.errno == errno.ENOTDIR:
            raise OutputError(f"-o {path}: {_file_above(parent)} is a file, not a directory; choose another "
                              "path") from None
        raise _cannot_write(path, exc) from None
    if not stat.S_ISDIR(pst.st_mode):
        raise OutputError(f"-o {path}: {parent} is a file, not a directory; choose another path")
    fd, tmp = None, None
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{target.name[:200]}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fd = None
            _write(fh, text)
            fh.flush()
            os.fsync(fh.fileno())
        if st is not None and target.exists():  # keep the permissions of the file being replaced
            mode = os.stat(target).st_mode & 0o7777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    finally:
        if fd is not None:
            os.close(fd)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


FIFO_WAIT_SECONDS = 10.0


def _open_fifo(target: Path, path: str | Path) -> int:
    """A FIFO opened for writing once a reader has it open (``cat f & bertcalc ... -o f`` in either order), or
    an error after FIFO_WAIT_SECONDS: a plain open would wait for a reader for ever."""
    import time

    deadline = time.monotonic() + FIFO_WAIT_SECONDS
    while True:
        try:
            fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            if time.monotonic() >= deadline:
                raise OutputError(f"-o {path}: no process opened this FIFO for reading within "
                                  f"{FIFO_WAIT_SECONDS:g} s; start its reader first") from None
            time.sleep(0.02)
            continue
        os.set_blocking(fd, True)
        return fd


def _file_above(parent: Path) -> Path:
    """The first component of ``parent`` that exists but is not a directory (``afile`` in ``afile/x.json``)."""
    for p in reversed((parent, *parent.parents)):
        if p.exists() and not p.is_dir():
            return p
    return parent


def _cannot_write(where: str | Path, exc: OSError) -> OutputError:
    if isinstance(exc, PermissionError):
        return OutputError(f"-o {where}: permission denied; choose a writable location")
    if exc.errno == errno.ENAMETOOLONG:
        if any(len(part.encode("utf-8", "surrogateescape")) > 255 for part in Path(where).parts):
            return OutputError(f"-o {str(where)[:80]}...: the name is too long (a file or folder name is at most "
                               "255 bytes); use a shorter one")
        return OutputError(f"-o {str(where)[:80]}...: the path is too long for the system (Linux takes 4,096 "
                           "bytes); use a shorter one")
    if exc.errno in _OUTPUT_FAILURES:
        return OutputError(f"-o {where}: cannot write ({exc.strerror or exc}); nothing was written", exit_code=1)
    return OutputError(f"-o {where}: cannot write ({exc.strerror or exc})")


def _write(fh: Any, text: str | Iterable[str]) -> None:
    """The whole text, or its pieces one after another (a streamed report)."""
    for piece in [text] if isinstance(text, str) else text:
        fh.write(piece)
