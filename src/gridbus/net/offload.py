"""Turn off transmit checksum offload on veth interfaces, without the ethtool program.

A veth hands a frame over with its UDP/TCP checksum not yet computed (the
kernel leaves it to "hardware" that never comes).  A frame that the
userspace impairment stage reads from an AF_PACKET socket and writes out
again is a new frame whose receiver checks that checksum, and drops it.  So
every host of a LAN computes its checksums in software: the SIOCETHTOOL
``ETHTOOL_STXCSUM`` request, made from inside each namespace with
``setns(2)``.  Stdlib only; run as ``python offload.py NS:IF ...``.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import sys

SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x00000017
CLONE_NEWNET = 0x40000000


def tx_checksum_off(interface: str) -> None:
    """Software checksums on ``interface`` of the current network namespace."""
    value = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_STXCSUM, 0))
    request = struct.pack("16sP", interface.encode(), ctypes.addressof(value)).ljust(40, b"\0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, request)


def enter(ns: str) -> None:
    """Move this (single-threaded) process into namespace ``ns``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    for pair in argv:
        ns, _, interface = pair.partition(":")
        enter(ns)
        tx_checksum_off(interface)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
