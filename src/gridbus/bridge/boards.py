"""The bridge's door for boards without DDS (``gridbus bridge --boards``).

Boards connect to the bridge's Zenoh listener with a certificate of the same
CA (see :mod:`gridbus.transport`).  The gateway

- answers ``gridbus/<site>/board/schema/<object>`` with the object type's
  topics and fields (:func:`gridbus.transport.schema.describe_object`);
- turns the JSON field values a board puts under
  ``gridbus/<site>/board/in/<role>/<object>`` into a checked DDS sample of
  that topic, written on the site's domain with the topic's QoS and the
  board's source time stamp (a field out of range is refused and logged:
  the bridge is where a board's data enters the bus);
- admits only the data roles a board sends (:data:`BOARD_ROLES`: never a
  command — any peer with a certificate of the CA could otherwise command
  the site), only topics the site's ``[in]`` policy admits, and at most
  ``max_objects`` distinct objects (each one is a DDS instance kept for the
  bridge's life); every refusal is counted (``board_rejected``), logged and
  published on ``Event_Log`` (``EV_bridge-<site>``);
- hands each command for an object whose board is alive (its liveliness
  token ``gridbus/<site>/board/alive/<object>``) to that board, as JSON.

It uses a participant of its own, apart from the bridge's: the bridge
ignores its own participant's writes, and board data must reach the WAN
like any other sample of the site.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from ..bus import Bus
from ..errors import GridbusError
from ..events import EventLog
from ..sample import Sample
from ..transport.board import board_keys
from ..transport.schema import describe_object
from .policy import COMMAND, MAX_BOARD_OBJECTS, Direction

__all__ = ["BOARD_ROLES", "MAX_BOARD_OBJECTS", "BoardGateway"]

log = logging.getLogger(__name__)

# what the board path sends: the DAQ agent and translators (Measurement, State, Config), EventLog (Log)
BOARD_ROLES = frozenset({"Measurement", "State", "Config", "Log"})


class _Refused(Exception):
    """A board sample the gateway does not write (``kind`` goes to Event_Log)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


class BoardGateway:
    """Boards' samples into the site's domain, commands out to the boards."""

    def __init__(
        self,
        session: Any,
        zenoh: Any,
        site: str,
        bus: Bus,
        policy: Direction | None = None,
        *,
        max_objects: int = MAX_BOARD_OBJECTS,
    ) -> None:
        self.session, self.zenoh, self.bus = session, zenoh, bus
        self.policy = policy if policy is not None else Direction()
        self.max_objects = max_objects
        self.keys = board_keys(site)
        self.alive: set[str] = set()
        self.counts = {"board_in": 0, "board_rejected": 0, "board_commands": 0}
        self._objects: set[str] = set()  # objects written so far (bounded by max_objects)
        self._lock = threading.Lock()
        self.events = EventLog(bus, f"bridge-{site}".replace("_", "-"))
        self._entities = [
            session.declare_queryable(f"{self.keys['schema']}/*", self._on_schema),
            session.declare_subscriber(f"{self.keys['in']}/*/*", self._on_sample),
            session.liveliness().declare_subscriber(f"{self.keys['alive']}/*", self._on_alive, history=True),
        ]
        self.commands = bus.reader("*", "Command", on_sample=self._on_command)

    def close(self) -> None:
        for entity in reversed(self._entities):
            entity.undeclare()
        self.commands.close()

    def _on_schema(self, query: Any) -> None:
        object_id = str(query.key_expr).rsplit("/", 1)[-1]
        try:
            doc = describe_object(self.bus.registry.parse_id(object_id))
        except GridbusError as exc:
            query.reply_err(str(exc).encode())
            return
        query.reply(query.key_expr, json.dumps(doc).encode())

    def _on_sample(self, sample: Any) -> None:
        *_, role, object_id = str(sample.key_expr).split("/")
        try:
            topic = self._admit(role, object_id)
            doc = json.loads(sample.payload.to_bytes())
            data = topic.build(object_id, doc["f"])
            self._claim(object_id)
            self.bus.writer(object_id, role).write(data, timestamp=doc["t"] / 1e9)
            self.counts["board_in"] += 1
        except _Refused as exc:
            self._refuse(exc.kind, object_id, role, str(exc))
        except (GridbusError, ValueError, KeyError, TypeError) as exc:
            self._refuse("BOARD_SAMPLE_REFUSED", object_id, role, str(exc))

    def _admit(self, role: str, object_id: str) -> Any:
        """The topic of a board's sample, if boards may write it (else :class:`_Refused`)."""
        if role not in BOARD_ROLES:
            raise _Refused("BOARD_ROLE_REFUSED", f"boards may send only {', '.join(sorted(BOARD_ROLES))}")
        topic = self.bus.registry.parse_id(object_id).topic(role)
        if topic.name.endswith(COMMAND):
            raise _Refused("BOARD_ROLE_REFUSED", "boards may not send commands")
        if not self.policy.admits(topic.name, object_id):
            raise _Refused("BOARD_DENIED", f"{topic.name}/{object_id} refused by the bridge's [in] policy")
        return topic

    def _claim(self, object_id: str) -> None:
        """Count ``object_id`` among the objects boards write, within ``max_objects``."""
        with self._lock:
            if object_id in self._objects:
                return
            if len(self._objects) >= self.max_objects:
                raise _Refused("BOARD_OBJECTS_CAPPED", f"boards already write {self.max_objects} objects (the cap)")
            self._objects.add(object_id)

    def _refuse(self, kind: str, object_id: str, role: str, reason: str) -> None:
        with self._lock:
            self.counts["board_rejected"] += 1
        self.events.report(kind, f"board {role} sample for {object_id} refused: {reason}", object=object_id)

    def _on_alive(self, sample: Any) -> None:
        object_id = str(sample.key_expr).rsplit("/", 1)[-1]
        with self._lock:
            if sample.kind == self.zenoh.SampleKind.PUT:
                self.alive.add(object_id)
            else:
                self.alive.discard(object_id)

    def _on_command(self, sample: Sample) -> None:
        with self._lock:
            if sample.id not in self.alive:
                return
        fields = {k: v for k, v in sample.fields().items() if k != "id"}  # NaN stays NaN: "unchanged"
        payload = json.dumps({"t": sample.source_time_ns, "f": fields}, default=str)
        self.session.put(f"{self.keys['cmd']}/{sample.id}", payload.encode())
        self.counts["board_commands"] += 1
