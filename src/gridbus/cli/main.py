"""The ``gridbus`` command line.

Every command takes ``--domain N`` (default ``GRIDBUS_DOMAIN`` or 0) and the
same data-model and QoS options as :class:`gridbus.Bus`.  Bad input ends with
a one-line error naming what was wrong and exit status 2.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import GridbusError
from .argtypes import (GridbusArgumentParser, cyclone_config, domain_from_env, domain_id, epoch_seconds,
                       input_file, link_path, nonneg_float, output_dir, positive_float, positive_int,
                       profile_ref)

EXIT_BAD_INPUT = 2


def _bus_options(parser: argparse.ArgumentParser, config_flag: str = "--config") -> None:
    group = parser.add_argument_group("bus options")
    group.add_argument("--domain", type=domain_id, default=None,
                       help="DDS domain id 0..232 (default: $GRIDBUS_DOMAIN or 0)")
    group.add_argument("--qos", dest="qos_file", type=input_file("QoS XML file"), default=None,
                       help="QoS profile XML file")
    group.add_argument("--topic-map", type=input_file("topic map XML file"), default=None,
                       help="topic -> profile map XML file")
    group.add_argument(config_flag, dest="config", type=cyclone_config, default=None,
                       help="Cyclone DDS configuration (default: loopback only, or $CYCLONEDDS_URI)")
    group.add_argument("--idl", action="append", type=input_file("IDL file"), default=[], metavar="FILE",
                       help="extra IDL file with object types of your own (repeatable)")
    group.add_argument("--partition", default=None, help="DDS partition to join")


def open_bus(args: argparse.Namespace):
    from ..bus import Bus
    return Bus(args.domain, qos_file=args.qos_file, topic_map=args.topic_map, config=args.config,
               idl=args.idl, partition=args.partition)


def open_registry(args: argparse.Namespace):
    from ..model import Registry
    registry = Registry.default()
    for path in getattr(args, "idl", []):
        registry.load_idl(path)
    return registry


# ------------------------------------------------------------------------ types
def cmd_types(args: argparse.Namespace) -> int:
    registry = open_registry(args)
    if args.type is not None and not args.type.strip():
        raise GridbusError("TYPE is empty; give an object type name or prefix (G, Generator), or none for all")
    objects = [registry.by_name(args.type)] if args.type else list(registry.object_types.values())
    if args.json:
        for obj in objects:
            print(json.dumps({"type": obj.name, "prefix": obj.prefix, "title": obj.title,
                              "module": obj.module, "topics": [t.describe() for t in obj.topics.values()]}))
        return 0
    from rich.console import Console
    from rich.table import Table
    console = Console(width=max(120, Console().width))
    for obj in objects:
        table = Table(title=f"{obj.name} ({obj.prefix}_x) - {obj.title}", title_justify="left")
        for column in ("topic", "field", "type", "unit", "range", "note"):
            table.add_column(column)
        for topic in obj.topics.values():
            for info in topic.fields.values():
                if info.name == "id":
                    continue
                span = "" if info.min is None and info.max is None else \
                    f"{'' if info.min is None else f'{info.min:g}'}..{'' if info.max is None else f'{info.max:g}'}"
                note = info.doc or ("|".join(m.name for m in info.enum) if info.enum else "")
                table.add_row(topic.name, info.name, info.type_name, info.unit or "", span, note)
        console.print(table)
    return 0


# ---------------------------------------------------------------------- publish
def _parse_assignments(items: list[str]) -> dict[str, str]:
    """``f=60 Va=120`` as a dict; a field given twice or the id given as a field is an error."""
    fields: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise GridbusError(f"expected field=value, got {item!r}")
        if not value:
            raise GridbusError(f"{name}: no value after '=' in {item!r}")
        if name == "id":
            raise GridbusError(f"{item!r}: the object id is the first argument, not a field")
        if name in fields:
            raise GridbusError(f"field {name} is given twice ({name}={fields[name]} and {item})")
        if _is_infinite(value):
            raise GridbusError(f"{name}={value}: not a finite number (NaN means 'unset' in commands)")
        fields[name] = value
    return fields


def _is_infinite(text: str) -> bool:
    try:
        return math.isinf(float(text))
    except ValueError:
        return False


def cmd_publish(args: argparse.Namespace) -> int:
    fields = _parse_assignments(args.fields)
    if not fields and not args.role:
        raise GridbusError(f"nothing to publish: give field=value pairs for {args.id} (or --role to "
                           "publish a sample of defaults)")
    obj = open_registry(args).parse_id(args.id)              # check before joining the domain
    topic = obj.topic(args.role) if args.role else obj.topic_of_fields(fields)
    topic.build(args.id, fields)
    with open_bus(args) as bus:
        writer = bus.writer(args.id, topic.role)
        sample = writer.build(**fields)                     # check before anything is sent
        writer.wait_for_readers(1, timeout=args.wait)
        period = 1.0 / args.rate if args.rate else 0.0
        start = time.monotonic()
        for i in range(args.count):
            if period:
                delay = start + i * period - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            writer.write(sample)
        if topic.role != "Measurement":
            time.sleep(0.2)                                 # let reliable data reach the readers
        print(f"published {args.count} x {topic.name} {json.dumps(topic.to_dict(sample))}",
              file=sys.stderr)
    return 0


# ---------------------------------------------------------------------- testbed
def cmd_testbed(args: argparse.Namespace) -> int:
    from ..testbed.service import SimClock, TestbedService, describe
    from ..testbed.system import load_system
    system = load_system(args.system)
    if args.check:
        print(json.dumps(describe(system), indent=2))
        return 0
    epoch = args.epoch if args.epoch is not None else time.time()
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))      # clean up (ptys, DDS) on terminate
    with open_bus(args) as bus:
        service = TestbedService(bus, system, rate=args.rate, clock=SimClock(epoch, args.speed),
                                 serial_drives=args.serial_drives, drive_profile=args.drive_profile)
        info = describe(system) | {"domain": bus.domain_id, "rate": args.rate, "speed": args.speed,
                                   "epoch": epoch}
        if service.drives is not None:
            info["serial_drives"] = service.drives.paths()
            info["drive_profile"] = service.drives.profile.name
        service.run(args.duration, ready=lambda: print(json.dumps({"ready": info}), flush=True))
        print(json.dumps({"done": {"simulated": round(service.plant.t, 3), "published": service.published,
                                   "late_ticks": service.lag_steps}}), flush=True)
    return 0


# -------------------------------------------------------------------------- daq
def cmd_daq(args: argparse.Namespace) -> int:
    import resource
    from ..daq.agent import DaqAgent, footprint, load_config
    config = load_config(args.agent_config)
    if args.rate is not None:
        config.rate = args.rate
    if config.rate > config.sample_rate:                 # a tick would see no new sample
        source = "--rate" if args.rate is not None else f"{args.agent_config}: [agent] rate"
        raise GridbusError(f"{source} {config.rate:g} is above the sample rate {config.sample_rate:g}: "
                           "each publication needs at least one new sample")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open_bus(args) as bus:
        agent = DaqAgent(bus, config)
        import signal
        for signum in (signal.SIGINT, signal.SIGTERM):   # both end cleanly, with the report
            signal.signal(signum, lambda *_: agent.stop())
        print(json.dumps({"ready": {"objects": sorted(agent.ids), "rate": config.rate,
                                    "sample_rate": config.sample_rate}}), flush=True)
        start_wall, start_cpu = time.monotonic(), usage.ru_utime + usage.ru_stime
        agent.run(args.duration)
        report = {"published": agent.published, "commands_applied": agent.applied,
                  "commands_rejected": agent.rejected}
        if args.stats:
            report |= footprint(start_wall, start_cpu)
        print(json.dumps({"done": report}), flush=True)
    return 0


# ------------------------------------------------------------------- experiment
def cmd_experiment(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn
    from ..experiments import CASES, run_experiment
    names = list(CASES) if args.name == "all" else [args.name]
    if args.speed <= 0:
        raise GridbusError("--speed must be > 0")
    console = Console()
    failed = 0
    for name in names:
        out = Path(args.out) / name if len(names) > 1 or args.out == "experiments" else Path(args.out)
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[stage]}"),
                      console=console, transient=True) as bar:
            task = bar.add_task(f"{name} (x{args.speed:g})", total=1.0, stage="")

            def progress(now: float, total: float, stage: str) -> None:
                bar.update(task, completed=min(1.0, now / max(total, 1e-9)), stage=f"t={now:6.1f} s  {stage}")

            summary = run_experiment(name, out, speed=args.speed, domain=args.domain, partition=args.partition,
                                     system=args.system, progress=progress)
        _print_summary(console, summary, out)
        failed += not summary["reproduced"]
    if len(names) > 1:
        console.print(f"{len(names) - failed} of {len(names)} cases reproduced the paper")
    return 1 if failed else 0


def _print_summary(console, summary: dict[str, Any], out: Path) -> None:
    from rich.table import Table
    table = Table(title=f"{summary['title']} ({summary['figures']})", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    skip = {"case", "title", "figures", "closures", "trips", "controllers", "events", "files", "sync_limits",
            "verdict", "reproduced"}
    for key, value in summary.items():
        if key not in skip:
            table.add_row(key, f"{value:.2f}" if isinstance(value, float) else str(value))
    console.print(table)
    closures = Table(title="breaker closures (plant's view)", title_justify="left")
    for column in ("t (s)", "breaker", "df (Hz)", "dV (V)", "dphi (deg)", "fault"):
        closures.add_column(column)
    for c in summary["closures"]:
        closures.add_row(f"{c['t']:.1f}", c["breaker"], f"{c['df']:+.3f}", f"{c['dV']:+.2f}",
                         f"{c['dphi_deg']:+.1f}", c["fault"])
    console.print(closures)
    console.print(f"results in {out}/: summary.json, {len(summary['files']['csv'])} CSV files, "
                  f"plots {', '.join(summary['files']['plots'])}")
    _print_verdict(console, summary)


def _print_verdict(console, summary: dict[str, Any]) -> None:
    """One row per expected outcome; the case reproduced the paper when every row passes."""
    from rich.table import Table
    table = Table(title=f"verdict: {summary['title']}", title_justify="left")
    for column in ("check", "expected", "measured", "pass"):
        table.add_column(column)
    for c in summary["verdict"]:
        measured = "n/a" if c["measured"] is None else str(c["measured"])
        table.add_row(c["name"], c["expected"], measured, "[green]pass" if c["pass"] else "[bold red]FAIL")
    console.print(table)
    passed = sum(c["pass"] for c in summary["verdict"])
    word = "reproduced" if summary["reproduced"] else "did NOT reproduce"
    console.print(f"{summary['case']}: {word} the paper ({passed} of {len(summary['verdict'])} checks pass; "
                  f"simulated {summary['ended_at']:.0f} s in {summary['wall_seconds']:.0f} s wall, "
                  f"x{summary['effective_speed']:.1f} of x{summary['speed']:g})")


# -------------------------------------------------------------- serial devices
def cmd_translate(args: argparse.Namespace) -> int:
    from ..translators.profile import load_profile
    from ..translators.translator import Translator
    profile = load_profile(args.profile)
    if args.baud:
        profile.serial.baudrate = args.baud
    object_id = args.object or f"{profile.object}_1"
    with open_bus(args) as bus:
        translator = Translator(bus, profile, args.port, object_id, publish_state=not args.no_state,
                                publish_measurement=not args.no_measurement)
        import signal
        for signum in (signal.SIGINT, signal.SIGTERM):   # both end cleanly: Link_State says disconnected
            signal.signal(signum, lambda *_: translator.stop())
        print(json.dumps({"ready": {"profile": profile.name, "port": args.port, "object": object_id,
                                    "link": translator.link_id}}), flush=True)
        translator.run(args.duration)
        print(json.dumps({"done": translator.health}), flush=True)
    return 0


def cmd_device_sim(args: argparse.Namespace) -> int:
    from ..translators.devices import run_simulator
    from ..translators.profile import load_profile
    profile = load_profile(args.profile)
    if args.baud:
        profile.serial.baudrate = args.baud
    return run_simulator(profile, args.link, args.duration, args.trace)


def cmd_profiles(args: argparse.Namespace) -> int:
    from ..translators.profile import available, load_profile
    for name in available():
        p = load_profile(name)
        print(f"{name:26} {p.protocol:11} {p.object}_x  {p.title}")
    return 0


# -------------------------------------------------------------------- historian
def cmd_record(args: argparse.Namespace) -> int:
    """Exit 0 when every sample taken is in the database, 1 when some are not (counted), 2 on refusal."""
    import logging
    import signal
    from ..historian.recorder import Recorder, summary
    from ..historian.sinks import open_sink
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise GridbusError(f"--duration must be a positive number of seconds, not {args.duration}")
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, format="%(message)s", level=logging.INFO)
    sink = open_sink(args.db)
    with open_bus(args) as bus:
        recorder = Recorder(bus, sink, args.patterns, args.role or None, batch=args.batch,
                            flush_interval=args.flush_interval, max_buffer=args.max_buffer, spool=args.spool,
                            exit_timeout=args.exit_timeout, queue=args.dds_queue)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: recorder.stop())
        print(json.dumps({"ready": {"db": sink.url, "patterns": args.patterns, "readers": len(recorder.readers),
                                    "journal": str(recorder.journal.path), "spool": str(recorder.spool)}}),
              flush=True)
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
    stats = delays(args.db, args.topic)
    if args.png:
        try:
            histogram(stats, Path(args.png))
        except OSError as exc:
            raise GridbusError(f"--png {args.png}: {exc.strerror or exc}") from None
    rows = {name: {k: v for k, v in entry.items() if k != "_values"} for name, entry in stats.items()}
    if args.json:
        print(json.dumps(rows))
        return 0
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"delay = row created - source time, ms ({redact(args.db)})", title_justify="left")
    for column in ("topic", "count", "mean", "p50", "p90", "p99", "max"):
        table.add_column(column, justify="right")
    for name, r in rows.items():
        table.add_row(name, str(r["count"]), *(f"{r[k]:.2f}" for k in ("mean_ms", "p50_ms", "p90_ms", "p99_ms",
                                                                        "max_ms")))
    Console(width=max(100, Console().width)).print(table)
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


# -------------------------------------------------------------------- subscribe
def sample_json(sample) -> str:
    data = {k: _json_value(v) for k, v in sample.fields().items() if k != "id"}
    return json.dumps({"id": sample.id, "topic": sample.topic, "data": data,
                       "source_time": sample.source_time, "reception_time": sample.reception_time})


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def cmd_subscribe(args: argparse.Namespace) -> int:
    if not args.pattern.strip():
        raise GridbusError("PATTERN is empty; give an object id (G_1), a type (G), G_* or *")
    objects, _ = open_registry(args).select(args.pattern)     # check before joining the domain
    if args.role and not any(args.role in o.topics for o in objects):
        raise GridbusError(f"no object type matching {args.pattern!r} has a {args.role} topic")
    with open_bus(args) as bus:
        reader = bus.reader(args.pattern, args.role, mode="wait")
        end = None if args.timeout is None else time.monotonic() + args.timeout
        seen = 0
        while args.count is None or seen < args.count:
            remaining = None if end is None else end - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            sample = reader.take_one(timeout=remaining)
            if sample is None:
                break
            seen += 1
            if args.json:
                print(sample_json(sample), flush=True)
            else:
                values = " ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                                  for k, v in sample.fields().items() if k != "id")
                print(f"{time.strftime('%H:%M:%S', time.localtime(sample.source_time))} "
                      f"{sample.topic} {sample.id} {values}", flush=True)
    if args.count is not None and seen < args.count:
        print(f"gridbus: received {seen} of {args.count} samples before the timeout", file=sys.stderr)
        return 1
    return 0


# -------------------------------------------------------------------------- qos
def cmd_qos_show(args: argparse.Namespace) -> int:
    from ..qos import TopicMap, describe
    registry = open_registry(args)
    known = {o.prefix for o in registry.object_types.values()} | {o.name for o in registry.object_types.values()}
    obj = registry.by_name(args.id) if args.id in known else registry.parse_id(args.id)
    qos_map = TopicMap(args.topic_map, args.qos_file) if args.topic_map else TopicMap(qos_file=args.qos_file)
    rows = []
    for topic in obj.topics.values():
        profile = qos_map.profile_for(topic.name)
        entry = {"topic": topic.name, "profile": profile, **describe(qos_map.writer_qos(topic.name)),
                 "reader": describe(qos_map.reader_qos(topic.name))}
        rows.append(entry)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"QoS in effect for {args.id} (writer side; reader where it differs)")
    for column in ("topic", "profile", "reliability", "durability", "history", "deadline", "lifespan",
                   "latency budget", "order", "priority", "ownership"):
        table.add_column(column)
    for row in rows:
        history = row["history"]
        table.add_row(row["topic"], row["profile"], row["reliability"], row["durability"],
                      f"{history['kind']} {history['depth'] or ''}".strip(),
                      _duration(row["deadline"]), _duration(row["lifespan"]), _duration(row["latency_budget"]),
                      row["destination_order"].removeprefix("by_"), str(row["transport_priority"]),
                      row["ownership"])
    Console(width=max(120, Console().width)).print(table)
    return 0


def _duration(seconds: float | None) -> str:
    return "inf" if seconds is None else f"{seconds:g} s"


# --------------------------------------------------------------------------- ls
def cmd_ls(args: argparse.Namespace) -> int:
    from ..discovery import watch
    return watch(open_bus(args), duration=args.duration, as_json=args.json)


# -------------------------------------------------------------------------- idl
def cmd_idl_generate(args: argparse.Namespace) -> int:
    from ..idl import TYPES_DIR, generate
    files = [Path(f) for f in args.files] or sorted(Path(args.idl_dir).glob("*.idl"))
    if not files:
        raise GridbusError(f"no IDL files in {args.idl_dir}")
    out = Path(args.out) if args.out else TYPES_DIR
    for path in generate(files, out):
        print(f"wrote {path}")
    return 0


# ---------------------------------------------------------------- bench / demo
def cmd_bench(args: argparse.Namespace) -> int:
    from .. import bench
    return bench.main(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from .. import demo
    return demo.main(args)


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = GridbusArgumentParser(prog="gridbus", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _bus_options(p)
        p.set_defaults(handler=handler)
        return p

    p = command("types", cmd_types, "list object types, their topics, fields and units")
    p.add_argument("type", nargs="?", help="one object type (name or prefix)")
    p.add_argument("--json", action="store_true", help="one JSON object per type")

    p = command("publish", cmd_publish, "publish fields of one object (a command or state field "
                "publishes on that topic)")
    p.add_argument("id", help="object id, e.g. G_1 or CB_3")
    p.add_argument("fields", nargs="*", metavar="field=value")
    p.add_argument("--role", help="topic role (Measurement, State, Command, Protection)")
    p.add_argument("--count", type=positive_int, default=1)
    p.add_argument("--rate", type=positive_float, default=None, help="samples per second (default: back to back)")
    p.add_argument("--wait", type=nonneg_float, default=1.0, help="seconds to wait for a reader first")

    p = command("subscribe", cmd_subscribe, "print samples of an object, a type or all (*)")
    p.add_argument("pattern", help="G_1, G, G_* or *")
    p.add_argument("--role", help="topic role (default Measurement, else State)")
    p.add_argument("--count", type=positive_int, default=None)
    p.add_argument("--timeout", type=positive_float, default=None, help="stop after this many seconds")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per line: id, topic, data, source_time, reception_time")

    qos = sub.add_parser("qos", help="QoS in effect").add_subparsers(dest="qos_command", required=True)
    p = qos.add_parser("show", help="QoS in effect for each topic of an object")
    _bus_options(p)
    p.set_defaults(handler=cmd_qos_show)
    p.add_argument("id", help="object id (G_1) or type (G)")
    p.add_argument("--json", action="store_true")

    p = command("ls", cmd_ls, "list participants and topics on the domain as they join and leave")
    p.add_argument("--duration", type=nonneg_float, default=3.0, help="seconds to watch (0 = until Ctrl-C)")
    p.add_argument("--json", action="store_true")

    idl = sub.add_parser("idl", help="data model tools").add_subparsers(dest="idl_command", required=True)
    p = idl.add_parser("generate", help="regenerate the Python types from IDL with idlc")
    p.set_defaults(handler=cmd_idl_generate)
    p.add_argument("files", nargs="*", type=input_file("IDL file"),
                   help="IDL files (default: every *.idl in --idl-dir)")
    p.add_argument("--idl-dir", default=str(Path(__file__).resolve().parents[1] / "data" / "idl"))
    p.add_argument("--out", type=output_dir("output package directory"), default=None,
                   help="output package directory (default: gridbus/types)")

    from ..bench import add_arguments as bench_arguments
    bench = sub.add_parser("bench", help="latency and throughput benchmarks, gridbus beside raw cyclonedds")
    bench_arguments(bench, _bus_options)
    bench.set_defaults(handler=cmd_bench)

    p = command("testbed", cmd_testbed, "run the virtual testbed (the lab's plant, simulated) on the bus")
    p.add_argument("--system", type=input_file("system file"), default=None,
                   help="system file (default: the shipped FIU testbed)")
    p.add_argument("--rate", type=positive_float, default=100.0,
                   help="measurement rate in Hz (object types listed under [rates] use theirs)")
    p.add_argument("--speed", type=positive_float, default=1.0, help="simulated seconds per wall-clock second")
    p.add_argument("--duration", type=positive_float, default=None,
                   help="simulated seconds to run (default: forever)")
    p.add_argument("--epoch", type=epoch_seconds, default=None,
                   help="wall-clock time (UNIX s) of simulated time 0, to share the clock with controllers")
    p.add_argument("--check", action="store_true", help="check the system file, print its inventory, exit")
    p.add_argument("--serial-drives", metavar="DIR", type=output_dir("--serial-drives directory"), default=None,
                   help="serve each generator's prime-mover drive on a pty at DIR/G_x; the drives, not "
                        "Generator_Command, then start, stop and set speed and power (use gridbus translate)")
    p.add_argument("--drive-profile", type=profile_ref, default="vfd-modbus",
                   help="drive profile of --serial-drives")

    p = sub.add_parser("daq", help="run a DAQ agent: sample waveforms, compute per-cycle values, publish, obey")
    _bus_options(p, config_flag="--dds-config")
    p.set_defaults(handler=cmd_daq)
    p.add_argument("--config", dest="agent_config", type=input_file("DAQ agent configuration"), required=True,
                   help="agent configuration (TOML; see examples/daq-agent.toml)")
    p.add_argument("--rate", type=positive_float, default=None, help="publications per second per object")
    p.add_argument("--duration", type=positive_float, default=None, help="seconds to run (default: forever)")
    p.add_argument("--stats", action="store_true", help="report peak RSS and CPU use when done")

    p = command("experiment", cmd_experiment, "run one of the paper's experiments end to end "
                "(testbed, controllers, recorder) and write CSV, plots and summary.json")
    p.add_argument("name", choices=["sync", "load-sharing", "reconfig", "all"])
    p.add_argument("--speed", type=float, default=10.0, help="simulated seconds per wall-clock second")
    p.add_argument("--out", type=output_dir("experiment output directory"), default="experiments", help="output directory (one subdirectory per case)")
    p.add_argument("--system", default=None, help="system file (default: the shipped FIU testbed)")

    p = command("translate", cmd_translate, "bridge one serial device onto the bus (protocol translator)")
    p.add_argument("profile", type=profile_ref, help="device profile name (gridbus profiles) or file")
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0 or a device-sim path")
    p.add_argument("--object", default=None, help="object the device serves (default: PREFIX_1)")
    p.add_argument("--duration", type=positive_float, default=None, help="seconds to run (default: forever)")
    p.add_argument("--baud", type=positive_int, default=None, help="override the profile's baud rate")
    p.add_argument("--no-state", action="store_true", help="do not publish the object's State topic")
    p.add_argument("--no-measurement", action="store_true",
                   help="do not publish the object's Measurement topic (a DAQ agent does)")

    p = sub.add_parser("device-sim", help="simulate a serial device on a pseudo-terminal (prints its path)")
    p.set_defaults(handler=cmd_device_sim)
    p.add_argument("profile", type=profile_ref, help="device profile name or file")
    p.add_argument("--link", type=link_path, default=None,
                   help="path of the symlink to the pty (default: a temp dir)")
    p.add_argument("--duration", type=positive_float, default=None)
    p.add_argument("--trace", action="store_true", help="print a JSON line per request received")
    p.add_argument("--baud", type=positive_int, default=None, help="override the profile's baud rate")

    p = sub.add_parser("profiles", help="list the shipped device profiles")
    p.set_defaults(handler=cmd_profiles)

    p = command("record", cmd_record, "store every sample of the selected objects in a database")
    p.add_argument("patterns", nargs="+", help="objects or types to record: G_1, G, G_*, *")
    p.add_argument("--db", default="gridbus.sqlite",
                   help="SQLite file (default gridbus.sqlite), postgresql://... or FILE.csv")
    p.add_argument("--role", action="append", default=[], help="topic role to record (default: all)")
    p.add_argument("--batch", type=int, default=100, help="rows per write")
    p.add_argument("--flush-interval", type=float, default=1.0, help="seconds between writes at most")
    p.add_argument("--max-buffer", type=int, default=1_000_000,
                   help="rows kept in memory while the journal cannot be written")
    p.add_argument("--duration", type=float, default=None, help="seconds to record (default: until Ctrl-C)")
    p.add_argument("--spool", default=None, metavar="DIR",
                   help="journal and spool directory (default: $XDG_STATE_HOME/gridbus or ~/.local/state/gridbus)")
    p.add_argument("--exit-timeout", type=float, default=10.0,
                   help="seconds to keep trying the database at exit before spooling the rest")
    p.add_argument("--dds-queue", type=int, default=100_000,
                   help="samples DDS keeps per topic for the recorder; beyond, new ones are dropped and counted")

    p = sub.add_parser("delays", help="delay analysis: row created - source time per topic")
    p.set_defaults(handler=cmd_delays)
    p.add_argument("--db", required=True)
    p.add_argument("--topic", default=None)
    p.add_argument("--png", default=None, help="write a histogram PNG here")
    p.add_argument("--json", action="store_true")

    p = command("replay", cmd_replay, "publish recorded series again, with their timing or sped up")
    p.add_argument("--db", default=None, help="SQLite file or postgresql://...")
    p.add_argument("--csv", default=None, help="a CSV written by gridbus record")
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--object", action="append", default=[], help="objects to replay (patterns; default all)")
    p.add_argument("--topic", default=None, help="one topic, e.g. Load_Command")
    p.add_argument("--as", dest="rename", action="append", default=[], metavar="OLD=NEW",
                   help="publish OLD's series as NEW (e.g. L_1=L_4)")

    p = command("demo", cmd_demo, "two processes: generator measurements, a breaker command and its state")
    p.add_argument("--seconds", type=positive_float, default=4.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "domain", 0) is None:
            args.domain = domain_from_env(os.environ)       # a bad GRIDBUS_DOMAIN fails every command
        return args.handler(args) or 0
    except GridbusError as exc:
        print(f"gridbus: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _stdout_gone()
    except OSError as exc:               # a file the user named cannot be made or written
        name = f"{exc.filename}: " if exc.filename else ""
        print(f"gridbus: error: {name}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _stdout_gone() -> int:
    """The reader of our output left (``gridbus types --json | head``): exit quietly.

    Python's recipe: point stdout at /dev/null so that the flush at exit
    does not fail a second time and print a traceback.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1


if __name__ == "__main__":
    sys.exit(main())
