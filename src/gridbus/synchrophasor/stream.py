"""The bus's PMUs as aligned sets, and aligned sets as one C37.118.2 stream.

:class:`PmuInput` reads ``PMU_Measurement`` and ``PMU_Config`` of chosen PMUs and aligns
them by measurement time (SOC + FRACSEC / TIME_BASE of the PMU's configuration; the
sample's source time until the configuration is known).  :class:`StreamFeed` turns the
sets into data frames of a :class:`~.server.GatewayServer`: one PMU block per PMU, in the
order given, a missing PMU's block marked data-invalid with NaN (float) or 0x8000 (int16).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..c37time import from_soc_fracsec
from ..errors import FieldError, GridbusError
from .adapter import WireFormat, pmu_config, pmu_data
from .align import TICKS, AlignedSet, Aligner
from .config import StreamConfig
from .data import STAT_DATA_INVALID, DataFrame, PmuData

if TYPE_CHECKING:
    from ..bus import Bus
    from ..sample import Sample
    from .server import GatewayServer

log = logging.getLogger(__name__)
MAX_PMUS = 64


class PmuInput:
    """Aligned sets of the PMUs ``pmu_ids`` from the bus."""

    def __init__(self, bus: Bus, pmu_ids: Sequence[str], window: float) -> None:
        if not pmu_ids:
            raise GridbusError("give at least one PMU (--pmu PMU_1)")
        for pid in pmu_ids:
            if bus.registry.parse_id(pid).prefix != "PMU":
                raise GridbusError(f"--pmu {pid}: not a PMU id (PMU_<index>)")
        if len(pmu_ids) > MAX_PMUS:
            raise GridbusError(f"{len(pmu_ids)} PMUs: a set holds at most {MAX_PMUS} (PDC_Measurement's bound)")
        if len(set(pmu_ids)) != len(pmu_ids):
            raise GridbusError(f"--pmu given twice: {', '.join(pmu_ids)}")
        self.pmu_ids = list(pmu_ids)
        self._wanted = set(pmu_ids)
        self.aligner = Aligner(pmu_ids, window)
        self.configs: dict[str, dict[str, Any]] = {}
        self.config_changed = False
        pattern = pmu_ids[0] if len(pmu_ids) == 1 else "PMU"
        self._measurements = bus.reader(pattern, "Measurement")
        self._configs = bus.reader(pattern, "Config")

    def measurement_time(self, sample: Sample) -> float:
        """SOC/FRACSEC with the PMU's TIME_BASE; the source time without a (sound) configuration."""
        cfg = self.configs.get(sample.id)
        if cfg is None:
            return sample.source_time
        try:
            return from_soc_fracsec(sample.soc, sample.fracsec, cfg["time_base"])
        except FieldError:  # TIME_BASE 0 or beyond 24 bits, FRACSEC not below it: not a time
            return sample.source_time

    def poll(self, timeout: float) -> tuple[list[AlignedSet], list[Sample], list[Sample]]:
        """Within ``timeout`` seconds: the sets released, the samples arrived and those that came late."""
        for sample in self._configs.take(0.0):
            fields = sample.fields()
            if sample.id in self._wanted and self.configs.get(sample.id) != fields:
                self.configs[sample.id] = fields
                self.config_changed = True
        deadline = self.aligner.next_deadline()
        wait = timeout if deadline is None else max(0.0, min(timeout, deadline - time.time()))
        released: list[AlignedSet] = []
        arrived: list[Sample] = []
        late: list[Sample] = []
        for sample in self._measurements.take(wait):
            if sample.id not in self._wanted:
                continue
            arrived.append(sample)
            dropped = self.aligner.dropped_late
            sets = self.aligner.add(sample.id, self.measurement_time(sample), sample, sample.reception_time)
            if self.aligner.dropped_late > dropped or any(s.revision for s in sets):
                late.append(sample)
            released += sets
        released += self.aligner.expire(time.time())
        return released, arrived, late

    def close(self) -> None:
        self._measurements.close()
        self._configs.close()


class StreamFeed:
    """Serves aligned sets as a multi-PMU C37.118.2 stream (NUM_PMU = number of PMUs)."""

    def __init__(self, server: GatewayServer, fmt: WireFormat, pmu_ids: Sequence[str]) -> None:
        self.server, self.fmt, self.pmu_ids = server, fmt, list(pmu_ids)
        self.time_base = TICKS
        self.sent = 0
        self._warned = False

    def configure(self, configs: dict[str, dict[str, Any]]) -> bool:
        """Build the stream's configuration once every PMU's PMU_Config is known."""
        missing = [p for p in self.pmu_ids if p not in configs]
        if missing:
            if not self._warned:
                log.warning("waiting for PMU_Config of %s before serving", ", ".join(missing))
                self._warned = True
            return False
        pmus = [pmu_config(configs[p], self.fmt) for p in self.pmu_ids]
        rate = int(configs[self.pmu_ids[0]]["data_rate"])
        self.server.set_config(StreamConfig(self.server.idcode, pmus, self.time_base, rate))
        return True

    def send(self, aligned: AlignedSet) -> int:
        """Send one set (first releases only: a C37.118 stream does not take a frame twice)."""
        cfg = self.server.config
        if cfg is None or aligned.revision:
            return 0
        blocks = []
        for pid, pmu in zip(self.pmu_ids, cfg.pmus, strict=True):
            got = aligned.frames.get(pid)
            if got is None:
                n = len(pmu.phasors)
                blocks.append(
                    PmuData(STAT_DATA_INVALID, [math.nan] * n, [math.nan] * n, math.nan, math.nan,
                            [math.nan] * len(pmu.analogs), [0] * len(pmu.digitals))
                )  # fmt: skip
            else:
                blocks.append(pmu_data(got.item.fields(), pmu))
        soc, frac = divmod(aligned.key, TICKS)
        quality = max((f.item.time_quality for f in aligned.frames.values()), default=0)
        sent = self.server.publish(DataFrame(self.server.idcode, soc, frac, blocks, quality))
        self.sent += 1
        return sent
