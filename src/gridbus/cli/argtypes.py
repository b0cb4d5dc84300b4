"""Argument types shared by every ``gridbus`` subcommand.

A number that makes no sense for its option (NaN, inf, 0 or a negative rate,
a domain id Cyclone does not have) and a file that cannot be read (missing,
a directory, a FIFO that would block the reader forever) are refused while the
command line is parsed, before any DDS participant exists, with
``gridbus: error: argument --rate: ...`` and exit status 2.

:class:`GridbusArgumentParser` also maps every plain ``type=float`` to
:func:`finite_float`, so options declared elsewhere refuse NaN and inf too.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from ..errors import GridbusError
from ..files import check_input_file, check_output_dir, read_text

MAX_DOMAIN_ID = 232  # Cyclone's largest domain id (DDSI port mapping)
MAX_EPOCH = 1e11  # UNIX seconds; beyond the year 5000 is a typo
# Rates, speeds, seconds: beyond these a value is a typo, and 1/rate or a timeout in ns would
# overflow what time.sleep() and DDS durations (int64 ns, about 292 years) can hold.
SMALLEST, LARGEST = 1e-9, 1e9
ArgType = Callable[[str], Any]
F = TypeVar("F", bound=Callable[[str], Any])


def _named(name: str) -> Callable[[F], F]:
    """Give an argument type the name argparse shows in its messages."""

    def wrap(func: F) -> F:
        func.__name__ = name
        return func

    return wrap


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


@_named("number")
def finite_float(text: str) -> float:
    """Any finite number (no NaN, no inf)."""
    return _float(text)


@_named("positive number")
def positive_float(text: str) -> float:
    """A finite number > 0 (rates, speeds, timeouts, durations), within 1e-9..1e9."""
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    if not SMALLEST <= value <= LARGEST:
        raise argparse.ArgumentTypeError(f"must be between {SMALLEST:g} and {LARGEST:g}, got {text!r}")
    return value


@_named("non-negative number")
def nonneg_float(text: str) -> float:
    """A finite number >= 0 and <= 1e9 (a wait that may be skipped, 0 meaning 'until Ctrl-C')."""
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    if value > LARGEST:
        raise argparse.ArgumentTypeError(f"must be at most {LARGEST:g}, got {text!r}")
    return value


@_named("positive integer")
def positive_int(text: str) -> int:
    """An integer > 0 (counts, sizes, baud rates)."""
    value = _int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be an integer > 0, got {text!r}")
    return value


@_named("non-negative integer")
def nonneg_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


@_named("domain id")
def domain_id(text: str) -> int:
    """A DDS domain id Cyclone accepts: 0..232."""
    value = _int(text)
    if not 0 <= value <= MAX_DOMAIN_ID:
        raise argparse.ArgumentTypeError(f"a DDS domain id is 0..{MAX_DOMAIN_ID}, got {text!r}")
    return value


@_named("UNIX time")
def epoch_seconds(text: str) -> float:
    """A wall-clock time in UNIX seconds (finite, 0 .. 1e11)."""
    value = _float(text)
    if not 0 <= value <= MAX_EPOCH:
        raise argparse.ArgumentTypeError(f"expected UNIX seconds 0..{MAX_EPOCH:g}, got {text!r}")
    return value


def number_list(item: Callable[[str], float], what: str) -> Callable[[str], list[float]]:
    """A comma-separated list, each element checked by ``item`` (``--sizes 32,256``)."""

    @_named(f"list of {what}")
    def parse(text: str) -> list[float]:
        parts = [p.strip() for p in text.split(",")]
        if not text.strip() or any(not p for p in parts):
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}")
        values = []
        for part in parts:
            try:
                values.append(item(part))
            except argparse.ArgumentTypeError as exc:
                raise argparse.ArgumentTypeError(f"{part!r} in {text!r}: {exc}") from None
        return values

    return parse


def name_list(choices: tuple[str, ...] | None = None, what: str = "names") -> ArgType:
    """A comma-separated list of names, optionally from ``choices`` (``--modes wait,poll``)."""

    @_named(f"list of {what}")
    def parse(text: str) -> list[str]:
        parts = [p.strip() for p in text.split(",")]
        if not text.strip() or any(not p for p in parts):
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}")
        for part in parts:
            if choices is not None and part not in choices:
                raise argparse.ArgumentTypeError(
                    f"unknown {what.removesuffix('s')} {part!r}; choose from {', '.join(choices)}"
                )
        return parts

    return parse


def _file_check(check: Callable[..., Path], what: str) -> ArgType:
    @_named(what)
    def parse(text: str) -> str:
        if not text:
            raise argparse.ArgumentTypeError(f"expected the path of the {what}, got an empty string")
        try:
            check(text, GridbusError, what)
        except GridbusError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    return parse


def input_file(what: str) -> ArgType:
    """A path to a readable regular file (checked with ``stat``: a FIFO must not hang us)."""
    return _file_check(check_input_file, what)


def output_dir(what: str) -> ArgType:
    """A directory that exists, or can be created, and may be written."""
    return _file_check(check_output_dir, what)


@_named("Cyclone DDS configuration")
def cyclone_config(text: str) -> str:
    """``--config``: inline XML (starts with ``<``), or a file (``file://`` allowed)."""
    if text.lstrip().startswith("<"):
        return text
    try:
        read_text(text.removeprefix("file://"), GridbusError, "Cyclone DDS configuration")
    except GridbusError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


@_named("device profile")
def profile_ref(text: str) -> str:
    """A device profile: a shipped name (``vfd-modbus``) or a file, which must be readable."""
    if not text:
        raise argparse.ArgumentTypeError("expected a profile name or file, got an empty string")
    path = Path(text)
    if path.suffix or path.exists() or "/" in text:
        input_file("device profile")(text)
    return text


@_named("symlink path")
def link_path(text: str) -> str:
    """``device-sim --link``: where the pty's symlink goes; never over a real file or directory."""
    if not text:
        raise argparse.ArgumentTypeError("expected a path for the symlink, got an empty string")
    path = Path(text)
    if path.exists() and not path.is_symlink():
        kind = "a directory" if path.is_dir() else "a file"
        raise argparse.ArgumentTypeError(
            f"{path}: is {kind}; --link makes a symlink there and would replace it: give a new path"
        )
    parent = path.absolute().parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{path}: {parent} is not a directory")
    output_dir("directory of the symlink")(str(parent))
    return text


def domain_from_env(environ: Mapping[str, str]) -> int | None:
    """``GRIDBUS_DOMAIN`` checked like ``--domain`` (None when unset)."""
    text = environ.get("GRIDBUS_DOMAIN")
    if text is None:
        return None
    try:
        return domain_id(text)
    except argparse.ArgumentTypeError as exc:
        raise GridbusError(f"GRIDBUS_DOMAIN={text!r}: {exc}") from None


class GridbusArgumentParser(argparse.ArgumentParser):
    """argparse with gridbus's error line and finite floats everywhere.

    Every parser and subparser of the CLI is one of these: ``type=float``
    means :func:`finite_float`, and a usage error ends with
    ``gridbus: error: ...`` and exit status 2, like every other bad input.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("type", float, finite_float)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        command = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        prefix = f"{command}: " if command else ""
        self.exit(2, f"gridbus: error: {prefix}{message}\n")
