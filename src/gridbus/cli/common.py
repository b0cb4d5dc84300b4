"""What every ``gridbus`` command shares: bus options, output, logging.

Library code returns rows (dicts) and logs through :mod:`logging`; this module
is where rows become output (one JSON object per line, or a rich table) and
where log records get their one handler (``-v``, ``--log-format json``).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from .argtypes import GridbusArgumentParser, cyclone_config, domain_id, input_file

if TYPE_CHECKING:
    from rich.console import Console

    from ..bus import Bus, Sample
    from ..model import Registry

log = logging.getLogger(__name__)

EXIT_BAD_INPUT = 2
Row = dict[str, Any]
Handler: TypeAlias = Callable[[argparse.Namespace], int]
if TYPE_CHECKING:
    Subcommands: TypeAlias = argparse._SubParsersAction[GridbusArgumentParser]


# ------------------------------------------------------------------ bus options
def bus_options(parser: argparse.ArgumentParser, config_flag: str = "--config") -> None:
    """The options of :class:`gridbus.Bus`, the same on every command that joins the domain."""
    group = parser.add_argument_group("bus options")
    group.add_argument(
        "--domain", type=domain_id, default=None, help="DDS domain id 0..232 (default: $GRIDBUS_DOMAIN or 0)"
    )
    group.add_argument(
        "--qos", dest="qos_file", type=input_file("QoS XML file"), default=None, help="QoS profile XML file"
    )
    group.add_argument(
        "--topic-map", type=input_file("topic map XML file"), default=None, help="topic -> profile map XML file"
    )
    group.add_argument(
        config_flag,
        dest="config",
        type=cyclone_config,
        default=None,
        help="Cyclone DDS configuration (default: loopback only, or $CYCLONEDDS_URI)",
    )
    group.add_argument(
        "--idl",
        action="append",
        type=input_file("IDL file"),
        default=[],
        metavar="FILE",
        help="extra IDL file with object types of your own (repeatable)",
    )
    group.add_argument("--partition", default=None, help="DDS partition to join")


def command(sub: Subcommands, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
    """A subcommand that joins the domain: runs ``handler``, takes the bus options."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    bus_options(parser)
    parser.set_defaults(handler=handler)
    return parser


def domain_of(args: argparse.Namespace) -> int:
    """``--domain``, else ``$GRIDBUS_DOMAIN``, else Cyclone's default (what :class:`Bus` would join)."""
    from ..bus import default_domain

    return default_domain() if args.domain is None else int(args.domain)


def open_bus(args: argparse.Namespace) -> Bus:
    """A :class:`gridbus.Bus` joined with the command's bus options."""
    from ..bus import Bus

    return Bus(
        args.domain,
        qos_file=args.qos_file,
        topic_map=args.topic_map,
        config=args.config,
        idl=args.idl,
        partition=args.partition,
    )


def open_registry(args: argparse.Namespace) -> Registry:
    """The data model, with the command's ``--idl`` files added (checked before joining a domain)."""
    from ..model import Registry

    registry = Registry.default()
    for path in getattr(args, "idl", []):
        registry.load_idl(path)
    return registry


# ---------------------------------------------------------------------- signals
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_GRACE = 10.0  # s after the first stop signal during which repeats are ignored


def on_stop_signals(
    callback: Callable[[], None], signals: Sequence[int] = STOP_SIGNALS, *, grace: float = STOP_GRACE
) -> None:
    """``signals`` (SIGINT and SIGTERM) call ``callback`` once, on a thread of its own.

    Why not in the handler: Python runs a handler on the main thread between two of
    its bytecodes, wherever it is.  A callback that takes a lock the interrupted code
    holds (``threading.Event.set`` while the main thread is inside that Event's
    ``wait``, a logging handler's lock, a queue, a thread start) waits for it for
    ever: ``gridbus pmu gateway`` hung so on SIGTERM.  The handler here only writes a
    byte to a pipe (no lock); a daemon thread started now reads it and runs
    ``callback``.

    After the first signal the process is stopping: for ``grace`` seconds a repeated
    SIGTERM (or SIGHUP) is ignored, so that the clean stop finishes with its report and
    status even through interpreter shutdown (where Python would restore the default,
    deadly, action); a second Ctrl-C raises KeyboardInterrupt as usual, the user's way
    to force it.  After ``grace`` the signals get their default action back, so a stop
    that hangs still ends on the next SIGTERM (systemd, ``timeout``), not only on SIGKILL.
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def wait_then_call() -> None:
        try:
            os.read(read_fd, 1)
        except OSError:  # pragma: no cover - the pipe is never closed while the process lives
            return
        timer = threading.Timer(grace, _default_action, args=(signals,))
        timer.daemon = True
        timer.start()
        callback()

    threading.Thread(target=wait_then_call, name="stop-on-signal", daemon=True).start()

    def handler(signum: int, frame: object) -> None:
        try:
            os.write(write_fd, b"s")
        except BlockingIOError:  # the pipe is full: a stop is already on its way
            pass
        for other in signals:  # no lock taken: signal.signal only swaps the handler
            signal.signal(other, signal.default_int_handler if other == signal.SIGINT else signal.SIG_IGN)

    for signum in signals:
        signal.signal(signum, handler)


def _default_action(signals: Sequence[int]) -> None:
    """Give ``signals`` (but SIGINT, which raises KeyboardInterrupt) their default action.

    Through the C library: ``signal.signal`` works only on the main thread, and this
    runs on a timer's, possibly while the main thread is stuck in the hung stop.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.signal.restype = ctypes.c_void_p
    for signum in signals:
        if signum != signal.SIGINT and libc.signal(signum, None) == ctypes.c_void_p(-1).value:  # SIG_DFL; SIG_ERR
            log.warning(
                "could not restore the default action of signal %d: %s", signum, os.strerror(ctypes.get_errno())
            )


# ----------------------------------------------------------------------- output
def print_json_lines(rows: Iterable[Row]) -> None:
    """One JSON object per line on stdout, flushed each, for programs reading as rows arrive."""
    for row in rows:
        print(json.dumps(row), flush=True)


def console(min_width: int = 120) -> Console:
    """A rich console at least ``min_width`` wide, so that tables do not wrap in a narrow pipe."""
    from rich.console import Console

    return Console(width=max(min_width, Console().width))


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    min_width: int = 120,
    left: Sequence[str] = (),
    right: bool = True,
    title_justify: str = "center",
) -> None:
    """A rich table on stdout; columns right-aligned (numbers) unless named in ``left``."""
    from rich.table import Table

    table = Table(title=title, title_justify=title_justify)  # type: ignore[arg-type]
    for column in columns:
        table.add_column(column, justify="right" if right and column not in left else "left")
    for row in rows:
        table.add_row(*row)
    console(min_width).print(table)


def sample_json(sample: Sample) -> str:
    """``gridbus subscribe --json``: id, topic, data (NaN and inf as null), both time stamps."""
    data = {k: _json_value(v) for k, v in sample.fields().items() if k != "id"}
    return json.dumps(
        {
            "id": sample.id,
            "topic": sample.topic,
            "data": data,
            "source_time": sample.source_time,
            "reception_time": sample.reception_time,
        }
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------- logging
LOG_LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time (UNIX s), level, logger, message (and the traceback, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": round(record.created, 6),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def logging_options(parser: argparse.ArgumentParser, default: Any = None) -> None:
    """``-v``/``--verbose`` (repeatable) and ``--log-format text|json``.

    The top-level parser has them with their defaults (``gridbus -v testbed``); every command
    has them too with ``default=argparse.SUPPRESS`` (``gridbus testbed -v``), so that a command
    that does not name them leaves the top-level value alone.
    """
    group = parser.add_argument_group("logging")
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0 if default is None else default,
        help="log more on stderr: -v INFO, -vv DEBUG (default: warnings only)",
    )
    group.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text" if default is None else default,
        help="log records as plain text (default) or one JSON object per line",
    )


def logging_options_everywhere(parser: argparse.ArgumentParser) -> None:
    """Give every command (the leaves of the subcommand tree) the logging options too."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if any(isinstance(a, argparse._SubParsersAction) for a in child._actions):
                    logging_options_everywhere(child)
                else:
                    logging_options(child, default=argparse.SUPPRESS)


def configure_logging(verbose: int = 0, log_format: str = "text") -> None:
    """The CLI's one log handler, on stderr, replacing any earlier one (a second ``main()`` call).

    Plain text is the bare message, as the commands have always written their warnings
    (``record: database unavailable, ...``); the level starts at WARNING.
    """
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_gridbus_cli", False)]:
        root.removeHandler(old)
    handler._gridbus_cli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(LOG_LEVELS[min(verbose, len(LOG_LEVELS) - 1)])


def local_clock(timestamp: float) -> str:
    """``HH:MM:SS`` of a UNIX time, in local time (the plain ``subscribe`` lines)."""
    return time.strftime("%H:%M:%S", time.localtime(timestamp))
