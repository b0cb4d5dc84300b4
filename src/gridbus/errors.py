"""Exceptions raised by gridbus, all in one module.

Every error names what was wrong (object id, field, file and line) so that a
lab user can fix the input without reading gridbus's source.  They live here,
not beside the code that raises them, so that catching one never means
importing a subsystem (the simulator, a database driver, the serial stack),
and so that ``gridbus.__all__`` can export every one of them.
"""

from __future__ import annotations

from typing import Any


class GridbusError(Exception):
    """Base class of every error gridbus raises on bad input or state."""


# -- the data model and the bus ------------------------------------------------------------
class UnknownObjectError(GridbusError, KeyError):
    """An object id or type prefix that no loaded IDL module declares."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class FieldError(GridbusError, ValueError):
    """An unknown field, a value of the wrong type or out of its range."""


class IdlError(GridbusError):
    """A malformed IDL file or one that breaks gridbus's conventions."""


class QosError(GridbusError):
    """A malformed QoS XML file, an unknown profile or a bad topic map."""


class ConfigError(GridbusError):
    """A Cyclone DDS configuration gridbus cannot use."""


class NetError(GridbusError):
    """A namespace LAN that cannot be built, a bad host or link setting, or no root."""


class MissingExtra(GridbusError, ImportError):
    """A feature needs an optional dependency that is not installed.

    Also an :class:`ImportError`, so code that guarded the import itself keeps working.
    """

    def __init__(self, feature: str, module: str, extra: str) -> None:
        super().__init__(f"{feature} needs {module}, which is not installed: pip install 'gridbus[{extra}]'")
        self.feature, self.module, self.extra = feature, module, extra


# -- input files ---------------------------------------------------------------------------
class SystemFileError(GridbusError):
    """A malformed system file; the message starts with ``file:line:``."""


class ScenarioError(GridbusError):
    """A malformed scenario file (co-simulation events); the message starts with ``file:line:``."""


class ParamError(GridbusError):
    """A device's parameters that do not fit its system; the loader adds file and line."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key, self.reason = key, reason


class ProfileError(GridbusError):
    """A malformed device profile (message starts with ``file:line:``)."""


class DaqConfigError(GridbusError):
    """A malformed DAQ agent configuration (message starts with ``file:line:``)."""


# -- the testbed and the experiments ----------------------------------------------------------
class CommandRejected(GridbusError):
    """A command the plant refuses as a whole; nothing of it was applied."""

    def __init__(self, object_id: str, field: str, value: Any, reason: str) -> None:
        super().__init__(f"{object_id}.{field} = {value!r} rejected: {reason}")
        self.object_id, self.field, self.value, self.reason = object_id, field, value, reason


class ExperimentError(GridbusError):
    """An experiment could not run (the testbed did not start, a controller faulted…)."""


# -- the historian's storage ------------------------------------------------------------------
class SinkUnavailable(GridbusError):
    """The database cannot take rows right now (down, restarting, disk full...)."""


class SinkRefused(GridbusError):
    """The target cannot be used at all (missing, read-only, not a database, another schema)."""


# -- serial links ----------------------------------------------------------------------------
class LinkError(GridbusError):
    """A transaction failed; ``kind`` says how (timeout, garbage, checksum, rejected, port)."""

    kind = "error"


class DeviceTimeout(LinkError):
    """The device did not answer in time."""

    kind = "timeout"


class FrameError(LinkError):
    """The reply was garbage: a bad checksum, a truncated or malformed frame."""

    kind = "garbage"


class DeviceRejected(LinkError):
    """The device answered with an error (a Modbus exception, an SCPI error)."""

    kind = "rejected"


class C37118Error(FrameError):
    """A malformed IEEE C37.118.2 frame (bad CHK, short, wrong FRAMESIZE, unknown type, no CFG yet).

    The gateway counts it on its ``Link_State`` and keeps the connection going.
    """


class PortLost(LinkError):
    """The serial port went away (unplugged adapter, closed pty)."""

    kind = "port"


# -- the wire codec ----------------------------------------------------------------------------
class CodecError(GridbusError, ValueError):
    """Bytes that are not a valid sample of their type (truncated, a length past the end, a bad
    enum value, an unterminated or over-long string), or a sample that cannot be encoded.
    The message names the type and the field."""
