"""A small state machine that publishes every transition on the bus."""

from __future__ import annotations

from typing import Any

from ..bus import Bus
from .clock import Clock
from .view import GridView, Pending, StaleMeasurement

__all__ = ["StateMachine", "StaleMeasurement"]


class StateMachine:
    """Stages are methods ``on_<stage>(view)`` called by :meth:`tick`.

    A transition (:meth:`go`) is published on ``Controller_State`` as
    ``CTRL_<name>``, stamped with the simulated time of the transition (in the
    testbed's time base, so a recorder puts it on the same time axis as the
    data); a :class:`StaleMeasurement` raised by a stage stops the machine in
    FAULT with the reason, so nothing acts on old data.  Every duration a stage
    measures (:meth:`elapsed`, :meth:`timed_out`) is simulated time on ``clock``.
    """

    terminal = ("READY", "OFF", "FAULT", "DONE")

    def __init__(self, bus: Bus, name: str, clock: Clock) -> None:
        self.bus = bus
        self.name = name
        self.clock = clock
        self.id = f"CTRL_{name}"
        self._writer = bus.writer(self.id, "State")
        self.stage = "IDLE"
        self.reason = ""
        self.ready = False
        self.fault = False
        self.entered = clock.now()
        self.transitions: list[tuple[float, str, str]] = []
        self._stamped = 0.0
        self._publish("IDLE", "", "created")

    def go(self, stage: str, reason: str = "", ready: bool = False, fault: bool = False) -> None:
        previous, self.stage, self.reason = self.stage, stage, reason
        self.ready, self.fault = ready, fault
        self.entered = self.clock.now()
        self.transitions.append((self.entered, stage, reason))
        self._publish(stage, previous, reason)

    def _publish(self, stage: str, previous: str, reason: str) -> None:
        # strictly increasing stamps: readers order this topic by source time and would drop a tie
        self._stamped = max(self.clock.stamp(self.clock.now()), self._stamped + 1e-6)
        self._writer.write(
            stage=stage,
            previous=previous,
            reason=reason[:127],
            ready=self.ready,
            fault=self.fault,
            timestamp=self._stamped,
        )

    def start(self) -> None:
        """Leave IDLE: each controller says what its first stage is."""
        raise NotImplementedError

    def elapsed(self) -> float:
        """Simulated seconds in the present stage."""
        return self.clock.since(self.entered)

    def tick(self, view: GridView) -> None:
        if self.stage in self.terminal:
            return
        handler = getattr(self, f"on_{self.stage.lower()}", None)
        if handler is None:
            return
        try:
            handler(view)
        except Pending:
            return
        except StaleMeasurement as exc:
            self.go("FAULT", f"stopped: {exc}", fault=True)

    @property
    def finished(self) -> bool:
        return self.stage in self.terminal

    def command(self, object_id: str, **fields: Any) -> None:
        self.bus.command(object_id, **fields)

    def timed_out(self, limit: float, what: str) -> bool:
        if self.elapsed() > limit:
            self.go("FAULT", f"gave up: {what} within {limit:g} s", fault=True)
            return True
        return False
