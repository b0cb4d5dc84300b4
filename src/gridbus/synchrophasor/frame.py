"""The common frame of IEEE C37.118.2-2011: SYNC, FRAMESIZE, IDCODE, SOC, FRACSEC ... CHK.

Every frame type (data, header, CFG-1/2/3, command) starts with the same 14 bytes and
ends with the CRC-CCITT check word; this module packs and checks that envelope and cuts
a TCP byte stream into frames, resynchronizing on the next SYNC byte after garbage.
The frame's time is UTC (SOC = seconds since 1970-01-01 UTC, leap seconds not counted):
never TAI.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

from ..errors import C37118Error
from .crc import crc_ccitt

SYNC_BYTE = 0xAA
VERSION_2005 = 1
VERSION_2011 = 2
_HEADER = struct.Struct(">BBHHII")  # SYNC (2 bytes), FRAMESIZE, IDCODE, SOC, FRACSEC
HEADER_SIZE = _HEADER.size  # 14
CHK_SIZE = 2
MIN_FRAME = HEADER_SIZE + CHK_SIZE
FRACSEC_MASK = 0x00FFFFFF


class FrameType(IntEnum):
    """Bits 6-4 of the second SYNC byte."""

    DATA = 0
    HEADER = 1
    CFG1 = 2
    CFG2 = 3
    COMMAND = 4
    CFG3 = 5


@dataclass(frozen=True)
class Frame:
    """One checked frame: the common fields and the payload between them and CHK."""

    type: FrameType
    version: int
    idcode: int
    soc: int
    fracsec: int  # the 24-bit fraction-of-second count
    time_quality: int  # FRACSEC's top byte: leap-second bits and the time quality code
    payload: bytes

    @property
    def size(self) -> int:
        return HEADER_SIZE + len(self.payload) + CHK_SIZE


def encode_frame(
    ftype: FrameType,
    idcode: int,
    soc: int,
    fracsec: int,
    payload: bytes,
    *,
    time_quality: int = 0,
    version: int = VERSION_2011,
) -> bytes:
    """A whole frame: the common header, ``payload`` and CHK."""
    size = HEADER_SIZE + len(payload) + CHK_SIZE
    if size > 0xFFFF:
        raise C37118Error(f"{ftype.name} frame of {size} bytes exceeds FRAMESIZE's 65535")
    word = ((time_quality & 0xFF) << 24) | (fracsec & FRACSEC_MASK)
    head = _HEADER.pack(SYNC_BYTE, (int(ftype) << 4) | (version & 0x0F), size, idcode, soc, word)
    body = head + payload
    return body + struct.pack(">H", crc_ccitt(body))


def decode_frame(raw: bytes) -> Frame:
    """Check and split one whole frame; :class:`C37118Error` says what is wrong with it."""
    if len(raw) < MIN_FRAME:
        raise C37118Error(f"short frame: {len(raw)} bytes, a frame has at least {MIN_FRAME}")
    sync, kind, size, idcode, soc, word = _HEADER.unpack_from(raw)
    if sync != SYNC_BYTE:
        raise C37118Error(f"bad SYNC byte 0x{sync:02X} (expected 0xAA)")
    if size != len(raw):
        raise C37118Error(f"FRAMESIZE {size} does not match the frame's {len(raw)} bytes")
    (chk,) = struct.unpack_from(">H", raw, size - CHK_SIZE)
    expected = crc_ccitt(raw[: size - CHK_SIZE])
    if chk != expected:
        raise C37118Error(f"bad CHK 0x{chk:04X} (computed 0x{expected:04X}) in a {size}-byte frame of IDCODE {idcode}")
    code = (kind >> 4) & 0x07
    if kind & 0x80 or code not in FrameType._value2member_map_:
        raise C37118Error(f"unknown frame type {code} (SYNC 0xAA{kind:02X}) from IDCODE {idcode}")
    return Frame(FrameType(code), kind & 0x0F, idcode, soc, word & FRACSEC_MASK, word >> 24, raw[HEADER_SIZE:-CHK_SIZE])


def encode_header(idcode: int, text: str, soc: int = 0, fracsec: int = 0, *, version: int = VERSION_2011) -> bytes:
    """A header frame: free ASCII text describing the stream."""
    return encode_frame(FrameType.HEADER, idcode, soc, fracsec, text.encode("ascii", "replace"), version=version)


def decode_header(frame: Frame) -> str:
    return frame.payload.decode("ascii", "replace")


class FrameSplitter:
    """Cuts a byte stream into frames.

    ``frames()`` yields each whole frame as a :class:`Frame`, or as a
    :class:`C37118Error` when it is malformed; after an error it resynchronizes on
    the next 0xAA byte, so one bad frame never ends the connection.  The buffer is
    bounded by FRAMESIZE (at most 65535 bytes waiting for one frame).
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def frames(self) -> Iterator[Frame | C37118Error]:
        buf = self._buffer
        while buf:
            start = buf.find(SYNC_BYTE)
            if start < 0:
                yield C37118Error(f"{len(buf)} bytes without a SYNC byte dropped")
                buf.clear()
                return
            if start > 0:
                yield C37118Error(f"{start} bytes before the SYNC byte dropped")
                del buf[:start]
            if len(buf) < 4:
                return
            (size,) = struct.unpack_from(">H", buf, 2)
            if size < MIN_FRAME:
                yield C37118Error(f"short frame: FRAMESIZE {size}, a frame has at least {MIN_FRAME} bytes")
                del buf[:1]
                continue
            if len(buf) < size:
                return
            raw = bytes(buf[:size])
            try:
                frame = decode_frame(raw)
            except C37118Error as exc:
                yield exc
                del buf[:1]  # the FRAMESIZE may be the lie: look for the next SYNC inside
                continue
            del buf[:size]
            yield frame
