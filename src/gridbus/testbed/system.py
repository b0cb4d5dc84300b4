"""The system file: what the virtual testbed is made of (buses, lines, machines, loads…).

A system is a TOML file, so lab staff edit it by hand.  ``load_system`` checks
every object against the data model (ids, references, numbers, ranges) and
reports the first problem as ``file:line: reason`` — TOML syntax errors carry
their line from :mod:`tomllib`, and the errors found after parsing are located
again in the text by the object's ``id = "..."`` line and the key under it.

Numbers must be finite, and each quantity that only makes sense positive (a
rating, a time constant, an impedance, a step, a rate) is refused at zero or
below: such a file would load and then divide by zero or run backwards.  The
ratings also bound what the testbed obeys: a command beyond a device's rating
is refused (see :meth:`gridbus.testbed.plant.Plant.command`).
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import SystemFileError, UnknownObjectError
from ..model import Registry
from ..resources import system_file
from ..tomlfile import Locator, read_toml, top_table
from .devices import DEVICE_KINDS, ParamError, need, need_ref, unit
from .devices import BreakerParams as Breaker
from .devices import GeneratorParams as Generator
from .devices import LoadParams as Load
from .devices import MeterParams as SmartMeter
from .devices import MicrogridParams as Microgrid
from .devices import PMUParams as PMU
from .devices import PVParams as PVEmulator
from .devices import StorageParams as EnergyStorage
from .devices import WindParams as WindEmulator

DEFAULT_SYSTEM = "fiu-testbed.toml"


@dataclass
class Line:
    """A π-section line emulator between two buses (the network's: no device of its own)."""

    id: str
    from_bus: str
    to_bus: str
    R: float = unit("ohm", non_negative=True)  # series resistance
    X: float = unit("ohm", non_negative=True)  # series reactance
    B: float = unit("S", 0.0, non_negative=True)  # total shunt susceptance (half at each end)
    breaker: str = ""
    I_max: float = unit("A", 0.0, non_negative=True)  # overcurrent trip (0 = none)

    def check(self, system: System) -> None:
        need_ref("from", self.from_bus, system.buses, "bus")
        need_ref("to", self.to_bus, system.buses, "bus")
        need(self.from_bus != self.to_bus, "to", "from and to are the same bus")
        need(self.R > 0 or self.X > 0, "X", "R and X are both 0 (a line needs an impedance)")


@dataclass
class SensorModel:
    """How a measured value is corrupted: v' = quantize(v(t - delay) + bias + noise)."""

    noise: float = 0.0  # standard deviation, in the field's unit
    quantum: float = 0.0  # resolution (0 = continuous)
    bias: float = 0.0  # constant offset
    delay: float = 0.0  # s of simulated time


@dataclass
class Protection:
    """Limits beyond which a breaker closure is an out-of-phase closure (the plant trips)."""

    max_df: float = 0.5  # Hz
    max_dV: float = 12.0  # V
    max_dphi: float = 30.0  # degrees


@dataclass
class System:
    name: str
    path: str
    frequency: float = 60.0
    voltage: float = 120.0  # V, phase (208 V line to line)
    step: float = 0.01  # s, integration step of simulated time
    seed: int = 1
    protection: Protection = field(default_factory=Protection)
    buses: list[str] = field(default_factory=list)
    generators: dict[str, Generator] = field(default_factory=dict)
    lines: dict[str, Line] = field(default_factory=dict)
    loads: dict[str, Load] = field(default_factory=dict)
    microgrids: dict[str, Microgrid] = field(default_factory=dict)
    pv: dict[str, PVEmulator] = field(default_factory=dict)
    wind: dict[str, WindEmulator] = field(default_factory=dict)
    storage: dict[str, EnergyStorage] = field(default_factory=dict)
    meters: dict[str, SmartMeter] = field(default_factory=dict)
    pmus: dict[str, PMU] = field(default_factory=dict)
    breakers: dict[str, Breaker] = field(default_factory=dict)
    sensors: list[tuple[str, SensorModel]] = field(default_factory=list)
    rates: dict[str, float] = field(default_factory=dict)
    loss: list[tuple[str, float]] = field(default_factory=list)  # "OBJECT" pattern -> P(report lost)

    def loss_of(self, object_id: str) -> float:
        """The probability that a report of ``object_id`` is lost: the last matching pattern wins."""
        p = 0.0
        for pattern, candidate in self.loss:
            if fnmatch.fnmatchcase(object_id, pattern):
                p = candidate
        return p

    def sensor(self, object_id: str, field_name: str) -> SensorModel:
        """The sensor model of ``object_id.field``: the last matching pattern in the file wins."""
        key = f"{object_id}.{field_name}"
        model = SensorModel()
        for pattern, candidate in self.sensors:
            if fnmatch.fnmatchcase(key, pattern):
                model = candidate
        return model

    def object_ids(self) -> list[str]:
        return [
            *self.generators,
            *self.breakers,
            *self.loads,
            *self.buses,
            *self.lines,
            *self.microgrids,
            *self.pv,
            *self.wind,
            *self.storage,
            *self.meters,
            *self.pmus,
        ]


# -- loading ------------------------------------------------------------------------------


def _kinds() -> dict[str, tuple[type, str, str]]:
    """TOML array name -> (parameter dataclass, System attribute, object-id prefix).

    Every device kind of the registry the file describes as an array, and the
    network's lines, read right after the generators (which fixes the order of
    ``System.breakers``, hence of the State topics at start).
    """
    kinds: dict[str, tuple[type, str, str]] = {}
    for kind in DEVICE_KINDS.values():
        if kind.section is not None:
            kinds[kind.section] = (kind.params_type, kind.system_attr, kind.prefix)
        if kind.section == "generator":
            kinds["line"] = (Line, "lines", "TL")
    return kinds


_KINDS = _kinds()
_RENAMED = {"from": "from_bus", "to": "to_bus"}
_SYSTEM_POSITIVE = {"frequency", "voltage", "step", "max_df", "max_dV", "max_dphi"}
MAX_STEP = 1.0  # s; a longer integration step makes the governors unstable


def default_system_path() -> Path:
    return system_file(DEFAULT_SYSTEM)


def load_system(path: str | Path | None = None) -> System:
    """Read and check a system file (the shipped FIU testbed when ``path`` is None)."""
    doc, locator = read_toml(path if path is not None else default_system_path(), SystemFileError, "system file")
    return _build(doc, locator)


def _build(doc: dict[str, Any], loc: Locator) -> System:
    known = {"system", "protection", "buses", "sensors", "rates", "loss", *_KINDS}
    for key in doc:
        if key not in known:
            raise loc.error(f"unknown section {key!r}; known: {', '.join(sorted(known))}", key=key)
    for section in ("system", "protection", "sensors", "rates", "loss"):
        top_table(doc, section, loc)
    head = doc.get("system", {})
    system = System(name=str(head.get("name", "system")), path=loc.path)
    _fill(system, head, {"frequency", "voltage", "step", "seed", "name"}, loc, section="system")
    _fill(system.protection, doc.get("protection", {}), {"max_df", "max_dV", "max_dphi"}, loc, section="protection")
    registry = Registry.default()
    system.buses = _buses(doc.get("buses", []), registry, loc)
    for kind, (cls, attr, prefix) in _KINDS.items():
        entries = doc.get(kind, [])
        if not isinstance(entries, list):
            raise loc.error(f"{kind} must be a list of tables ([[{kind}]] or {kind} = [{{...}}])", section=kind)
        for entry in entries:
            obj = _object(cls, entry, prefix, registry, loc, kind)
            if obj.id in getattr(system, attr) or obj.id in system.buses:
                raise loc.error(f"duplicate object id {obj.id!r}", obj.id)
            getattr(system, attr)[obj.id] = obj
    _breakers(system, doc, registry, loc)
    _check_objects(system, loc)
    system.sensors = _sensors(doc.get("sensors", {}), loc)
    system.rates = _rates(doc.get("rates", {}), registry, loc)
    system.loss = _loss(doc.get("loss", {}), loc)
    return system


def _fill(target: Any, values: dict[str, Any], allowed: set[str], loc: Locator, section: str) -> None:
    for key, value in values.items():
        if key not in allowed:
            raise loc.error(
                f"unknown key {key!r} in [{section}]; known: {', '.join(sorted(allowed))}", key=key, section=section
            )
        current = getattr(target, key)
        if isinstance(current, (int, float)) and not isinstance(current, bool):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise loc.error(f"[{section}] {key} must be a number, got {value!r}", key=key, section=section)
            value = type(current)(value)
            if key in _SYSTEM_POSITIVE and value <= 0:
                raise loc.error(f"[{section}] {key} must be > 0, got {value}", key=key, section=section)
            if key == "step" and value > MAX_STEP:
                raise loc.error(f"[{section}] step must be at most {MAX_STEP} s, got {value}", key=key, section=section)
        setattr(target, key, value)


def _buses(ids: Any, registry: Registry, loc: Locator) -> list[str]:
    if not isinstance(ids, list) or not all(isinstance(b, str) for b in ids):
        raise loc.error('buses must be a list of bus ids like "Bus_1"', key="buses")
    for bus in ids:
        _check_id(bus, "Bus", registry, loc, key="buses")
    if len(set(ids)) != len(ids):
        raise loc.error("buses lists an id twice", key="buses")
    return list(ids)


def _check_id(object_id: str, prefix: str, registry: Registry, loc: Locator, key: str | None = None) -> None:
    try:
        obj = registry.parse_id(object_id)
    except UnknownObjectError as exc:
        raise loc.error(str(exc), object_id if key is None else None, key=key) from None
    if obj.prefix != prefix:
        raise loc.error(
            f"{object_id!r} is a {obj.name} id; expected {prefix}_x here", object_id if key is None else None, key=key
        )


def _object(cls: type, entry: Any, prefix: str, registry: Registry, loc: Locator, kind: str) -> Any:
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
        raise loc.error(f'every {kind} needs an id = "{prefix}_x"', section=kind)
    object_id = entry["id"]
    _check_id(object_id, prefix, registry, loc)
    defaults = cls(**{f: _placeholder(cls, f) for f in _required(cls)})
    names = [f.name for f in fields(cls)]
    values: dict[str, Any] = {}
    for key, value in entry.items():
        name = _RENAMED.get(key, key)
        if name not in names:
            allowed = sorted(_RENAMED_BACK.get(k, k) for k in names)
            raise loc.error(f"{object_id}: unknown key {key!r}; known: {', '.join(allowed)}", object_id, key)
        values[name] = _typed(object_id, key, value, getattr(defaults, name), loc)
    missing = [k for k in _required(cls) if k not in values]
    if missing:
        raise loc.error(f"{object_id}: missing {', '.join(_RENAMED_BACK.get(m, m) for m in missing)}", object_id)
    obj = cls(**values)
    bounds = {f.name: f.metadata.get("bound") for f in fields(cls) if f.name in values}
    for key in [k for k, bound in bounds.items() if bound == ">0"]:
        if values[key] <= 0:
            raise loc.error(f"{object_id}: {key} must be > 0, got {values[key]}", object_id, key)
    for key in [k for k, bound in bounds.items() if bound == ">=0"]:
        if values[key] < 0:
            raise loc.error(f"{object_id}: {key} must be >= 0, got {values[key]}", object_id, key)
    return obj


_RENAMED_BACK = {v: k for k, v in _RENAMED.items()}


def _required(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]


def _placeholder(cls: type, name: str) -> Any:
    kind = next(f.type for f in fields(cls) if f.name == name)
    return 1.0 if kind == "float" else ""


def _typed(object_id: str, key: str, value: Any, default: Any, loc: Locator) -> Any:
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    elif isinstance(default, list):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:
        ok = isinstance(value, str)
    if not ok:
        wanted = {bool: "true or false", float: "a number", list: "a list of ids", str: "a string"}[type(default)]
        raise loc.error(f"{object_id}: {key} must be {wanted}, got {value!r}", object_id, key)
    return value


def _breakers(system: System, doc: dict[str, Any], registry: Registry, loc: Locator) -> None:
    """Collect the breakers named by generators, lines, loads and microgrids."""
    closed_by_default = {"line": False}
    switched = [kind for kind, (cls, _, _) in _KINDS.items() if "breaker" in {f.name for f in fields(cls)}]
    for kind in switched:
        for entry in doc.get(kind, []):
            object_id, breaker = entry["id"], entry.get("breaker", "")
            if not breaker:
                if kind == "line":
                    continue  # a line without a breaker is always in service
                raise loc.error(f'{object_id}: missing breaker = "CB_x"', object_id)
            try:
                obj = registry.parse_id(breaker)
            except UnknownObjectError as exc:
                raise loc.error(f"{object_id}: breaker: {exc}", object_id, "breaker") from None
            if obj.prefix != "CB":
                raise loc.error(f"{object_id}: breaker {breaker!r} is not a CB_x id", object_id, "breaker")
            if breaker in system.breakers:
                raise loc.error(
                    f"{object_id}: breaker {breaker!r} already switches {system.breakers[breaker].element}",
                    object_id,
                    "breaker",
                )
            closed = entry.get("closed", closed_by_default.get(kind, False))
            if not isinstance(closed, bool):
                raise loc.error(f"{object_id}: closed must be true or false", object_id, "closed")
            system.breakers[breaker] = Breaker(breaker, closed, object_id)


def _check_objects(system: System, loc: Locator) -> None:
    """Each object checks its references and bands (:meth:`check` of its parameters); one slack."""
    for _, attr, _ in _KINDS.values():
        for obj in getattr(system, attr).values():
            try:
                obj.check(system)
            except ParamError as exc:
                raise loc.error(f"{obj.id}: {exc.reason}", obj.id, exc.key) from None
    slack = [g.id for g in system.generators.values() if g.mode == "SPEED"]
    if system.generators and not slack:
        first = next(iter(system.generators))
        raise loc.error('no generator has mode = "SPEED": one machine must set the frequency', first, "mode")


def _sensors(table: Any, loc: Locator) -> list[tuple[str, SensorModel]]:
    if not isinstance(table, dict):
        raise loc.error(
            '[sensors] must map "OBJECT.field" patterns to {noise, quantum, bias, delay}', section="sensors"
        )
    models = []
    for pattern, spec in table.items():
        if not isinstance(spec, dict):
            raise loc.error(
                f"sensor {pattern!r} must be a table like {{ noise = 0.1 }}", key=pattern, section="sensors"
            )
        model = SensorModel()
        for key, value in spec.items():
            if not hasattr(model, key):
                raise loc.error(
                    f"sensor {pattern!r}: unknown key {key!r}; known: noise, quantum, bias, delay",
                    key=pattern,
                    section="sensors",
                )
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise loc.error(f"sensor {pattern!r}: {key} must be a number", key=pattern, section="sensors")
            if key != "bias" and value < 0:
                raise loc.error(f"sensor {pattern!r}: {key} must be >= 0", key=pattern, section="sensors")
            setattr(model, key, float(value))
        models.append((pattern, model))
    return models


def _rates(table: Any, registry: Registry, loc: Locator) -> dict[str, float]:
    if not isinstance(table, dict):
        raise loc.error("[rates] must map object-type prefixes to rates in Hz", key="rates")
    rates = {}
    for prefix, value in table.items():
        try:
            registry.by_prefix(prefix)
        except UnknownObjectError as exc:
            if not _is_object_id(prefix, registry):  # one object's own rate (``Bus_4 = 5``)
                raise loc.error(f"[rates] {exc}", key=prefix, section="rates") from None
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
            raise loc.error(
                f"[rates] {prefix} must be a finite rate in Hz > 0, got {value!r}", key=prefix, section="rates"
            )
        rates[prefix] = float(value)
    return rates


def _is_object_id(name: str, registry: Registry) -> bool:
    try:
        registry.parse_id(name)
    except UnknownObjectError:
        return False
    return True


def _loss(table: dict[str, Any], loc: Locator) -> list[tuple[str, float]]:
    """``[loss]``: the probability that a report of the objects matching a pattern is lost."""
    out = []
    for pattern, value in table.items():
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1
        if not ok:
            raise loc.error(
                f"[loss] {pattern} must be a probability in [0, 1), got {value!r}", key=pattern, section="loss"
            )
        out.append((pattern, float(value)))
    return out
