"""Sources of plant data: ``testbed`` (the virtual plant) and ``daq`` (a DAQ agent).

Both run until ``--duration`` or a signal, say ``{"ready": ...}`` on stdout
once they publish and ``{"done": ...}`` when they end: scripts and tests wait
for those lines.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING

from ..errors import GridbusError
from .argtypes import epoch_seconds, input_file, output_dir, positive_float, profile_ref
from .bridge import open_board_bus, zenoh_options
from .common import bus_options, command, on_stop_signals, open_bus

if TYPE_CHECKING:
    from .common import Subcommands


def cmd_testbed(args: argparse.Namespace) -> int:
    from ..testbed.service import TestbedService, describe
    from ..testbed.system import load_system
    from ..timebase import SimClock

    engine = None
    if args.engine == "andes":
        from ..testbed.andes import load_scenario, open_engine

        scenario = load_scenario(args.scenario) if args.scenario is not None else None
        pmus = None if args.pmus is None else [b for b in args.pmus.split(",") if b]
        engine = open_engine(args.case, scenario, pmu_buses=pmus, step=args.step)
        system = engine.system
        if args.duration is None and scenario is not None:
            args.duration = scenario.duration
    elif args.case is not None or args.scenario is not None:
        raise GridbusError("--case and --scenario need --engine andes (the lab engine reads --system)")
    else:
        system = load_system(args.system)
    if args.check:
        print(json.dumps(describe(system), indent=2))
        return 0
    epoch = args.epoch if args.epoch is not None else time.time()
    with open_bus(args) as bus:
        service = TestbedService(
            bus,
            system,
            rate=args.rate,
            clock=SimClock(epoch, args.speed),
            serial_drives=args.serial_drives,
            drive_profile=args.drive_profile,
            engine=engine,
        )
        on_stop_signals(service.stop)  # both end cleanly (ptys, DDS), with the report
        info = describe(system) | {"domain": bus.domain_id, "rate": args.rate, "speed": args.speed, "epoch": epoch}
        if service.drives is not None:
            info["serial_drives"] = service.drives.paths()
            info["drive_profile"] = service.drives.profile.name
        service.run(args.duration, ready=lambda: print(json.dumps({"ready": info}), flush=True))
        print(
            json.dumps(
                {
                    "done": {
                        "simulated": round(service.plant.t, 3),
                        "published": service.published,
                        "late_ticks": service.lag_steps,
                    }
                }
            ),
            flush=True,
        )
    return 0


def cmd_daq(args: argparse.Namespace) -> int:
    import resource

    from ..daq.agent import DaqAgent, footprint, load_config

    board = open_board_bus(args)  # None: DDS; with --zenoh, the site's bridge over Zenoh
    config = load_config(args.agent_config, board.registry if board else None)
    if args.rate is not None:
        config.rate = args.rate
    if config.rate > config.sample_rate:  # a tick would see no new sample
        source = "--rate" if args.rate is not None else f"{args.agent_config}: [agent] rate"
        raise GridbusError(
            f"{source} {config.rate:g} is above the sample rate {config.sample_rate:g}: "
            "each publication needs at least one new sample"
        )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with board or open_bus(args) as bus:
        agent = DaqAgent(bus, config)
        on_stop_signals(agent.stop)  # both end cleanly, with the report
        print(
            json.dumps(
                {"ready": {"objects": sorted(agent.ids), "rate": config.rate, "sample_rate": config.sample_rate}}
            ),
            flush=True,
        )
        start_wall, start_cpu = time.monotonic(), usage.ru_utime + usage.ru_stime
        agent.run(args.duration)
        report: dict[str, float] = {
            "published": agent.published,
            "commands_applied": agent.applied,
            "commands_rejected": agent.rejected,
        }
        if args.stats:
            report |= footprint(start_wall, start_cpu)
        print(json.dumps({"done": report}), flush=True)
    return 0


def register(sub: Subcommands) -> None:
    """Add ``testbed`` and ``daq`` to the ``gridbus`` subcommands."""
    p = command(sub, "testbed", cmd_testbed, "run the virtual testbed (the lab's plant, simulated) on the bus")
    p.add_argument(
        "--system", type=input_file("system file"), default=None, help="system file (default: the shipped FIU testbed)"
    )
    p.add_argument(
        "--rate",
        type=positive_float,
        default=100.0,
        help="measurement rate in Hz (object types listed under [rates] use theirs)",
    )
    p.add_argument("--speed", type=positive_float, default=1.0, help="simulated seconds per wall-clock second")
    p.add_argument("--duration", type=positive_float, default=None, help="simulated seconds to run (default: forever)")
    p.add_argument(
        "--epoch",
        type=epoch_seconds,
        default=None,
        help="wall-clock time (UNIX s) of simulated time 0, to share the clock with controllers",
    )
    p.add_argument("--check", action="store_true", help="check the system file, print its inventory, exit")
    p.add_argument(
        "--serial-drives",
        metavar="DIR",
        type=output_dir("--serial-drives directory"),
        default=None,
        help="serve each generator's prime-mover drive on a pty at DIR/G_x; the drives, not "
        "Generator_Command, then start, stop and set speed and power (use gridbus translate)",
    )
    p.add_argument("--drive-profile", type=profile_ref, default="vfd-modbus", help="drive profile of --serial-drives")
    engine = p.add_argument_group("ANDES engine (gridbus[andes]): a standard case instead of the lab")
    engine.add_argument("--engine", choices=("lab", "andes"), default="lab", help="the simulator (default: lab)")
    engine.add_argument("--case", default=None, help="ieee14, ieee39 or an ANDES case file (default: the scenario's)")
    engine.add_argument(
        "--scenario", type=input_file("scenario file"), default=None, help="timed events and sensors (TOML)"
    )
    engine.add_argument(
        "--pmus", default=None, metavar="BUSES", help="PMU buses, e.g. Bus_4,Bus_9 (default: machines')"
    )
    engine.add_argument("--step", type=positive_float, default=1 / 30, help="ANDES integration step in s (1/30)")

    p = sub.add_parser("daq", help="run a DAQ agent: sample waveforms, compute per-cycle values, publish, obey")
    bus_options(p, config_flag="--dds-config")
    p.set_defaults(handler=cmd_daq)
    p.add_argument(
        "--config",
        dest="agent_config",
        type=input_file("DAQ agent configuration"),
        required=True,
        help="agent configuration (TOML; see examples/daq-agent.toml)",
    )
    p.add_argument("--rate", type=positive_float, default=None, help="publications per second per object")
    p.add_argument("--duration", type=positive_float, default=None, help="seconds to run (default: forever)")
    p.add_argument("--stats", action="store_true", help="report peak RSS and CPU use when done")
    zenoh_options(p)
