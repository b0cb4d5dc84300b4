"""Exceptions raised by gridbus.

Every error names what was wrong (object id, field, file and line) so that a
lab user can fix the input without reading gridbus's source.
"""
from __future__ import annotations


class GridbusError(Exception):
    """Base class of every error gridbus raises on bad input or state."""


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
