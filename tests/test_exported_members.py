"""The public names of ``gridbus`` stay exported (model: httpx's tests/test_exported_members.py).

A name dropped from ``__all__`` or renamed breaks users' imports silently; this
test makes it a deliberate change: update EXPECTED (and the changelog) with it.
"""

from __future__ import annotations

import gridbus
from gridbus import errors

EXPECTED = {
    # the bus and the data model
    "Bus",
    "Reader",
    "Writer",
    "Sample",
    "Gone",
    "Registry",
    "ObjectType",
    "TopicType",
    "FieldInfo",
    # errors
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
}


def test_all_names_exist() -> None:
    for name in gridbus.__all__:
        assert hasattr(gridbus, name), name


def test_all_is_the_expected_set() -> None:
    assert len(gridbus.__all__) == len(set(gridbus.__all__)), "a name is listed twice"
    assert set(gridbus.__all__) == EXPECTED


def test_every_error_lives_in_errors_and_is_exported() -> None:
    """Each GridbusError subclass is defined in gridbus.errors and exported from gridbus."""
    defined = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.GridbusError)
    }
    assert defined <= set(gridbus.__all__)
    for name in defined:
        assert getattr(gridbus, name).__module__ == "gridbus.errors"


def test_old_import_paths_still_work() -> None:
    """Errors moved to gridbus.errors stay importable from where they were defined."""
    from gridbus.daq.agent import DaqConfigError
    from gridbus.experiments.runner import ExperimentError
    from gridbus.historian.sinks import SinkRefused, SinkUnavailable
    from gridbus.testbed.devices import CommandRejected as DeviceCommandRejected
    from gridbus.testbed.devices import ParamError
    from gridbus.testbed.plant import CommandRejected
    from gridbus.testbed.system import SystemFileError
    from gridbus.translators.link import DeviceRejected, DeviceTimeout, FrameError, LinkError, PortLost
    from gridbus.translators.profile import ProfileError

    moved = [
        DaqConfigError,
        ExperimentError,
        SinkRefused,
        SinkUnavailable,
        CommandRejected,
        SystemFileError,
        DeviceRejected,
        DeviceCommandRejected,
        ParamError,
        DeviceTimeout,
        FrameError,
        LinkError,
        PortLost,
        ProfileError,
    ]
    assert all(cls is getattr(gridbus, cls.__name__) for cls in moved)
