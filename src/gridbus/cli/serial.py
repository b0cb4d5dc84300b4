"""Serial devices: ``translate`` (a device onto the bus), ``device-sim`` (a device on a pty), ``profiles``.

``translate`` and ``device-sim`` talk to the programs that run them in JSON
lines on stdout (``{"ready": ...}``, ``{"port": ...}``, ``{"control": ...}``,
``{"done": ...}``); their log records go to stderr through the CLI's handler.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from .argtypes import link_path, number_list, positive_float, positive_int, profile_ref
from .bridge import open_board_bus, zenoh_options
from .common import command, on_stop_signals, open_bus

if TYPE_CHECKING:
    from .common import Subcommands


def object_spec(text: str) -> tuple[str, int | None, str | None]:
    """``G_2``, ``G_2:unit=2`` or ``G_2:unit=2,profile=vfd-modbus`` (a drive on a shared line:
    its Modbus unit id and, if it is another kind of drive than the line's profile, its own)."""
    object_id, _, rest = text.partition(":")
    unit: int | None = None
    profile: str | None = None
    for part in rest.split(",") if rest else []:
        key, _, value = part.partition("=")
        if key == "unit" and value.isdigit() and 1 <= int(value) <= 247:
            unit = int(value)
        elif key == "profile" and value:
            profile = profile_ref(value)
        else:
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected OBJECT[:unit=N][,profile=NAME] with N in 1..247, got {part!r}"
            )
    return object_id, unit, profile


def cmd_translate(args: argparse.Namespace) -> int:
    from ..translators.line import Line, same_line
    from ..translators.link import SerialLink
    from ..translators.profile import load_profile
    from ..translators.translator import Translator

    board = open_board_bus(args)  # None: DDS; with --zenoh, the site's bridge over Zenoh
    registry = board.registry if board else None
    profile = load_profile(args.profile, registry)
    objects = args.object or [(f"{profile.object}_1", None, None)]
    profiles = {spec: load_profile(spec, registry) for _, _, spec in objects if spec}
    for p in [profile, *profiles.values()]:
        if args.baud:
            p.serial.baudrate = args.baud
    same_line(profile, [profiles.get(spec or "", profile) for _, _, spec in objects])
    link = SerialLink(args.port, profile.serial)
    with board or open_bus(args) as bus:
        translators = [
            Translator(
                bus,
                profiles.get(spec or "", profile),
                link,
                object_id,
                unit=unit,
                publish_state=not args.no_state,
                publish_measurement=not args.no_measurement,
            )
            for object_id, unit, spec in objects
        ]
        line = Line(link, translators)
        on_stop_signals(line.stop)  # SIGINT and SIGTERM end cleanly: Link_State says disconnected
        ready = [
            {"object": t.object_id, "unit": t.unit, "link": t.link_id, "profile": t.profile.name} for t in translators
        ]
        first = ready[0]
        print(json.dumps({"ready": {"port": args.port, **first, "objects": ready}}), flush=True)
        line.run(args.duration)
        done = dict(translators[0].health)
        if len(translators) > 1:  # the first object's health, and every object's
            done["objects"] = [t.health for t in translators]
        print(json.dumps({"done": done}), flush=True)
    return 0


def unit_profile(text: str) -> tuple[int, str]:
    """``2=vfd-modbus``: unit 2 of a simulated line is that kind of drive."""
    unit, _, name = text.partition("=")
    if not (unit.isdigit() and 1 <= int(unit) <= 247 and name):
        raise argparse.ArgumentTypeError(f"expected UNIT=PROFILE with UNIT in 1..247, got {text!r}")
    return int(unit), profile_ref(name)


def cmd_device_sim(args: argparse.Namespace) -> int:
    from ..errors import GridbusError
    from ..translators.devices import run_simulator
    from ..translators.line import same_line
    from ..translators.profile import load_profile

    profile = load_profile(args.profile)
    others = {unit: load_profile(name) for unit, name in args.unit_profile or []}
    for p in [profile, *others.values()]:
        if args.baud:
            p.serial.baudrate = args.baud
    if args.units and (profile.protocol != "modbus-rtu" or any(u > 247 for u in args.units)):
        raise GridbusError("--units takes Modbus unit ids 1..247 of a modbus-rtu profile")
    stray = sorted(set(others) - set(args.units or [profile.unit]))
    if stray:
        raise GridbusError(f"--unit-profile names unit(s) {stray} that --units does not play")
    same_line(profile, list(others.values()))
    return run_simulator(
        profile, args.link, args.duration, args.trace, emit=_json_line, units=args.units, unit_profiles=others
    )


def _json_line(event: dict[str, Any]) -> None:
    print(json.dumps(event), flush=True)


def cmd_profiles(args: argparse.Namespace) -> int:
    from ..translators.profile import available, load_profile

    for name in available():
        p = load_profile(name)
        print(f"{name:26} {p.protocol:11} {p.object}_x  {p.title}")
    return 0


def register(sub: Subcommands) -> None:
    """Add ``translate``, ``device-sim`` and ``profiles`` to the ``gridbus`` subcommands."""
    p = command(sub, "translate", cmd_translate, "bridge one serial device onto the bus (protocol translator)")
    p.add_argument("profile", type=profile_ref, help="device profile name (gridbus profiles) or file")
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0 or a device-sim path")
    p.add_argument(
        "--object",
        type=object_spec,
        action="append",
        default=None,
        help="object the device serves (default: PREFIX_1); repeat as OBJECT:unit=N[,profile=NAME] "
        "for several drives on one line",
    )
    p.add_argument("--duration", type=positive_float, default=None, help="seconds to run (default: forever)")
    p.add_argument("--baud", type=positive_int, default=None, help="override the profile's baud rate")
    p.add_argument("--no-state", action="store_true", help="do not publish the object's State topic")
    p.add_argument(
        "--no-measurement", action="store_true", help="do not publish the object's Measurement topic (a DAQ agent does)"
    )
    zenoh_options(p)

    p = sub.add_parser("device-sim", help="simulate a serial device on a pseudo-terminal (prints its path)")
    p.set_defaults(handler=cmd_device_sim)
    p.add_argument("profile", type=profile_ref, help="device profile name or file")
    p.add_argument("--link", type=link_path, default=None, help="path of the symlink to the pty (default: a temp dir)")
    p.add_argument("--duration", type=positive_float, default=None)
    p.add_argument("--trace", action="store_true", help="print a JSON line per request received")
    p.add_argument(
        "--units",
        type=number_list(positive_int, "unit ids"),
        default=None,
        help="Modbus unit ids to answer as (several drives on one line), e.g. 1,2,3",
    )
    p.add_argument(
        "--unit-profile",
        type=unit_profile,
        action="append",
        help="UNIT=PROFILE: that unit is another kind of drive (same line settings), e.g. 2=vfd-modbus",
    )
    p.add_argument("--baud", type=positive_int, default=None, help="override the profile's baud rate")

    p = sub.add_parser("profiles", help="list the shipped device profiles")
    p.set_defaults(handler=cmd_profiles)
