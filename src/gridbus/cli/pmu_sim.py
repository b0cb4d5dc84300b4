"""Subcommands of ``gridbus pmu`` (see :mod:`gridbus.cli.pmu`): virtual PMUs and their tests.

* ``pmu sim``: virtual PMUs publishing C37.118 frames of generated test signals;
* ``pmu test``: a C37.118.1 compliance test of the virtual PMU chain (table, report.json, PNG);
* ``pmu bench-sim``: how many virtual PMUs one core sustains.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import GridbusError, UnknownObjectError
from .argtypes import epoch_seconds, finite_float, output_dir, positive_float, positive_int
from .common import command, on_stop_signals, open_bus, print_table

if TYPE_CHECKING:
    from .common import Subcommands

CLASSES = ("P", "M")


def pmu_ids(first: str, count: int = 1) -> list[str]:
    """``first`` checked as a PMU id, and ``count - 1`` more numbered after it (PMU_1 -> PMU_2...)."""
    from ..model import Registry

    if Registry.default().parse_id(first).prefix != "PMU":
        raise UnknownObjectError(f"{first!r} is not a PMU id (PMU_<index>, e.g. PMU_1)")
    if count == 1:
        return [first]
    stem, _, number = first.rpartition("_")
    if not number.isdigit():
        raise UnknownObjectError(f"--count {count} needs a numbered first PMU id like PMU_1, got {first!r}")
    return [f"{stem}_{int(number) + n}" for n in range(count)]


def cmd_sim(args: argparse.Namespace) -> int:
    from ..pmu.signals import make_signal
    from ..pmu.vpmu import VirtualPMUs, run_realtime

    ids = [i for first in args.pmu for i in pmu_ids(first, args.count)]
    args.rate = args.rate if args.rate is not None else args.f_nominal
    # every PMU sees the same signal (PMUs on one bus): what a bus-side compliance test expects
    signals = [make_signal(args.signal, args.f_nominal, offset=args.offset) for _ in ids]
    group = VirtualPMUs(signals, args.f_nominal, args.rate, args.pmu_class)
    stopping: list[bool] = []
    on_stop_signals(lambda: stopping.append(True))  # both end cleanly, with the report
    with open_bus(args) as bus:
        info = {"pmus": ids, "signal": args.signal, "rate": args.rate, "f_nominal": args.f_nominal}
        print(json.dumps({"ready": info | {"domain": bus.domain_id}}), flush=True)
        publisher = run_realtime(
            bus, ids, group, args.duration, args.origin, should_stop=lambda: bool(stopping), unlocked=args.unlocked
        )
        print(json.dumps({"done": {"published": publisher.published}}), flush=True)
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from ..pmu.frames import check_rate
    from ..pmu.report import write_report
    from ..pmu.suite import run_test

    pmu_ids(args.pmu_id)
    rate = args.rate if args.rate is not None else args.f_nominal
    check_rate(rate, args.f_nominal)
    if args.from_bus:
        from ..pmu.bus_test import BUS_SIGNALS, run_bus_test

        if args.origin is None:
            raise GridbusError("--from-bus needs --origin: the UTC second the PMU's test signal started at")
        timeout = args.timeout if args.timeout is not None else BUS_SIGNALS[args.test][1] + 10.0
        with open_bus(args) as bus:
            report = run_bus_test(
                bus, args.pmu_id, args.test, args.origin, args.f_nominal, rate, args.pmu_class, timeout
            )
    else:
        report = run_test(args.pmu_id, args.test, args.f_nominal, rate, args.pmu_class)
    rows = [
        (
            r["condition"],
            r["check"],
            f"{r['measured']:.6g}",
            f"{r['limit']:.4g}",
            r["unit"],
            "pass" if r["pass"] else "FAIL",
        )
        for r in report.rows()
    ]
    title = f"{args.pmu_id}: {args.test} test, {args.pmu_class} class, {rate:g} frames/s at {args.f_nominal:g} Hz"
    print_table(title, ("condition", "check", "measured", "limit", "unit", "result"), rows, left=("condition", "check"))
    if args.out is not None:
        for path in write_report(report, Path(args.out)):
            print(f"wrote {path}")
    print(f"{args.pmu_id}: {args.test} test {'passed' if report.passed else 'FAILED'}", file=sys.stderr)
    return 0 if report.passed else 1


def cmd_bench_sim(args: argparse.Namespace) -> int:
    from ..pmu.bench import vpmus_per_core
    from ..pmu.frames import check_rate

    args.rate = args.rate if args.rate is not None else args.f_nominal
    check_rate(args.rate, args.f_nominal)
    shape = (args.pmus, args.seconds, args.rate, args.f_nominal, args.pmu_class, args.batch)
    if args.no_bus:
        result = vpmus_per_core(*shape, serve=args.server)
    else:
        with open_bus(args) as bus:
            result = vpmus_per_core(*shape, bus, serve=args.server)
    print(json.dumps(result), flush=True)
    return 0


def _utc_second(text: str) -> int:
    """A whole UTC second (UNIX time): signal time 0, on the UTC second the phase reference is locked to."""
    value = epoch_seconds(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"must be a whole UTC second, got {text!r}")
    return int(value)


def _signal_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rate", type=positive_float, default=None, help="frames/s (C37.118: 10..120; default f-nominal)")
    p.add_argument("--f-nominal", type=positive_float, default=60.0, help="nominal frequency, 50 or 60 Hz")
    p.add_argument("--class", dest="pmu_class", choices=CLASSES, default="P", help="estimator class")


BENCH_HELP = "benchmark: virtual PMUs per core (estimation and publishing)"


def add_bench_options(p: argparse.ArgumentParser) -> None:
    """The options of ``pmu bench-sim`` (also ``gridbus bench vpmu``)."""
    p.add_argument("--pmus", type=positive_int, default=50, help="PMUs to run")
    p.add_argument("--seconds", type=positive_float, default=3.0, help="seconds of frames to compute")
    p.add_argument("--batch", type=positive_int, default=1, help="frames estimated together")
    p.add_argument("--no-bus", action="store_true", help="estimation only, publish nothing")
    p.add_argument(
        "--server",
        action="store_true",
        help="also serve every frame as C37.118.2 data (one multi-PMU stream) to a TCP client on 127.0.0.1",
    )
    _signal_options(p)


def add_commands(pmus: Subcommands) -> None:
    """Add this module's subcommands to ``gridbus pmu``."""
    from ..pmu.conditions import SIGNALS, TESTS  # not signals/compliance: numpy at every CLI start

    p = command(pmus, "sim", cmd_sim, "virtual PMUs: test signals -> C37.118.1 estimator -> frames on the bus")
    p.add_argument("--pmu", action="append", required=True, metavar="ID", help="PMU id (repeatable), e.g. PMU_1")
    p.add_argument("--count", type=positive_int, default=1, help="PMUs per --pmu, numbered from its index")
    p.add_argument("--signal", choices=SIGNALS, default="steady", help="test signal")
    p.add_argument("--offset", type=finite_float, default=0.0, help="frequency offset of the steady signal, Hz")
    p.add_argument("--duration", type=positive_float, default=None, help="seconds to run (default: until stopped)")
    p.add_argument("--origin", type=_utc_second, default=None, help="UTC second (UNIX) of signal time 0 (default: now)")
    p.add_argument(
        "--unlocked",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="play a time source that lost its UTC lock, with this uncertainty (time quality and STAT show it)",
    )
    _signal_options(p)

    p = command(pmus, "test", cmd_test, "C37.118.1 compliance test of a PMU (TVE, FE, RFE, steps)")
    p.add_argument("pmu_id", metavar="PMU_ID", help="the PMU under test (a virtual one, e.g. PMU_1)")
    p.add_argument("--test", choices=TESTS, required=True, help="test condition")
    p.add_argument("--out", type=output_dir("--out directory"), default=None, help="write report.json and a PNG here")
    p.add_argument(
        "--from-bus",
        action="store_true",
        help="judge PMU_ID's frames on the bus (a PMU fed the test's signal from --origin), not a virtual chain",
    )
    p.add_argument("--origin", type=_utc_second, default=None, help="with --from-bus: UTC second the signal started")
    p.add_argument("--timeout", type=positive_float, default=None, help="with --from-bus: seconds to wait for frames")
    _signal_options(p)

    add_bench_options(command(pmus, "bench-sim", cmd_bench_sim, BENCH_HELP))
