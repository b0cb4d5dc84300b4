"""The DDS paper's three experiments (section 7) and a synchrophasor case, as data plus two small controllers.

Each case is a startup :class:`~gridbus.control.main.Plan` for the main
controller, a timeline of set-point changes (simulated seconds after the
testbed reports READY), the application controllers that run during it, and
the figures its summary reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..bus import Bus
from ..control.clock import Clock
from ..control.main import Plan, Unit
from ..control.statemachine import StateMachine
from ..control.view import GridView


@dataclass
class Action:
    at: float  # s after READY
    text: str
    object_id: str
    fields: dict[str, Any]


@dataclass
class Case:
    name: str
    title: str
    plan: Plan
    duration: float  # s after READY
    start_at: float = 2.0  # s of simulated time before the startup begins
    timeline: list[Action] = field(default_factory=list)
    controllers: Callable[[Bus, Clock], list[StateMachine]] = lambda bus, clock: []
    shutdown: bool = False  # run the safe shutdown sequence at the end
    figures: str = ""


# -- application controllers --------------------------------------------------------------


class SlackLimiter(StateMachine):
    """Case 2: keep the slack machine under its limit with the spinning reserve.

    Every ``period`` it compares the slack's output with ``limit``: above it,
    the reserve unit's power reference grows by the excess over ``target``;
    once demand falls and the slack drops under ``release``, the reserve's
    reference shrinks back until the unit is in reserve again (0 W).
    """

    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        slack: str = "G_1",
        reserve: str = "G_4",
        limit: float = 700.0,
        target: float = 600.0,
        release: float = 400.0,
        period: float = 0.5,
    ) -> None:
        super().__init__(bus, "limiter", clock)
        self.slack, self.reserve = slack, reserve
        self.limit, self.target, self.release, self.period = limit, target, release, period
        self.reserve_power = 0.0
        self._last = -1e9

    @property
    def reaction_time(self) -> float:
        """How long the slack may stay above its limit: one check period plus the unit's response."""
        return self.period + 1.5

    def start(self) -> None:
        self.go("RESERVE", f"{self.reserve} in reserve; {self.slack} limit {self.limit:g} W")

    def on_reserve(self, view: GridView) -> None:
        self._regulate(view)

    def on_injecting(self, view: GridView) -> None:
        self._regulate(view)

    def _regulate(self, view: GridView) -> None:
        if self.clock.now() - self._last < self.period:
            return
        self._last = self.clock.now()
        slack = view.value(self.slack, "P")
        if slack > self.limit:
            self.reserve_power += slack - self.target
            self.command(self.reserve, P_ref=self.reserve_power)
            self.go(
                "INJECTING",
                f"{self.slack} at {slack:.0f} W > {self.limit:g} W: {self.reserve} to {self.reserve_power:.0f} W",
            )
        elif self.reserve_power > 0 and slack < self.release:
            self.reserve_power = max(0.0, self.reserve_power - (self.target - slack))
            self.command(self.reserve, P_ref=self.reserve_power)
            if self.reserve_power == 0.0:
                self.go("RESERVE", f"demand fell ({self.slack} at {slack:.0f} W): {self.reserve} back in reserve")
            else:
                self.go("INJECTING", f"{self.reserve} down to {self.reserve_power:.0f} W")


class VoltageReconfiguration(StateMachine):
    """Case 3: close the ring (TL 1-6) when the load voltage stays below its limit."""

    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        bus_id: str = "Bus_7",
        breaker: str = "CB_1-6",
        limit: float = 114.0,
        hold: float = 10.0,
    ) -> None:
        super().__init__(bus, "reconfig", clock)
        self.bus_id, self.breaker, self.limit, self.hold = bus_id, breaker, limit, hold
        self._low_since: float | None = None
        self.triggered_at: float | None = None
        self.closed_at: float | None = None

    def start(self) -> None:
        self.go("RADIAL", f"watching {self.bus_id} against {self.limit:g} V")

    def on_radial(self, view: GridView) -> None:
        voltage = view.value(self.bus_id, "Va")
        if voltage >= self.limit:
            self._low_since = None
            return
        if self._low_since is None:
            self._low_since = self.clock.now()
            self.triggered_at = self._low_since
        if self.clock.now() - self._low_since >= self.hold:
            self.command(self.breaker, status="CLOSED")
            self.go("CLOSING_RING", f"{self.bus_id} at {voltage:.1f} V < {self.limit:g} V for {self.hold:g} s")

    def on_closing_ring(self, view: GridView) -> None:
        if view.status(self.breaker) == "CLOSED":
            self.closed_at = self.clock.now()
            self.go("RING", "topology reconfigured from radial to ring", ready=True)
        else:
            self.timed_out(5.0, f"{self.breaker} reported CLOSED")


# -- the three cases ----------------------------------------------------------------------


def synchronization() -> Case:
    """Case 1: start the slack, connect load 1, then synchronize generators 2, 3 and 4."""
    plan = (
        Plan()
        .slack(Unit("G_1", "CB_G1"))
        .close("CB_1-2", "CB_1-8")
        .load("L_1", "CB_L1", 600.0)
        .wait(10.0)
        .unit(Unit("G_2", "CB_G2", "PMU_2", 150.0))
        .close("CB_2-5", "CB_4-5")
        .unit(Unit("G_3", "CB_G3", "PMU_4", 150.0))
        .unit(Unit("G_4", "CB_G4", "PMU_5", 100.0))
    )
    return Case(
        "sync",
        "Case 1: generator synchronization",
        plan,
        duration=20.0,
        start_at=4.0,
        shutdown=True,
        figures="Figures 16-17",
    )


def load_sharing() -> Case:
    """Case 2: four generators; G_2 and G_3 at 300 W, G_4 spinning reserve, slack limited to 700 W."""
    plan = (
        Plan()
        .slack(Unit("G_1", "CB_G1"))
        .close("CB_1-8", "CB_1-2")
        .load("L_1", "CB_L1", 600.0)
        .unit(Unit("G_2", "CB_G2", "PMU_2", 300.0))
        .close("CB_2-5", "CB_4-5")
        .unit(Unit("G_3", "CB_G3", "PMU_4", 300.0))
        .unit(Unit("G_4", "CB_G4", "PMU_5", 0.0))
        .close("CB_5-6", "CB_1-6")
        .load("L_3", "CB_L3", 300.0)
    )
    timeline = [
        Action(65.0, "demand 1200 W", "L_1", {"P_ref": 900.0}),
        Action(115.0, "demand 1500 W", "L_1", {"P_ref": 1200.0}),
        Action(215.0, "demand 900 W", "L_1", {"P_ref": 600.0}),
        Action(293.0, "outage of generator 3", "G_3", {"action": "STOP"}),
    ]
    return Case(
        "load-sharing",
        "Case 2: load sharing among four generators",
        plan,
        duration=340.0,
        timeline=timeline,
        controllers=lambda bus, clock: [SlackLimiter(bus, clock)],
        figures="Figure 18",
    )


def reconfiguration() -> Case:
    """Case 3: radial feeder to loads 3 and 4; close TL 1-6 when load 4's voltage falls below 114 V."""
    plan = (
        Plan()
        .slack(Unit("G_1", "CB_G1"))
        .close("CB_1-2", "CB_2-5", "CB_4-5", "CB_5-6", "CB_6-7")
        .unit(Unit("G_2", "CB_G2", "PMU_2", 0.0))
        .unit(Unit("G_3", "CB_G3", "PMU_4", 300.0))
        .load("L_3", "CB_L3", 300.0)
        .load("L_4", "CB_L4", 500.0)
    )
    ramp = [(20.0, 700.0), (35.0, 900.0), (50.0, 1100.0), (65.0, 1300.0), (80.0, 1500.0), (92.0, 1700.0)]
    timeline = [Action(t, f"load 4 at {p:g} W", "L_4", {"P_ref": p}) for t, p in ramp]
    return Case(
        "reconfig",
        "Case 3: topology reconfiguration",
        plan,
        duration=150.0,
        timeline=timeline,
        controllers=lambda bus, clock: [VoltageReconfiguration(bus, clock)],
        figures="Figure 19",
    )


def synchrophasor() -> Case:
    """Synchrophasors: G_2 synchronized on PMU_2, then load 1 steps up for 10 s; the PMUs watch.

    The testbed's PMUs (C37.118 frames estimated from waveforms) see the slack's
    frequency dip and the phase jump of the step; see :mod:`.synchrophasor` for the
    figures, and the compliance run (the seed's ROCOF sequence) written beside them.
    """
    plan = (
        Plan()
        .slack(Unit("G_1", "CB_G1"))
        .close("CB_1-2", "CB_1-8")
        .load("L_1", "CB_L1", 600.0)
        .unit(Unit("G_2", "CB_G2", "PMU_2", 300.0))
    )
    timeline = [
        Action(5.0, "load 1 steps to 1500 W", "L_1", {"P_ref": 1500.0}),
        Action(15.0, "load 1 back to 600 W", "L_1", {"P_ref": 600.0}),
    ]
    return Case(
        "synchrophasor",
        "Synchrophasors: a load step seen by the PMUs",
        plan,
        duration=25.0,
        timeline=timeline,
        figures="C37.118 frames; seed Figure 14",
    )


CASES: dict[str, Callable[[], Case]] = {
    "sync": synchronization,
    "load-sharing": load_sharing,
    "reconfig": reconfiguration,
    "synchrophasor": synchrophasor,
}
