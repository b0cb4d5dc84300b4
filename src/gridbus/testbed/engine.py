"""What the testbed service needs of a simulator: the engine interface.

:class:`gridbus.testbed.service.TestbedService` puts an engine on the bus: it
steps it in (scaled) real time, publishes its measurements, states and events,
and hands it the commands it receives.  The lab plant
(:class:`gridbus.testbed.plant.Plant`, quasi-static, one value per cycle) is
one engine; a dynamic power-system simulator is the next, and only has to
offer these calls.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

Event = tuple[str, Any]
"""``("state", object_id)``, ``("protection", record)``, ``("collapse" | "restored", record)``."""


@runtime_checkable
class Engine(Protocol):
    """A simulator the testbed service can run.

    ``t`` is the engine's simulated time (s); it only advances through
    :meth:`step`.  Commands arrive with enum values as names and NaN or None
    for "unchanged"; an engine refuses a command it cannot obey whole, with
    :class:`gridbus.testbed.devices.CommandRejected` (beyond a rating) or
    :class:`gridbus.errors.UnknownObjectError` (not one of its objects).
    """

    t: float

    def start(self) -> None:
        """Get ready to step (the service calls it once, before the first states go out)."""

    def step(self, dt: float | None = None) -> None:
        """Advance simulated time by ``dt`` (default: the engine's own step)."""

    def measurements(self) -> dict[str, dict[str, float]]:
        """True values of every measured object's Measurement topic, by object id."""

    def state(self, object_id: str) -> dict[str, Any]:
        """The State-topic fields of ``object_id`` (one of :meth:`stateful`)."""

    def stateful(self) -> list[str]:
        """The objects that publish a State topic."""

    def command(self, object_id: str, fields: dict[str, Any]) -> None:
        """Obey one command, or refuse it whole."""

    def take_events(self) -> list[Event]:
        """The events raised since the last call (state changes, protection, collapse)."""
