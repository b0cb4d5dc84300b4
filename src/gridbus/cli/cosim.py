"""The closed loop around a simulator: ``ems``, ``agc``, ``closed-loop`` and ``testbed-bench``.

LTB's modules (EMS, control system) as ``gridbus`` commands: each is a peer
on the bus, reading the testbed's measurements and writing estimates or
set-points, with no server between them.  They need the ``andes`` extra
(the EMS takes its network model from the ANDES case).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .argtypes import input_file, nonneg_float, output_dir, positive_float
from .common import command, on_stop_signals, open_bus

if TYPE_CHECKING:
    from ..testbed.andes.scenario import Scenario
    from .common import Subcommands


def _scenario(args: argparse.Namespace) -> Scenario:
    from ..testbed.andes import empty_scenario, load_scenario

    scenario = load_scenario(args.scenario) if args.scenario is not None else empty_scenario(args.case or "ieee14")
    if args.case is not None:
        scenario.case = args.case
    return scenario


def cmd_ems(args: argparse.Namespace) -> int:
    from ..ems.service import EMS
    from ..ems.snapshot import Snapshot
    from ..testbed.andes.case import AndesCase

    case = AndesCase(_scenario(args))
    with open_bus(args) as bus:
        ems = EMS(bus, Snapshot(case), name=args.name, period=args.period)
        on_stop_signals(ems.stop)
        info = {"id": ems.writer.object_id, "measurements": len(ems.snapshot.layout), "buses": ems.snapshot.net.n}
        print(json.dumps({"ready": info}), flush=True)
        count = ems.run(args.duration)
        last = ems.last
        done: dict[str, Any] = {"estimates": count, "bad_data": bool(last and last.bad_data)}
        if last is not None and last.bad is not None:
            done["bad_measurement"] = ems.snapshot.layout.names[last.bad]
        print(json.dumps({"done": done}), flush=True)
    return 0


def cmd_agc(args: argparse.Namespace) -> int:
    from ..control.agc import AGC, AgcSettings

    settings = AgcSettings(f0=args.f0, bias=args.bias, gain=args.gain, period=args.period, deadband=args.deadband)
    with open_bus(args) as bus:
        agc = AGC(bus, speed=args.speed, settings=settings)
        on_stop_signals(agc.stop)
        print(
            json.dumps({"ready": {"gain": settings.gain, "bias": settings.bias, "period": settings.period}}), flush=True
        )
        status = agc.run(args.duration)
        print(json.dumps({"done": {"updates": status.updates, "commands": status.commands, "f": status.f}}), flush=True)
    return 0


def cmd_closed_loop(args: argparse.Namespace) -> int:
    from ..experiments.closed_loop import run_closed_loop
    from ..jsonsafe import finite

    out = Path(args.out)
    summary = run_closed_loop(
        out, speed=args.speed, domain=args.domain, partition=args.partition, scenario=args.scenario
    )
    for name in ("droop", "agc"):
        print(f"{name:6s}", json.dumps(finite(summary[name])))
    print("sensors vs ANDES alone (droop run):", json.dumps(summary["sensor_effect"]))
    for c in summary["verdict"]:
        print(f"{'pass' if c['pass'] else 'FAIL'}  {c['name']}: expected {c['expected']}, measured {c['measured']}")
    word = "reproduced" if summary["reproduced"] else "did NOT reproduce"
    print(f"closed-loop: {word} the expected behaviour; plots and summary in {out}/ ({', '.join(summary['files'])})")
    return 0 if summary["reproduced"] else 1


def cmd_testbed_bench(args: argparse.Namespace) -> int:
    from ..testbed.andes.bench import bench_cosim

    for case in args.cases.split(","):
        print(json.dumps(bench_cosim(case, args.seconds, args.domain, args.partition)), flush=True)
    return 0


BENCH_HELP = "co-simulation benchmark: times faster than real time at 30 Hz publishing, CPU per process, loop latency"


def add_bench_options(p: argparse.ArgumentParser) -> None:
    """The options of ``testbed-bench`` (also ``gridbus bench cosim``)."""
    p.add_argument("--cases", default="ieee14,ieee39", help="comma-separated ANDES cases")
    p.add_argument("--seconds", type=positive_float, default=10.0, help="simulated seconds of the throughput run")


def register(sub: Subcommands) -> None:
    """Add ``ems``, ``agc`` and ``closed-loop`` to the ``gridbus`` subcommands."""
    p = command(sub, "ems", cmd_ems, "estimate the network state from the bus's measurements (WLS, bad data)")
    p.add_argument("--case", default=None, help="ieee14, ieee39 or an ANDES case file (default: the scenario's)")
    p.add_argument(
        "--scenario", type=input_file("scenario file"), default=None, help="sensor accuracy and PMU placement"
    )
    p.add_argument("--name", default="ems", help="estimator name: publishes Estimate_State as SE_NAME")
    p.add_argument("--period", type=positive_float, default=1.0, help="wall seconds between estimates")
    p.add_argument("--duration", type=positive_float, default=None, help="wall seconds to run (default: forever)")

    p = command(sub, "agc", cmd_agc, "automatic generation control: governor set-points that restore the frequency")
    p.add_argument("--speed", type=positive_float, default=1.0, help="the testbed's speed (simulated s per wall s)")
    p.add_argument("--f0", type=positive_float, default=60.0, help="scheduled frequency (Hz)")
    p.add_argument("--bias", type=positive_float, default=150e6, help="frequency bias beta (W/Hz)")
    p.add_argument("--gain", type=positive_float, default=0.15, help="integral gain Ki (1/s)")
    p.add_argument("--period", type=positive_float, default=0.5, help="simulated s between set-point updates")
    p.add_argument("--deadband", type=nonneg_float, default=0.005, help="Hz of frequency error ignored")
    p.add_argument("--duration", type=positive_float, default=None, help="wall seconds to run (default: forever)")

    p = command(
        sub, "closed-loop", cmd_closed_loop, "ANDES + AGC: a generator trip with and without AGC, plots and verdict"
    )
    p.add_argument("--speed", type=positive_float, default=4.0, help="simulated seconds per wall-clock second")
    p.add_argument("--out", type=output_dir("output directory"), default="results/closed-loop", help="output directory")
    p.add_argument("--scenario", type=input_file("scenario file"), default=None, help="default: ieee14-gen-trip")

    add_bench_options(command(sub, "testbed-bench", cmd_testbed_bench, BENCH_HELP))
