"""Every use gridbus makes of cyclonedds-python's internals, in one place.

The binding's public API lacks a few things gridbus needs: a take that
returns samples still serialized (so a reader can drop other objects'
samples by their key bytes before paying for deserialization), deleting an
entity now rather than whenever the garbage collector runs, one ``Domain``
per id per process, the ``InvalidSample`` class discovery meets (kept in
``cyclonedds.internal``), and write batching (Cyclone's ``writer_batching`` QoS,
which has no binding Policy, and ``dds_write_flush``, through the binding's
loaded C library).  Each of those reaches into the binding
(``cyclonedds._clayer``, ``cyclonedds.internal``, ``Entity._ref``,
``__del__``), whose internals change between releases.  The DDS statuses
gridbus reads are here too, typed: the binding's getters are untyped and
return ctypes structures.  So the next cyclonedds upgrade is checked against
this file alone (written for cyclonedds 11.0.1); ``tests/test_bus.py`` fails
if another module starts using the internals.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from typing import Any, ClassVar, Protocol

from cyclonedds._clayer import ddspy_take, ddspy_write_ts  # a C extension without stubs (mypy: ignore_missing_imports)
from cyclonedds.core import DDSException, Entity, InstanceState, SampleState, ViewState
from cyclonedds.domain import Domain
from cyclonedds.idl import IdlStruct
from cyclonedds.idl._type_normalize import get_extended_type_hints
from cyclonedds.idl.types import _type_code_align_size_default_mapping
from cyclonedds.internal import DDS, InvalidSample
from cyclonedds.pub import DataWriter, Publisher
from cyclonedds.qos import Qos
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic

from .errors import ConfigError

__all__ = [
    "ANY_STATE",
    "PRIMITIVES",
    "Domains",
    "InvalidSample",
    "RawInfo",
    "batching_writer",
    "delete",
    "flush",
    "matched_writers",
    "publication_matched",
    "sample_losses",
    "sample_lost",
    "sample_rejected",
    "subscription_matched",
    "take_serialized",
    "type_hints",
    "wire_version",
    "write_serialized",
    "writes_default_version",
]

log = logging.getLogger(__name__)

ANY_STATE = SampleState.Any | ViewState.Any | InstanceState.Any  # take whatever is there
_U64 = 2**64 - 1  # instance handles are unsigned in sample infos


class RawInfo(Protocol):
    """The parts of the binding's sample info that gridbus reads, as ``take_serialized`` gives it."""

    valid_data: bool
    instance_state: int
    source_timestamp: int
    publication_handle: int


# --------------------------------------------------------------------------- taking
def take_serialized(reader: DataReader[Any], limit: int) -> list[tuple[bytes, RawInfo]]:
    """Take up to ``limit`` samples of any state from ``reader``, still serialized.

    Each item is ``(CDR bytes, sample info)`` (see :class:`RawInfo`); an
    invalid sample (a key that was disposed or lost its writers) carries the
    serialized key.  The binding's ``DataReader.take`` deserializes every
    sample, which a reader of one object among many cannot afford.
    """
    got = ddspy_take(reader._ref, ANY_STATE, limit)
    if not got:
        return []
    if isinstance(got, int):  # a DDS return code: an error
        raise DDSException(got, f"taking from {reader.topic.name}")
    samples: list[tuple[bytes, RawInfo]] = got
    return samples


def matched_writers(reader: DataReader[Any]) -> set[int]:
    """Instance handles of the writers ``reader`` is matched with, as sample infos give them.

    The binding returns them signed here and unsigned in sample infos.
    """
    return {handle & _U64 for handle in reader.get_matched_publications()}


def write_serialized(writer: DataWriter[Any], data: bytes, timestamp_ns: int) -> None:
    """Write one sample already serialized (encapsulation header included, padded to 4 bytes).

    What ``DataWriter.write`` does after calling the binding's serializer;
    gridbus's generated codec (:mod:`gridbus.codec`) makes the bytes instead.
    """
    ret = ddspy_write_ts(writer._ref, data, timestamp_ns)
    if ret < 0:
        raise DDSException(ret, f"writing on {writer.topic.name}")


# Write batching: Cyclone's per-writer ``writer_batching`` QoS (which the binding has no Policy
# for) keeps a writer's samples in its outgoing datagram until the datagram is full or
# ``dds_write_flush`` is called, so a burst of small samples costs a few sendmsg calls
# instead of one each.  Both C functions are reached through the binding's loaded library.
# A Cyclone built without them (from source, on a board) still imports gridbus: only asking for
# a batching writer fails, with a clear error.
_DLL: Any = DDS._dll_handle
_qset_writer_batching: Any = getattr(_DLL, "dds_qset_writer_batching", None)
_write_flush: Any = getattr(_DLL, "dds_write_flush", None)
if _qset_writer_batching is not None and _write_flush is not None:
    _qset_writer_batching.argtypes, _qset_writer_batching.restype = [ctypes.c_void_p, ctypes.c_bool], None
    _write_flush.argtypes, _write_flush.restype = [ctypes.c_int32], ctypes.c_int32


class _BatchingDataWriter(DataWriter[Any]):
    """A binding ``DataWriter`` created with Cyclone's ``writer_batching`` QoS set."""

    def _create_writer(self, publisher: int, topic: int, qos: int | None, listener: int | None) -> int:
        if qos is None:  # the binding passes no QoS object when given none; batching needs one
            raise ConfigError("a batching writer needs a QoS")
        _qset_writer_batching(qos, True)
        ref: int = DataWriter._create_writer(self, publisher, topic, qos, listener)
        return ref


def batching_writer(publisher: Publisher, topic: Topic[Any], qos: Qos) -> DataWriter[Any]:
    """A DataWriter on ``topic`` whose samples wait in its outgoing datagram until :func:`flush`.

    Cyclone still sends the datagram by itself once it is full (14720 bytes by
    default, ``General/MaxMessageSize``) and when the writer is deleted.
    """
    if _qset_writer_batching is None or _write_flush is None:
        raise ConfigError("this Cyclone DDS library has no write batching (dds_qset_writer_batching, dds_write_flush)")
    return _BatchingDataWriter(publisher, topic, qos=qos)


def flush(writer: DataWriter[Any]) -> None:
    """Send what ``writer`` has batched now (nothing happens for a writer that does not batch)."""
    ret = _write_flush(writer._ref)
    if ret < 0:
        raise DDSException(ret, f"flushing {writer.topic.name}")


def writes_default_version(writer: DataWriter[Any]) -> bool:
    """Whether ``writer`` serializes with its type's default XCDR version (no QoS forces one).

    A QoS DataRepresentation policy can make the binding write XCDR2 even for
    a @final type; gridbus's codec writes XCDR1 only, so such a writer keeps
    the binding's serializer.
    """
    return getattr(writer, "_use_version_2", None) in (None, False)


# ------------------------------------------------------------------------- types
def type_hints(cls: type) -> dict[str, Any]:
    """The members of an IDL struct as the binding's serializer sees them, in order.

    Primitive members come as ``types.float64`` and the like, strings as
    ``types.bounded_str`` instances (or ``str``), sequences and arrays as
    ``types.sequence``/``types.array`` instances, optional members wrapped in
    the binding's ``WrapOpt``.
    """
    hints: dict[str, Any] = get_extended_type_hints(cls)
    return hints


# a primitive member's type (``types.float64``, ``int``...) -> (struct code, size in bytes)
PRIMITIVES: dict[Any, tuple[str, int]] = {
    kind: (code, size) for kind, (code, _align, size, _default) in _type_code_align_size_default_mapping.items()
}


def wire_version(cls: type[IdlStruct]) -> int:
    """The XCDR version (1 or 2) the binding writes ``cls`` in by default."""
    idl = cls.__idl__
    idl.populate()  # type: ignore[no-untyped-call]
    return int(idl.default_version)


# ------------------------------------------------------------------------- statuses
# The binding's status getters are untyped; these give gridbus typed values.  Each raises
# DDSException if the entity is gone.
def subscription_matched(reader: DataReader[Any]) -> tuple[int, int]:
    """(writers matched now, writers ever matched) of ``reader``."""
    status = reader.get_subscription_matched_status()  # type: ignore[no-untyped-call]
    return int(status.current_count), int(status.total_count)


def publication_matched(writer: DataWriter[Any]) -> int:
    """Readers matched now by ``writer``."""
    return int(writer.get_publication_matched_status().current_count)  # type: ignore[no-untyped-call]


def sample_rejected(reader: DataReader[Any]) -> tuple[int, int]:
    """(samples ``reader`` refused so far at its resource limits, the last reason's code)."""
    status = reader.get_sample_rejected_status()  # type: ignore[no-untyped-call]
    return int(status.total_count), int(status.last_reason)


def sample_lost(reader: DataReader[Any]) -> int:
    """Samples DDS knows were lost before reaching ``reader``, so far."""
    return int(reader.get_sample_lost_status().total_count)  # type: ignore[no-untyped-call]


def sample_losses(reader: DataReader[Any]) -> tuple[int, int]:
    """(samples lost, samples rejected) so far by one DataReader, from its DDS statuses."""
    return sample_lost(reader), sample_rejected(reader)[0]


# ------------------------------------------------------------------------- entities
def delete(entity: Entity) -> None:
    """Delete a DDS entity (and its children) now: a participant leaves the domain at once.

    The binding only deletes in ``__del__``, i.e. when the garbage collector
    gets to it; an entity already deleted is left alone.
    """
    try:
        entity.__del__()
    except Exception:  # already gone
        log.debug("deleting a DDS entity that was already gone")


class Domains:
    """One Cyclone ``Domain`` per id per process, shared by the Buses on it.

    Cyclone applies a configuration when a domain is created; a second
    ``Domain`` object for the same id would be refused, and the configuration
    of one already open cannot change.  So the first Bus on an id creates it
    (when gridbus supplies the configuration) and the last one releases it.
    """

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _open: ClassVar[dict[int, tuple[Domain | None, str | None, int]]] = {}  # id -> (domain, config, users)

    @classmethod
    def acquire(cls, domain_id: int, config: str | None) -> None:
        """Join ``domain_id`` with Cyclone configuration ``config`` (None: Cyclone's own choice)."""
        with cls._lock:
            domain, used, count = cls._open.get(domain_id, (None, None, 0))
            if count and used != config:
                raise ConfigError(
                    f"domain {domain_id} is already open in this process with another Cyclone configuration"
                )
            if not count and config is not None:
                try:
                    domain = Domain(domain_id, config)
                except DDSException as exc:
                    raise ConfigError(f"Cyclone DDS rejected the configuration for domain {domain_id}: {exc}") from None
            cls._open[domain_id] = (domain, config, count + 1)

    @classmethod
    def release(cls, domain_id: int) -> None:
        """One user of ``domain_id`` left; the last one drops the ``Domain``."""
        with cls._lock:
            domain, used, count = cls._open[domain_id]
            if count <= 1:
                del cls._open[domain_id]
            else:
                cls._open[domain_id] = (domain, used, count - 1)
