"""Synchrophasors in IEEE C37.118.2-2011 frames: codec, gateway (client and server) and PDC.

One module per concept:

- ``crc``: the CHK word (CRC-CCITT); ``frame``: the common frame, header frames, stream splitting
- ``config``: CFG-1/CFG-2; ``cfg3``: CFG-3 (long names, PMU position)
- ``data``: data frames; ``command``: command frames
- ``adapter``: PMU_Measurement / PMU_Config samples <-> codec blocks
- ``client``: a PMU's or PDC's stream onto the bus; ``server``: a stream to PDCs over TCP
- ``align``: time alignment; ``stream``: bus PMUs as aligned sets and as a stream;
  ``pdc``: the concentrator; ``health``: the gateway's Link_State; ``bench``: benchmarks

Every time here is UTC (SOC counts seconds since 1970-01-01 UTC): never TAI.
"""

from .cfg3 import decode_config3, encode_config3
from .command import Command, decode_command, encode_command
from .config import (
    AnalogChannel,
    DigitalWord,
    PhasorChannel,
    PmuConfig,
    PmuLocation,
    StreamConfig,
    decode_config,
    encode_config,
)
from .crc import crc_ccitt
from .data import DataFrame, PmuData, decode_data, encode_data
from .frame import Frame, FrameSplitter, FrameType, decode_frame, encode_frame, encode_header

__all__ = [
    "AnalogChannel",
    "Command",
    "DataFrame",
    "DigitalWord",
    "Frame",
    "FrameSplitter",
    "FrameType",
    "PhasorChannel",
    "PmuConfig",
    "PmuData",
    "PmuLocation",
    "StreamConfig",
    "crc_ccitt",
    "decode_command",
    "decode_config",
    "decode_config3",
    "decode_data",
    "decode_frame",
    "encode_command",
    "encode_config",
    "encode_config3",
    "encode_data",
    "encode_frame",
    "encode_header",
]
