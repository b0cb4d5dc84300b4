"""The DAQ agent: a sampling back end + per-cycle DSP + the bus.

``gridbus daq --config FILE`` runs one.  Each tick (``rate`` Hz) it reads the
samples that arrived since the last tick, computes every object's values over
the last cycle, publishes them (one sample per object, source-stamped), and
forwards commands addressed to its objects to the back end's outputs.

Commands are checked here, where they are obeyed (any process on the domain
can write one): against the IDL's ranges (``TopicType.check``) and the
configuration's output limits (``[limits]``).  A command with one bad field is
refused whole — a START carrying f_ref=inf must not start the machine at its
old frequency — and reported as a ``COMMAND_REJECTED`` event (``EV_<name>``);
the outputs keep their last good setting.
"""

from __future__ import annotations

import math
import os
import re
import resource
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..c37time import SyncState, time_quality, to_soc_fracsec
from ..errors import DaqConfigError, FieldError, UnknownObjectError
from ..events import EventLog
from ..tomlfile import read_toml
from .backend import Channel, SamplingBackend, SimulatedADC
from .dsp import COLUMNS, Cycle, CycleProcessor

if TYPE_CHECKING:  # not imported at run time: over Zenoh (gridbus.transport) a board has no cyclonedds
    from ..bus import Bus
    from ..model import Registry, TopicType

_MEASURED = ("Generator", "Busbar", "Line", "Load", "Microgrid", "WindEmulator", "SmartMeter", "PMU")
# the agent stamps with the host clock (NTP at best): not locked to UTC, ~1 ms (C37.118 time quality 7)
HOST_CLOCK = SyncState(locked=False, uncertainty=1e-3)
OBEYED = ("f_ref", "V_ref", "P_ref")  # the command set-points the back end's outputs follow
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,28}")  # an Event_Log id index: EV_<name> fits string<32>


def default_limits(nominal: float) -> dict[str, tuple[float, float]]:
    """Output limits when ``[limits]`` leaves them out: frequency within 25 % of nominal; voltage
    and power within what the simulated ADC's inputs (400 V and 50 A peak) can show."""
    return {"f_ref": (0.75 * nominal, 1.25 * nominal), "V_ref": (0.0, 280.0), "P_ref": (0.0, 10000.0)}


_CHANNEL_KEYS = {f.name for f in fields(Channel)} - {"id"}  # what an [[object]] may set
# what a simulated channel can physically be: RMS values >= 0, |pf| <= 1, a frequency the DSP can track
_CHANNEL_RANGES = {"V": (0.0, None), "I": (0.0, None), "pf": (-1.0, 1.0), "f": (1.0, 400.0), "noise": (0.0, None)}


@dataclass
class DaqConfig:
    rate: float = 100.0
    sample_rate: float = 7680.0
    nominal: float = 60.0
    backend: str = "simulated"
    name: str = "daq"  # events go out as EV_<name>
    channels: list[Channel] = field(default_factory=list)
    limits: dict[str, tuple[float, float]] = field(default_factory=dict)  # field -> (min, max)


def load_config(path: str | Path, registry: Registry | None = None) -> DaqConfig:
    """Read and check an agent configuration; ``registry`` checks object ids (default: gridbus's)."""
    doc, loc = read_toml(path, DaqConfigError, "DAQ agent configuration")
    config = DaqConfig()
    for key in doc:
        if key not in ("agent", "object", "limits"):
            raise loc.error(f"unknown section {key!r}; known: agent, object, limits", key=key)
    for key, value in doc.get("agent", {}).items():
        if not hasattr(config, key) or key in ("channels", "limits"):
            raise loc.error(
                f"unknown key {key!r} in [agent]; known: rate, sample_rate, nominal, backend, name",
                key=key,
                section="agent",
            )
        if key == "backend":
            if value != "simulated":
                raise loc.error(f"backend {value!r} is not available here; known: simulated", key=key, section="agent")
        elif key == "name":
            if not isinstance(value, str) or not _NAME.fullmatch(value):
                raise loc.error(
                    f"[agent] name must be 1-29 letters, digits, '.' or '-', got {value!r}", key=key, section="agent"
                )
        elif not _positive(value):
            raise loc.error(f"[agent] {key} must be a number > 0, got {value!r}", key=key, section="agent")
        setattr(config, key, value if key in ("backend", "name") else float(value))
    if config.sample_rate < 8 * config.nominal:
        raise loc.error("sample_rate must be at least 8 samples per nominal cycle", key="sample_rate", section="agent")
    if registry is None:
        from ..model import Registry

        registry = Registry.default()
    for entry in doc.get("object", []):
        object_id = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(object_id, str):
            raise loc.error('every [[object]] needs id = "G_x" (or Bus_x, TL_x, L_x, MG_x, ...)', section="object")
        try:
            obj = registry.parse_id(object_id)
        except UnknownObjectError as exc:
            raise loc.error(str(exc), object_id) from None
        if obj.name not in _MEASURED:
            raise loc.error(f"{object_id}: a DAQ agent measures {', '.join(_MEASURED)}, not {obj.name}", object_id)
        channel = Channel(object_id)
        for key, value in entry.items():
            if key == "id":
                continue
            if key not in _CHANNEL_KEYS:
                raise loc.error(f"{object_id}: unknown key {key!r}; known: V, I, pf, f, noise, running", object_id, key)
            wanted = bool if key == "running" else float
            if wanted is bool and not isinstance(value, bool) or wanted is float and not _number(value):
                raise loc.error(
                    f"{object_id}: {key} must be {'true or false' if wanted is bool else 'a number'}", object_id, key
                )
            low, high = _CHANNEL_RANGES.get(key, (None, None))
            if wanted is float and (low is not None and value < low or high is not None and value > high):
                span = f">= {low:g}" if high is None else f"in {low:g}..{high:g}"
                raise loc.error(f"{object_id}: {key} must be {span}, got {value!r}", object_id, key)
            setattr(channel, key, value if wanted is bool else float(value))
        if any(c.id == object_id for c in config.channels):
            raise loc.error(f"duplicate object id {object_id!r}", object_id)
        config.channels.append(channel)
    if not config.channels:
        raise loc.error("no [[object]] to measure", section="agent")
    config.limits = default_limits(config.nominal) | _limits(doc.get("limits", {}), loc)
    return config


def _limits(table: Any, loc: Any) -> dict[str, tuple[float, float]]:
    """``[limits]``: ``f_ref = { min = 45.0, max = 75.0 }`` per obeyed set-point, in bus units."""
    out = {}
    for key, spec in table.items():
        if key not in OBEYED:
            raise loc.error(
                f"[limits] {key}: not an output the agent drives; known: {', '.join(OBEYED)}", key=key, section="limits"
            )
        if not isinstance(spec, dict) or set(spec) - {"min", "max"} or not all(_number(v) for v in spec.values()):
            raise loc.error(
                f"[limits] {key} must be a table like {{ min = 0.0, max = 70.0 }} of finite numbers",
                key=key,
                section="limits",
            )
        low, high = spec.get("min", -math.inf), spec.get("max", math.inf)
        if low > high:
            raise loc.error(f"[limits] {key}: min {low:g} is above max {high:g}", key=key, section="limits")
        out[key] = (float(low), float(high))
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: Any) -> bool:
    return _number(value) and value > 0


class DaqAgent:
    def __init__(self, bus: Bus, config: DaqConfig, backend: SamplingBackend | None = None) -> None:
        self.bus = bus
        self.config = config
        self.backend = backend or SimulatedADC(config.channels, config.sample_rate)
        self.dsp = CycleProcessor(len(self.backend.ids), config.sample_rate, config.nominal)
        self.writers = [bus.writer(object_id) for object_id in self.backend.ids]
        # one sample per object, built (and checked) once; each cycle only its values change
        self.samples = [writer.build() for writer in self.writers]
        self._published = [_Fill.of(writer.topic.fields) for writer in self.writers]
        self.ids = set(self.backend.ids)
        commanded = sorted(
            {bus.registry.parse_id(i).prefix for i in self.ids if "Command" in bus.registry.parse_id(i).topics}
        )
        self.commands = [bus.reader(prefix, "Command") for prefix in commanded]
        self.events = EventLog(bus, config.name)
        self._is_pmu = [bus.registry.parse_id(i).prefix == "PMU" for i in self.backend.ids]
        self._publish_pmu_configs()
        self.published = 0
        self.applied = 0
        self.rejected = 0
        self._stopping = False

    def _publish_pmu_configs(self) -> None:
        """A PMU object's stream configuration (transient-local: late joiners get it too)."""
        if not any(self._is_pmu):
            return  # nothing to configure (and a board over Zenoh, without cyclonedds, has no PMU objects)
        from ..pmu.frames import config_sample, idcode_of  # builds IDL samples: a DDS agent only

        rates = (self.config.nominal, self.config.rate)
        for object_id in self.backend.ids:
            if self.bus.registry.parse_id(object_id).prefix != "PMU":
                continue
            writer = self.bus.writer(object_id, "Config")
            writer.write(config_sample(writer, idcode_of(object_id), f"{self.config.name}:{object_id}", *rates))
            setattr(self.samples[self.backend.ids.index(object_id)], "idcode", idcode_of(object_id))  # noqa: B010

    def stop(self) -> None:
        """Ask :meth:`run` to end after this tick (safe in a signal handler)."""
        self._stopping = True

    def run(self, duration: float | None = None) -> None:
        period = 1.0 / self.config.rate
        per_tick = self.config.sample_rate / self.config.rate
        owed = 0.0
        start = next_tick = time.monotonic()
        while not self._stopping and (duration is None or time.monotonic() - start < duration):
            owed += per_tick
            n = int(owed)
            owed -= n
            self.dsp.push(self.backend.read(n))
            self._publish(self.dsp.compute(), time.time())
            self._obey()
            next_tick += period
            pause = next_tick - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                next_tick = time.monotonic()

    def _publish(self, cycle: Cycle, now: float) -> None:
        frames = _pmu_frames(cycle, now) if any(self._is_pmu) else {}
        for n, (writer, sample, fill, row) in enumerate(
            zip(self.writers, self.samples, self._published, cycle.rows, strict=True)
        ):
            if self._is_pmu[n]:  # one C37.118 frame (phasors VA, VB, VC, IA, IB, IC), UTC time
                for name, value in frames.items():
                    setattr(sample, name, value[n] if isinstance(value, list) else value)
            else:
                # speed (rpm: a 4-pole machine, 1800 rpm at 60 Hz) and the three-phase means
                values = [*row, row[6] * 30.0, (row[0] + row[1] + row[2]) / 3, (row[3] + row[4] + row[5]) / 3]
                vars(sample).update(zip(fill.names, fill.pick(values), strict=True))
            writer.write(sample, timestamp=now)
            self.published += 1

    def _obey(self) -> None:
        # taken each tick, not handed over by a callback thread: DDS drops a command older than its
        # lifespan (2 s) only while it waits in the reader, and a stalled tick must not act on one
        for reader in self.commands:
            for sample in reader.take(0):
                if sample.id not in self.ids:
                    continue
                topic = self.bus.registry.parse_id(sample.id).topic("Command")
                problem = self.check(topic, sample.data)
                if problem is not None:
                    self.rejected += 1
                    self.events.rejected(sample.id, topic.name, *problem)
                    continue
                self.applied += len(self.backend.apply(sample.id, sample.fields()))

    def check(self, topic: TopicType, data: Any) -> tuple[str, float, str] | None:
        """(field, value, reason) of the first thing wrong with a received command, or None."""
        try:
            topic.check(data)
        except FieldError as exc:
            name = _bad_field(topic, data)
            value = getattr(data, name, math.nan)
            return name, value if isinstance(value, (int, float)) else math.nan, str(exc)
        for name, (low, high) in self.config.limits.items():
            value = getattr(data, name, None)
            if not isinstance(value, float) or math.isnan(value):
                continue  # not in this command, or NaN: unchanged
            if not (math.isfinite(value) and low <= value <= high):
                return name, value, f"{value:g} is outside the agent's output limits {low:g}..{high:g}"
        return None


def _bad_field(topic: TopicType, data: Any) -> str:
    for name, info in topic.fields.items():
        try:
            info.coerce(getattr(data, name), name)
        except FieldError:
            return name
    return ""


# what the agent can fill in, by field name: the DSP's columns, then what _publish adds to them
_PUBLISHED = (*COLUMNS, "speed", "V_rms", "I_rms")


@dataclass(frozen=True)
class _Fill:
    """The fields of one object's sample the agent fills, and how to pick them from its row."""

    names: tuple[str, ...]
    pick: Callable[[list[float]], tuple[float, ...]]

    @classmethod
    def of(cls, topic_fields: Iterable[str]) -> _Fill:
        present = set(topic_fields)
        columns = [i for i, name in enumerate(_PUBLISHED) if name in present]
        names = tuple(_PUBLISHED[i] for i in columns)
        if len(columns) > 1:
            return cls(names, itemgetter(*columns))
        # itemgetter of one index gives the item, not a tuple; of none it cannot be made
        return cls(names, lambda row: tuple(row[i] for i in columns))


def _pmu_frames(cycle: Cycle, now: float) -> dict[str, Any]:
    """The fields of every PMU's frame at ``now``: per-object lists, or one value shared by all."""
    soc, fracsec = to_soc_fracsec(now)
    return {
        "magnitude": [row[:6] for row in cycle.rows],
        "angle": np.angle(cycle.phasors).tolist(),
        "freq": cycle.column("f"),
        "soc": soc,
        "fracsec": fracsec,
        "time_quality": time_quality(now, HOST_CLOCK),
    }


def footprint(start_wall: float, start_cpu: float) -> dict[str, float]:
    """Peak resident memory (MB) and CPU use (% of one core) of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - start_cpu
    peak_kb = 0
    try:
        for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak_kb = int(line.split()[1])
    except OSError:
        peak_kb = usage.ru_maxrss
    return {
        "rss_mb": round(peak_kb / 1024, 1),
        "cpu_percent": round(100 * cpu / max(1e-9, time.monotonic() - start_wall), 1),
    }
