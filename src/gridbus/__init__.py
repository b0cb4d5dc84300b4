"""gridbus: a brokerless, data-centric common data bus for smart-grid testbeds.

The public API is small::

    from gridbus import Bus
    with Bus() as bus:
        bus.writer("G_1").write(f=60.0, Va=120.0)
        for sample in bus.reader("G").take(timeout=1.0):
            print(sample.id, sample.f, sample.source_time)

See README.md for the tour, ``gridbus --help`` for the command line.
"""

from typing import TYPE_CHECKING, Any

from .errors import (
    C37118Error,
    CodecError,
    CommandRejected,
    ConfigError,
    DaqConfigError,
    DeviceRejected,
    DeviceTimeout,
    ExperimentError,
    FieldError,
    FrameError,
    GridbusError,
    IdlError,
    LinkError,
    MissingExtra,
    NetError,
    ParamError,
    PortLost,
    ProfileError,
    QosError,
    ScenarioError,
    SinkRefused,
    SinkUnavailable,
    SystemFileError,
    UnknownObjectError,
)

if TYPE_CHECKING:
    from .bus import Bus
    from .model import FieldInfo, ObjectType, Registry, TopicType
    from .reader import Reader
    from .sample import Gone, Sample
    from .writer import Writer

# Imported on first use, so that a board without Cyclone DDS can import gridbus's Zenoh
# transport (gridbus.transport): everything below needs cyclonedds.
_LAZY = {
    "Bus": "bus",
    "Reader": "reader",
    "Writer": "writer",
    "Sample": "sample",
    "Gone": "sample",
    "Registry": "model",
    "ObjectType": "model",
    "TopicType": "model",
    "FieldInfo": "model",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":  # importlib.metadata (and email, zipfile, csv...) cost ~1 MB of RSS
        return _version()
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gridbus' has no attribute {name!r}")


__all__ = [
    "Bus",
    "Reader",
    "Writer",
    "Sample",
    "Gone",
    "Registry",
    "ObjectType",
    "TopicType",
    "FieldInfo",
    # errors: every one gridbus raises, so that callers catch them without importing a subsystem
    "GridbusError",
    "UnknownObjectError",
    "FieldError",
    "IdlError",
    "QosError",
    "ConfigError",
    "MissingExtra",
    "NetError",
    "SystemFileError",
    "ScenarioError",
    "ParamError",
    "ProfileError",
    "DaqConfigError",
    "CommandRejected",
    "ExperimentError",
    "SinkUnavailable",
    "SinkRefused",
    "LinkError",
    "DeviceTimeout",
    "FrameError",
    "DeviceRejected",
    "PortLost",
    "CodecError",
    "C37118Error",
]


def _version() -> str:
    """The installed version, declared once in pyproject.toml; looked up on first use of ``__version__``."""
    from importlib import metadata

    try:
        version = metadata.version("gridbus")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        version = "0+unknown"
    globals()["__version__"] = version
    return version
