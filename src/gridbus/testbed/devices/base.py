"""What every device of the plant is: parameters from the system file, a state, four verbs.

Modelled on ANDES (a parameter class beside a behaviour class): each device
kind has a parameter dataclass (what the system file says, units as field
metadata), a state dataclass (what changes while the plant runs) and a
:class:`Device` subclass that owns both and answers the plant's four calls:

* :meth:`Device.command` — obey a command (after :meth:`Device.check_command`);
* :meth:`Device.step` — advance its own dynamics, at its :attr:`Device.stage`;
* :meth:`Device.measure` — the true values of its Measurement topic;
* :meth:`Device.state` — the fields of its State topic (stateful kinds only).

The state dataclass is held as :attr:`Device.var` (``state`` is the verb).
The network (islands, power flow, breakers' topology) stays with the plant,
which each call receives, so a device reads its bus voltage from there.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from ...errors import CommandRejected, GridbusError, ParamError
from ...phasor import wrap as wrap  # re-exported: devices and the plant fold angles with it

if TYPE_CHECKING:
    from ..plant import Plant

LIVE = 0.1  # pu voltage above which a side is energized
RATED_RPM = 1800.0  # four-pole machines at 60 Hz (the paper's generators)


def unit(
    symbol: str, default: Any = MISSING, *, positive: bool = False, non_negative: bool = False, **kwargs: Any
) -> Any:
    """A dataclass field with its unit (``field.metadata["unit"]``) and the sign the file must respect.

    ``positive``: refused at zero or below (a rating, a time constant, a divisor);
    ``non_negative``: may be zero, never negative (impedances, limits where 0
    means "none" or "default").  The system-file loader enforces both.
    """
    metadata: dict[str, Any] = {"unit": symbol}
    if positive:
        metadata["bound"] = ">0"
    elif non_negative:
        metadata["bound"] = ">=0"
    return field(default=default, metadata=metadata, **kwargs)


def need(ok: bool, key: str, reason: str) -> None:
    """Raise :class:`ParamError` on ``key`` unless ``ok``."""
    if not ok:
        raise ParamError(key, reason)


def need_ref(key: str, ref: str, pool: Any, what: str) -> None:
    """``ref`` (the value of ``key``) must name an object of ``pool``."""
    need(ref in pool, key, f"{key} {ref!r} is not a {what} of this system")


def one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    need(value in allowed, key, f"{key} must be {' or '.join(allowed)}, got {value!r}")


class Stage(IntEnum):
    """When, in one plant step, a device advances (the order the physics needs)."""

    NONE = 0  # driven by another device, or static
    SOURCES = 1  # DC sources (PV, wind) before the converters that collect them
    CONVERTERS = 2  # microgrid converters (and their storage) before the AC network
    MACHINES = 3  # generators, after the islands' common dynamics
    AFTER_SOLVE = 4  # what integrates the solved network (meters)


Band = tuple[float, float, str]  # low, high, where the band comes from (for the refusal)


class Identified(Protocol):
    """Parameters name their object: every parameter dataclass has an ``id``."""

    id: str


P = TypeVar("P", bound=Identified)
S = TypeVar("S")


class Device(Generic[P, S]):
    """One device of the plant: its parameters, its state and the plant's calls on it."""

    prefix: ClassVar[str]  # object-id prefix, the key of the registry
    section: ClassVar[str | None]  # the system file's array of tables (None: not read as one)
    system_attr: ClassVar[str]  # the System attribute holding the parameters by id
    params_type: ClassVar[type]
    stage: ClassVar[Stage] = Stage.NONE
    stateful: ClassVar[bool] = False  # publishes a State topic
    measured: ClassVar[bool] = True  # publishes a Measurement topic
    commanded: ClassVar[bool] = False  # obeys a Command topic

    def __init__(self, params: P) -> None:
        self.params = params
        self.var: S = self.initial(params)

    def initial(self, params: P) -> S:
        """The state the device starts in, from its parameters."""
        raise NotImplementedError

    @property
    def id(self) -> str:
        return self.params.id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.var!r})"

    # -- commands ---------------------------------------------------------------------
    def limits(self) -> dict[str, Band]:
        """The band of each set-point the device obeys (from its rating in the system file)."""
        return {}

    def check_command(self, fields: dict[str, Any]) -> None:
        """Raise :class:`CommandRejected` for the first set-point the device cannot obey.

        Any process can write a command, so the plant checks what it is about to
        obey against the device's own rating (the system file), whatever the sender
        checked.  The whole command is refused: a START that carried an absurd
        f_ref must not start the machine on its old reference either.
        """
        for key, (low, high, source) in self.limits().items():
            if key not in fields:
                continue
            value = fields[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise CommandRejected(self.id, key, value, "not a number")
            if not math.isfinite(value):
                raise CommandRejected(self.id, key, value, "not finite")
            if not low <= value <= high:
                raise CommandRejected(self.id, key, value, f"outside the system file's {source}")

    def command(self, plant: Plant, fields: dict[str, Any]) -> None:
        """Obey a checked command (only the fields that were set)."""
        raise GridbusError(f"{self.id} takes no commands")

    # -- time and what the sensors see ------------------------------------------------
    def step(self, plant: Plant, dt: float) -> None:
        """Advance the device's own dynamics by ``dt`` (at its :attr:`stage`)."""

    def measure(self, plant: Plant) -> dict[str, float]:
        """True values of the device's Measurement topic."""
        return {}

    def state(self, plant: Plant) -> dict[str, Any]:
        """The fields of the device's State topic."""
        return {}


AnyDevice = Device[Any, Any]
"""A device of any kind (what the registry and the plant hold)."""
