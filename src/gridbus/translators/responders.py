"""Protocol responders of the device simulator: Modbus RTU and text (SCPI-like) devices.

Each turns the bytes received so far into (bytes used, reply), answering from
a :class:`~gridbus.translators.device_model.DeviceModel` the way the profile's
device does, including its refusals and a deliberately corrupted reply.
"""

from __future__ import annotations

from typing import Any

from ..extras import require
from .device_model import DeviceModel, Rejected
from .protocols import parse_number, xor_checksum


class ModbusServer:
    def __init__(self, model: DeviceModel) -> None:
        require("pymodbus", "a Modbus RTU device")  # the serial extra; imported here, where it is used
        from pymodbus.framer import FramerRTU
        from pymodbus.pdu import DecodePDU

        self.model, self.profile = model, model.profile
        self.framer = FramerRTU(DecodePDU(True))
        registers = self.profile.status_registers()
        self.status_area = (registers[0], registers[-1])

    def handle(self, buffer: bytes) -> tuple[int, bytes | None]:
        """(bytes used, reply) for the buffer received so far; (0, None) = wait for more."""
        used, pdu = self.framer.handleFrame(buffer, 0, 0)
        if pdu is None:
            return used, None
        if pdu.dev_id != self.profile.unit:
            return used, b""  # another device's request: stay silent
        return used, self.framer.buildFrame(self._answer(pdu))

    def _answer(self, pdu: Any) -> Any:  # pymodbus's PDUs carry no types
        from pymodbus.pdu import ExceptionResponse
        from pymodbus.pdu.register_message import (
            ReadHoldingRegistersRequest,
            ReadHoldingRegistersResponse,
            WriteSingleRegisterRequest,
            WriteSingleRegisterResponse,
        )

        unit = self.profile.unit
        self.last_kind = "query" if isinstance(pdu, ReadHoldingRegistersRequest) else "command"
        if isinstance(pdu, ReadHoldingRegistersRequest):
            span = range(pdu.address, pdu.address + pdu.count)
            if not 1 <= pdu.count <= 125:  # the Modbus limit of one read
                return ExceptionResponse(pdu.function_code, 3, device_id=unit)
            if not (self.status_area[0] <= span.start and span.stop - 1 <= self.status_area[1]):
                return ExceptionResponse(pdu.function_code, 2, device_id=unit)
            words = {r: 0 for r in span}
            for name, item in self.profile.status.items():
                if item.register not in words:
                    continue  # another block's register
                value = self.model.status(name)
                if item.bit is not None:
                    words[item.register] |= (1 if value else 0) << item.bit
                else:
                    words[item.register] = int(round(value * item.scale)) & 0xFFFF
            return ReadHoldingRegistersResponse(registers=[words[r] for r in span], dev_id=unit)
        if isinstance(pdu, WriteSingleRegisterRequest):
            word = pdu.registers[0]
            matches = [
                c
                for c in self.profile.commands.values()
                if c.register == pdu.address and (c.value is None or c.value == word)
            ]
            if not matches:
                return ExceptionResponse(
                    pdu.function_code,
                    2 if all(c.register != pdu.address for c in self.profile.commands.values()) else 3,
                    device_id=unit,
                )
            spec = matches[0]
            try:
                signed = word - 0x10000 if spec.min < 0 and word >= 0x8000 else word
                self.model.command(spec.name, None if spec.value is not None else signed / spec.scale)
            except Rejected:
                return ExceptionResponse(pdu.function_code, 3, device_id=unit)
            return WriteSingleRegisterResponse(address=pdu.address, registers=[word], dev_id=unit)
        return ExceptionResponse(pdu.function_code, 1, device_id=unit)

    def corrupt(self, reply: bytes) -> bytes:
        return reply[:-1] + bytes([reply[-1] ^ 0xFF])


class TextServer:
    def __init__(self, model: DeviceModel) -> None:
        self.model, self.profile = model, model.profile
        self.terminator = self.profile.terminator.encode()
        self.errors: list[str] = []

    def handle(self, buffer: bytes) -> tuple[int, bytes | None]:
        end = buffer.find(self.terminator)
        if end < 0:
            return 0, None
        line, used = buffer[:end], end + len(self.terminator)
        if self.profile.checksum == "xor":
            payload, star, check = line.rpartition(b"*")
            if not star or xor_checksum(payload) != check.decode(errors="replace").upper():
                return used, self._frame("ERR 2 checksum")
            line = payload
        answer = self._answer(line.decode(errors="replace").strip())
        return used, (b"" if answer is None else self._frame(answer))

    def _frame(self, text: str) -> bytes:
        data = text.encode()
        if self.profile.checksum == "xor":
            data += b"*" + xor_checksum(data).encode()
        return data + self.terminator

    def _answer(self, text: str) -> str | None:
        scpi = self.profile.protocol == "scpi"
        self.last_kind = "query" if text.endswith("?") else "command"
        if scpi and self.profile.error_query and text == self.profile.error_query:
            return self.errors.pop(0) if self.errors else '0,"No error"'
        for name, item in self.profile.status.items():
            if text == item.query:
                value = self.model.status(name) * item.scale
                return f"{value:.3f}"
        for name, spec in self.profile.commands.items():
            for template in spec.send:
                number = _match(template, text)
                if number is False:
                    continue
                try:
                    self.model.command(name, None if number is None else number / spec.scale)
                except Rejected as exc:
                    if scpi:
                        self.errors.append(f'-222,"Data out of range; {exc}"')
                        return None
                    return f"ERR 3 {exc}"
                return None if scpi else "OK"
        if scpi:
            self.errors.append('-113,"Undefined header"')
            return None
        return "ERR 1 unknown command"

    def corrupt(self, reply: bytes) -> bytes:
        body = reply[: -len(self.terminator)]
        return body[:-1] + (b"0" if body[-1:] != b"0" else b"1") + self.terminator


def _match(template: str, text: str) -> float | None | bool:
    """The number a command line carries if it fits ``template`` (None: no number; False: no fit)."""
    if "{" not in template:
        return None if text == template else False
    head = template.split("{", 1)[0]
    tail = template.rsplit("}", 1)[1]
    if not (text.startswith(head) and text.endswith(tail)) or len(text) <= len(head) + len(tail):
        return False
    try:
        return parse_number(text[len(head) : len(text) - len(tail) if tail else None])
    except Exception:
        return False
