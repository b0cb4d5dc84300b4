"""What a reader knows about each object's writers: alive, gone, silent past a deadline.

DDS tells a reader this through instance states and statuses, but not
reliably enough for a lab: in Cyclone 11.0.1 a missed deadline makes an
instance forget its writer (see :class:`Deadlines`), and a crashed writer
only leaves when its lease expires.  So a :class:`~gridbus.reader.Reader`
keeps its own account here, fed by its take path, in bounded memory.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from cyclonedds.core import InstanceState

from .sample import Gone

__all__ = ["Deadlines", "Presence"]

log = logging.getLogger("gridbus.bus")  # the logger README names for reader events

_DISPOSED = InstanceState.NotAliveDisposed


class Deadlines:
    """Requested-deadline accounting, done by gridbus rather than by Cyclone.

    Cyclone 11.0.1 forgets an instance's writer when the reader's deadline is
    missed (dds_rhc_default.c, deadline_missed_cb clears wr_iid_islive): the
    instance then never becomes not-alive and is never reclaimed, so a reader
    could neither learn that an object is gone nor free what a flood left.
    gridbus readers therefore give DDS no deadline and count misses here, the
    DDS way: one per period an object stays silent, from its last sample.
    """

    def __init__(self, periods: dict[str, float]) -> None:
        self.periods = periods  # topic -> deadline period (s)
        self.due: dict[str, tuple[str, float]] = {}  # object id -> (topic, next deadline)
        self.missed: dict[str, int] = {}  # topic -> misses so far

    def seen(self, object_id: str, topic: str, now: float) -> None:
        period = self.periods.get(topic)
        if period is None:
            return
        entry = self.due.get(object_id)
        if entry is not None and now > entry[1]:
            self._count(topic, now - entry[1])
        self.due[object_id] = (topic, now + period)

    def forget(self, object_id: str, now: float) -> None:
        """Stop watching an object that is gone, counting its silence until ``now``."""
        entry = self.due.pop(object_id, None)
        if entry is not None and now > entry[1]:
            self._count(entry[0], now - entry[1])

    def settle(self, now: float) -> None:
        """Count the misses of objects silent until ``now``."""
        for object_id, (topic, due) in list(self.due.items()):
            if now > due:
                late = self._count(topic, now - due)
                self.due[object_id] = (topic, due + late * self.periods[topic])

    def _count(self, topic: str, overdue: float) -> int:
        late = int(overdue // self.periods[topic]) + 1
        self.missed[topic] = self.missed.get(topic, 0) + late
        return late


class Presence:
    """The objects a reader has seen with live writers, and those that lost them.

    ``writers_of`` is read directly by the reader's take loop (the fast path):
    alive object id -> (topic, instance handles of its writers).
    """

    GONE_KEPT = 4096  # bounds of the bookkeeping below

    def __init__(self, deadlines: Deadlines | None, label: Callable[[], str]) -> None:
        self.deadlines = deadlines
        self.writers_of: dict[str, tuple[str, set[int]]] = {}
        self.on_gone: Callable[[Gone], Any] | None = None
        self._label = label  # names the reader in log messages
        self._recently_gone: OrderedDict[str, None] = OrderedDict()
        self._gone_events: deque[Gone] = deque(maxlen=self.GONE_KEPT)

    def now_alive(self, object_id: str, topic: str, writer: int) -> None:
        self.writers_of[object_id] = (topic, {writer})
        self._recently_gone.pop(object_id, None)

    def now_gone(self, object_id: str, topic: str, state: int) -> None:
        """Record that ``object_id`` lost its writers, once per loss."""
        if self.writers_of.pop(object_id, None) is None and object_id in self._recently_gone:
            return  # already reported
        self._recently_gone[object_id] = None
        if len(self._recently_gone) > self.GONE_KEPT:
            self._recently_gone.popitem(last=False)
        if self.deadlines is not None:
            self.deadlines.forget(object_id, time.monotonic())
        event = Gone(object_id, topic, "disposed" if state == _DISPOSED else "no writers", time.time())
        log.debug("%s gone on %s (%s)", object_id, topic, event.reason)
        self._gone_events.append(event)
        if self.on_gone is not None:
            try:
                self.on_gone(event)
            except Exception:
                log.exception("on_gone callback of the %s reader raised on %s", self._label(), object_id)

    def forget_departed_writers(self, present: set[int]) -> None:
        """Objects none of whose writers is in ``present`` (the matched writers) are gone.

        Cyclone marks such instances not-alive itself, but not always (see
        :class:`Deadlines`), and a crashed writer only leaves when its lease expires.
        """
        for object_id, (topic, writers) in list(self.writers_of.items()):
            writers &= present
            if not writers:
                self.now_gone(object_id, topic, InstanceState.NotAliveNoWriters)

    def drain_gone(self) -> list[Gone]:
        """The gone events since the last call, oldest first."""
        events = list(self._gone_events)
        self._gone_events.clear()
        return events
