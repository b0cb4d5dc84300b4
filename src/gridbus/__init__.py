"""gridbus: a brokerless, data-centric common data bus for smart-grid testbeds.

The public API is small::

    from gridbus import Bus
    with Bus() as bus:
        bus.writer("G_1").write(f=60.0, Va=120.0)
        for sample in bus.reader("G").take(timeout=1.0):
            print(sample.id, sample.f, sample.source_time)

See README.md for the tour, ``gridbus --help`` for the command line.
"""

from importlib import metadata as _metadata

from .bus import Bus
from .errors import (
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
from .model import FieldInfo, ObjectType, Registry, TopicType
from .reader import Reader
from .sample import Gone, Sample
from .writer import Writer

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
]
try:  # declared once, in pyproject.toml
    __version__ = _metadata.version("gridbus")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
