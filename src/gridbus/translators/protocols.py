"""Protocol clients (the translator's side): profile commands and status over a link.

* Modbus RTU is in :mod:`gridbus.translators.modbus` (one client per unit id);
* ASCII frames are ``PAYLOAD*HH<terminator>`` with an XOR checksum (or none);
* SCPI commands have no reply; errors are read back with the error query.
"""

from __future__ import annotations

import math
from typing import Protocol as TypingProtocol

from ..errors import DeviceRejected, FrameError
from . import registers
from .link import SerialLink
from .modbus import ModbusClient, command_words
from .profile import CommandMap, ObjectTypes, Profile


class OutOfRange(ValueError):
    """A bus value the device must not be sent (outside the profile's limits or its register)."""


def check_value(command: CommandMap, value: float, protocol: str) -> None:
    """Refuse what the device must not get: a value that is not finite, outside the profile's
    min/max, or (Modbus) whose scaled value does not fit its register type; never wrap it."""
    if not math.isfinite(value):
        raise OutOfRange(f"{value!r} is not finite")
    if not command.min <= value <= command.max:
        raise OutOfRange(f"{value:g} is outside the device's limits {command.min:g}..{command.max:g}")
    if protocol == "modbus-rtu" and command.value is None and not command.word:
        try:
            command_words(command, value)
        except registers.ValueDoesNotFit as exc:
            raise OutOfRange(f"{value:g} x {command.scale:g}: {exc}") from None


def needed_value(command: CommandMap, value: float | None) -> float:
    """``value``, which a command that carries a number cannot do without."""
    if value is None:
        raise TypeError(f"the {command.name} command carries a value and was given none")
    return value


class Client(TypingProtocol):
    def apply(self, command: CommandMap, value: float | None) -> None: ...
    def read_status(self) -> dict[str, float]: ...
    def read_step(self) -> dict[str, float] | None: ...


def xor_checksum(payload: bytes) -> str:
    value = 0
    for byte in payload:
        value ^= byte
    return f"{value:02X}"


def parse_number(text: str) -> float:
    word = text.strip().upper()
    if word in ("ON", "RUN", "TRUE", "YES"):
        return 1.0
    if word in ("OFF", "STOP", "FALSE", "NO"):
        return 0.0
    try:
        return float(word)
    except ValueError:
        raise FrameError(f"not a number: {text!r}") from None


class TextClient:
    """ASCII line protocol (request/response) and SCPI (commands silent, queries answered)."""

    def __init__(self, link: SerialLink, profile: Profile) -> None:
        self.link, self.profile = link, profile
        self.terminator = profile.terminator.encode()

    def _frame(self, payload: str) -> bytes:
        data = payload.encode()
        if self.profile.checksum == "xor":
            data += b"*" + xor_checksum(data).encode()
        return data + self.terminator

    def _unframe(self, reply: bytes) -> str:
        body = reply[: -len(self.terminator)] if reply.endswith(self.terminator) else reply
        if self.profile.checksum == "xor":
            payload, star, check = body.rpartition(b"*")
            if not star or xor_checksum(payload) != check.decode(errors="replace").upper():
                raise FrameError(f"checksum error in reply {reply[:32]!r}")
            body = payload
        try:
            return body.decode("ascii").strip()
        except UnicodeDecodeError:
            raise FrameError(f"garbage reply {reply[:32]!r}") from None

    def request(self, payload: str) -> str:
        reply = self.link.transact(self._frame(payload), lambda b: b.endswith(self.terminator))
        return self._unframe(reply)

    def apply(self, command: CommandMap, value: float | None) -> None:
        for template in command.send:
            payload = template
            if "{" in template:
                payload = template.format(command.device_value(needed_value(command, value)))
            if self.profile.protocol == "scpi":
                self.link.send(self._frame(payload))
            else:
                answer = self.request(payload)
                if answer.startswith("ERR"):
                    raise DeviceRejected(f"device answered {answer!r} to {payload!r}")
                if answer != "OK":
                    raise FrameError(f"unexpected reply {answer!r} to {payload!r}")
        if self.profile.protocol == "scpi" and self.profile.error_query:
            answer = self.request(self.profile.error_query)
            code = answer.split(",", 1)[0]
            if code.strip() not in ("0", "+0"):
                raise DeviceRejected(f"device error {answer!r}")

    def read_step(self) -> dict[str, float] | None:
        return self.read_status()  # a few short queries: one step

    def read_status(self) -> dict[str, float]:
        answers: dict[str, str] = {}
        out = {}
        for name, item in self.profile.status.items():
            if item.query not in answers:
                answers[item.query] = self.request(item.query)
                if answers[item.query].startswith("ERR"):
                    raise DeviceRejected(f"device answered {answers[item.query]!r} to {item.query!r}")
            out[name] = item.bus_value(parse_number(answers[item.query]))
        return out


def client_for(
    link: SerialLink, profile: Profile, unit: int | None = None, registry: ObjectTypes | None = None
) -> Client:
    """The client of ``profile``'s protocol (``registry``: the object types, default gridbus's data model)."""
    if profile.protocol == "modbus-rtu":
        return ModbusClient(link, profile, unit, registry)
    return TextClient(link, profile)


def is_set(value: float | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))
