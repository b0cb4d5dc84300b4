"""Serial devices: ``translate`` (a device onto the bus), ``device-sim`` (a device on a pty), ``profiles``.

``translate`` and ``device-sim`` talk to the programs that run them in JSON
lines on stdout (``{"ready": ...}``, ``{"port": ...}``, ``{"control": ...}``,
``{"done": ...}``); their log records go to stderr through the CLI's handler.
"""

from __future__ import annotations

import argparse
import json
import signal
from typing import TYPE_CHECKING, Any

from .argtypes import link_path, number_list, positive_float, positive_int, profile_ref
from .common import command, open_bus

if TYPE_CHECKING:
    from .common import Subcommands


def object_spec(text: str) -> tuple[str, int | None]:
    """``G_2`` or ``G_2:unit=2`` (a drive's Modbus unit id on a shared line)."""
    object_id, _, rest = text.partition(":")
    if not rest:
        return object_id, None
    key, _, value = rest.partition("=")
    if key != "unit" or not value.isdigit() or not 1 <= int(value) <= 247:
        raise argparse.ArgumentTypeError(f"{text!r}: expected OBJECT or OBJECT:unit=N with N in 1..247")
    return object_id, int(value)


def cmd_translate(args: argparse.Namespace) -> int:
    from ..errors import GridbusError
    from ..translators.line import Line
    from ..translators.link import SerialLink
    from ..translators.profile import load_profile
    from ..translators.translator import Translator

    profile = load_profile(args.profile)
    if args.baud:
        profile.serial.baudrate = args.baud
    objects = args.object or [(f"{profile.object}_1", None)]
    if len(objects) > 1 and profile.protocol != "modbus-rtu":
        raise GridbusError(f"profile {profile.name}: only Modbus RTU drives share a line (unit ids)")
    link = SerialLink(args.port, profile.serial)
    with open_bus(args) as bus:
        translators = [
            Translator(
                bus,
                profile,
                link,
                object_id,
                unit=unit,
                publish_state=not args.no_state,
                publish_measurement=not args.no_measurement,
            )
            for object_id, unit in objects
        ]
        line = Line(link, translators)
        for signum in (signal.SIGINT, signal.SIGTERM):  # both end cleanly: Link_State says disconnected
            signal.signal(signum, lambda *_: line.stop())
        ready = [{"object": t.object_id, "unit": t.unit, "link": t.link_id} for t in translators]
        first = ready[0]
        print(
            json.dumps({"ready": {"profile": profile.name, "port": args.port, **first, "objects": ready}}), flush=True
        )
        line.run(args.duration)
        done = dict(translators[0].health)
        if len(translators) > 1:  # the first object's health, and every object's
            done["objects"] = [t.health for t in translators]
        print(json.dumps({"done": done}), flush=True)
    return 0


def cmd_device_sim(args: argparse.Namespace) -> int:
    from ..errors import GridbusError
    from ..translators.devices import run_simulator
    from ..translators.profile import load_profile

    profile = load_profile(args.profile)
    if args.baud:
        profile.serial.baudrate = args.baud
    if args.units and (profile.protocol != "modbus-rtu" or any(u > 247 for u in args.units)):
        raise GridbusError("--units takes Modbus unit ids 1..247 of a modbus-rtu profile")
    return run_simulator(profile, args.link, args.duration, args.trace, emit=_json_line, units=args.units)


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
        help="object the device serves (default: PREFIX_1); repeat as OBJECT:unit=N for several drives on one line",
    )
    p.add_argument("--duration", type=positive_float, default=None, help="seconds to run (default: forever)")
    p.add_argument("--baud", type=positive_int, default=None, help="override the profile's baud rate")
    p.add_argument("--no-state", action="store_true", help="do not publish the object's State topic")
    p.add_argument(
        "--no-measurement", action="store_true", help="do not publish the object's Measurement topic (a DAQ agent does)"
    )

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
    p.add_argument("--baud", type=positive_int, default=None, help="override the profile's baud rate")

    p = sub.add_parser("profiles", help="list the shipped device profiles")
    p.set_defaults(handler=cmd_profiles)
