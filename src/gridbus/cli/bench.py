"""``gridbus bench latency|throughput|serial|historian``: run a benchmark, show its rows.

The benchmarks themselves (:mod:`gridbus.bench`, :mod:`gridbus.historian.bench`,
:mod:`gridbus.translators.bench`) take plain parameters and return one dict
per measured point; this module parses the options, prints progress on stderr
and shows the rows as a table or, with ``--json``, one JSON object per line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from .argtypes import name_list, number_list, positive_float, positive_int
from .common import bus_options, domain_of, print_json_lines, print_table

if TYPE_CHECKING:
    from ..bench import BusOptions
    from .common import Row, Subcommands


def bench_options(args: argparse.Namespace) -> BusOptions:
    from ..bench import BusOptions

    return BusOptions(domain_of(args), args.qos_file, args.topic_map, args.config, args.partition)


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}" if value and base else "-"


def _progress(args: argparse.Namespace, line: str) -> None:
    if not args.json:
        print(line, file=sys.stderr, flush=True)


# -------------------------------------------------------------------- latency
def cmd_latency(args: argparse.Namespace) -> int:
    from ..bench import latency

    def progress(r: Row) -> None:
        _progress(args, f"{r['system']:<10} {r['mode']:<4} {r['size']:>6} B {r['rate']:>6g}/s  p50 {r['p50_us']} us")

    rows = latency(bench_options(args), args.sizes, args.rates, args.count, args.modes, progress)
    if args.json:
        print_json_lines(rows)
        return 0
    raw = {(r["size"], r["rate"]): r for r in rows if r["system"] == "cyclonedds"}
    cells = []
    for r in rows:
        base: dict[str, Any] = raw.get((r["size"], r["rate"]), {})
        cells.append(
            (
                r["system"],
                r["mode"],
                str(r["size"]),
                f"{r['rate']:g}",
                str(r["count"]),
                str(r["lost"]),
                *(str(r[k]) for k in ("mean_us", "p50_us", "p90_us", "p99_us")),
                _ratio(r["p50_us"], base.get("p50_us")),
                _ratio(r["p90_us"], base.get("p90_us")),
            )
        )
    print_table(
        "One-way latency (RTT/2), microseconds",
        ("system", "mode", "size B", "rate/s", "count", "lost", "mean", "p50", "p90", "p99", "p50 ratio", "p90 ratio"),
        cells,
        left=("system", "mode"),
    )
    return 0


# ----------------------------------------------------------------- throughput
def cmd_throughput(args: argparse.Namespace) -> int:
    from ..bench import throughput

    def progress(r: Row) -> None:
        _progress(args, f"{r['system']:<10} sent {r['sent']} delivered {r['delivered']}")

    rows = throughput(bench_options(args), args.size, args.seconds, progress)
    if args.json:
        print_json_lines(rows)
        return 0
    print_table(
        "One-way stream, as fast as the writer can",
        ("system", "size B", "seconds", "sent/s", "delivered/s", "lost", "lost %"),
        (
            (
                r["system"],
                *(str(r[k]) for k in ("size", "seconds", "sent_per_s", "delivered_per_s", "lost", "lost_pct")),
            )
            for r in rows
        ),
        left=("system",),
    )
    return 0


# --------------------------------------------------------------------- serial
def cmd_serial(args: argparse.Namespace) -> int:
    from ..translators.bench import serial_latency
    from ..translators.profile import load_profile

    for name in args.profiles:
        load_profile(name)  # a bad profile fails before any process starts
    domain = domain_of(args)
    rows = [row for name in args.profiles for row in serial_latency(name, args.bauds, args.count, domain, args.drives)]
    if args.json:
        print_json_lines(rows)
        return 0
    print_table(
        "serial command latency (bus -> line -> confirmed on the bus), ms",
        (
            "profile",
            "baud",
            "confirmed",
            "to line p50",
            "to line p90",
            "confirmed p50",
            "confirmed p90",
            "confirmed max",
            "polls/s",
        ),
        (
            (
                r["profile"] + (f" x{r['drives']}" if r["drives"] > 1 else ""),
                str(r["baud"]),
                f"{r['confirmed']}/{r['commands']}",
                *(
                    str(r[k])
                    for k in (
                        "bus_to_line_ms_p50",
                        "bus_to_line_ms_p90",
                        "bus_to_confirmed_ms_p50",
                        "bus_to_confirmed_ms_p90",
                        "bus_to_confirmed_ms_max",
                        "poll_rate_hz",
                    )
                ),
            )
            for r in rows
        ),
    )
    return 0


# ------------------------------------------------------------------ historian
INGEST_COLUMNS = (
    "db",
    "batch",
    "offered_per_s",
    "received",
    "stored",
    "stored_per_s",
    "delay_mean_ms",
    "delay_p50_ms",
    "delay_p90_ms",
    "delay_p99_ms",
    "delay_max_ms",
)


def cmd_historian(args: argparse.Namespace) -> int:
    from ..historian.bench import check_arguments, crash, ingest, parse_batches

    batches = parse_batches(args.batches)
    check_arguments(batches, args.objects, args.rate, args.seconds, args.kill_at)
    domain = domain_of(args)
    dbs = args.db or [tempfile.mkdtemp(prefix="gridbus-bench-") + "/bench.sqlite"]
    if args.kill_at is not None:
        print_json_lines(
            crash(db, b, args.objects, args.rate, args.seconds, args.kill_at, domain, partition=args.partition)
            for db in dbs
            for b in batches
        )
        return 0
    rows = ingest(dbs, batches, args.objects, args.rate, args.seconds, domain, args.partition)
    if args.json:
        print_json_lines(rows)
        return 0
    print_table(
        "historian ingest and delay (created - source time)",
        [c.replace("_per_s", "/s").replace("delay_", "").replace("_ms", " ms") for c in INGEST_COLUMNS],
        [[str(row[c]) for c in INGEST_COLUMNS] for row in rows],
        min_width=140,
    )
    return 0


# -------------------------------------------------------------------- parsers
def register(sub: Subcommands) -> None:
    """Add ``bench`` and its four benchmarks to the ``gridbus`` subcommands."""
    parser = sub.add_parser("bench", help="latency and throughput benchmarks, gridbus beside raw cyclonedds")
    benches = parser.add_subparsers(dest="bench_command", required=True)

    p = benches.add_parser("latency", help="ping-pong latency per size and rate")
    bus_options(p)
    p.set_defaults(handler=cmd_latency)
    p.add_argument(
        "--sizes",
        type=number_list(positive_int, "sizes in bytes"),
        default="32,256,1024",
        help="message sizes in bytes (comma-separated)",
    )
    p.add_argument(
        "--rates",
        type=number_list(positive_float, "rates"),
        default="50,1000",
        help="messages per second (comma-separated)",
    )
    p.add_argument("--count", type=positive_int, default=10000, help="messages per point (the paper: 10000)")
    p.add_argument(
        "--modes",
        type=name_list(("wait", "poll"), "receive modes"),
        default="wait,poll",
        help="gridbus receive modes to run",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per point")

    p = benches.add_parser("serial", help="command latency and poll rate through a serial translator")
    bus_options(p)
    p.set_defaults(handler=cmd_serial)
    p.add_argument(
        "--profiles",
        type=name_list(what="profiles"),
        default="vfd-modbus,speed-controller-ascii",
        help="drive profiles",
    )
    p.add_argument(
        "--bauds",
        type=number_list(positive_int, "baud rates"),
        default="9600,115200",
        help="baud rates (comma-separated)",
    )
    p.add_argument("--count", type=positive_int, default=40, help="START/STOP commands per point")
    p.add_argument(
        "--drives",
        type=number_list(positive_int, "drive counts"),
        default="1",
        help="drives on one line (Modbus unit ids 1..n), e.g. 1,2,4; polls/s is per drive",
    )
    p.add_argument("--json", action="store_true")

    p = benches.add_parser("historian", help="sustained ingest into the historian and its delays per batch size")
    bus_options(p)
    p.set_defaults(handler=cmd_historian)
    p.add_argument(
        "--db", action="append", default=[], help="database URL (repeatable; default: a temporary SQLite file)"
    )
    p.add_argument("--batches", default="1,100,1000", help="recorder batch sizes")
    p.add_argument("--objects", type=int, default=100)
    p.add_argument("--rate", type=float, default=100.0, help="samples per second per object")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument(
        "--kill-at",
        type=float,
        default=None,
        metavar="S",
        help="kill -9 the recorder S seconds into the stream, restart it, count what the crash lost",
    )
    p.add_argument("--json", action="store_true")

    p = benches.add_parser("throughput", help="one-way stream rate and loss")
    bus_options(p)
    p.set_defaults(handler=cmd_throughput)
    p.add_argument("--size", type=positive_int, default=32, help="message size in bytes")
    p.add_argument("--seconds", type=positive_float, default=5.0)
    p.add_argument("--json", action="store_true")
