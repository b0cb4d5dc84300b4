"""One topic's DDS reader as a gridbus Reader sees it: a source of samples.

A :class:`~gridbus.reader.Reader` of several object types reads several
topics, one DDS reader each.  A :class:`Source` holds that DDS reader with
what the Reader needs beside it: how to recognize the wanted object by its
key bytes (:class:`KeyMatch`), the resource limits DDS enforces, the deadline
gridbus checks, and what the DDS statuses said last time.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cyclonedds.core import ReadCondition
from cyclonedds.qos import Policy
from cyclonedds.sub import DataReader

from . import _cyclone
from .model import TopicType

__all__ = ["KeyMatch", "Source", "key_id"]

log = logging.getLogger("gridbus.bus")  # the logger README names for reader warnings

_WARN_EVERY = 10.0  # s between resource-limit warnings per topic
_REJECT_REASONS = {1: "max_instances", 2: "max_samples", 3: "max_samples_per_instance"}


class KeyMatch:
    """Recognizes one object's samples by their key bytes, before deserializing.

    gridbus topic types are @final and start with ``@key string id``, so a
    serialized sample (and the key of an invalid sample) begins: 4-byte
    encapsulation header, uint32 length, the id bytes.  The key is compared on
    every sample, never remembered as an instance handle: Cyclone gives a key a
    new handle once every writer has unregistered it (a publisher process
    exits), and a cached handle made a one-object reader deaf to the object's
    next writer.  Both byte orders are recognized: writers of other DDS
    implementations may send big-endian CDR.  (A Python content filter on the
    topic would run on Cyclone's receive thread and deadlock against the GIL.)
    """

    def __init__(self, object_id: str) -> None:
        want = object_id.encode() + b"\x00"
        self._le = struct.pack("<I", len(want)) + want
        self._be = struct.pack(">I", len(want)) + want

    def __call__(self, raw: bytes) -> bool:
        return raw.startswith(self._le if raw[1] & 1 else self._be, 4)  # odd id = little endian


def key_id(raw: bytes) -> str:
    """The object id at the head of a serialized sample or key (either byte order); "" if none."""
    if len(raw) < 9:
        return ""
    size: int = struct.unpack_from("<I" if raw[1] & 1 else ">I", raw, 4)[0]
    return raw[8 : 7 + size].decode("utf-8", "replace")


@dataclass
class Source:
    """One DDS reader feeding a gridbus Reader (one per topic)."""

    topic: TopicType
    dds: DataReader[Any]
    condition: ReadCondition  # kept alive: a wait set wakes on it
    deserialize: Callable[[bytes], Any]  # a topic type's: an IdlStruct with an id
    match: KeyMatch | None = None  # set for a reader of one object
    limits: Policy.ResourceLimits | None = None
    rejected_seen: int = 0
    matched_seen: tuple[int, int] = (0, 0)  # (current, total) matched writers
    deadline: float | None = None  # requested deadline (s), checked by gridbus
    warn_after: float = 0.0  # time.monotonic() of the next allowed warning

    def writers_left(self) -> bool:
        """Whether a writer unmatched since the last call (one may have joined meanwhile)."""
        seen = _cyclone.subscription_matched(self.dds)
        joined = seen[1] - self.matched_seen[1]
        left = seen[0] < self.matched_seen[0] + joined
        self.matched_seen = seen
        return left

    def matched_writers(self) -> set[int]:
        """Handles of the writers matched now, comparable with ``publication_handle``."""
        return _cyclone.matched_writers(self.dds)

    def warn_rejections(self, label: Callable[[], str]) -> None:
        """Say (at most every 10 s per topic) that DDS refused samples at this reader's limits."""
        if time.monotonic() < self.warn_after:
            return
        total, reason = _cyclone.sample_rejected(self.dds)
        if total > self.rejected_seen:
            limit = _REJECT_REASONS.get(reason, "a resource limit")
            value = getattr(self.limits, limit, "?")
            log.warning(
                "reader of %s (%s): DDS refused %d sample(s), %s=%s reached; "
                "samples of the objects it holds still arrive",
                label(),
                self.topic.name,
                total - self.rejected_seen,
                limit,
                value,
            )
            self.rejected_seen = total
            self.warn_after = time.monotonic() + _WARN_EVERY
