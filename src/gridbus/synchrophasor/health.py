"""A gateway's health on ``Link_State`` (the same topic the serial translators use).

Fields as for a serial link: ``connected``, ``errors`` (malformed frames, refused
commands), ``last_error``, ``reconnects`` (client: connections made again after a drop;
server: PDC connections accepted), ``poll_rate`` (data frames per second).  ``port`` is
``tcp://HOST:PORT`` and ``profile`` says which side.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..bus import Bus

log = logging.getLogger(__name__)
TEXT_BOUND = 127


def link_id_for(host: str, port: int) -> str:
    """``LINK_<host>-<port>``: an id the data model accepts (no ``_`` in the index)."""
    host = "".join(c if c.isalnum() or c in ".-" else "-" for c in host).strip(".-") or "any"
    return f"LINK_{host}-{port}"


class LinkHealth:
    """Counts a gateway link's events and publishes them at most every ``period`` seconds."""

    def __init__(self, bus: Bus | None, link_id: str, port: str, profile: str, period: float = 1.0) -> None:
        self.link_id = link_id
        self._writer = bus.writer(link_id, "State") if bus is not None else None
        self.period = period
        self._lock = threading.Lock()
        self.fields: dict[str, Any] = {
            "object_id": "",
            "port": port[-TEXT_BOUND:],
            "profile": profile[:32],
            "connected": False,
            "last_error": "",
            "errors": 0,
            "reconnects": 0,
            "poll_rate": 0.0,
        }
        self._frames = 0
        self._since = time.monotonic()
        self._published = 0.0

    def error(self, reason: object) -> None:
        """Count one error and keep its text; never raises."""
        text = str(reason).encode()[:TEXT_BOUND].decode(errors="ignore")
        log.warning("%s: %s", self.link_id, text)
        with self._lock:
            self.fields["errors"] += 1
            self.fields["last_error"] = text
        self.publish(force=True)

    def frame(self, count: int = 1) -> None:
        with self._lock:
            self._frames += count
        self.publish()

    def set(self, **fields: Any) -> None:
        with self._lock:
            self.fields.update(fields)
        self.publish(force=True)

    def publish(self, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not force and now - self._published < self.period:
                return
            if now - self._since >= self.period:
                self.fields["poll_rate"] = self._frames / (now - self._since)
                self._frames, self._since = 0, now
            self._published = now
            fields = dict(self.fields)
        if self._writer is not None:
            try:
                self._writer.write(**fields)
            except Exception as exc:  # reporting must not stop the gateway
                log.error("%s: cannot publish health: %s", self.link_id, exc)
