"""Generator startup/shutdown state machines (Figures 12 and 13)."""

from __future__ import annotations

from ..bus import Bus
from .clock import Clock
from .statemachine import StateMachine
from .synchronizer import Synchronizer, SyncLimits
from .view import GridView


class GeneratorSequence(StateMachine):
    """What every generator controller shares: the shutdown (open the breaker, stop, OFF)."""

    generator: str
    breaker: str

    def shutdown(self) -> None:
        self.command(self.breaker, status="OPEN")
        self.go("DISCONNECTING", "shutdown requested")

    def on_disconnecting(self, view: GridView) -> None:
        if view.status(self.breaker) == "OPEN":
            self.command(self.generator, action="STOP")
            self.go("STOPPING", "turn-off signal sent")
        else:
            self.timed_out(5.0, f"{self.breaker} reported OPEN")

    def on_stopping(self, view: GridView) -> None:
        if view.status(self.generator) == "OFF":
            self.go("OFF", "stopped")
        else:
            self.timed_out(60.0, f"{self.generator} stopped")


class SlackStartup(GeneratorSequence):
    """Set the speed for the operating frequency, start, wait for nominal V and f, connect, ready."""

    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        generator: str,
        breaker: str,
        frequency: float = 60.0,
        voltage: float = 120.0,
        settle: float = 1.0,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(bus, generator.replace("_", ""), clock)
        self.generator, self.breaker = generator, breaker
        self.frequency, self.voltage = frequency, voltage
        self.settle, self.timeout = settle, timeout
        self._nominal_since: float | None = None

    def start(self) -> None:
        self.command(self.generator, mode="SPEED", f_ref=self.frequency, V_ref=self.voltage)
        self.go("SET_SPEED", f"speed for {self.frequency:g} Hz")

    def on_set_speed(self, view: GridView) -> None:
        self.command(self.generator, action="START")
        self.go("STARTING", "start signal sent")

    def on_starting(self, view: GridView) -> None:
        f, v = view.value(self.generator, "f"), view.value(self.generator, "Va")
        if abs(f - self.frequency) < 0.1 and abs(v - self.voltage) < 0.05 * self.voltage:
            if self._nominal_since is None:
                self._nominal_since = self.clock.now()
            if self.clock.now() - self._nominal_since >= self.settle:
                self.command(self.breaker, status="CLOSED")
                self.go("CONNECTING", f"nominal: f={f:.2f} Hz V={v:.1f} V")
        else:
            self._nominal_since = None
            self.timed_out(self.timeout, "nominal voltage and frequency")

    def on_connecting(self, view: GridView) -> None:
        view.sample(self.generator)  # stop on stale data here too
        if view.status(self.breaker) == "CLOSED":
            self.go("READY", f"{self.generator} feeds the grid", ready=True)
        else:
            self.timed_out(5.0, f"{self.breaker} reported CLOSED")


class PowerStartup(GeneratorSequence):
    """Start, synchronize, close the breaker, set the power, ready; open the breaker and stop."""

    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        generator: str,
        breaker: str,
        reference: str,
        power: float,
        frequency: float = 60.0,
        voltage: float = 120.0,
        limits: SyncLimits | None = None,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(bus, generator.replace("_", ""), clock)
        self.generator, self.breaker, self.power = generator, breaker, power
        self.frequency, self.voltage, self.timeout = frequency, voltage, timeout
        self.synchronizer = Synchronizer(bus, clock, generator, breaker, reference, limits, frequency)

    def start(self) -> None:
        self.command(self.generator, action="START", mode="POWER", f_ref=self.frequency, V_ref=self.voltage, P_ref=0.0)
        self.go("STARTING", "start signal sent")

    def on_starting(self, view: GridView) -> None:
        f = view.value(self.generator, "f")
        if view.status(self.generator) == "RUNNING" and abs(f - self.frequency) < 0.5:
            self.synchronizer.start()
            self.go("SYNCHRONIZING", f"running at {f:.2f} Hz")
        else:
            self.timed_out(self.timeout, f"{self.generator} running")

    def on_synchronizing(self, view: GridView) -> None:
        self.synchronizer.tick(view)
        if self.synchronizer.stage == "DONE":
            # back to the nominal references the synchronizer trimmed, then the power set-point
            self.command(self.generator, mode="POWER", f_ref=self.frequency, V_ref=self.voltage, P_ref=self.power)
            self.go("READY", f"synchronized; power reference {self.power:g} W", ready=True)
        elif self.synchronizer.stage == "FAULT":
            self.go("FAULT", f"synchronizer: {self.synchronizer.reason}", fault=True)

    def shutdown(self) -> None:
        self.command(self.generator, P_ref=0.0)  # unload first, then the common sequence
        super().shutdown()
