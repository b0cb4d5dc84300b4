"""The PDC: time alignment (pure logic, explicit clocks) and the concentrator on a real bus."""

from __future__ import annotations

import math
import threading
import time

import pytest

from gridbus import Bus, GridbusError
from gridbus.c37time import to_soc_fracsec
from gridbus.synchrophasor.align import LATE, MISSING, ON_TIME, Aligner
from gridbus.synchrophasor.pdc import Concentrator

T0 = 1_700_000_000.0


def test_a_complete_set_is_released_at_once():
    aligner = Aligner(["PMU_1", "PMU_2"], window=0.1)
    assert aligner.add("PMU_1", T0, "a", now=T0 + 0.01) == []
    (done,) = aligner.add("PMU_2", T0, "b", now=T0 + 0.02)
    assert done.time == T0 and done.status("PMU_1") == done.status("PMU_2") == ON_TIME
    assert aligner.next_deadline() is None


def test_a_pmu_absent_after_the_window_is_missing_then_late():
    aligner = Aligner(["PMU_1", "PMU_2"], window=0.1)
    aligner.add("PMU_1", T0, "a", now=T0 + 0.01)
    assert aligner.next_deadline() == pytest.approx(T0 + 0.11)
    assert aligner.expire(now=T0 + 0.05) == []
    (done,) = aligner.expire(now=T0 + 0.11)
    assert done.status("PMU_2") == MISSING and done.revision == 0
    (again,) = aligner.add("PMU_2", T0, "b", now=T0 + 0.3)  # the set comes out again, completed
    assert again is done and again.revision == 1 and again.status("PMU_2") == LATE
    assert aligner.add("PMU_2", T0, "b", now=T0 + 0.31)[0].revision == 2  # a resent late frame replaces it


def test_sets_come_out_in_time_order_and_stale_frames_are_counted():
    aligner = Aligner(["PMU_1", "PMU_2"], window=1.0, retain=2)
    aligner.add("PMU_1", T0, "a0", now=T0)
    aligner.add("PMU_1", T0 + 0.02, "a1", now=T0 + 0.02)
    released = aligner.add("PMU_2", T0 + 0.02, "b1", now=T0 + 0.03)  # completes the newer set
    assert [s.time for s in released] == [T0, T0 + 0.02]
    assert released[0].status("PMU_2") == MISSING
    for k in range(2, 5):
        aligner.add("PMU_1", T0 + 0.02 * k, "a", now=T0 + 0.1)
        aligner.add("PMU_2", T0 + 0.02 * k, "b", now=T0 + 0.1)
    assert aligner.add("PMU_2", T0, "late", now=T0 + 0.2) == []  # older than every retained set
    assert aligner.dropped_late == 1


def test_keys_tolerate_float_rounding_of_the_measurement_time():
    aligner = Aligner(["PMU_1", "PMU_2"], window=0.1)
    aligner.add("PMU_1", 1_700_000_000 + 1 / 3, "a", now=T0)
    assert aligner.add("PMU_2", 1_700_000_000.333_333_2, "b", now=T0)  # same microsecond: one set


@pytest.mark.integration
def test_pdc_refuses_bad_pmu_lists(domain, partition):
    with Bus(domain, partition=partition) as bus:
        with pytest.raises(GridbusError, match="not a PMU id"):
            Concentrator(bus, ["G_1"], 0.1)
        with pytest.raises(GridbusError, match="given twice"):
            Concentrator(bus, ["PMU_1", "PMU_1"], 0.1)


def _arrival(sample) -> list[str]:
    return [a.name for a in sample.arrival]


def _config(bus: Bus, pmu: str, idcode: int) -> None:
    bus.writer(pmu, "Config").write(
        idcode=idcode, station=f"ST{idcode}", time_base=1_000_000, f_nominal=50.0, data_rate=50, cfgcnt=1,
        phasor_names=["VA", "IA"], phasor_kinds=["VOLTAGE", "CURRENT"],
    )  # fmt: skip


@pytest.mark.integration
def test_concentrator_publishes_sets_and_statistics(domain, partition):
    """Two PMUs publish 40 frames; PMU_2 stops after 20: its later sets say MISSING, NaN values."""
    with Bus(domain, partition=partition) as bus:
        for i in (1, 2):
            _config(bus, f"PMU_{i}", i)
        pdc = Concentrator(bus, ["PMU_1", "PMU_2"], 0.05, pdc_id="PDC_9", state_period=0.2)
        sets = bus.reader("PDC_9", "Measurement")
        states = bus.reader("PDC_9", "State")
        runner = threading.Thread(target=pdc.run, args=(30.0,))
        runner.start()
        try:
            writers = {i: bus.writer(f"PMU_{i}") for i in (1, 2)}
            times = []
            for k in range(40):
                soc, frac = to_soc_fracsec(time.time(), 1_000_000)
                times.append(soc + frac / 1e6)
                for i in (1, 2):
                    if i == 2 and k >= 20:
                        continue
                    writers[i].write(
                        timestamp=soc + frac / 1e6, idcode=i, soc=soc, fracsec=frac, stat=0,
                        magnitude=[230.0 + i, float(k)], angle=[0.1 * i, -0.2], freq=50.0 + k / 1000, rocof=0.5,
                    )  # fmt: skip
                time.sleep(0.005)
            got: list = []
            deadline = time.monotonic() + 15
            while len(got) < 40 and time.monotonic() < deadline:
                got += [s for s in sets.take(0.5)]
        finally:
            pdc.stop()
            runner.join(10)
        assert len(got) >= 40
        first = {(s.soc, s.fracsec): s for s in got if _arrival(s)[1] != LATE}
        ordered = [first[k] for k in sorted(first)]
        assert len(ordered) == 40
        early, late = ordered[:20], ordered[20:]
        assert all(_arrival(s) == [ON_TIME, ON_TIME] for s in early)
        assert all(_arrival(s) == [ON_TIME, MISSING] for s in late)
        assert all(s.stat[1] & 0x8000 and math.isnan(s.freq[1]) for s in late)
        assert all(s.phasor_count == [2, 2] and math.isnan(s.magnitude[2]) for s in late)
        assert early[5].magnitude == [231.0, 5.0, 232.0, 5.0] and early[5].freq[0] == pytest.approx(50.005)
        assert [s.soc + s.fracsec / 1e6 for s in ordered] == pytest.approx(times, abs=1e-6)
        state = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (state is None or state.missing[1] < 20):
            state = next(iter(states.latest(0.5).values()), state)
        assert state.received == [40, 20] and state.missing == [0, 20] and state.late == [0, 0]
        assert state.completeness == [100.0, 50.0]
        assert all(0 <= v < 10 for v in state.latency_p50 + state.latency_p99) and state.window == 0.05
