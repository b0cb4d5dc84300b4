"""The main automation and startup controller (Figure 15).

Startup runs a :class:`Plan` in order — the slack machine, breakers that set
up the topology, loads, power-controlled units — and reports READY for the
whole testbed.  Shutdown is the safe order: the power-controlled units one by
one, each after shedding a load so the rest are not overloaded, then the
remaining loads, the slack machine, and finally every breaker open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..bus import Bus
from .clock import Clock
from .generators import PowerStartup, SlackStartup
from .statemachine import StaleMeasurement, StateMachine
from .synchronizer import SyncLimits
from .view import GridView, Pending


@dataclass
class Unit:
    generator: str
    breaker: str
    reference: str = ""  # PMU on the grid side of the breaker (power units)
    power: float = 0.0  # W, power reference once connected


@dataclass
class LoadStep:
    load: str
    breaker: str
    power: float  # W


# (kind, item): ("slack" | "unit", Unit), ("close", [breaker ids]), ("load", LoadStep), ("wait", seconds);
# shutdown: ("shed", LoadStep), ("stop", generator id), ("open", None)
Step = tuple[str, Any]


@dataclass
class Plan:
    """An ordered startup: slack machine, breakers to close, loads, power units, pauses."""

    steps: list[Step] = field(default_factory=list)
    limits: SyncLimits = field(default_factory=SyncLimits)

    def slack(self, unit: Unit) -> Plan:
        self.steps.append(("slack", unit))
        return self

    def close(self, *breakers: str) -> Plan:
        self.steps.append(("close", list(breakers)))
        return self

    def load(self, load: str, breaker: str, power: float) -> Plan:
        self.steps.append(("load", LoadStep(load, breaker, power)))
        return self

    def unit(self, unit: Unit) -> Plan:
        self.steps.append(("unit", unit))
        return self

    def wait(self, seconds: float) -> Plan:
        self.steps.append(("wait", seconds))
        return self


class MainController(StateMachine):
    def __init__(self, bus: Bus, clock: Clock, plan: Plan, name: str = "main") -> None:
        super().__init__(bus, name, clock)
        self.plan = plan
        self.index = -1
        self.units: dict[str, SlackStartup | PowerStartup] = {}
        self.breakers_closed: list[str] = []
        self.loads_on: list[LoadStep] = []
        self._waiting: list[str] = []
        self._current: SlackStartup | PowerStartup | None = None
        self._shutdown_queue: list[Step] = []
        self._wait_until = 0.0

    # -- startup ----------------------------------------------------------------------
    def start(self) -> None:
        self.go("STARTUP", "startup requested")
        self._next()

    def _next(self) -> None:
        self.index += 1
        if self.index >= len(self.plan.steps):
            self.go("READY", "all generators running, topology and loads connected", ready=True)
            return
        kind, item = self.plan.steps[self.index]
        if kind in ("slack", "unit"):
            unit = item
            machine: SlackStartup | PowerStartup
            if kind == "slack":
                machine = SlackStartup(self.bus, self.clock, unit.generator, unit.breaker)
            else:
                machine = PowerStartup(
                    self.bus,
                    self.clock,
                    unit.generator,
                    unit.breaker,
                    unit.reference,
                    unit.power,
                    limits=self.plan.limits,
                )
            self.units[unit.generator] = self._current = machine
            machine.start()
            self.go(f"START_{unit.generator}", f"starting {unit.generator}")
        elif kind == "close":
            for cb in item:
                self.command(cb, status="CLOSED")
            self._waiting = list(item)
            self.go("TOPOLOGY", "closing " + " ".join(item))
        elif kind == "wait":
            self._waiting = []
            self._wait_until = self.clock.now() + float(item)
            self.go("WAIT", f"holding {float(item):g} s")
        elif kind == "load":
            self.command(item.load, P_ref=item.power)
            self.command(item.breaker, status="CLOSED")
            self._waiting = [item.breaker]
            self.loads_on.append(item)
            self.go(f"LOAD_{item.load}", f"connecting {item.load} at {item.power:g} W")

    def tick(self, view: GridView) -> None:
        if self.finished:
            return
        try:
            if self.stage == "WAIT":
                if self.clock.now() >= self._wait_until:
                    self._next()
            elif self.stage.startswith(("START_", "TOPOLOGY", "LOAD_")):
                self._startup_step(view)
            elif self.stage.startswith(("SHED_", "STOP_", "OPEN_ALL")):
                self._shutdown_step(view)
        except Pending:
            return
        except StaleMeasurement as exc:
            self.go("FAULT", f"stopped: {exc}", fault=True)

    def _startup_step(self, view: GridView) -> None:
        if self._current is not None:
            self._current.tick(view)
            if self._current.stage == "FAULT":
                self.go("FAULT", f"{self._current.id}: {self._current.reason}", fault=True)
            elif self._current.stage == "READY":
                self._current = None
                self._next()
            return
        pending = [cb for cb in self._waiting if view.status(cb) != "CLOSED"]
        if not pending:
            self.breakers_closed += self._waiting
            self._waiting = []
            self._next()
        elif self.elapsed() > 5.0:
            self.go("FAULT", f"gave up: {' '.join(pending)} did not close", fault=True)

    # -- shutdown ---------------------------------------------------------------------
    def shutdown(self) -> None:
        """Power units one by one (shedding a load before each), remaining loads, slack, breakers."""
        queue: list[Step] = []
        loads = list(reversed(self.loads_on))
        power_units = [g for g, m in self.units.items() if isinstance(m, PowerStartup)]
        for generator in reversed(power_units):
            if loads:
                queue.append(("shed", loads.pop(0)))
            queue.append(("stop", generator))
        queue += [("shed", load) for load in loads]
        queue += [("stop", g) for g, m in self.units.items() if isinstance(m, SlackStartup)]
        queue.append(("open", None))
        self._shutdown_queue = queue
        self._current = None
        self.go("SHUTDOWN", "shutdown requested")
        self._next_shutdown()

    def _next_shutdown(self) -> None:
        if not self._shutdown_queue:
            self.go("OFF", "all units stopped and every breaker open")
            return
        kind, item = self._shutdown_queue.pop(0)
        if kind == "shed":
            self.loads_on.remove(item)
            self._cap_injection()
            self.command(item.breaker, status="OPEN")
            self._waiting = [item.breaker]
            self.go(f"SHED_{item.load}", f"disconnecting {item.load}")
        elif kind == "stop":
            self._current = self.units[item]
            self._current.shutdown()
            self.go(f"STOP_{item}", f"shutting down {item}")
        else:
            self._waiting = list(dict.fromkeys(self.breakers_closed))
            for cb in self._waiting:
                self.command(cb, status="OPEN")
            self.go("OPEN_ALL", "opening every breaker")

    def _cap_injection(self) -> None:
        """Keep the running power units below what the remaining loads draw, so that shedding a
        load never drives the slack machine into reverse power."""
        running = [m for m in self.units.values() if isinstance(m, PowerStartup) and m.stage == "READY"]
        injected = sum(m.power for m in running)
        allowed = 0.8 * sum(load.power for load in self.loads_on)
        if injected > allowed and injected > 0:
            for machine in running:
                machine.power *= allowed / injected
                self.command(machine.generator, P_ref=machine.power)

    def _shutdown_step(self, view: GridView) -> None:
        if self._current is not None:
            self._current.tick(view)
            if self._current.stage == "FAULT":
                self.go("FAULT", f"{self._current.id}: {self._current.reason}", fault=True)
            elif self._current.stage == "OFF":
                self._current = None
                self._next_shutdown()
            return
        pending = [cb for cb in self._waiting if view.status(cb) != "OPEN"]
        if not pending:
            self._waiting = []
            self._next_shutdown()
        elif self.elapsed() > 5.0:
            self.go("FAULT", f"gave up: {' '.join(pending)} did not open", fault=True)
