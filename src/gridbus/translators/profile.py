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
from typing import Any, Protocol

from ..errors import ProfileError, UnknownObjectError
from ..resources import profile_dir as profile_dir  # the shipped profiles (gridbus.resources)
from ..tomlfile import Locator, read_toml
from . import registers
from .profile_checks import check_layout, command_problem, parse_key, protocol_problem, status_problem

PROTOCOLS = ("modbus-rtu", "ascii", "scpi")
KINDS = ("drive", "load")
REGISTER_MAX = 0xFFFF  # Modbus: 16-bit register addresses and values
UNIT_IDS = range(1, 248)  # Modbus: 0 is broadcast (never answered), 248-255 reserved
DEVICE_STATUS = ("running", "fault", "settings_lost")  # device status bits the translator interprets


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
    """One bus command (an action such as ``start``, a direction such as ``reverse``, or a
    set-point field such as ``f_ref``) as device traffic."""

    name: str
    address: int | None = None  # modbus: PDU address of the holding register written
    value: int | None = None  # modbus: fixed word written (an action)
    type: str = ""  # modbus: register type; "" = int16 when min < 0, else uint16
    word_order: str = "big"  # modbus 32-bit values: "big" = high word first
    word: str = ""  # modbus: the [words] control word whose bits this command sets and clears
    set: list[int] = field(default_factory=list)  # bits set in the word
    clear: list[int] = field(default_factory=list)  # bits cleared in the word
    pulse: float = 0.0  # s: edge-triggered: the set bits are cleared again after this time
    send: list[str] = field(default_factory=list)  # ascii/scpi: templates, "{}" = device value
    scale: float = 1.0  # device value = bus value x scale
    min: float = -math.inf  # bus-side limits: the translator refuses values outside them
    max: float = math.inf

    def device_value(self, value: float) -> float:
        return value * self.scale

    @property
    def kind(self) -> str:
        """The register type, the legacy default resolved (unsigned unless min is negative)."""
        return self.type or ("int16" if self.min < 0 else "uint16")


@dataclass
class StatusMap:
    """One status value read from the device, by bus name (running, fault, f, fault_code...)."""

    name: str
    address: int | None = None  # modbus: PDU address
    table: str = ""  # modbus: holding (FC3) or input (FC4); "" = the profile's read_function
    bit: int | None = None
    type: str = "uint16"
    word_order: str = "big"
    query: str = ""
    scale: float = 1.0
    map: dict[str, str] = field(default_factory=dict)  # raw device value -> enum member (direction)

    def bus_value(self, raw: float) -> float:
        return raw / self.scale


@dataclass
class WordMap:
    """A control word: commands set and clear its bits in one cached image, the rest kept."""

    name: str
    address: int | None = None
    hold: list[int] = field(default_factory=list)  # bits set in every write (e.g. remote enable)
    initial: int = 0  # the image's other bits before any command


@dataclass
class Watchdog:
    """The heartbeat a drive's communications watchdog expects from its master."""

    address: int | None = None
    interval: float = 0.0  # s between heartbeats
    value: int | None = None  # the word written; None = a counter 0, 1, 2 ...
    timeout: float = 0.0  # s: the drive's own comm-loss time (the simulator trips after it)


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
    write_function: int = 6  # modbus: 6 (write single register) or 16 (write multiple registers)
    read_function: int = 3  # modbus: 3 (holding) or 4 (input) for status given by address
    commands: dict[str, CommandMap] = field(default_factory=dict)
    status: dict[str, StatusMap] = field(default_factory=dict)
    words: dict[str, WordMap] = field(default_factory=dict)
    watchdog: Watchdog | None = None

    def status_table(self, item: StatusMap) -> str:
        return item.table or ("input" if self.read_function == 4 else "holding")

    def status_registers(self, table: str | None = None) -> list[int]:
        """The distinct registers the status map reads, ascending (modbus), of one table or all."""
        regs: set[int] = set()
        for s in self.status.values():
            if s.address is not None and (table is None or self.status_table(s) == table):
                regs.update(range(s.address, s.address + registers.size(s.type)))
        return sorted(regs)


class ObjectTypes(Protocol):
    """What a profile needs of the data model: object types by prefix (``G``).

    gridbus's :class:`~gridbus.model.Registry` on DDS; on a board over Zenoh
    (no cyclonedds), the types the site's bridge described.
    """

    def by_prefix(self, prefix: str) -> Any: ...


def object_types(registry: ObjectTypes | None) -> ObjectTypes:
    """``registry``, else gridbus's data model (imported here: a board over Zenoh has no cyclonedds)."""
    if registry is not None:
        return registry
    from ..model import Registry

    return Registry.default()


def available() -> list[str]:
    return sorted(p.stem for p in profile_dir().glob("*.toml"))


def load_profile(name_or_path: str | Path, registry: ObjectTypes | None = None) -> Profile:
    """A shipped profile by name (``vfd-modbus``) or any profile file by path, checked against
    ``registry``'s object types (default: gridbus's data model)."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = profile_dir() / f"{name_or_path}.toml"
        if not path.exists():
            raise ProfileError(f"no device profile {str(name_or_path)!r}; shipped: {', '.join(available())}")
    doc, loc = read_toml(path, ProfileError, "device profile")
    return _build(doc, loc, object_types(registry))


SECTIONS = ("device", "serial", "protocol", "commands", "status", "words", "watchdog")
PROTOCOL_KEYS = {
    "unit": int,
    "terminator": str,
    "checksum": str,
    "error_query": str,
    "write_function": int,
    "read_function": int,
}


def _build(doc: dict[str, Any], loc: Locator, registry: ObjectTypes) -> Profile:
    for key in doc:
        if key not in SECTIONS:
            raise loc.error(f"unknown section [{key}]; known: {', '.join(SECTIONS)}", section=key)
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
        registry.by_prefix(device["object"])
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
    _protocol(profile, doc.get("protocol", {}), loc)
    for name, spec in doc.get("commands", {}).items():
        profile.commands[name] = _entry(CommandMap(name), spec, profile, loc, "commands")
    for name, spec in doc.get("status", {}).items():
        profile.status[name] = _entry(StatusMap(name), spec, profile, loc, "status")
    if not profile.commands or not profile.status:
        raise loc.error("a profile needs [commands] and [status] entries", section="device")
    _check_names(profile, loc, registry)
    check_layout(profile, doc, loc)
    return profile


def _protocol(profile: Profile, proto: dict[str, Any], loc: Locator) -> None:
    for key, value in proto.items():
        expected = PROTOCOL_KEYS.get(key)
        if expected is None:
            raise loc.error(
                f"unknown key {key!r} in [protocol]; known: {', '.join(PROTOCOL_KEYS)}", key=key, section="protocol"
            )
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
        allowed = {"write_function": (6, 16), "read_function": (3, 4)}.get(key)
        if allowed is not None and value not in allowed:
            raise loc.error(
                f"[protocol] {key} {value} is not supported; use {' or '.join(map(str, allowed))}",
                key=key,
                section="protocol",
            )
        if profile.protocol != "modbus-rtu" and key in ("unit", "write_function", "read_function"):
            raise loc.error(
                f"[protocol] {key} is a modbus-rtu key; a {profile.protocol} profile cannot use it",
                key=key,
                section="protocol",
            )
        setattr(profile, key, value)
    if profile.checksum not in ("none", "xor"):
        raise loc.error("checksum must be none or xor", key="checksum", section="protocol")


def command_names(object_prefix: str, registry: ObjectTypes | None = None) -> list[str]:
    """What a profile's [commands] may map for an object type: the Command topic's numeric
    set-points (f_ref, P_ref...) and the members of its enum fields in lower case, but the
    first, which means "no change" (start, stop, reset; forward, reverse; speed, power)."""
    return setpoint_names(object_prefix, registry) + action_names(object_prefix, registry)


def setpoint_names(object_prefix: str, registry: ObjectTypes | None = None) -> list[str]:
    topic = object_types(registry).by_prefix(object_prefix).topics.get("Command")
    return [n for n, info in topic.fields.items() if info.kind == "float"] if topic else []


def action_names(object_prefix: str, registry: ObjectTypes | None = None) -> list[str]:
    """The value-less commands: enum members of the Command topic (see :func:`command_names`)."""
    topic = object_types(registry).by_prefix(object_prefix).topics.get("Command")
    names: list[str] = []
    for info in topic.fields.values() if topic else []:
        if info.kind == "enum" and info.enum is not None:
            names += [m.name.lower() for m in list(info.enum)[1:]]
    return names


def action_field(object_prefix: str, name: str, registry: ObjectTypes | None = None) -> tuple[str, str] | None:
    """(Command field, enum member) a value-less command stands for: ``reverse`` ->
    ``("direction", "REVERSE")``; None for a set-point."""
    return action_member(object_types(registry).by_prefix(object_prefix).topics.get("Command"), name)


def action_member(topic: Any, name: str) -> tuple[str, str] | None:
    """:func:`action_field` in a Command topic at hand (a ``TopicType``, or a board's ``BoardTopic``)."""
    for field_name, info in topic.fields.items() if topic else []:
        if info.kind == "enum" and info.enum is not None:
            for member in list(info.enum)[1:]:
                if member.name.lower() == name:
                    return field_name, member.name
    return None


def status_names(object_prefix: str, registry: ObjectTypes | None = None) -> list[str]:
    """What a profile's [status] may map: the Measurement's numeric fields, the State's fields
    but ``status`` (fault_code, at_speed, direction, f_ref_applied...), running, fault and
    settings_lost."""
    obj = object_types(registry).by_prefix(object_prefix)
    topic = obj.topics.get("Measurement")
    fields = [n for n, info in topic.fields.items() if info.kind == "float"] if topic else []
    return fields + state_names(object_prefix, registry) + list(DEVICE_STATUS)


def state_names(object_prefix: str, registry: ObjectTypes | None = None) -> list[str]:
    topic = object_types(registry).by_prefix(object_prefix).topics.get("State")
    skip = ("id", "status")
    return (
        [n for n, i in topic.fields.items() if n not in skip and i.kind in ("float", "int", "bool", "enum")]
        if topic
        else []
    )


def _check_names(profile: Profile, loc: Locator, registry: ObjectTypes) -> None:
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
    actions = action_names(profile.object, registry)
    for name, command in profile.commands.items():
        problem = command_problem(command, name in actions, profile.protocol)
        if problem:
            raise loc.error(f"[commands] {name}: {problem}", key=name, section="commands")
    state = registry.by_prefix(profile.object).topics.get("State")
    state_values = state_names(profile.object, registry)
    for name, item in profile.status.items():
        info = state.fields.get(name) if state is not None else None
        is_enum = info is not None and info.kind == "enum" and name in state_values
        members = [m.name for m in info.enum] if is_enum and info is not None and info.enum is not None else []
        problem = status_problem(item, members, is_enum)
        if problem:
            raise loc.error(f"[status] {name}: {problem}", key=name, section="status")


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
            f'[{section}] {name} must be a table like {{ address = 0x2000 }} or {{ send = "RUN" }}',
            key=name,
            section=section,
        )
    for key, value in spec.items():
        try:
            parse_key(target, key, value)
        except ValueError as exc:
            raise loc.error(f"[{section}] {name}: {exc}", key=name, section=section) from None
    if isinstance(target, CommandMap) and target.min > target.max:
        raise loc.error(
            f"[{section}] {name}: min {target.min:g} is above max {target.max:g}", key=name, section=section
        )
    problem = protocol_problem(target, set(spec), profile)
    if problem:
        raise loc.error(f"[{section}] {name}: {problem}", key=name, section=section)
    return target
