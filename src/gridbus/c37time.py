"""C37.118 time: SOC/FRACSEC, TIME_BASE, the time-quality byte, the STAT time bits, UTC <-> TAI.

Every C37.118 time in gridbus is **UTC** (POSIX seconds: a UTC calendar with
leap seconds left out).  PTP and GPS receivers count TAI, which is ahead of UTC
by the leap seconds inserted since 1972 (10 s then, 37 s since 2017-01-01).
The PMU testbed this project grew from lost exactly 36 s by mixing the two
(a TAI PTP clock fed to a UTC PDC, minus one GPS-era adjustment), so the
conversion is never implicit here: :func:`utc_to_tai` and :func:`tai_to_utc`
with the leap-second table below, and nothing else.
"""

from __future__ import annotations

import bisect
import calendar
import math
import time
from dataclasses import dataclass

from .errors import FieldError

TIME_BASE = 1_000_000  # FRACSEC counts per second used by gridbus PMUs (microseconds)
FRACSEC_MAX = (1 << 24) - 1  # FRACSEC is a 24-bit count

# The UTC instants (POSIX s) at which TAI - UTC changed, and its value from then on (IERS Bulletin C).
_LEAP_DATES = (
    "1972-07-01", "1973-01-01", "1974-01-01", "1975-01-01", "1976-01-01", "1977-01-01", "1978-01-01",
    "1979-01-01", "1980-01-01", "1981-07-01", "1982-07-01", "1983-07-01", "1985-07-01", "1988-01-01",
    "1990-01-01", "1991-01-01", "1992-07-01", "1993-07-01", "1994-07-01", "1996-01-01", "1997-07-01",
    "1999-01-01", "2006-01-01", "2009-01-01", "2012-07-01", "2015-07-01", "2017-01-01",
)  # fmt: skip
TAI_UTC_1972 = 10  # s, TAI - UTC on 1972-01-01, when UTC got whole-second steps
UTC_1972 = 63_072_000  # POSIX time of 1972-01-01T00:00:00Z
LEAP_SECONDS = tuple(calendar.timegm(time.strptime(d, "%Y-%m-%d")) for d in _LEAP_DATES)
"""POSIX times of the instants just after each inserted leap second (all positive: none deleted yet)."""

# time-quality byte (FRACSEC bits 31-24)
LEAP_DIRECTION = 0x40  # 1: the pending/last leap second is deleted; 0: added
LEAP_OCCURRED = 0x20  # set in the 24 h after a leap second
LEAP_PENDING = 0x10  # set up to 60 s before a leap second
TQ_LOCKED = 0x0  # clock locked to UTC-traceable time, normal operation
TQ_FAULT = 0xF  # clock failure, time not reliable

# STAT word bits (C37.118.2-2011, table 7)
STAT_DATA_INVALID = 0xC000  # bits 15-14 = 11: PMU error, do not use the values
STAT_PMU_ERROR = 0x4000
STAT_TEST_MODE = 0x8000
STAT_SYNC_LOST = 0x2000  # bit 13: PMU not in sync with a UTC source
STAT_CONFIG_CHANGED = 0x0400


def tai_minus_utc(utc: float) -> int:
    """TAI - UTC (s) in force at POSIX time ``utc`` (37 since 2017-01-01; 10 in early 1972).

    Before 1972 UTC had fractional steps and rate offsets; gridbus refuses those times.
    """
    if not math.isfinite(utc) or utc < UTC_1972:
        raise FieldError(f"UTC time {utc!r} is before 1972-01-01: no whole-second TAI - UTC offset then")
    return TAI_UTC_1972 + bisect.bisect_right(LEAP_SECONDS, utc)


def utc_to_tai(utc: float) -> float:
    """TAI seconds since 1970-01-01T00:00:00 TAI (the PTP time scale) of POSIX UTC time ``utc``."""
    return utc + tai_minus_utc(utc)


@dataclass(frozen=True)
class UtcTime:
    """A UTC instant: POSIX seconds, and whether it lies inside an inserted leap second.

    During a leap second (``23:59:60``) POSIX has no number of its own; ``posix``
    then repeats 23:59:59 (its fraction still runs) and ``leap`` is True.
    """

    posix: float
    leap: bool = False

    def iso(self) -> str:
        """ISO 8601 with whole seconds, ``...T23:59:60`` inside a leap second."""
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(math.floor(self.posix)))
        return text[:-2] + "60" if self.leap else text


def tai_to_utc(tai: float) -> UtcTime:
    """The UTC time of TAI (PTP) seconds ``tai``: subtract the TAI - UTC offset in force then."""
    if not math.isfinite(tai) or tai < UTC_1972 + TAI_UTC_1972:
        raise FieldError(f"TAI time {tai!r} is before 1972-01-01: no whole-second TAI - UTC offset then")
    for n in range(len(LEAP_SECONDS) - 1, -1, -1):
        offset = TAI_UTC_1972 + n + 1
        start = LEAP_SECONDS[n] + offset  # TAI of the first instant after leap second n
        if tai >= start:
            return UtcTime(tai - offset)
        if tai >= start - 1:  # inside the inserted second: POSIX repeats 23:59:59
            return UtcTime(tai - offset, leap=True)
    return UtcTime(tai - TAI_UTC_1972)


# -- SOC / FRACSEC -------------------------------------------------------------------------
def to_soc_fracsec(utc: float, time_base: int = TIME_BASE) -> tuple[int, int]:
    """(SOC, FRACSEC count) of POSIX UTC time ``utc``: whole seconds and the fraction in 1/time_base.

    Rounded to the nearest count; a fraction that rounds up to a whole second carries into SOC.
    """
    check_time_base(time_base)
    if not math.isfinite(utc) or not 0 <= utc < 2**32:
        raise FieldError(f"UTC time {utc!r} does not fit a 32-bit SOC")
    soc = math.floor(utc)
    count = round((utc - soc) * time_base)
    if count >= time_base:
        soc, count = soc + 1, 0
    return soc, count


def from_soc_fracsec(soc: int, fracsec: int, time_base: int = TIME_BASE) -> float:
    """POSIX UTC seconds of (SOC, FRACSEC count); only the 24-bit count of ``fracsec`` is read.

    The count must be below ``time_base`` (it is a fraction of one second).
    """
    check_time_base(time_base)
    count = fracsec & FRACSEC_MAX
    if count >= time_base:
        raise FieldError(f"FRACSEC count {count} is not below TIME_BASE {time_base}: not a fraction of a second")
    return soc + count / time_base


def check_time_base(time_base: int) -> None:
    """TIME_BASE must be 1..2^24-1 (the count has 24 bits)."""
    if not 0 < time_base <= FRACSEC_MAX:
        raise FieldError(f"TIME_BASE {time_base!r} must be 1..{FRACSEC_MAX} (FRACSEC is a 24-bit count)")


# -- time quality --------------------------------------------------------------------------
@dataclass(frozen=True)
class SyncState:
    """What the PMU's time source says of itself: locked to UTC or not, and its uncertainty (s)."""

    locked: bool = True
    uncertainty: float = 1e-6  # s
    unlocked_for: float = 0.0  # s since the source lost its lock (0 while locked)


def quality_code(sync: SyncState) -> int:
    """The 4-bit time-quality code of C37.118.2 table 3 (0 locked, 1..0xB the uncertainty decade, 0xF fault)."""
    if sync.locked:
        return TQ_LOCKED
    if not math.isfinite(sync.uncertainty) or sync.uncertainty >= 10.0:
        return TQ_FAULT
    # 1 ns -> 1, 10 ns -> 2, ..., 10 s -> 0xB: the smallest decade that bounds the uncertainty
    decade = math.ceil(math.log10(max(sync.uncertainty, 1e-9)) + 9 - 1e-9)
    return max(1, min(0xB, decade + 1))


def leap_bits(utc: float) -> int:
    """Leap-second bits of the time-quality byte at POSIX time ``utc`` (all leap seconds so far were added).

    Pending: in the 60 s before a leap second; occurred: in the 24 h after one.
    """
    n = bisect.bisect_right(LEAP_SECONDS, utc)
    bits = 0
    if n < len(LEAP_SECONDS) and 0 < LEAP_SECONDS[n] - utc <= 60:
        bits |= LEAP_PENDING
    if n > 0 and utc - LEAP_SECONDS[n - 1] < 86400:
        bits |= LEAP_OCCURRED
    return bits


def time_quality(utc: float, sync: SyncState) -> int:
    """FRACSEC's top byte: leap-second bits and the time-quality code."""
    return leap_bits(utc) | quality_code(sync)


def stat_time_bits(sync: SyncState) -> int:
    """The STAT word's time bits: sync lost (13), PMU time quality (8-6), unlocked time (5-4)."""
    stat = 0 if sync.locked else STAT_SYNC_LOST
    u = sync.uncertainty
    for code, bound in enumerate((1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2), start=1):
        if u <= bound:
            stat |= code << 6
            break
    else:
        stat |= 7 << 6
    if not sync.locked:
        t = sync.unlocked_for
        stat |= (0 if t < 10 else 1 if t < 100 else 2 if t < 1000 else 3) << 4
    return stat
