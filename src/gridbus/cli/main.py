"""The ``gridbus`` command line.

Every command takes ``--domain N`` (default ``GRIDBUS_DOMAIN`` or 0) and the
same data-model and QoS options as :class:`gridbus.Bus`.  Bad input ends with
a one-line error naming what was wrong and exit status 2.

This module only builds the parser from the command modules (each has a
``register(subparsers)``; the handler a subcommand runs is a plain function
of the parsed arguments, callable from Python) and runs it:

- ``bus.py``: types, publish, subscribe, qos show, ls, idl generate, demo
- ``bench.py``: bench codec, latency, throughput, waveform, programs, serial, historian; and
  pmu, vpmu, cosim, net, bridge (the benchmarks registered beside their concept, under ``bench`` too)
- ``testbed.py``: testbed, daq
- ``cosim.py``: ems, agc, closed-loop (the closed loop around the ANDES engine)
- ``experiment.py``: experiment
- ``serial.py``: translate, device-sim, profiles
- ``historian.py``: record, delays, replay
- ``pmu.py``: pmu sim, test, gateway, pdc (synchrophasors)
- ``net.py``: net up, run, ls, down, bench (a LAN of network namespaces; root)
- ``common.py``: the bus options, JSON lines and tables, the log handler (``-v``, ``--log-format``)

Why argparse: it is the standard library, so the CLI adds no dependency to
an install that may run on a DAQ board; subcommands, argument groups and type
functions (``cli/argtypes.py``: finite numbers, readable files, domain ids,
all refused before a participant exists) are all this CLI needs.  click or
typer would add a dependency and a second way of declaring options for no
capability gridbus uses.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import GridbusError
from . import bench, bridge, bus, cosim, experiment, historian, net, pmu, serial, testbed
from .argtypes import GridbusArgumentParser, domain_from_env
from .common import EXIT_BAD_INPUT, configure_logging, logging_options, logging_options_everywhere

__all__ = ["EXIT_BAD_INPUT", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The whole ``gridbus`` parser; the commands appear in ``--help`` in this order."""
    parser = GridbusArgumentParser(prog="gridbus", description=(__doc__ or "").split("\n")[0])
    logging_options(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    bus.register(sub)
    bench.register(sub)
    testbed.register(sub)
    cosim.register(sub)
    experiment.register(sub)
    serial.register(sub)
    historian.register(sub)
    pmu.register(sub)
    bridge.register(sub)
    net.register(sub)
    bus.register_demo(sub)
    logging_options_everywhere(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``gridbus`` command; the exit status (0, 1 for a shortfall, 2 for bad input, 130)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose, args.log_format)
    try:
        if getattr(args, "domain", 0) is None:
            args.domain = domain_from_env(os.environ)  # a bad GRIDBUS_DOMAIN fails every command
        return int(args.handler(args) or 0)
    except GridbusError as exc:
        print(f"gridbus: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _stdout_gone()
    except OSError as exc:  # a file the user named cannot be made or written
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
