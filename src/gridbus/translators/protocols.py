"""Protocol clients (the translator's side): profile commands and status over a link.

* Modbus RTU uses pymodbus's PDUs and RTU framer (CRC, frame sizes) over our
  own link, so a CRC error or garbage is reported, not hidden;
* ASCII frames are ``PAYLOAD*HH<terminator>`` with an XOR checksum (or none);
* SCPI commands have no reply; errors are read back with the error query.
"""

from __future__ import annotations

import math
from typing import Any
from typing import Protocol as TypingProtocol

from ..errors import DeviceRejected, FrameError
from ..extras import require
from .link import SerialLink
from .profile import CommandMap, Profile

MODBUS_EXCEPTIONS = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    6: "device busy",
}
READ_MAX = 125  # Modbus: registers one Read Holding Registers may return


class OutOfRange(ValueError):
    """A bus value the device must not be sent (outside the profile's limits or its register)."""


def check_value(command: CommandMap, value: float, protocol: str) -> None:
    """Refuse what the device must not get: a value that is not finite, outside the profile's
    min/max, or (Modbus) whose scaled word does not fit a 16-bit register; never wrap it."""
    if not math.isfinite(value):
        raise OutOfRange(f"{value!r} is not finite")
    if not command.min <= value <= command.max:
        raise OutOfRange(f"{value:g} is outside the device's limits {command.min:g}..{command.max:g}")
    if protocol == "modbus-rtu" and command.value is None:
        register_word(command, value)


def register_word(command: CommandMap, value: float) -> int:
    """The 16-bit word that carries ``value``; OutOfRange if it does not fit.  A register is
    unsigned when the command's min is >= 0, else (min negative or left out) signed, sent in
    two's complement: a profile that does not say refuses 32768..65535 rather than guess."""
    word = int(round(command.device_value(value)))
    low, high = (-0x8000, 0x7FFF) if command.min < 0 else (0, 0xFFFF)
    if not low <= word <= high:
        raise OutOfRange(f"{value:g} x {command.scale:g} = {word} does not fit the 16-bit register ({low}..{high})")
    return word & 0xFFFF


def needed_value(command: CommandMap, value: float | None) -> float:
    """``value``, which a command that carries a number cannot do without."""
    if value is None:
        raise TypeError(f"the {command.name} command carries a value and was given none")
    return value


def command_register(command: CommandMap) -> int:
    """The holding register a Modbus command writes (the profile loader requires one)."""
    if command.register is None:
        raise TypeError(f"the {command.name} command has no Modbus register")
    return command.register


def register_blocks(registers: list[int], limit: int = READ_MAX) -> list[tuple[int, int]]:
    """(start, count) reads covering ascending ``registers``, none longer than ``limit``."""
    blocks: list[tuple[int, int]] = []
    for register in registers:
        if blocks and register - blocks[-1][0] < limit:
            blocks[-1] = (blocks[-1][0], register - blocks[-1][0] + 1)
        else:
            blocks.append((register, 1))
    return blocks


class Client(TypingProtocol):
    def apply(self, command: CommandMap, value: float | None) -> None: ...
    def read_status(self) -> dict[str, float]: ...


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


class ModbusClient:
    def __init__(self, link: SerialLink, profile: Profile) -> None:
        require("pymodbus", "Modbus RTU")  # the serial extra; imported here, where it is used
        from pymodbus.framer import FramerRTU
        from pymodbus.pdu import DecodePDU

        self.link, self.profile = link, profile
        self.framer = FramerRTU(DecodePDU(False))
        self.blocks = register_blocks(profile.status_registers())

    def _transact(self, request: Any) -> Any:  # pymodbus's PDUs carry no types
        from pymodbus.pdu import ExceptionResponse

        unit = self.profile.unit
        reply: dict[str, Any] = {}

        def complete(buffer: bytes) -> bool:
            used, pdu = self.framer.handleFrame(buffer, unit, 0)
            if pdu is not None:
                reply["pdu"] = pdu
                return True
            if used:  # consumed without a frame: CRC error or garbage
                raise FrameError(f"CRC error or garbage in reply {buffer[:32].hex()}")
            return False

        self.link.transact(self.framer.buildFrame(request), complete)
        pdu = reply["pdu"]
        if isinstance(pdu, ExceptionResponse):
            reason = MODBUS_EXCEPTIONS.get(pdu.exception_code, f"exception {pdu.exception_code}")
            raise DeviceRejected(f"modbus {reason}")
        return pdu

    def apply(self, command: CommandMap, value: float | None) -> None:
        from pymodbus.pdu.register_message import WriteSingleRegisterRequest

        word = command.value if command.value is not None else register_word(command, needed_value(command, value))
        self._transact(
            WriteSingleRegisterRequest(address=command_register(command), registers=[word], dev_id=self.profile.unit)
        )

    def read_status(self) -> dict[str, float]:
        from pymodbus.pdu.register_message import ReadHoldingRegistersRequest

        words: dict[int, int] = {}
        for start, count in self.blocks:  # far-apart registers: one read per block
            pdu = self._transact(ReadHoldingRegistersRequest(address=start, count=count, dev_id=self.profile.unit))
            registers = list(pdu.registers)
            if len(registers) != count:
                raise FrameError(f"asked for {count} registers at {start:#06x}, got {len(registers)}")
            words.update(zip(range(start, start + count), registers, strict=True))
        out = {}
        for name, item in self.profile.status.items():
            if item.register is None:
                raise TypeError(f"the {name} status value has no Modbus register")
            raw = words[item.register]
            out[name] = float((raw >> item.bit) & 1) if item.bit is not None else item.bus_value(raw)
        return out


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


def client_for(link: SerialLink, profile: Profile) -> Client:
    return ModbusClient(link, profile) if profile.protocol == "modbus-rtu" else TextClient(link, profile)


def is_set(value: float | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))
