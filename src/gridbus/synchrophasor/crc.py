"""CHK of IEEE C37.118.2: CRC-CCITT, polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR."""

from __future__ import annotations


def _table() -> tuple[int, ...]:
    entries = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        entries.append(crc & 0xFFFF)
    return tuple(entries)


_TABLE = _table()


def crc_ccitt(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """The frame check word over ``data`` (every byte of a frame before CHK).

    CRC-CCITT(0xFFFF) of ``b"123456789"`` is 0x29B1 (the standard's check value).
    """
    for byte in bytes(data):
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[(crc >> 8) ^ byte]
    return crc
