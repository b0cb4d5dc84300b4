"""C37.118 time rules: UTC <-> TAI with the leap-second table, SOC/FRACSEC, time quality, STAT bits."""

from __future__ import annotations

import calendar

import pytest

from gridbus.errors import FieldError
from gridbus.pmu.time import (
    LEAP_OCCURRED,
    LEAP_PENDING,
    LEAP_SECONDS,
    STAT_SYNC_LOST,
    SyncState,
    from_soc_fracsec,
    quality_code,
    stat_time_bits,
    tai_minus_utc,
    tai_to_utc,
    time_quality,
    to_soc_fracsec,
    utc_to_tai,
)

NEW_YEAR_2017 = calendar.timegm((2017, 1, 1, 0, 0, 0))  # 1483228800


def test_tai_is_37_s_ahead_of_utc_since_2017_and_was_10_s_in_1972():
    assert NEW_YEAR_2017 == 1483228800
    assert tai_minus_utc(NEW_YEAR_2017) == 37
    assert utc_to_tai(calendar.timegm((2026, 11, 27, 10, 0, 0))) - calendar.timegm((2026, 11, 27, 10, 0, 0)) == 37
    assert tai_minus_utc(NEW_YEAR_2017 - 1) == 36  # 2016-12-31T23:59:59: the seed's 36 s
    assert tai_minus_utc(calendar.timegm((1972, 3, 1, 0, 0, 0))) == 10
    assert len(LEAP_SECONDS) == 27
    with pytest.raises(FieldError, match="before 1972"):
        tai_minus_utc(0.0)


def test_the_leap_second_2016_12_31t23_59_60():
    # TAI 1483228835 = 23:59:59 UTC (offset 36); the next TAI second is the inserted 23:59:60
    assert tai_to_utc(NEW_YEAR_2017 + 35).iso() == "2016-12-31T23:59:59"
    leap = tai_to_utc(NEW_YEAR_2017 + 36.25)
    assert leap.leap and leap.iso() == "2016-12-31T23:59:60"
    assert leap.posix == pytest.approx(NEW_YEAR_2017 - 1 + 0.25)  # POSIX repeats 23:59:59
    after = tai_to_utc(NEW_YEAR_2017 + 37)
    assert not after.leap and after.posix == NEW_YEAR_2017 and after.iso() == "2017-01-01T00:00:00"
    # round trip away from the leap second
    for utc in (NEW_YEAR_2017 - 3600.5, NEW_YEAR_2017 + 0.5, 1_795_000_000.125):
        assert tai_to_utc(utc_to_tai(utc)).posix == pytest.approx(utc)


def test_soc_fracsec_round_trip_and_carry():
    assert to_soc_fracsec(1_700_000_000.25) == (1_700_000_000, 250_000)
    assert to_soc_fracsec(1.9999999) == (2, 0)  # rounds up into the next second
    assert to_soc_fracsec(10.5, time_base=2**23) == (10, 2**22)
    assert from_soc_fracsec(1_700_000_000, 250_000) == 1_700_000_000.25
    # only the 24-bit count is read: a FRACSEC with its quality byte still set gives the same time
    assert from_soc_fracsec(5, (0x0F << 24) | 500_000) == 5.5
    with pytest.raises(FieldError, match="TIME_BASE"):
        to_soc_fracsec(1.0, time_base=1 << 24)
    with pytest.raises(FieldError, match="32-bit SOC"):
        to_soc_fracsec(-1.0)
    with pytest.raises(FieldError, match="FRACSEC count 30 is not below TIME_BASE 30"):
        from_soc_fracsec(5, 30, time_base=30)
    assert from_soc_fracsec(5, 29, time_base=30) == pytest.approx(5 + 29 / 30)


def test_time_quality_reflects_the_sync_state_and_leap_seconds():
    assert quality_code(SyncState(locked=True)) == 0
    assert quality_code(SyncState(locked=False, uncertainty=1e-6)) == 0x4  # within 1 us
    assert quality_code(SyncState(locked=False, uncertainty=5e-3)) == 0x8  # within 10 ms
    assert quality_code(SyncState(locked=False, uncertainty=float("inf"))) == 0xF
    assert time_quality(NEW_YEAR_2017 - 30, SyncState()) == LEAP_PENDING
    assert time_quality(NEW_YEAR_2017 + 3600, SyncState()) == LEAP_OCCURRED
    assert time_quality(NEW_YEAR_2017 + 2 * 86400, SyncState(False, 2e-3)) == 0x8
    assert stat_time_bits(SyncState()) == 2 << 6  # locked, < 1 us
    unlocked = stat_time_bits(SyncState(locked=False, uncertainty=0.5, unlocked_for=500))
    assert unlocked & STAT_SYNC_LOST and (unlocked >> 6) & 7 == 7 and (unlocked >> 4) & 3 == 2
