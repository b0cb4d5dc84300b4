"""Reading the user's input files without hanging or tracing back.

Opening a FIFO for reading blocks until a writer appears, and a directory or a
device given where a file is meant fails late with an unhelpful message.  So
every file gridbus reads (QoS XML, topic maps, IDL, system files, DAQ agent
configurations, device profiles) is first checked with ``stat``, then read,
and text must be UTF-8; each failure raises the caller's error class naming
the file (and the line of a bad byte).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import GridbusError


def check_input_file(path: str | Path, error: type[GridbusError] = GridbusError, what: str = "file") -> Path:
    """``path`` if it is a readable regular file, else ``error`` saying what it is instead."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(f"{path}: cannot read the {what}: no such file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{path}: is a directory, not a file; give the {what} itself")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: is a {_kind(info.st_mode)}, not a regular file; give the {what} itself")
    if not os.access(path, os.R_OK):
        raise error(f"{path}: cannot read the {what}: permission denied")
    return path


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def read_bytes(path: str | Path, error: type[GridbusError] = GridbusError, what: str = "file") -> bytes:
    """The content of a checked regular file."""
    path = check_input_file(path, error, what)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror}") from None


def read_text(path: str | Path, error: type[GridbusError] = GridbusError, what: str = "file") -> str:
    """The UTF-8 text of a checked regular file; a bad byte is reported with its line."""
    data = read_bytes(path, error, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(
            f"{path}:{line}: the {what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


def check_output_dir(
    path: str | Path, error: type[GridbusError] = GridbusError, what: str = "output directory"
) -> Path:
    """``path`` if it is a directory, or can be made one, that this process may write in."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise error(f"{path}: exists and is not a directory; the {what} must be a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise error(f"{path}: cannot write in the {what}: permission denied")
        return path
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise error(f"{path}: cannot create the {what}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise error(f"{path}: cannot create the {what}: {ancestor} is not writable")
    return path
