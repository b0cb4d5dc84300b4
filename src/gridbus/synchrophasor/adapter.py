"""Between the bus and the codec: PMU_Measurement / PMU_Config samples <-> C37.118 blocks.

A PMU's object id is ``PMU_<IDCODE>`` unless a mapping names it; its measurement time
(SOC + FRACSEC / TIME_BASE, UTC) is the sample's source time stamp, so the historian's
``source_time`` column *is* the synchrophasor time and ``created - source`` is the seed's
"measurement time -> database row" delay.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import GridbusError
from .config import ANUNIT_KINDS, AnalogChannel, DigitalWord, PhasorChannel, PmuConfig, StreamConfig
from .data import PmuData

log = logging.getLogger(__name__)
NAME_BOUND = 64  # PMU_Config's string<64> station and channel names


@dataclass
class WireFormat:
    """How a gateway server writes the bus's PMUs: FORMAT bits and int16 scales."""

    polar: bool = True
    phasor_float: bool = True
    analog_float: bool = True
    freq_float: bool = True
    volts_per_bit: float = 0.1
    amps_per_bit: float = 0.01
    analog_per_bit: float = 0.01

    @classmethod
    def parse(cls, text: str, **scales: float) -> WireFormat:
        """``polar|rect`` + ``float|int`` (e.g. ``polar,float``, ``rect,int``): every field group the same."""
        words = {w.strip().lower() for w in text.split(",") if w.strip()}
        unknown = words - {"polar", "rect", "rectangular", "float", "int", "int16"}
        rect, ints = words & {"rect", "rectangular"}, words & {"int", "int16"}
        if unknown or ("polar" in words and rect) or ("float" in words and ints):
            raise GridbusError(f"--format {text!r}: expected polar or rect, and float or int (e.g. polar,float)")
        fmt = cls(not rect, not ints, not ints, not ints)
        for name, value in scales.items():
            setattr(fmt, name, value)
        return fmt


def object_id(idcode: int, mapping: Mapping[int, str] | None = None) -> str:
    """The bus id of the PMU with ``idcode``: the mapping's, else ``PMU_<idcode>``."""
    return (mapping or {}).get(idcode, f"PMU_{idcode}")


def _fit(name: str) -> str:
    """A name cut to PMU_Config's string<64> (CFG-3 names may have 255 bytes); logged when cut."""
    if len(name) > NAME_BOUND:
        log.warning("channel name %r cut to %d characters for PMU_Config", name, NAME_BOUND)
    return name[:NAME_BOUND]


def config_fields(pmu: PmuConfig, stream: StreamConfig) -> dict[str, Any]:
    """The fields of a PMU_Config sample for one PMU block of a configuration frame."""
    return {
        "idcode": pmu.idcode,
        "station": _fit(pmu.station),
        "time_base": stream.time_base,
        "f_nominal": pmu.f_nominal,
        "data_rate": stream.data_rate,
        "cfgcnt": pmu.cfgcnt,
        "phasor_names": [_fit(p.name) for p in pmu.phasors],
        "phasor_kinds": ["CURRENT" if p.current else "VOLTAGE" for p in pmu.phasors],
        "analog_names": [_fit(a.name) for a in pmu.analogs],
        "analog_units": [ANUNIT_KINDS[a.kind] if a.kind < len(ANUNIT_KINDS) else str(a.kind) for a in pmu.analogs],
        "digital_names": [_fit(name) for word in pmu.digitals for name in (list(word.names) + [""] * 16)[:16]],
    }


def pmu_config(fields: Mapping[str, Any], fmt: WireFormat) -> PmuConfig:
    """A PMU block for a configuration frame from a PMU_Config sample's fields."""
    kinds = [getattr(k, "name", k) for k in fields["phasor_kinds"]]
    names = list(fields["phasor_names"])
    phasors = [
        PhasorChannel(n, k == "CURRENT", fmt.amps_per_bit if k == "CURRENT" else fmt.volts_per_bit)
        for n, k in zip(names, kinds + ["VOLTAGE"] * (len(names) - len(kinds)), strict=False)
    ]
    units = [str(u).upper() for u in fields["analog_units"]]
    kinds = [ANUNIT_KINDS.index(u) if u in ANUNIT_KINDS else 1 for u in units]  # RMS unless said
    analogs = [
        AnalogChannel(n, kinds[i] if i < len(kinds) else 1, fmt.analog_per_bit)
        for i, n in enumerate(fields["analog_names"])
    ]
    digital_names = list(fields["digital_names"])
    digitals = [DigitalWord(digital_names[i : i + 16]) for i in range(0, len(digital_names), 16)]
    return PmuConfig(
        str(fields["station"]),
        int(fields["idcode"]),
        phasors,
        analogs,
        digitals,
        float(fields["f_nominal"]),
        int(fields["cfgcnt"]),
        polar=fmt.polar,
        phasor_float=fmt.phasor_float,
        analog_float=fmt.analog_float,
        freq_float=fmt.freq_float,
    )


def measurement_fields(data: PmuData, idcode: int, soc: int, fracsec: int, time_quality: int) -> dict[str, Any]:
    """The fields of a PMU_Measurement sample for one PMU block of a data frame."""
    return {
        "idcode": idcode,
        "soc": soc,
        "fracsec": fracsec,
        "time_quality": time_quality,
        "stat": data.stat,
        "magnitude": data.magnitude,
        "angle": data.angle,
        "freq": data.freq if math.isfinite(data.freq) else math.nan,
        "rocof": data.rocof,
        "analog": data.analog,
        "digital": data.digital,
    }


def pmu_data(fields: Mapping[str, Any], pmu: PmuConfig) -> PmuData:
    """A data-frame block from a PMU_Measurement sample, fitted to the PMU's configuration.

    Channels the sample lacks are NaN (0 for digital words), extra ones are dropped: a
    frame must match its configuration byte for byte.
    """

    def fit(values: list[Any], count: int, fill: Any) -> list[Any]:
        return (list(values) + [fill] * count)[:count]

    return PmuData(
        int(fields["stat"]),
        fit(fields["magnitude"], len(pmu.phasors), math.nan),
        fit(fields["angle"], len(pmu.phasors), math.nan),
        float(fields["freq"]),
        float(fields["rocof"]),
        fit(fields["analog"], len(pmu.analogs), math.nan),
        fit(fields["digital"], len(pmu.digitals), 0),
    )
