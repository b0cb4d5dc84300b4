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
from ..sample import Sample
from ..transport.board import board_keys
from ..transport.schema import describe_object

__all__ = ["BoardGateway"]

log = logging.getLogger(__name__)


class BoardGateway:
    """Boards' samples into the site's domain, commands out to the boards."""

    def __init__(self, session: Any, zenoh: Any, site: str, bus: Bus) -> None:
        self.session, self.zenoh, self.bus = session, zenoh, bus
        self.keys = board_keys(site)
        self.alive: set[str] = set()
        self.counts = {"board_in": 0, "board_rejected": 0, "board_commands": 0}
        self._lock = threading.Lock()
        self._entities = [
            session.declare_queryable(f"{self.keys['schema']}/*", self._on_schema),
            session.declare_subscriber(f"{self.keys['in']}/*/*", self._on_sample),
            session.liveliness().declare_subscriber(f"{self.keys['alive']}/*", self._on_alive, history=True),
        ]
        self.commands = bus.reader("*", "Command", on_sample=self._on_command)

    def close(self) -> None:
        for entity in reversed(self._entities):
            entity.undeclare()

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
            doc = json.loads(sample.payload.to_bytes())
            topic = self.bus.registry.parse_id(object_id).topic(role)
            data = topic.build(object_id, doc["f"])
            self.bus.writer(object_id, role).write(data, timestamp=doc["t"] / 1e9)
            self.counts["board_in"] += 1
        except (GridbusError, ValueError, KeyError, TypeError) as exc:
            self.counts["board_rejected"] += 1
            log.warning("board sample for %s (%s) refused: %s", object_id, role, exc)

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
