"""Remote sites: ``gridbus bridge`` (run one site's bridge), ``bridge certs``, ``bridge bench``.

``gridbus bridge --site A --listen tls/0.0.0.0:7447 --cert a.pem --key a.key
--ca ca.pem`` joins this site's domain to the WAN; the far site runs the same
with ``--connect tls/HOST:7447``.  It says ``{"ready": ...}`` on stdout once
forwarding and ``{"done": counts}`` when it ends (a signal or
``--duration``), like the other long-running commands.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, cast

from ..bridge.policy import MAX_BOARD_OBJECTS
from ..errors import ConfigError
from .argtypes import input_file, output_dir, positive_float, positive_int
from .common import bus_options, on_stop_signals, open_bus, print_json_lines, print_table

if TYPE_CHECKING:
    from ..bridge.config import BridgeConfig
    from ..bus import Bus
    from .common import Subcommands


def bridge_config(args: argparse.Namespace) -> BridgeConfig:
    """The bridge's settings: ``--file`` first, then the command line on top."""
    from ..bridge.config import BridgeConfig, load_file
    from ..bridge.link import TlsFiles

    config = BridgeConfig()
    if args.file is not None:
        load_file(args.file, config)
    config.site = args.site or config.site
    config.listen += args.listen
    config.connect += args.connect
    tls = (args.cert, args.key, args.ca)
    if any(tls):
        if not all(tls):
            raise ConfigError("give --cert, --key and --ca together")
        config.tls = TlsFiles(Path(args.cert), Path(args.key), Path(args.ca))
    policy = config.policy
    policy.out.allow += args.allow_out
    policy.out.deny += args.deny_out
    policy.into.allow += args.allow_in
    policy.into.deny += args.deny_in
    for spec in args.max_frequency:
        pattern, _, hz = spec.rpartition("=")
        try:
            policy.rates.add(pattern, float(hz), f"--max-frequency {spec}")
        except ValueError:
            raise ConfigError(f"--max-frequency {spec!r}: give TOPIC=HZ, e.g. '*_Measurement=10'") from None
    if args.domain is None and config.domain is not None:
        args.domain = config.domain
    config.check()
    return config


def cmd_bridge(args: argparse.Namespace) -> int:
    if args.bridge_command is not None:
        return int(args.bridge_handler(args))
    from ..bridge.bridge import Bridge

    config = bridge_config(args)
    with (
        open_bus(args) as bus,
        open_bus(args) as board_bus,
        Bridge(bus, config, boards=board_bus if args.boards else None, board_objects=args.max_board_objects) as bridge,
    ):
        on_stop_signals(bridge.stop)
        info = {"site": config.site, "domain": bus.domain_id, "listen": config.listen, "connect": config.connect}
        bridge.run(args.duration, ready=lambda: print(json.dumps({"ready": info}), flush=True))
        counts = dict(bridge.counts) | (bridge.boards.counts if bridge.boards else {})
        counts |= {
            "commands_delivered": bridge.outbox.delivered,
            "commands_denied": bridge.outbox.denied,
            "commands_expired": bridge.outbox.expired,
            "commands_waiting": bridge.outbox.waiting,
        }
        print(json.dumps({"done": counts}), flush=True)
    return 0


def cmd_certs(args: argparse.Namespace) -> int:
    from ..bridge.pki import issue, make_ca

    out = Path(args.out)
    ca_dir = out / "ca"
    if (ca_dir / "ca.pem").exists():
        from ..bridge.pki import Issued

        ca = Issued(ca_dir / "ca.pem", ca_dir / "ca.key")
    else:
        ca = make_ca(ca_dir)
    rows = [{"name": "CA", "cert": str(ca.cert), "key": str(ca.key)}]
    for site in args.sites:
        made = issue(ca, out, site, tuple(args.host))
        rows.append({"name": site, "cert": str(made.cert), "key": str(made.key)})
    print_table(
        "bridge certificates",
        ["name", "cert", "key"],
        [[r["name"], r["cert"], r["key"]] for r in rows],
        left=["name", "cert", "key"],
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from ..bridge.bench import bench_bridge

    rows = bench_bridge(
        args.domain,
        count=args.count,
        rate=args.rate,
        throughput_seconds=args.seconds,
        port=args.port,
        config=args.config,
    )
    if args.json:
        print_json_lines(rows)
    else:
        columns = list(dict.fromkeys(k for r in rows for k in r))
        rows = [{c: r.get(c, "-") for c in columns} for r in rows]
        print_table(
            "gridbus bridge: added latency and throughput",
            columns,
            [[_show(r[c]) for c in columns] for r in rows],
            left=["path", "measure"],
        )
    return 0


# ------------------------------------------------------------- boards over Zenoh
def zenoh_options(parser: argparse.ArgumentParser) -> None:
    """``--zenoh`` and its TLS files: a board reaching its site's bridge instead of a DDS domain."""
    group = parser.add_argument_group("Zenoh transport (a board without Cyclone DDS; see docs/bridge.md)")
    _many(group, "--zenoh", "tls/HOST:PORT", "the site's bridge (gridbus bridge --boards)")
    group.add_argument("--site", default="", help="the site of that bridge")
    group.add_argument("--cert", type=input_file("certificate"), default=None, help="this board's certificate (PEM)")
    group.add_argument("--key", type=input_file("private key"), default=None, help="its private key (PEM)")
    group.add_argument("--ca", type=input_file("CA certificate"), default=None, help="the site's CA (PEM)")


def open_board_bus(args: argparse.Namespace) -> Bus | None:
    """With ``--zenoh``: the Zenoh link to the site's bridge, shaped like a Bus; else None (use DDS)."""
    if not args.zenoh:
        return None
    from ..bridge.config import check_site
    from ..bridge.link import TlsFiles
    from ..transport.board import BoardBus, BoardLink

    check_site(args.site, "--site")
    if not (args.cert and args.key and args.ca):
        raise ConfigError("--zenoh needs --cert, --key and --ca (the bridge accepts mutual TLS only)")
    tls = TlsFiles(Path(args.cert), Path(args.key), Path(args.ca))
    tls.check()
    # BoardBus has the part of Bus that the agent, translators and EventLog use
    return cast("Bus", BoardBus(BoardLink(args.site, args.zenoh, tls)))


def _many(parser: argparse.ArgumentParser | argparse._ArgumentGroup, flag: str, metavar: str, text: str) -> None:
    """A repeatable option whose values add up to a list."""
    parser.add_argument(flag, action="append", default=[], metavar=metavar, help=text)


def _show(value: object) -> str:
    return f"{value:,.1f}" if isinstance(value, float) else str(value)


BENCH_HELP = "the bridge's added latency (DDS->Zenoh->DDS vs DDS) and its throughput"


def add_bench_options(p: argparse.ArgumentParser) -> None:
    """The options of ``bridge bench`` (also ``gridbus bench bridge``)."""
    bus_options(p)
    p.add_argument("--count", type=positive_int, default=2000, help="ping-pongs per latency point")
    p.add_argument("--rate", type=positive_float, default=200.0, help="pings per second")
    p.add_argument("--seconds", type=positive_float, default=3.0, help="length of the throughput run")
    p.add_argument("--port", type=positive_int, default=17447, help="loopback TLS port of the bench bridges")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")


def register(sub: Subcommands) -> None:
    """Add ``bridge`` (and ``bridge certs``, ``bridge bench``) to the ``gridbus`` subcommands."""
    p = sub.add_parser(
        "bridge",
        help="join this site's DDS domain to other sites over mutual-TLS Zenoh",
        description="join this site's DDS domain to other sites over mutual-TLS Zenoh (see docs/bridge.md)",
    )
    bus_options(p)
    p.set_defaults(handler=cmd_bridge, bridge_command=None)
    p.add_argument("--site", default="", help="this site's name on the WAN (letters, digits, _ . -)")
    p.add_argument("--file", type=input_file("bridge configuration"), default=None, help="bridge configuration (TOML)")
    _many(p, "--listen", "tls/HOST:PORT", "accept far bridges here")
    _many(p, "--connect", "tls/HOST:PORT", "reach a far bridge here")
    p.add_argument("--cert", type=input_file("certificate"), default=None, help="this bridge's certificate (PEM)")
    p.add_argument("--key", type=input_file("private key"), default=None, help="its private key (PEM)")
    p.add_argument("--ca", type=input_file("CA certificate"), default=None, help="the CA that signs far bridges (PEM)")
    for flag, what in (
        ("--allow-out", "may leave this site"),
        ("--deny-out", "never leave this site"),
        ("--allow-in", "may enter this site (a command topic must be named)"),
        ("--deny-in", "never enter this site"),
    ):
        _many(p, flag, "PATTERN", f"topics (or topic/object) that {what}")
    _many(p, "--max-frequency", "TOPIC=HZ", "cap how often one object of a topic goes out (newest value wins)")
    p.add_argument("--boards", action="store_true", help="also serve boards without DDS (gridbus daq --zenoh ...)")
    p.add_argument(
        "--max-board-objects", type=positive_int, default=MAX_BOARD_OBJECTS, metavar="N",
        help=f"most distinct objects boards may write (default {MAX_BOARD_OBJECTS})",
    )  # fmt: skip
    p.add_argument("--duration", type=positive_float, default=None, help="seconds to run (default: until a signal)")
    tools = p.add_subparsers(dest="bridge_command", required=False, metavar="{certs,bench}")

    c = tools.add_parser("certs", help="make a lab CA and a certificate per site (cryptography)")
    c.set_defaults(bridge_handler=cmd_certs)
    c.add_argument("sites", nargs="+", help="site names, one certificate each")
    c.add_argument("--out", type=output_dir("certificate directory"), required=True, help="where to write them")
    c.add_argument("--host", action="append", default=[], help="an extra DNS name or IP for the certificates")

    b = tools.add_parser("bench", help=BENCH_HELP)
    b.set_defaults(bridge_handler=cmd_bench)
    add_bench_options(b)
