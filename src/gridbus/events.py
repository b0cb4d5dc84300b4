"""Events a service reports on the bus (``Event_Log``): rejected commands, a
collapsed feeder, a link gone down.

A service that refuses a command must say so where operators and recorders
look, not only in its own log: ``EventLog`` publishes one ``Event_Log`` sample
per event, keyed by the reporting service (``EV_testbed``), reliable and kept
(the ``log`` QoS profile), and logs it with :mod:`logging` as well::

    events = EventLog(bus, "testbed")
    events.rejected("G_1", "Generator_Command", "f_ref", float("inf"), "not finite")
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .bus import Bus

log = logging.getLogger("gridbus.events")

_LEVELS = {"INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}
_BOUND = 32  # string<32> fields of Event_Log


def _clip(text: str, bound: int = _BOUND) -> str:
    """Fit ``text`` into a bounded IDL string (bytes, not characters)."""
    data = text.encode()
    if len(data) <= bound:
        return text
    return data[:bound].decode(errors="ignore")


class EventLog:
    """Publishes the events of one service as ``EV_<source>`` on ``Event_Log``."""

    def __init__(self, bus: Bus, source: str) -> None:
        self.id = _clip(source if source.startswith("EV_") else f"EV_{source}")
        self._writer = bus.writer(self.id, "Log")
        self.count = 0

    def report(
        self,
        kind: str,
        detail: str,
        *,
        severity: str = "WARNING",
        object: str = "",
        topic: str = "",
        field: str = "",
        value: float = math.nan,
    ) -> None:
        """Publish one event and log it (never raises: reporting must not stop a service)."""
        log.log(_LEVELS.get(severity, logging.WARNING), "%s: %s %s", self.id, kind, detail)
        self.count += 1
        try:
            self._writer.write(
                severity=severity,
                kind=_clip(kind),
                object_id=_clip(object),
                topic=_clip(topic),
                field=_clip(field),
                value=float(value),
                detail=_clip(detail, 256),
            )
        except Exception:  # a closed bus at shutdown, say
            log.exception("%s: could not publish event %s", self.id, kind)

    def rejected(self, object_id: str, topic: str, field: str, value: float, reason: str) -> None:
        """A command refused: the receiver's checks failed, the last good setting stays."""
        self.report(
            "COMMAND_REJECTED",
            f"{object_id}.{field} = {value!r} rejected: {reason}",
            object=object_id,
            topic=topic,
            field=field,
            value=value if isinstance(value, (int, float)) else math.nan,
        )
