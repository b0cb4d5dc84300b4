"""Commands across the WAN: none lost, none stale, none applied twice.

A command is the one sample a remote site must not miss, and must not obey
late.  So the bridge does not fire-and-forget it: the sending bridge keeps
each command in an :class:`Outbox` and sends it as a Zenoh *query*; the
receiving bridge writes it into its DDS domain and answers ``ok`` (or
``denied`` by its policy, or ``expired``).  Without an answer — the WAN link
is down, the far bridge restarting — the sender tries again after ``retry``
seconds, then backing off to 1, 2 and 4 s (an answer to any try, even a late
one, settles the command: a slow WAN is not flooded with retries), until the
command's **lifespan** (from the command QoS
profile, 2 s by default) runs out; then it is dropped and counted, exactly
as DDS would drop it.  The receiver remembers recent message ids
(:class:`Inbox`), so a retry whose first answer was lost is acknowledged but
not written twice.  The lifespan is reckoned from the DDS source time stamp,
so the sites' clocks must agree (NTP or PTP) to well within it.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Inbox", "Outbox", "Pending"]

_FOREVER = 60 * 10**9  # ns a command without lifespan waits for the far site at most
_MAX_BACKOFF = 4.0  # s between two tries of one command, at most
ANSWER_WAIT = 10.0  # s an answer to one try still counts (a late answer settles the command too)


@dataclass
class Pending:
    """A command waiting for its acknowledgement."""

    seq: int
    topic: str
    object_id: str
    raw: bytes
    timestamp: int  # DDS source time, ns
    expires: int  # wall clock ns
    next_try: float = 0.0  # time.monotonic()
    tries: int = 0


class Outbox:
    """Commands leaving this site until the far bridge acknowledges them."""

    def __init__(self, retry: float = 0.5) -> None:
        self.session = uuid.uuid4().hex[:12]
        self.retry = retry
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: dict[int, Pending] = {}
        self.delivered = 0
        self.denied = 0
        self.expired = 0

    def add(self, topic: str, object_id: str, raw: bytes, timestamp: int, lifespan: int | None) -> Pending:
        """Keep a command until acknowledged; the caller sends it now (its first try)."""
        expires = timestamp + (lifespan or _FOREVER)
        entry = Pending(next(self._seq), topic, object_id, raw, timestamp, expires, time.monotonic() + self.retry, 1)
        with self._lock:
            self._pending[entry.seq] = entry
        return entry

    def due(self) -> list[Pending]:
        """Commands to (re)send now; expired ones are dropped and counted."""
        now, wall = time.monotonic(), time.time_ns()
        out = []
        with self._lock:
            for seq, entry in list(self._pending.items()):
                if wall > entry.expires:
                    del self._pending[seq]
                    self.expired += 1
                elif entry.next_try <= now:
                    # back off (0.5, 1, 2, 4 s): over a slow or backlogged link, retries must not pile up
                    entry.next_try = now + min(self.retry * 2 ** min(entry.tries, 3), _MAX_BACKOFF)
                    entry.tries += 1
                    out.append(entry)
        return out

    def settle(self, seq: int, verdict: str) -> None:
        """The far bridge answered for command ``seq``."""
        with self._lock:
            if self._pending.pop(seq, None) is None:
                return
            if verdict == "ok":
                self.delivered += 1
            elif verdict == "denied":
                self.denied += 1
            else:
                self.expired += 1

    def retry_now(self) -> None:
        """The far site (re)appeared: send what waits without waiting for the retry timer."""
        with self._lock:
            for entry in self._pending.values():
                entry.next_try = 0.0
                entry.tries = 0

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._pending)


class Inbox:
    """Recent command ids seen by the receiving bridge (a bounded memory)."""

    def __init__(self, size: int = 4096) -> None:
        self._seen: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def receive(self, message: str, deliver: Callable[[], str]) -> str:
        """``deliver()``'s verdict, called once per message id; repeats get the first verdict."""
        with self._lock:
            if message in self._seen:
                self._seen.move_to_end(message)
                return self._seen[message]
            verdict = deliver()
            self._seen[message] = verdict
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)
            return verdict
