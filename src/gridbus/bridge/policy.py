"""What crosses the bridge: allow/deny lists per direction and per-topic rate caps.

A bridge has two directions: ``out`` (this site's DDS → the WAN) and ``in``
(the WAN → this site's DDS).  Each has an allow list and a deny list of
shell-style patterns matched against the topic name (``Breaker_Command``) and
against ``topic/object`` (``Breaker_Command/CB_1``); **deny wins**, and a
sample that matches no allow pattern stays home.  The default is
``allow = ["*"]``, ``deny = []``, but commands are the dangerous kind: a
``*_Command`` topic crosses only where an allow pattern *names commands*
(contains ``_Command``: ``Breaker_Command``, ``*_Command``,
``Breaker_Command/CB_1``), so ``*`` alone lets no command through.

A rate cap (like zenoh-bridge-dds ``--max-frequency``) limits how often one
object of a topic goes out.  It coalesces rather than drops: within the
interval the newest sample waits and goes when the interval ends, so the far
site always ends on the last value (a capped state topic never freezes on a
stale value).  Command topics cannot be capped: a command is never dropped.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from ..errors import ConfigError

__all__ = ["COMMAND", "MAX_BOARD_OBJECTS", "Direction", "Policy", "RateCaps"]

COMMAND = "_Command"  # topic names of commands end so; allow patterns naming them contain it
MAX_BOARD_OBJECTS = 1024  # distinct objects boards may write (each is a DDS instance the bridge keeps)


@dataclass
class Direction:
    """Allow and deny patterns of one direction (deny wins; commands need an allow that names them)."""

    allow: list[str] = field(default_factory=lambda: ["*"])
    deny: list[str] = field(default_factory=list)

    def _allow(self, topic: str) -> list[str]:
        allow = self.allow
        return [p for p in allow if COMMAND in p] if topic.endswith(COMMAND) else allow

    def admits(self, topic: str, object_id: str = "") -> bool:
        names = (topic, f"{topic}/{object_id}") if object_id else (topic,)
        if any(fnmatch.fnmatchcase(n, p) for p in self.deny for n in names):
            return False
        return any(fnmatch.fnmatchcase(n, p) for p in self._allow(topic) for n in names)

    def admits_topic(self, topic: str) -> bool:
        """Whether some object of ``topic`` may cross (a deny of the whole topic stops all)."""
        if any(fnmatch.fnmatchcase(topic, p) for p in self.deny):
            return False
        return any(
            fnmatch.fnmatchcase(topic, p.split("/", 1)[0]) if "/" in p else fnmatch.fnmatchcase(topic, p)
            for p in self._allow(topic)
        )


@dataclass
class RateCaps:
    """Maximum publications per second per object, by topic pattern (first match wins)."""

    caps: list[tuple[str, float]] = field(default_factory=list)

    def add(self, pattern: str, hz: float, where: str) -> None:
        if not hz > 0 or hz == float("inf"):
            raise ConfigError(f"{where}: rate cap of {pattern!r} must be a finite number > 0 (Hz), got {hz!r}")
        if pattern.endswith(COMMAND):
            raise ConfigError(
                f"{where}: {pattern!r}: command topics cannot be rate-capped (a command is never dropped)"
            )
        self.caps.append((pattern, float(hz)))

    def interval(self, topic: str) -> float:
        """Seconds between two publications of one object of ``topic`` (0: no cap)."""
        if topic.endswith(COMMAND):
            return 0.0
        for pattern, hz in self.caps:
            if fnmatch.fnmatchcase(topic, pattern):
                return 1.0 / hz
        return 0.0


@dataclass
class Policy:
    """The whole filter of one bridge."""

    out: Direction = field(default_factory=Direction)
    into: Direction = field(default_factory=Direction)
    rates: RateCaps = field(default_factory=RateCaps)
