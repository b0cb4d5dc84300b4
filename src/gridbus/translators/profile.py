"""Device profiles: what a serial device speaks, as data (``translators/profiles/*.toml``).

A profile names the protocol (``modbus-rtu``, ``ascii``, ``scpi``), the serial
settings, how each bus command becomes device traffic (``[commands]``: a
register and scale, or a text template) and how the device's status becomes
bus fields (``[status]``).  Adding a device of a known protocol is adding a
file; a malformed file is rejected with ``file:line: reason``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ProfileError, UnknownObjectError
from ..resources import profile_dir as profile_dir  # the shipped profiles (gridbus.resources)
from ..tomlfile import Locator, read_toml

PROTOCOLS = ("modbus-rtu", "ascii", "scpi")
KINDS = ("drive", "load")
REGISTER_MAX = 0xFFFF  # Modbus: 16-bit register addresses and values
UNIT_IDS = range(1, 248)  # Modbus: 0 is broadcast (never answered), 248-255 reserved
DEVICE_STATUS = ("running", "fault")  # device status words the translator turns into State.status


@dataclass
class SerialSettings:
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    rs485: bool = False  # half duplex: one transaction at a time, input flushed before each
    timeout: float = 0.2  # s to wait for a reply
    inter_frame: float = 0.0  # s of line silence between frames
    retries: int = 2
    poll_interval: float = 0.1  # s between status polls


@dataclass
class CommandMap:
    """One bus command (``start``, ``stop`` or a set-point field) as device traffic."""

    name: str
    register: int | None = None  # modbus: holding register written
    value: int | None = None  # modbus: fixed value (start/stop words)
    send: list[str] = field(default_factory=list)  # ascii/scpi: templates, "{}" = device value
    scale: float = 1.0  # device value = bus value x scale
    min: float = -math.inf  # bus-side limits: the translator refuses values outside them
    max: float = math.inf  # (a modbus register is unsigned when min >= 0, else signed)

    def device_value(self, value: float) -> float:
        return value * self.scale


@dataclass
class StatusMap:
    """One status value read from the device, by bus name (running, fault, f, speed, P...)."""

    name: str
    register: int | None = None
    bit: int | None = None
    query: str = ""
    scale: float = 1.0

    def bus_value(self, raw: float) -> float:
        return raw / self.scale


@dataclass
class Profile:
    name: str
    title: str
    protocol: str
    kind: str
    object: str  # object-type prefix served (G, L...)
    path: str
    serial: SerialSettings = field(default_factory=SerialSettings)
    unit: int = 1
    terminator: str = "\r"
    checksum: str = "none"
    error_query: str = ""
    commands: dict[str, CommandMap] = field(default_factory=dict)
    status: dict[str, StatusMap] = field(default_factory=dict)

    def status_registers(self) -> list[int]:
        """The distinct registers the status map reads, ascending (modbus)."""
        return sorted({s.register for s in self.status.values() if s.register is not None})


def available() -> list[str]:
    return sorted(p.stem for p in profile_dir().glob("*.toml"))


def _registry(registry: Any) -> Any:
    """``registry``, else gridbus's data model (imported here: a board over Zenoh has no cyclonedds)."""
    if registry is not None:
        return registry
    from ..model import Registry

    return Registry.default()


def load_profile(name_or_path: str | Path, registry: Any = None) -> Profile:
    """A shipped profile by name (``vfd-modbus``) or any profile file by path."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = profile_dir() / f"{name_or_path}.toml"
        if not path.exists():
            raise ProfileError(f"no device profile {str(name_or_path)!r}; shipped: {', '.join(available())}")
    doc, loc = read_toml(path, ProfileError, "device profile")
    return _build(doc, loc, registry)


def _build(doc: dict[str, Any], loc: Locator, registry: Any = None) -> Profile:
    for key in doc:
        if key not in ("device", "serial", "protocol", "commands", "status"):
            raise loc.error(f"unknown section [{key}]; known: device, serial, protocol, commands, status", section=key)
    device = doc.get("device", {})
    for key in ("name", "protocol", "kind", "object"):
        if not isinstance(device.get(key), str):
            raise loc.error(f'[device] needs {key} = "..."', section="device")
    if device["protocol"] not in PROTOCOLS:
        raise loc.error(
            f"protocol {device['protocol']!r} is not known; known: {', '.join(PROTOCOLS)}",
            key="protocol",
            section="device",
        )
    if device["kind"] not in KINDS:
        raise loc.error(
            f"kind {device['kind']!r} is not known; known: {', '.join(KINDS)}", key="kind", section="device"
        )
    try:
        _registry(registry).by_prefix(device["object"])
    except UnknownObjectError as exc:
        raise loc.error(str(exc), key="object", section="device") from None
    profile = Profile(
        name=device["name"],
        title=str(device.get("title", device["name"])),
        protocol=device["protocol"],
        kind=device["kind"],
        object=device["object"],
        path=loc.path,
    )
    _settings(profile.serial, doc.get("serial", {}), loc)
    proto = doc.get("protocol", {})
    for key, value in proto.items():
        if key not in ("unit", "terminator", "checksum", "error_query"):
            raise loc.error(
                f"unknown key {key!r} in [protocol]; known: unit, terminator, checksum, error_query",
                key=key,
                section="protocol",
            )
        expected = int if key == "unit" else str
        if not isinstance(value, expected) or isinstance(value, bool):
            raise loc.error(
                f"[protocol] {key} must be {'an integer' if expected is int else 'a string'}",
                key=key,
                section="protocol",
            )
        if key == "unit" and value not in UNIT_IDS:
            raise loc.error(
                f"[protocol] unit {value} is not a Modbus device id: use 1..247 "
                "(0 is broadcast, which no device answers)",
                key=key,
                section="protocol",
            )
        setattr(profile, key, value)
    if profile.checksum not in ("none", "xor"):
        raise loc.error("checksum must be none or xor", key="checksum", section="protocol")
    for name, spec in doc.get("commands", {}).items():
        profile.commands[name] = _entry(CommandMap(name), spec, profile, loc, "commands")
    for name, spec in doc.get("status", {}).items():
        profile.status[name] = _entry(StatusMap(name), spec, profile, loc, "status")
    if not profile.commands or not profile.status:
        raise loc.error("a profile needs [commands] and [status] entries", section="device")
    _check_names(profile, loc, registry)
    return profile


def command_names(object_prefix: str, registry: Any = None) -> list[str]:
    """What a profile's [commands] may map for an object type: the Command topic's numeric
    set-points (f_ref, P_ref...) and its actions in lower case (start, stop...)."""
    obj = _registry(registry).by_prefix(object_prefix)
    topic = obj.topics.get("Command")
    if topic is None:
        return []
    names = [n for n, info in topic.fields.items() if info.kind == "float"]
    action = topic.fields.get("action")
    if action is not None and action.enum is not None:
        names += [m.name.lower() for m in action.enum if m.name != "NONE"]
    return names


def status_names(object_prefix: str, registry: Any = None) -> list[str]:
    """What a profile's [status] may map: the Measurement's numeric fields, running and fault."""
    obj = _registry(registry).by_prefix(object_prefix)
    topic = obj.topics.get("Measurement")
    fields = [n for n, info in topic.fields.items() if info.kind == "float"] if topic else []
    return fields + list(DEVICE_STATUS)


def _check_names(profile: Profile, loc: Locator, registry: Any = None) -> None:
    """Every command and status name must be something of the object's topics, or it would be
    silently ignored (a misspelt ``f_rf`` never reaches the device)."""
    for section, entries, known in (
        ("commands", profile.commands, command_names(profile.object, registry)),
        ("status", profile.status, status_names(profile.object, registry)),
    ):
        what = "command" if section == "commands" else "status value"
        for name in entries:
            if name not in known:
                raise loc.error(
                    f"[{section}] {name}: not a {what} of {profile.object}_x objects; "
                    f"known: {', '.join(known) or 'none'}",
                    key=name,
                    section=section,
                )


def _settings(settings: SerialSettings, values: dict[str, Any], loc: Locator) -> None:
    for key, value in values.items():
        if not hasattr(settings, key):
            raise loc.error(
                f"unknown key {key!r} in [serial]; known: {', '.join(vars(settings))}", key=key, section="serial"
            )
        current = getattr(settings, key)
        if isinstance(current, bool):
            ok = isinstance(value, bool)
        elif isinstance(current, str):
            ok = value in ("N", "E", "O", "M", "S")
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
        if not ok:
            raise loc.error(f"[serial] {key} has a bad value {value!r}", key=key, section="serial")
        setattr(settings, key, type(current)(value) if not isinstance(current, bool) else value)
    if settings.bytesize not in (5, 6, 7, 8) or settings.stopbits not in (1, 1.5, 2) or settings.baudrate <= 0:
        raise loc.error("[serial] needs bytesize 5-8, stopbits 1, 1.5 or 2 and a baudrate > 0", section="serial")


def _entry(target: Any, spec: Any, profile: Profile, loc: Locator, section: str) -> Any:
    name = target.name
    if not isinstance(spec, dict):
        raise loc.error(
            f'[{section}] {name} must be a table like {{ register = 0x2000 }} or {{ send = "RUN" }}',
            key=name,
            section=section,
        )
    for key, value in spec.items():
        if not hasattr(target, key):
            raise loc.error(
                f"[{section}] {name}: unknown key {key!r}; known: {', '.join(k for k in vars(target) if k != 'name')}",
                key=name,
                section=section,
            )
        if key == "send":
            value = [value] if isinstance(value, str) else value
            if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
                raise loc.error(
                    f"[{section}] {name}: send must be a string or a list of strings", key=name, section=section
                )
        elif key == "query":
            if not isinstance(value, str):
                raise loc.error(f"[{section}] {name}: query must be a string", key=name, section=section)
        elif key in ("register", "value", "bit"):
            high = 15 if key == "bit" else REGISTER_MAX
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high:
                raise loc.error(
                    f"[{section}] {name}: {key} must be an integer 0..{high} "
                    f"({'a 16-bit word has bits 0..15' if key == 'bit' else 'Modbus is 16-bit'})"
                    f", got {value!r}",
                    key=name,
                    section=section,
                )
        elif (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not math.isfinite(value)
            or (key == "scale" and value == 0)
        ):
            raise loc.error(
                f"[{section}] {name}: {key} must be a finite number"
                f"{' other than 0' if key == 'scale' else ''}, got {value!r}",
                key=name,
                section=section,
            )
        setattr(target, key, value)
    if isinstance(target, CommandMap) and target.min > target.max:
        raise loc.error(
            f"[{section}] {name}: min {target.min:g} is above max {target.max:g}", key=name, section=section
        )
    register_based = profile.protocol == "modbus-rtu"
    has_register = target.register is not None
    has_text = bool(getattr(target, "send", None) or getattr(target, "query", ""))
    if register_based and not has_register:
        raise loc.error(f"[{section}] {name}: a modbus-rtu profile maps it to a register", key=name, section=section)
    if not register_based and not has_text:
        what = "send" if section == "commands" else "query"
        raise loc.error(
            f'[{section}] {name}: a {profile.protocol} profile needs {what} = "..."', key=name, section=section
        )
    return target
