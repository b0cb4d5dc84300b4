"""Scenario files: the timed events of a co-simulation run, as data (TOML).

A scenario is what LTB calls the "data files for systems and scenarios": the
case it runs on, how long, and what happens when — a generator trip, a line
trip, a bolted fault cleared after a time, load steps and ramps.  The same
file also says what the sensors are like (noise, delay, loss, reporting rate)
and where the PMUs are, so one file describes a whole experiment.

The events are compiled into ANDES's own timed models (``Toggle``, ``Fault``,
``Alter``) before the case is set up, so the co-simulated run and ANDES's
offline run of the same scenario integrate exactly the same model; only the
stepping (paced chunks against one call) differs.  Errors name ``file:line``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ScenarioError
from ...resources import data_path
from ...tomlfile import Locator, read_toml, top_table
from ..system import SensorModel

EVENT_KINDS = {
    "generator_trip": ("object",),
    "generator_close": ("object",),
    "line_trip": ("object",),
    "line_close": ("object",),
    "fault": ("bus", "clear"),
    "load_step": ("object", "scale"),
    "load_ramp": ("object", "scale", "duration"),
}
"""Event kind -> the keys it needs besides ``t`` (optional: ``r``, ``x`` of a fault, ``steps`` of a ramp)."""

_OPTIONAL = {"fault": {"r", "x"}, "load_ramp": {"steps"}}
_SENSOR_KEYS = {"noise", "quantum", "bias", "delay"}


@dataclass
class Event:
    """One timed event of a scenario, as the file gives it (ids are gridbus ids)."""

    t: float
    kind: str
    object: str = ""  # G_x, TL_a-b or L_x
    bus: str = ""  # Bus_x (faults)
    clear: float = 0.0  # s from t to the fault's clearing
    r: float = 0.0  # pu fault resistance
    x: float = 1e-4  # pu fault reactance (ANDES's default: a bolted fault)
    scale: float = 1.0  # final P and Q of a load, times their value at t
    duration: float = 0.0  # s of a ramp
    steps: int = 10  # Alter steps a ramp is made of
    line: int = 0  # where the file says it (for errors found later)


@dataclass
class Scenario:
    """The case, the duration, the events and the sensors of one run."""

    name: str
    path: str
    case: str = "ieee14"
    duration: float = 10.0
    title: str = ""
    events: list[Event] = field(default_factory=list)
    sensors: list[tuple[str, SensorModel]] = field(default_factory=list)
    loss: list[tuple[str, float]] = field(default_factory=list)  # "OBJECT" pattern -> probability
    rates: dict[str, float] = field(default_factory=dict)  # prefix or object id -> Hz
    pmu_buses: list[str] | None = None  # None: a PMU at every generator bus
    pmu_rate: float = 30.0
    seed: int = 1

    def error(self, event: Event, reason: str) -> ScenarioError:
        """A problem found with ``event`` after parsing (an unknown object of the case)."""
        return ScenarioError(f"{self.path}:{event.line}: {reason}")


def scenario_file(name: str) -> Path:
    """A shipped scenario (``gridbus/data/scenarios/NAME``)."""
    return data_path("scenarios", name)


def empty_scenario(case: str, duration: float = 10.0) -> Scenario:
    """No events, perfect sensors: the case as it stands."""
    return Scenario(name="none", path="", case=case, duration=duration)


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file; the first problem raises ``file:line: reason``."""
    doc, loc = read_toml(path, ScenarioError, "scenario file")
    known = {"scenario", "event", "sensors", "loss", "rates", "pmus"}
    for key in doc:
        if key not in known:
            raise _at(loc, f"unknown section {key!r}; known: {', '.join(sorted(known))}", key=key)
    head = top_table(doc, "scenario", loc)
    scenario = Scenario(name=str(head.get("name", Path(path).stem)), path=str(path))
    for key, value in head.items():
        if key in ("name", "case", "title"):
            if not isinstance(value, str):
                raise _at(loc, f"[scenario] {key} must be a string", key=key, section="scenario")
            setattr(scenario, key, value)
        elif key in ("duration", "seed"):
            setattr(scenario, key, _positive(value, f"[scenario] {key}", loc, key, "scenario"))
        else:
            raise _at(
                loc,
                f"unknown key {key!r} in [scenario]; known: case, duration, name, seed, title",
                key=key,
                section="scenario",
            )
    scenario.seed = int(scenario.seed)
    events = doc.get("event", [])
    if not isinstance(events, list):
        raise _at(loc, "event must be a list of tables ([[event]])", section="event")
    starts = _array_lines(loc, "event")
    scenario.events = [_event(entry, starts[n] if n < len(starts) else 1, loc) for n, entry in enumerate(events)]
    scenario.events.sort(key=lambda e: e.t)
    scenario.sensors = _sensors(top_table(doc, "sensors", loc), loc)
    scenario.loss = _loss(top_table(doc, "loss", loc), loc)
    scenario.rates = {k: _positive(v, f"[rates] {k}", loc, k, "rates") for k, v in top_table(doc, "rates", loc).items()}
    _pmus(scenario, top_table(doc, "pmus", loc), loc)
    return scenario


def _number(value: Any, what: str, loc: Locator, key: str, section: str | None = None, line: int = 0) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        reason = f"{what} must be a number, got {value!r}"
        raise ScenarioError(f"{loc.path}:{line}: {reason}") if line else _at(loc, reason, key=key, section=section)
    return float(value)


def _positive(value: Any, what: str, loc: Locator, key: str, section: str) -> float:
    number = _number(value, what, loc, key, section)
    if number <= 0:
        raise _at(loc, f"{what} must be > 0, got {value!r}", key=key, section=section)
    return number


def _array_lines(loc: Locator, name: str) -> list[int]:
    """The 1-based line of each ``[[name]]`` header, in order."""
    header = re.compile(r"^\s*\[\[\s*" + re.escape(name) + r"\s*\]\]")
    return [n + 1 for n, line in enumerate(loc.lines) if header.search(line)]


def _at(loc: Locator, reason: str, key: str | None = None, section: str | None = None) -> ScenarioError:
    """``file:line: reason`` at ``key`` of ``[section]`` (quoted keys too), or at the section."""
    start = 1
    if section is not None:
        header = re.compile(r"^\s*\[+\s*" + re.escape(section) + r"\s*\]+")
        start = next((n + 1 for n, line in enumerate(loc.lines) if header.search(line)), 1)
    line = _key_line(loc, start, key) if key is not None else start
    return ScenarioError(f"{loc.path}:{line}: {reason}")


def _key_line(loc: Locator, start: int, key: str) -> int:
    """The line of ``key = ...`` in the table that starts at line ``start`` (the header if absent)."""
    pattern = re.compile(r"^\s*[\"']?" + re.escape(key) + r"[\"']?\s*=")
    for n in range(max(start - 1, 0), len(loc.lines)):
        if n > start - 1 and loc.lines[n].lstrip().startswith("["):
            break
        if pattern.search(loc.lines[n]):
            return n + 1
    return start


def _event(entry: Any, line: int, loc: Locator) -> Event:
    def fail(reason: str, key: str | None = None) -> ScenarioError:
        return ScenarioError(f"{loc.path}:{_key_line(loc, line, key) if key else line}: {reason}")

    if not isinstance(entry, dict):
        raise fail("an event must be a table")
    kind = entry.get("kind")
    if kind not in EVENT_KINDS:
        raise fail(f"event kind must be one of {', '.join(EVENT_KINDS)}, got {kind!r}", "kind")
    allowed = {"t", "kind", *EVENT_KINDS[kind], *_OPTIONAL.get(kind, set())}
    for key in entry:
        if key not in allowed:
            raise fail(f"{kind}: unknown key {key!r}; known: {', '.join(sorted(allowed))}", key)
    missing = [k for k in ("t", *EVENT_KINDS[kind]) if k not in entry]
    if missing:
        raise fail(f"{kind}: missing {', '.join(missing)}")
    event = Event(t=0.0, kind=kind, line=line)
    for key, value in entry.items():
        if key in ("object", "bus"):
            if not isinstance(value, str) or not value:
                raise fail(f"{kind}: {key} must be an object id string", key)
            setattr(event, key, value)
        elif key != "kind":
            number = _number(value, f"{kind}: {key}", loc, key, line=_key_line(loc, line, key))
            if (key == "t" and number < 0) or (key in ("clear", "scale", "duration", "steps") and number <= 0):
                raise fail(f"{kind}: {key} must be {'>= 0' if key == 't' else '> 0'}, got {value!r}", key)
            setattr(event, key, int(number) if key == "steps" else number)
    return event


def _sensors(table: dict[str, Any], loc: Locator) -> list[tuple[str, SensorModel]]:
    models = []
    for pattern, spec in table.items():
        if not isinstance(spec, dict):
            raise _at(loc, f"sensor {pattern!r} must be a table like {{ noise = 0.1 }}", key=pattern, section="sensors")
        model = SensorModel()
        for key, value in spec.items():
            if key not in _SENSOR_KEYS:
                raise _at(
                    loc,
                    f"sensor {pattern!r}: unknown key {key!r}; known: {', '.join(sorted(_SENSOR_KEYS))}",
                    key=pattern,
                    section="sensors",
                )
            number = _number(value, f"sensor {pattern!r}: {key}", loc, pattern, "sensors")
            if key != "bias" and number < 0:
                raise _at(loc, f"sensor {pattern!r}: {key} must be >= 0", key=pattern, section="sensors")
            setattr(model, key, number)
        models.append((pattern, model))
    return models


def _loss(table: dict[str, Any], loc: Locator) -> list[tuple[str, float]]:
    out = []
    for pattern, value in table.items():
        p = _number(value, f"[loss] {pattern}", loc, pattern, "loss")
        if not 0 <= p < 1:
            raise _at(
                loc, f"[loss] {pattern} must be a probability in [0, 1), got {value!r}", key=pattern, section="loss"
            )
        out.append((pattern, p))
    return out


def _pmus(scenario: Scenario, table: dict[str, Any], loc: Locator) -> None:
    for key, value in table.items():
        if key == "buses":
            if not isinstance(value, list) or not all(isinstance(b, str) for b in value):
                raise _at(loc, '[pmus] buses must be a list of bus ids like "Bus_4"', key=key, section="pmus")
            scenario.pmu_buses = list(value)
        elif key == "rate":
            scenario.pmu_rate = _positive(value, "[pmus] rate", loc, key, "pmus")
        else:
            raise _at(loc, f"unknown key {key!r} in [pmus]; known: buses, rate", key=key, section="pmus")
