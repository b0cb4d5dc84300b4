"""``gridbus pmu gateway`` (C37.118.2 client or server), ``gridbus pmu pdc`` and ``gridbus pmu bench``.

The long-running commands talk to the programs that run them in JSON lines on stdout:
``{"ready": ...}`` once listening or connecting (with the port a ``--serve 0`` got) and
``{"done": ...}`` at the end; their log records go to stderr.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from ..errors import GridbusError
from .argtypes import nonneg_float, positive_float, positive_int
from .common import command, on_stop_signals, open_bus

if TYPE_CHECKING:
    from ..synchrophasor.adapter import WireFormat
    from .common import Subcommands


def endpoint(text: str, *, host_required: bool) -> tuple[str, int]:
    """``HOST:PORT`` (or ``PORT`` alone when a host is optional: 127.0.0.1)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        if host_required:
            raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
        host = "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a numeric port, got {text!r}") from None
    if not 0 <= number <= 65535 or (host_required and number == 0):
        raise argparse.ArgumentTypeError(f"port {number} out of range in {text!r}")
    return host.strip("[]") or "127.0.0.1", number


def connect_endpoint(text: str) -> tuple[str, int]:
    return endpoint(text, host_required=True)


def serve_endpoint(text: str) -> tuple[str, int]:
    return endpoint(text, host_required=False)


connect_endpoint.__name__ = "HOST:PORT"
serve_endpoint.__name__ = "[HOST:]PORT"


def idcode(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an IDCODE 1..65534, got {text!r}") from None
    if not 1 <= value <= 65534:
        raise argparse.ArgumentTypeError(f"IDCODE must be 1..65534, got {value}")
    return value


idcode.__name__ = "IDCODE"


def id_mapping(items: list[str]) -> dict[int, str]:
    out = {}
    for item in items:
        code, sep, name = item.partition("=")
        if not sep:
            raise GridbusError(f"--map expects IDCODE=PMU_ID, got {item!r}")
        try:
            out[idcode(code)] = name
        except argparse.ArgumentTypeError as exc:
            raise GridbusError(f"--map {item}: {exc}") from None
    return out


def _emit(kind: str, value: Any) -> None:
    print(json.dumps({kind: value}), flush=True)


def _wire_format(args: argparse.Namespace) -> WireFormat:
    from ..synchrophasor.adapter import WireFormat

    return WireFormat.parse(
        args.format,
        volts_per_bit=args.volts_per_bit,
        amps_per_bit=args.amps_per_bit,
        analog_per_bit=args.analog_per_bit,
    )


def cmd_gateway(args: argparse.Namespace) -> int:
    if (args.connect is None) == (args.serve is None):
        raise GridbusError(
            "give either --connect HOST:PORT (a PMU or PDC onto the bus) or --serve PORT (the bus's PMUs)"
        )
    if args.connect is not None:
        return _client(args)
    return _serve(args, pdc_id=None)


def _client(args: argparse.Namespace) -> int:
    from ..synchrophasor.client import GatewayClient

    if args.pmu or args.udp_to:
        raise GridbusError("--pmu and --udp-to are for --serve; with --connect the stream's CFG-2 says what comes")
    host, port = args.connect
    ids = id_mapping(args.map)
    with open_bus(args) as bus:
        for name in ids.values():
            if bus.registry.parse_id(name).prefix != "PMU":
                raise GridbusError(f"--map: {name!r} is not a PMU id (PMU_<index>)")
        client = GatewayClient(bus, host, port, args.idcode, ids=ids, link_id=args.link_id, udp=args.udp)
        on_stop_signals(client.stop)
        _emit("ready", {"connect": f"{host}:{port}", "idcode": args.idcode, "link": client.health.link_id})
        client.run(args.duration)
        _emit("done", {"frames": client.frames, **client.health.fields})
    return 0


def _serve(args: argparse.Namespace, pdc_id: str | None) -> int:
    from ..synchrophasor.health import LinkHealth, link_id_for
    from ..synchrophasor.pdc import Concentrator
    from ..synchrophasor.server import GatewayServer
    from ..synchrophasor.stream import StreamFeed

    if not args.pmu:
        raise GridbusError("give the PMUs to serve: --pmu PMU_1 [--pmu PMU_2 ...]")
    fmt = _wire_format(args)
    with open_bus(args) as bus:
        if pdc_id and bus.registry.parse_id(pdc_id).prefix != "PDC":
            raise GridbusError(f"--id {pdc_id}: not a PDC id (PDC_<index>)")
        server = None
        if args.serve is not None:
            host, port = args.serve
            try:
                server = GatewayServer(host, port, args.idcode, udp=args.udp, udp_to=args.udp_to)
            except OSError as exc:
                raise GridbusError(f"--serve {host}:{port}: {exc.strerror or exc}") from None
            link = args.link_id or link_id_for(host, server.port)
            health = LinkHealth(bus, link, f"tcp://{host}:{server.port}", "c37.118.2-server")
            server.on_error = health.error
            server.on_connect = lambda _peer: health.set(reconnects=health.fields["reconnects"] + 1)
            health.set(connected=True, object_id=args.pmu[0])
        feed = StreamFeed(server, fmt, args.pmu) if server is not None else None
        pdc = Concentrator(bus, args.pmu, args.window, pdc_id=pdc_id, feed=feed)
        on_stop_signals(pdc.stop)
        if server is not None:
            server.start()
        ready: dict[str, Any] = {"pmus": args.pmu, "window": args.window}
        if server is not None:
            ready |= {"serve": f"{server.address[0]}:{server.port}", "port": server.port, "idcode": args.idcode}
            ready |= {"udp": args.udp, "udp_to": [f"{h}:{p}" for h, p in args.udp_to]}
        if pdc_id:
            ready["pdc"] = pdc_id
        _emit("ready", ready)
        try:
            pdc.run(args.duration)
        finally:
            if server is not None:
                server.close()
                health.set(connected=False)
            pdc.close()
        done: dict[str, Any] = {"sets": pdc.sets, **{k: v for k, v in pdc.state_fields().items() if k != "window"}}
        if server is not None:
            done["frames_sent"] = server.frames_sent
        _emit("done", done)
    return 0


def cmd_pdc(args: argparse.Namespace) -> int:
    return _serve(args, pdc_id=args.id)


def cmd_bench(args: argparse.Namespace) -> int:
    from ..synchrophasor.bench import run_benchmarks

    results = run_benchmarks(args.domain, args.seconds, args.rate, args.pmus)
    print(json.dumps(results, indent=None if args.json else 2))
    return 0


BENCH_HELP = "gateway frames/s both ways; measurement time -> SQLite row delay"


def add_bench_options(p: argparse.ArgumentParser) -> None:
    """The options of ``pmu bench`` (also ``gridbus bench pmu``)."""
    p.add_argument("--seconds", type=positive_float, default=3.0, help="seconds per measurement (default 3)")
    p.add_argument("--rate", type=positive_int, default=100, help="frames/s of the delay run (default 100)")
    p.add_argument("--pmus", type=positive_int, default=2, help="PMUs per frame (default 2)")
    p.add_argument("--json", action="store_true", help="one JSON line")


def _stream_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--idcode", type=idcode, default=1, help="the stream's IDCODE: asked for or sent (default 1)")
    p.add_argument("--format", default="polar,float", help="polar or rect, float or int (default polar,float)")
    p.add_argument("--volts-per-bit", type=positive_float, default=0.1, help="int16 voltage scale (default 0.1 V)")
    p.add_argument("--amps-per-bit", type=positive_float, default=0.01, help="int16 current scale (default 0.01 A)")
    p.add_argument("--analog-per-bit", type=positive_float, default=0.01, help="int16 analog scale (default 0.01)")
    p.add_argument("--udp", action="store_true", help="--connect: commands and data by UDP; --serve: UDP too")
    p.add_argument(
        "--udp-to",
        type=connect_endpoint,
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="--serve: send data there",
    )
    p.add_argument("--link-id", default=None, help="Link_State id of the gateway (default LINK_<host>-<port>)")
    p.add_argument("--duration", type=positive_float, default=None, help="seconds to run (default: until Ctrl-C)")


def add_commands(pmus: Subcommands) -> None:
    """Add this module's subcommands to ``gridbus pmu``."""
    p = command(pmus, "gateway", cmd_gateway, "C37.118.2 gateway: a PMU/PDC onto the bus, or the bus's PMUs served")
    p.add_argument(
        "--connect",
        type=connect_endpoint,
        default=None,
        metavar="HOST:PORT",
        help="read the PMU/PDC stream at HOST:PORT",
    )
    p.add_argument(
        "--serve", type=serve_endpoint, default=None, metavar="[HOST:]PORT", help="serve the --pmu PMUs on [HOST:]PORT"
    )
    p.add_argument("--pmu", action="append", default=[], help="with --serve: a PMU to serve (repeat: multi-PMU)")
    p.add_argument("--map", action="append", default=[], metavar="IDCODE=PMU_ID", help="--connect: a PMU's bus id")
    p.add_argument("--window", type=nonneg_float, default=0.05, help="several --pmu: alignment wait window (s)")
    _stream_options(p)

    p = command(pmus, "pdc", cmd_pdc, "phasor data concentrator: PMUs aligned by measurement time")
    p.add_argument("--pmu", action="append", default=[], required=True, help="a PMU to align (repeat)")
    p.add_argument("--window", type=nonneg_float, default=0.1, help="wait window for late frames (s, default 0.1)")
    p.add_argument("--id", default="PDC_1", help="PDC object id (default PDC_1)")
    p.add_argument(
        "--serve",
        type=serve_endpoint,
        default=None,
        metavar="[HOST:]PORT",
        help="also serve the sets as one C37.118.2 stream",
    )
    _stream_options(p)

    add_bench_options(command(pmus, "bench", cmd_bench, BENCH_HELP))
