"""The plant's devices, one module per kind, and the registry of kinds by object-id prefix.

:data:`DEVICE_KINDS` is the one place a kind is known: the plant builds its
devices from it (in this order, which is also the order they step in within
a stage), dispatches commands through it, and the system-file loader reads
each kind's parameters (``[[section]]``) through it.  Adding a kind is a new
module here and a line below.
"""

from __future__ import annotations

from ...errors import CommandRejected, ParamError
from ...phasor import wrap
from .base import LIVE, RATED_RPM, AnyDevice, Band, Device, Stage, need, need_ref, one_of, unit
from .breaker import BreakerDevice, BreakerParams, BreakerState
from .generator import GeneratorDevice, GeneratorParams, GeneratorState
from .load import LoadDevice, LoadParams, LoadState
from .meter import MeterDevice, MeterParams, MeterState
from .microgrid import MicrogridDevice, MicrogridParams, MicrogridState
from .pmu import PMUDevice, PMUParams, PMUState
from .pv import PVDevice, PVParams, PVState
from .storage import StorageDevice, StorageParams, StorageState
from .wind import WindDevice, WindParams, WindState

DEVICE_KINDS: dict[str, type[AnyDevice]] = {
    kind.prefix: kind
    for kind in (
        GeneratorDevice,
        BreakerDevice,
        LoadDevice,
        MicrogridDevice,
        StorageDevice,
        PVDevice,
        WindDevice,
        MeterDevice,
        PMUDevice,
    )
}

__all__ = [
    "DEVICE_KINDS",
    "LIVE",
    "RATED_RPM",
    "AnyDevice",
    "Band",
    "BreakerDevice",
    "BreakerParams",
    "BreakerState",
    "CommandRejected",
    "Device",
    "GeneratorDevice",
    "GeneratorParams",
    "GeneratorState",
    "LoadDevice",
    "LoadParams",
    "LoadState",
    "MeterDevice",
    "MeterParams",
    "MeterState",
    "MicrogridDevice",
    "MicrogridParams",
    "MicrogridState",
    "PMUDevice",
    "PMUParams",
    "PMUState",
    "PVDevice",
    "PVParams",
    "PVState",
    "ParamError",
    "Stage",
    "StorageDevice",
    "StorageParams",
    "StorageState",
    "WindDevice",
    "WindParams",
    "WindState",
    "need",
    "need_ref",
    "one_of",
    "unit",
    "wrap",
]
