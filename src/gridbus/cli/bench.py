"""``gridbus bench codec|latency|throughput|waveform|programs|serial|historian``: run one, show its rows.

``gridbus bench pmu|vpmu|cosim|net|bridge`` are the benchmarks registered
beside their own concept (``pmu bench``, ``pmu bench-sim``, ``testbed-bench``,
``net bench``, ``bridge bench``), listed here too: the same options and
handlers, from each module's ``add_bench_options``.

The benchmarks themselves (:mod:`gridbus.bench`, :mod:`gridbus.historian.bench`,
:mod:`gridbus.translators.bench`) take plain parameters and return one dict
per measured point; this module parses the options, prints progress on stderr
and shows the machine's load average, the rows and the goals as tables or,
with ``--json``, one JSON object per line: ``{"machine": ...}`` first, then the
rows, then ``{"goal": ...}`` rows and ``{"note": ...}`` lines.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import bridge, cosim, net, pmu_sim, pmu_stream
from .argtypes import domain_id, input_file, name_list, number_list, positive_float, positive_int
from .common import bus_options, command, domain_of, print_json_lines, print_table

if TYPE_CHECKING:
    from ..bench import BusOptions
    from .common import Row, Subcommands

Column = tuple[str, str]  # (header, row key)


def bench_options(args: argparse.Namespace) -> BusOptions:
    """The bus options, on a partition of this run's own (``bench-<random>`` unless given)."""
    from ..bench import BusOptions

    partition = args.partition or f"bench-{uuid.uuid4().hex[:8]}"
    return BusOptions(domain_of(args), args.qos_file, args.topic_map, args.config, partition)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:g}" if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    return str(value)


class Report:
    """What one bench prints: the machine first, progress on stderr, then rows, goals and notes."""

    def __init__(self, args: argparse.Namespace) -> None:
        from ..bench.machine import describe, machine

        self.json = bool(args.json)
        self.machine = machine()
        if self.json:
            print_json_lines([{"machine": self.machine}])
        else:
            print(describe(self.machine), flush=True)
        load, cpus = self.machine["loadavg"][0], self.machine["cpus"] or 1
        if load > 0.75 * cpus:
            self.note(f"the machine is busy (load {load} on {cpus} CPUs): absolute figures are noisy, ratios less so")

    def progress(self, fmt: Callable[[Row], str]) -> Callable[[Row], None]:
        def show(row: Row) -> None:
            if not self.json:
                print(fmt(row), file=sys.stderr, flush=True)

        return show

    def show(self, title: str, columns: Sequence[Column], rows: Sequence[Row], goals: Sequence[Row] = ()) -> None:
        if self.json:
            print_json_lines([*rows, *goals])
            return
        print_table(
            title,
            [h for h, _ in columns],
            [[_cell(r.get(k)) for _, k in columns] for r in rows],
            left=[columns[0][0]],
            min_width=150,
        )
        if goals:
            where = [k for k in ("size", "payload", "program", "path") if any(k in g for g in goals)]
            print_table(
                "goals",
                ["goal", *where, "measured", "target", "met"],
                [
                    [g["goal"], *(_cell(g.get(k)) for k in where), _cell(g["value"]), g["target"], _cell(g["met"])]
                    for g in goals
                ],
                left=["goal"],
            )

    def note(self, text: str | None) -> None:
        if text:
            print_json_lines([{"note": text}]) if self.json else print(f"note: {text}")


LATENCY = (("system", "label"), ("size B", "size"), ("rate/s", "rate"), ("rounds", "rounds"), ("count", "count"),
           ("lost", "lost"), ("mean", "mean_us"), ("p50", "p50_us"), ("p90", "p90_us"), ("p99", "p99_us"),
           ("p50/raw", "p50_ratio"), ("p90/raw", "p90_ratio"))  # fmt: skip


def _latency_line(r: Row) -> str:
    return f"{r['label']:<22} {r['size']:>6} B  p50 {r['p50_us']} us  p90 {r['p90_us']} us"


# -------------------------------------------------------------------- latency
def cmd_latency(args: argparse.Namespace) -> int:
    from ..bench import ddsperf
    from ..bench.latency import System, goals, interleaved

    report = Report(args)
    systems = [System("cyclonedds"), *(System("gridbus", m) for m in args.modes)]
    c_domain = None
    if args.ddsperf and ddsperf.available():
        c_domain = args.ddsperf_domain if args.ddsperf_domain is not None else (domain_of(args) + 1) % 233
    rounds = max(1, math.ceil(args.count / args.per_round))
    rows = [
        row
        for rate in args.rates
        for row in interleaved(
            bench_options(args),
            systems,
            args.sizes,
            rate,
            rounds,
            min(args.per_round, args.count),
            report.progress(_latency_line),
            c_domain,
        )
    ]
    title = "One-way latency (round trip / 2), µs; systems interleaved round by round; ratios: median per round"
    report.show(title, LATENCY, rows, goals(rows))
    if args.ddsperf and c_domain is None:
        report.note("ddsperf not installed (apt-get install cyclonedds-tools): its row is left out")
    elif c_domain is not None:
        report.note(
            f"ddsperf on domain {c_domain}, loopback config, best effort; its percentiles: medians of 1-s windows"
        )
    return 0


# ----------------------------------------------------------------- throughput
def cmd_throughput(args: argparse.Namespace) -> int:
    from ..bench.throughput import goals, sweep, throughput

    report = Report(args)
    topics = ["Ping" if p == "ping" else "Measurement" for p in args.payloads]
    progress = report.progress(lambda r: " ".join(f"{k}={v}" for k, v in r.items()))
    options = replace(bench_options(args), batch=args.batch)
    if args.sweep:
        rows = sweep(options, topics, args.size, args.seconds, args.start_rate, args.max_steps, progress=progress)
    else:
        rows = throughput(options, topics, args.size, args.seconds, args.rate, progress)
    steps = [r for r in rows if "sent" in r]
    results = [r for r in rows if "sustained_per_s" in r]
    if report.json:
        print_json_lines([*rows, *(goals(rows) if results else [])])
        return 0
    report.show(
        "One-way streams (unpaced: as fast as the writer can; paced: at rate/s)",
        (("system", "system"), ("payload", "payload"), ("batch", "batch"), ("pacing", "pacing"), ("rate/s", "rate"),
         ("seconds", "seconds"),
         ("sent/s", "sent_per_s"), ("delivered/s", "delivered_per_s"), ("lost", "lost"), ("lost %", "lost_pct"),
         ("kept pace", "kept_pace"), ("sustained", "sustained"), ("writer CPU µs", "writer_cpu_us"),
         ("sink CPU µs", "sink_cpu_us")),
        steps,
    )  # fmt: skip
    if results:
        report.show(
            "Highest rate sustained (< 1 % loss, writer kept pace) per step of the sweep",
            (("system", "system"), ("payload", "payload"), ("batch", "batch"), ("sustained/s", "sustained_per_s"),
             ("failed at/s", "failed_at_per_s"), ("steps", "steps"), ("s per step", "step_seconds")),
            results,
            goals(rows),
        )  # fmt: skip
    return 0


# ---------------------------------------------------------------------- codec
def cmd_codec(args: argparse.Namespace) -> int:
    from ..bench.codec_speed import codec_speed, goals
    from .common import open_registry

    report = Report(args)
    rows = codec_speed(
        open_registry(args), args.rounds, args.batch_ms / 1000, args.types, report.progress(lambda r: r["type"])
    )
    report.show(
        f"µs per call, median of {args.rounds} rounds of timed batches (binding: serialize/deserialize)",
        (("type", "type"), ("bytes", "bytes"), ("path", "path"), ("same bytes", "same_bytes"),
         ("binding enc", "binding_encode_us"), ("codec enc", "codec_encode_us"), ("enc x", "encode_speedup"),
         ("binding dec", "binding_decode_us"), ("codec dec", "codec_decode_us"), ("dec x", "decode_speedup")),
        rows,
        goals(rows),
    )  # fmt: skip
    return 0


# ------------------------------------------------------------------- waveform
def cmd_waveform(args: argparse.Namespace) -> int:
    from ..bench.waveform import goals, waveform

    report = Report(args)
    rounds = max(1, math.ceil(args.count / args.per_round))
    rows, note = waveform(
        bench_options(args), args.sizes, args.rate, rounds, min(args.per_round, args.count), args.modes,
        report.progress(_latency_line),
    )  # fmt: skip
    report.show("Big samples: one-way latency (round trip / 2), µs, interleaved", LATENCY, rows, goals(rows))
    report.note(note)
    return 0


# ------------------------------------------------------------------- programs
def cmd_programs(args: argparse.Namespace) -> int:
    from ..bench.programs import goals, programs

    report = Report(args)
    rows = programs(
        domain_of(args),
        args.partition or f"bench-{uuid.uuid4().hex[:8]}",
        args.programs,
        args.paths,
        args.seconds,
        args.warmup,
        Path(args.daq_config) if args.daq_config else None,
        args.historian_objects,
        args.historian_rate,
        args.repeat,
        report.progress(lambda r: f"{r['program']} ({r['path']}): {r['cpu_percent']} % of a core, {r['rss_mb']} MB"),
    )
    report.show(
        "Whole programs: CPU (utime+stime over wall, % of one core) and peak RSS, read from /proc",
        (("program", "program"), ("codec path", "path"), ("setup", "setup"), ("seconds", "seconds"),
         ("CPU %", "cpu_percent"), ("peak RSS MB", "rss_mb"), ("samples/s", "samples_per_s"),
         ("p99 delay ms", "delay_p99_ms")),
        rows,
        goals(rows),
    )  # fmt: skip
    return 0


# --------------------------------------------------------------------- serial
def _line_label(row: dict[str, Any]) -> str:
    """A serial row's profile, with the number of drives sharing its line."""
    return str(row["profile"]) + (f" x{row['drives']}" if row["drives"] > 1 else "")


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
    keys = ("bus_to_line_ms_p50", "bus_to_line_ms_p90", "bus_to_confirmed_ms_p50", "bus_to_confirmed_ms_p90",
            "bus_to_confirmed_ms_max", "poll_rate_hz")  # fmt: skip
    print_table(
        "serial command latency (bus -> line -> confirmed on the bus), ms",
        ("profile", "baud", "confirmed", "to line p50", "to line p90", "confirmed p50", "confirmed p90",
         "confirmed max", "polls/s"),
        ((_line_label(r), str(r["baud"]), f"{r['confirmed']}/{r['commands']}", *(str(r[k]) for k in keys))
         for r in rows),
    )  # fmt: skip
    return 0


# ------------------------------------------------------------------ historian
INGEST_COLUMNS = ("db", "batch", "offered_per_s", "received", "stored", "stored_per_s", "delay_mean_ms",
                  "delay_p50_ms", "delay_p90_ms", "delay_p99_ms", "delay_max_ms")  # fmt: skip


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
def _bench(benches: Any, name: str, handler: Callable[[argparse.Namespace], int], text: str) -> Any:
    p = benches.add_parser(name, help=text, description=text)
    bus_options(p)
    p.set_defaults(handler=handler)
    p.add_argument("--json", action="store_true", help="one JSON object per line (machine, rows, goals)")
    return p


def _sizes(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument(
        "--sizes", type=number_list(positive_int, "sizes in bytes"), default=default, help="bytes, comma-separated"
    )


def _rounds(p: argparse.ArgumentParser, count: int) -> None:
    p.add_argument("--count", type=positive_int, default=count, help="pings per system and point, over all rounds")
    p.add_argument("--per-round", type=positive_int, default=200, help="pings per round (rounds interleave systems)")
    modes = name_list(("wait", "poll"), "receive modes")
    p.add_argument("--modes", type=modes, default="wait,poll", help="gridbus receive modes to run")


def register(sub: Subcommands) -> None:
    """Add ``bench`` and its benchmarks to the ``gridbus`` subcommands."""
    parser = sub.add_parser("bench", help="benchmarks: gridbus beside raw cyclonedds, C ddsperf and ZeroMQ")
    benches = parser.add_subparsers(dest="bench_command", required=True)

    p = _bench(benches, "codec", cmd_codec, "µs per encode and decode of every topic type, codec vs binding")
    p.add_argument("--rounds", type=positive_int, default=7, help="timed batches per figure (median reported)")
    p.add_argument("--batch-ms", type=positive_float, default=20.0, help="length of one timed batch, ms")
    p.add_argument(
        "--types", type=name_list(what="topic types"), default=None, help="only these (Generator_Measurement,...)"
    )

    p = _bench(benches, "latency", cmd_latency, "ping-pong latency, raw / gridbus wait / gridbus poll interleaved")
    _sizes(p, "32,1024")
    p.add_argument("--rates", type=number_list(positive_float, "rates"), default="1000", help="messages per second")
    _rounds(p, 5000)
    p.add_argument("--no-ddsperf", dest="ddsperf", action="store_false", help="leave C ddsperf out")
    p.add_argument(
        "--ddsperf-domain", type=domain_id, default=None, help="ddsperf's own domain (default: --domain + 1)"
    )

    p = _bench(benches, "throughput", cmd_throughput, "one-way stream rate and loss: unpaced, paced, or a sweep")
    p.add_argument("--size", type=positive_int, default=32, help="Bench_Ping size in bytes")
    p.add_argument("--payloads", type=name_list(("ping", "measurement"), "payloads"), default="ping,measurement")
    p.add_argument("--seconds", type=positive_float, default=5.0, help="seconds per step")
    p.add_argument("--rate", type=positive_float, default=None, help="also a step paced at this many samples/s")
    p.add_argument("--sweep", action="store_true", help="find the highest rate each system sustains (< 1 %% loss)")
    p.add_argument("--start-rate", type=positive_float, default=10000.0, help="the sweep's first rate")
    p.add_argument("--max-steps", type=positive_int, default=8, help="most sweep steps per system and payload")
    p.add_argument(
        "--batch", action="store_true", help="both systems' writers batch (Cyclone write batching), flushed per burst"
    )

    p = _bench(benches, "waveform", cmd_waveform, "16 and 64 KB samples: gridbus and raw beside ZeroMQ (tcp)")
    _sizes(p, "16384,65536")
    p.add_argument("--rate", type=positive_float, default=200.0, help="messages per second")
    _rounds(p, 1000)
    p.set_defaults(modes=["wait"], per_round=50)

    p = _bench(benches, "programs", cmd_programs, "CPU and memory of the DAQ agent, testbed and historian")
    p.add_argument(
        "--programs", type=name_list(("daq", "testbed", "historian"), "programs"), default="daq,testbed,historian"
    )
    p.add_argument("--paths", type=name_list(("fast", "binding"), "codec paths"), default="fast,binding")
    p.add_argument("--seconds", type=positive_float, default=10.0, help="measured seconds per run")
    p.add_argument("--repeat", type=positive_int, default=2, help="runs per program and path, alternating ABBA")
    p.add_argument("--warmup", type=positive_float, default=2.0, help="seconds after ready before measuring")
    p.add_argument(
        "--daq-config",
        type=input_file("DAQ agent config"),
        default=None,
        help="DAQ agent config (default: examples/daq-agent.toml)",
    )
    p.add_argument("--historian-objects", type=positive_int, default=100)
    p.add_argument("--historian-rate", type=positive_float, default=330.0, help="Hz per object (100 x 330 = 33k/s)")

    p = _bench(benches, "serial", cmd_serial, "command latency and poll rate through a serial translator")
    p.add_argument("--profiles", type=name_list(what="profiles"), default="vfd-modbus,speed-controller-ascii")
    p.add_argument("--bauds", type=number_list(positive_int, "baud rates"), default="9600,115200")
    p.add_argument("--count", type=positive_int, default=40, help="START/STOP commands per point")
    p.add_argument(
        "--drives",
        type=number_list(positive_int, "drive counts"),
        default="1",
        help="drives on one line (Modbus unit ids 1..n), e.g. 1,2,4; polls/s is per drive",
    )

    p = _bench(benches, "historian", cmd_historian, "sustained ingest into the historian and its delays per batch size")
    p.add_argument("--db", action="append", default=[], help="database URL (repeatable; default: a temporary SQLite)")
    p.add_argument("--batches", default="1,100,1000", help="recorder batch sizes")
    p.add_argument("--objects", type=int, default=100)
    p.add_argument("--rate", type=float, default=100.0, help="samples per second per object")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--kill-at", type=float, default=None, metavar="S", help="kill -9 the recorder S s into the stream")
    _aliases(benches)


def _aliases(benches: Subcommands) -> None:
    """The benchmarks that live beside their concept, under ``bench`` too (same options and handlers)."""
    pmu_stream.add_bench_options(command(benches, "pmu", pmu_stream.cmd_bench, pmu_stream.BENCH_HELP))
    pmu_sim.add_bench_options(command(benches, "vpmu", pmu_sim.cmd_bench_sim, pmu_sim.BENCH_HELP))
    cosim.add_bench_options(command(benches, "cosim", cosim.cmd_testbed_bench, cosim.BENCH_HELP))
    for name, module in (("net", net), ("bridge", bridge)):  # these two add their own --domain
        p = benches.add_parser(name, help=module.BENCH_HELP, description=module.BENCH_HELP)
        module.add_bench_options(p)
        p.set_defaults(handler=module.cmd_bench)
