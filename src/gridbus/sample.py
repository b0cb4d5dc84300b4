"""What a reader hands out: samples with their two time stamps, and objects gone.

Like the binding's own samples, but carrying the paper's double time stamp:
the source time DDS carries with every sample, and the reception time taken
when gridbus took it, both UTC nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cyclonedds.idl import IdlStruct

from .model import _plain

__all__ = ["Gone", "Sample"]


class Sample:
    """One received sample: the data plus the paper's double time stamp.

    Field values are attributes (``s.f``); ``s.data`` is the IDL struct.
    Times are UTC seconds (float); ``*_ns`` keep the integer nanoseconds.
    """

    __slots__ = ("data", "reception_time_ns", "source_time_ns", "topic")  # a Reader fills all four itself

    def __init__(self, data: IdlStruct, topic: str, source_time_ns: int, reception_time_ns: int) -> None:
        self.data: Any = data  # a topic type: fields vary, ``id`` first
        self.topic = topic
        self.source_time_ns = source_time_ns
        self.reception_time_ns = reception_time_ns

    @property
    def id(self) -> str:
        object_id: str = self.data.id
        return object_id

    @property
    def source_time(self) -> float:
        return self.source_time_ns / 1e9

    @property
    def reception_time(self) -> float:
        return self.reception_time_ns / 1e9

    @property
    def latency(self) -> float:
        """Reception minus source time, in seconds (clocks of two hosts permitting)."""
        return (self.reception_time_ns - self.source_time_ns) / 1e9

    def fields(self) -> dict[str, Any]:
        """The sample's fields as plain values (enums by name, nested structs as dicts)."""
        return {k: _plain(v) for k, v in vars(self.data).items() if k != "sample_info"}

    def __getattr__(self, name: str) -> Any:
        try:
            return getattr(object.__getattribute__(self, "data"), name)
        except AttributeError:
            raise AttributeError(f"{self.topic} sample has no field {name!r}") from None

    def __repr__(self) -> str:
        return f"Sample({self.topic}, {self.data!r}, source_time={self.source_time:.6f})"


@dataclass(frozen=True)
class Gone:
    """An object whose writers are gone: every writer of it left (its process
    exited, or crashed and its DDS lease expired), or one disposed it
    (``Writer.dispose()``)."""

    id: str
    topic: str
    reason: str  # "no writers" or "disposed"
    time: float  # UTC s when this reader learned it
