"""The historian: ``record`` samples into a database, ``delays`` analysed, ``replay`` them.

``record`` says ``{"ready": ...}`` and ``{"done": stats}`` on stdout; its
warnings (database down, journal unwritable) are log records of
``gridbus.historian.recorder`` and reach stderr through the CLI's handler.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import GridbusError
from .common import command, on_stop_signals, open_bus, print_table

if TYPE_CHECKING:
    from .common import Subcommands


def cmd_record(args: argparse.Namespace) -> int:
    """Exit 0 when every sample taken is in the database, 1 when some are not (counted), 2 on refusal."""
    from ..historian.recorder import Recorder, summary
    from ..historian.sinks import open_sink

    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise GridbusError(f"--duration must be a positive number of seconds, not {args.duration}")
    sink = open_sink(args.db)
    with open_bus(args) as bus:
        recorder = Recorder(
            bus,
            sink,
            args.patterns,
            args.role or None,
            batch=args.batch,
            flush_interval=args.flush_interval,
            max_buffer=args.max_buffer,
            spool=args.spool,
            exit_timeout=args.exit_timeout,
            queue=args.dds_queue,
        )
        on_stop_signals(recorder.stop)  # stop() sets an Event the main thread waits on
        print(
            json.dumps(
                {
                    "ready": {
                        "db": sink.url,
                        "patterns": args.patterns,
                        "readers": len(recorder.readers),
                        "journal": str(recorder.journal.path),
                        "spool": str(recorder.spool),
                    }
                }
            ),
            flush=True,
        )
        stats = recorder.run(args.duration)
        print(json.dumps({"done": stats}), flush=True)
    missing = summary(stats, sink.url)
    if missing:
        print(f"gridbus: {missing}", file=sys.stderr)
        return 1
    return 0


def cmd_delays(args: argparse.Namespace) -> int:
    from ..historian.analysis import delays, histogram
    from ..historian.sinks import redact

    stats = delays(args.db, args.topic, by_object=args.by_object)
    if args.png:
        try:
            histogram(stats, Path(args.png))
        except OSError as exc:
            raise GridbusError(f"--png {args.png}: {exc.strerror or exc}") from None
    rows = {name: {k: v for k, v in entry.items() if k != "_values"} for name, entry in stats.items()}
    if args.json:
        print(json.dumps(rows))
        return 0
    print_table(
        f"delay = row created - source time, ms ({redact(args.db)})",
        ("topic object" if args.by_object else "topic", "count", "mean", "p50", "p90", "p99", "max"),
        (
            (name, str(r["count"]), *(f"{r[k]:.2f}" for k in ("mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms")))
            for name, r in rows.items()
        ),
        min_width=100,
        title_justify="left",
    )
    if args.png:
        print(f"histogram: {args.png}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from ..historian.replay import replay

    source = args.db or (f"csv:{args.csv}" if args.csv else None)
    if source is None:
        raise GridbusError("give --db URL or --csv FILE")
    rename = {}
    for item in args.rename:
        old, sep, new = item.partition("=")
        if not sep:
            raise GridbusError(f"--as expects OLD=NEW, got {item!r}")
        rename[old] = new
    with open_bus(args) as bus:
        sent = replay(bus, source, args.speed, args.object or None, args.topic, rename)
    print(json.dumps({"replayed": sent}))
    return 0


def register(sub: Subcommands) -> None:
    """Add ``record``, ``delays`` and ``replay`` to the ``gridbus`` subcommands."""
    p = command(sub, "record", cmd_record, "store every sample of the selected objects in a database")
    p.add_argument("patterns", nargs="+", help="objects or types to record: G_1, G, G_*, *")
    p.add_argument(
        "--db", default="gridbus.sqlite", help="SQLite file (default gridbus.sqlite), postgresql://... or FILE.csv"
    )
    p.add_argument("--role", action="append", default=[], help="topic role to record (default: all)")
    p.add_argument("--batch", type=int, default=100, help="rows per write")
    p.add_argument("--flush-interval", type=float, default=1.0, help="seconds between writes at most")
    p.add_argument(
        "--max-buffer", type=int, default=1_000_000, help="rows kept in memory while the journal cannot be written"
    )
    p.add_argument("--duration", type=float, default=None, help="seconds to record (default: until Ctrl-C)")
    p.add_argument(
        "--spool",
        default=None,
        metavar="DIR",
        help="journal and spool directory (default: $XDG_STATE_HOME/gridbus or ~/.local/state/gridbus)",
    )
    p.add_argument(
        "--exit-timeout",
        type=float,
        default=10.0,
        help="seconds to keep trying the database at exit before spooling the rest",
    )
    p.add_argument(
        "--dds-queue",
        type=int,
        default=100_000,
        help="samples DDS keeps per topic for the recorder; beyond, new ones are dropped and counted",
    )

    p = sub.add_parser("delays", help="delay analysis: row created - source time per topic")
    p.set_defaults(handler=cmd_delays)
    p.add_argument("--db", required=True)
    p.add_argument("--topic", default=None)
    p.add_argument("--png", default=None, help="write a histogram PNG here")
    p.add_argument("--by-object", action="store_true", help="one row per object (e.g. per PMU), not per topic")
    p.add_argument("--json", action="store_true")

    p = command(sub, "replay", cmd_replay, "publish recorded series again, with their timing or sped up")
    p.add_argument("--db", default=None, help="SQLite file or postgresql://...")
    p.add_argument("--csv", default=None, help="a CSV written by gridbus record")
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--object", action="append", default=[], help="objects to replay (patterns; default all)")
    p.add_argument("--topic", default=None, help="one topic, e.g. Load_Command")
    p.add_argument(
        "--as",
        dest="rename",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="publish OLD's series as NEW (e.g. L_1=L_4)",
    )
