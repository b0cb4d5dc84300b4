"""Writing one object's samples: the gridbus side of the binding's ``DataWriter``.

A :class:`Writer` is a view of one object (``G_1``) on a DDS writer that the
Bus shares among all objects of a topic: writers are cheap to ask for, and
each stamps what it writes with the source time.  Samples are serialized by
the topic type's generated codec (:mod:`gridbus.codec`) and handed to the
binding's raw write path, unless the type (or ``GRIDBUS_CODEC=binding``, or a
QoS forcing XCDR2) keeps the binding's own serializer.

A *batching* writer (``bus.writer(..., batch=True)``) lets Cyclone pack its
samples into one datagram until :meth:`Writer.flush`: a burst of small
samples then costs a few system calls instead of one each.  Its samples wait
until the flush (or a full datagram), so batching is for streams written in
bursts, never the default.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cyclonedds.core import DDSException
from cyclonedds.idl import IdlStruct
from cyclonedds.pub import DataWriter
from cyclonedds.qos import Policy

from . import _cyclone
from .codec import codec_for
from .errors import GridbusError, UnknownObjectError
from .model import TopicType

if TYPE_CHECKING:
    from .bus import Bus

__all__ = ["Writer"]

_MATCH_SETTLE = 0.05  # s for a remote reader to match a new writer


class Writer:
    """Writes one object's samples on one topic (``G_1`` on Generator_Measurement).

    ``codec_path`` says how samples are serialized: ``"fast"`` (the generated codec) or
    ``"binding"`` (the type is not covered, ``GRIDBUS_CODEC=binding``, or a QoS forces XCDR2).
    ``batch``: samples wait for :meth:`flush` (or a full datagram) before they are sent.
    """

    def __init__(
        self,
        bus: Bus,
        topic: TopicType,
        object_id: str,
        dds_writer: DataWriter[Any],
        born: float = 0.0,
        batch: bool = False,
    ) -> None:
        self.bus, self.topic, self.object_id, self.batch = bus, topic, object_id, batch
        self._dds = dds_writer
        self._born = born  # time.monotonic() at DDS writer creation
        self._best_effort = any(isinstance(p, type(Policy.Reliability.BestEffort)) for p in dds_writer.get_qos())
        codec = codec_for(topic.cls)
        self.codec_path = codec.path if _cyclone.writes_default_version(dds_writer) else "binding"
        self._encode = codec.encode if self.codec_path == "fast" else None
        self._cls = topic.cls

    def build(self, **fields: Any) -> IdlStruct:
        """A checked sample of this object (missing fields take their defaults)."""
        return self.topic.build(self.object_id, fields)

    def write(self, sample: IdlStruct | None = None, /, *, timestamp: float | None = None, **fields: Any) -> IdlStruct:
        """Publish ``sample``, or one built from ``fields``; stamp it with the source time.

        ``timestamp`` (UTC seconds) overrides the clock, e.g. for replayed data.
        """
        if sample is None:
            sample = self.topic.build(self.object_id, fields)
        elif fields:
            raise TypeError("give either a sample or fields, not both")
        elif not isinstance(sample, self._cls):
            raise GridbusError(
                f"{self.object_id}: expected a {self.topic.type_name} sample, got {type(sample).__name__}"
            )
        elif (given := getattr(sample, "id", None)) != self.object_id:
            raise UnknownObjectError(f"sample id {given!r} does not match writer of {self.object_id}")
        stamp = time.time_ns() if timestamp is None else int(timestamp * 1e9)
        if self._encode is not None:
            _cyclone.write_serialized(self._dds, self._encode(sample, True), stamp)
        else:
            self._dds.write(sample, timestamp=stamp)
        return sample

    def write_many(self, samples: Iterable[IdlStruct], /, *, timestamp: float | None = None) -> int:
        """Publish every sample of ``samples`` in order, then :meth:`flush`; how many were written.

        Each sample is checked and stamped as by :meth:`write`.  On a batching
        writer the burst leaves in as few datagrams as fit it.
        """
        count = 0
        try:
            for sample in samples:
                self.write(sample, timestamp=timestamp)
                count += 1
        except BaseException:
            # the samples written before the bad one still go; the error to see is the first one
            with contextlib.suppress(DDSException):
                self.flush()
            raise
        self.flush()
        return count

    def flush(self) -> None:
        """Send what this writer has batched now (a no-op unless it batches).

        The DDS writer is shared by the topic's objects, so this sends every
        object's batched samples of the topic, in the order they were written.
        """
        if self.batch:
            _cyclone.flush(self._dds)

    def dispose(self) -> None:
        """Tell readers this object is gone (e.g. a device removed from the testbed).

        The instance is also unregistered, so that readers (and this writer)
        can reclaim it; writing again brings the object back.
        """
        key = self.topic.build(self.object_id)
        self._dds.dispose(key)
        self._dds.unregister_instance(key)
        self.flush()  # on a batching writer too, the news leaves now

    @property
    def matched(self) -> int:
        """Number of readers currently matched (for waiting until someone listens)."""
        return _cyclone.publication_matched(self._dds)

    def wait_for_readers(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until ``count`` readers match; False after ``timeout`` s.

        A remote reader matches this writer a moment after this writer matches
        it, and drops best-effort data sent in between: so a new best-effort
        writer, or one that had to wait, pauses briefly before returning.
        (Reliable data sent in between is repaired by the protocol.)
        """
        deadline = time.monotonic() + timeout
        waited = False
        while self.matched < count:
            if time.monotonic() > deadline:
                return False
            waited = True
            time.sleep(0.005)
        if self._best_effort and (waited or time.monotonic() - self._born < _MATCH_SETTLE):
            time.sleep(_MATCH_SETTLE)
        return True
