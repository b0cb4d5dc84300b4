"""``gridbus net up|run|ls|down|bench``: a lab LAN of network namespaces (root needed).

``up`` builds the LAN and holds it until Ctrl-C or SIGTERM (then removes it);
``run`` starts a program on one of its hosts from another terminal; ``ls``
lists the LANs; ``down`` removes one, the stale ones (owner gone) or all.
``bench`` measures latency and wire bytes across hosts, and impaired links.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from ..errors import NetError
from .argtypes import (
    domain_from_env,
    domain_id,
    input_file,
    name_list,
    number_list,
    output_dir,
    positive_float,
    positive_int,
)
from .common import on_stop_signals, print_json_lines, print_table

if TYPE_CHECKING:
    from ..net.impair import Impairment
    from .common import Subcommands


def _impairments(specs: list[str]) -> dict[str, Impairment]:
    """``HOST:delay=10ms,jitter=5ms,loss=2%,rate=1mbit`` options → host → Impairment."""
    from ..net.impair import Impairment

    result: dict[str, Impairment] = {}
    for spec in specs:
        host, sep, settings = spec.partition(":")
        if not sep or not host:
            raise NetError(f"--impair {spec!r}: expected HOST:delay=..,jitter=..,loss=..,rate=..")
        result[host] = Impairment.parse(settings)
    return result


def cmd_up(args: argparse.Namespace) -> int:
    from ..net import Lan

    stop = threading.Event()
    on_stop_signals(stop.set, (signal.SIGINT, signal.SIGTERM, signal.SIGHUP))
    hosts: Any = args.names or args.hosts
    with Lan(hosts, args.subnet, args.topic_map, args.transport, _impairments(args.impair)) as lan:
        info = {
            "lan": lan.name,
            "netem": lan.netem,
            "hosts": {h.name: {"ns": h.ns, "address": h.address, "config": str(h.config)} for h in lan.hosts.values()},
        }
        print(json.dumps(info), flush=True)
        print(f"LAN {lan.name} is up; `gridbus net run HOST -- CMD` to use it, Ctrl-C to remove it", file=sys.stderr)
        try:
            stop.wait(args.seconds)
        except KeyboardInterrupt:
            pass
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from ..net import ns

    state = ns.lan_state(args.lan)
    hosts: dict[str, dict[str, str]] = state["hosts"]
    if args.host not in hosts:
        raise NetError(f"no host {args.host!r} on LAN {state['lan']}; hosts: {', '.join(hosts)}")
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise NetError("give the command to run after the host: gridbus net run HOST -- CMD ...")
    host = hosts[args.host]
    env = dict(os.environ, CYCLONEDDS_URI=f"file://{host['config']}", GRIDBUS_NET_HOST=args.host)
    env["GRIDBUS_NET_LAN"] = str(state["lan"])
    sys.stdout.flush()
    os.execvpe("ip", ns.ns_exec(host["ns"], argv), env)
    return 0  # not reached


def cmd_ls(args: argparse.Namespace) -> int:
    from ..net import ns

    states = ns.lan_states()
    if args.json:
        print_json_lines(states)
        return 0
    rows = [
        (
            str(s["lan"]),
            str(s.get("owner", "?")),
            "yes" if s["owner_alive"] else "no (stale)",
            str(s.get("subnet", "?")),
            " ".join(f"{n}={h['address']}" for n, h in s["hosts"].items()),
        )
        for s in states
    ]
    print_table("gridbus LANs", ("lan", "owner pid", "owner alive", "subnet", "hosts"), rows, right=False)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from ..net import ns

    ns.require_root("removing a namespace LAN")
    if args.lan:
        removed = ns.remove_lan(args.lan)
        if not removed:
            raise NetError(f"no LAN {args.lan!r} is up; `gridbus net ls` lists them")
    else:
        removed = ns.sweep(everything=args.all)
    for name in removed:
        print(f"removed {name}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from ..net.cyclone import host_config

    print(host_config(args.interface, args.address, args.topic_map, args.transport), end="")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from ..net import bench, report

    domain = args.domain if args.domain is not None else domain_from_env(os.environ) or 0
    rows = bench.run(
        args.parts, domain, args.sizes, args.rates, args.count, args.readers, args.seconds, args.scenarios,
        progress=None if args.json else _progress,
    )  # fmt: skip
    if args.plot:
        for path in report.plot(rows, args.plot):
            print(f"wrote {path}", file=sys.stderr)
    if args.markdown:
        print(report.markdown(rows))
        return 0
    if args.json:
        print_json_lines(rows)
        return 0
    for title, columns, cells in report.tables(rows):
        print_table(title, columns, cells, right=False)
    return 0


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


BENCH_HELP = "cross-host latency, wire bytes per reader, impaired links (root)"


def add_bench_options(p: argparse.ArgumentParser) -> None:
    """The options of ``net bench`` (also ``gridbus bench net``)."""
    p.add_argument(
        "--parts",
        type=name_list(("latency", "wire", "stage", "impair"), "parts"),
        default="latency,wire,stage,impair",
        help="what to measure (comma-separated)",
    )
    p.add_argument("--sizes", type=number_list(positive_int, "sizes"), default="32,256,1024,4096,16384,65536")
    p.add_argument("--rates", type=number_list(positive_float, "rates"), default="50,1000")
    p.add_argument("--count", type=positive_int, default=2000, help="at most this many messages per latency point")
    p.add_argument("--readers", type=number_list(positive_int, "reader hosts"), default="1,2,4,8")
    p.add_argument("--seconds", type=positive_float, default=10.0, help="duration of each impairment scenario")
    p.add_argument(
        "--scenarios",
        type=name_list(("clean", "impaired", "background"), "scenarios"),
        default="clean,impaired,background",
        help="impairment scenarios: clean LAN; 10±5 ms, 2%% loss, 1 Mbit/s; the same with 0.9 Mbit/s background",
    )
    p.add_argument("--domain", type=domain_id, default=None, help="DDS domain (default $GRIDBUS_DOMAIN or 0)")
    p.add_argument("--plot", type=output_dir("figure directory"), default=None, metavar="DIR", help="PNG figures")
    p.add_argument("--markdown", action="store_true", help="Markdown tables (as in docs/networking.md)")
    p.add_argument("--json", action="store_true", help="one JSON object per row")


def register(sub: Subcommands) -> None:
    """Add ``net`` and its subcommands to the ``gridbus`` subcommands."""
    parser = sub.add_parser("net", help="a lab LAN of network namespaces: up, run, ls, down, bench (root)")
    nets = parser.add_subparsers(dest="net_command", required=True)

    p = nets.add_parser("up", help="build a LAN and hold it until Ctrl-C")
    p.add_argument("--hosts", type=positive_int, default=2, help="number of hosts h1..hN")
    p.add_argument("--names", type=name_list(None, "host names"), default=None, help="host names instead of h1..hN")
    p.add_argument("--subnet", default="10.254.0.0/24", help="the LAN's private subnet")
    p.add_argument(
        "--topic-map", type=input_file("topic map"), default=None, help="topic map whose transports the configs follow"
    )
    p.add_argument("--transport", choices=("unicast", "multicast"), default=None, help="one transport for every topic")
    p.add_argument(
        "--impair",
        action="append",
        default=[],
        metavar="HOST:SPEC",
        help="impair a host's link, e.g. h1:delay=10ms,jitter=5ms,loss=2%%,rate=1mbit (repeatable)",
    )
    p.add_argument("--seconds", type=positive_float, default=None, help="remove the LAN after this long")
    p.set_defaults(handler=cmd_up)

    p = nets.add_parser("run", help="run a command on a host of a LAN")
    p.add_argument("--lan", default=None, help="which LAN (default: the only one up)")
    p.add_argument("host")
    p.add_argument("argv", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    p.set_defaults(handler=cmd_run)

    p = nets.add_parser("ls", help="list the LANs, their hosts and owners")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_ls)

    p = nets.add_parser("down", help="remove a LAN, the stale ones (default) or all")
    p.add_argument("lan", nargs="?", default=None)
    p.add_argument("--all", action="store_true", help="every gridbus LAN, owner alive or not")
    p.set_defaults(handler=cmd_down)

    p = nets.add_parser("config", help="print the Cyclone configuration of a host of a real LAN (no root)")
    p.add_argument("--interface", required=True, help="the host's LAN interface, e.g. eth0")
    p.add_argument("--address", required=True, help="the host's IPv4 address on that interface")
    p.add_argument("--topic-map", type=input_file("topic map"), default=None, help="default: the shipped map")
    p.add_argument("--transport", choices=("unicast", "multicast"), default=None, help="one transport for every topic")
    p.set_defaults(handler=cmd_config)

    p = nets.add_parser("bench", help=BENCH_HELP)
    add_bench_options(p)
    p.set_defaults(handler=cmd_bench)
