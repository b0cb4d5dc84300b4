"""Command frames of IEEE C37.118.2-2011: what a PDC asks of a PMU (start, stop, header, configs)."""

from __future__ import annotations

import struct
from enum import IntEnum

from ..errors import C37118Error
from .frame import VERSION_2011, Frame, FrameType, encode_frame


class Command(IntEnum):
    """The CMD word."""

    STOP = 1  # turn off transmission of data frames
    START = 2  # turn on transmission of data frames
    SEND_HEADER = 3
    SEND_CFG1 = 4
    SEND_CFG2 = 5
    SEND_CFG3 = 6
    EXTENDED = 8  # extended frame: user data follows CMD


def encode_command(
    idcode: int, command: Command, soc: int = 0, fracsec: int = 0, extended: bytes = b"", *, version: int = VERSION_2011
) -> bytes:
    """A command frame to the data stream ``idcode``."""
    return encode_frame(FrameType.COMMAND, idcode, soc, fracsec, struct.pack(">H", command) + extended, version=version)


def decode_command(frame: Frame) -> tuple[Command, bytes]:
    """The CMD word and any extended-frame bytes of a command frame."""
    if frame.type is not FrameType.COMMAND:
        raise C37118Error(f"expected a command frame, got {frame.type.name}")
    if len(frame.payload) < 2:
        raise C37118Error(f"command frame of IDCODE {frame.idcode} without a CMD word")
    (code,) = struct.unpack_from(">H", frame.payload)
    if code not in Command._value2member_map_:
        raise C37118Error(f"unknown command {code} to IDCODE {frame.idcode}")
    return Command(code), frame.payload[2:]
