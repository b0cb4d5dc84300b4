"""C37.118 time for the PMUs: re-exported from :mod:`gridbus.c37time`, its home below both
``pmu/`` and ``synchrophasor/`` (the frame codec reads SOC/FRACSEC with the same rules)."""

from __future__ import annotations

from ..c37time import FRACSEC_MAX as FRACSEC_MAX
from ..c37time import LEAP_DIRECTION as LEAP_DIRECTION
from ..c37time import LEAP_OCCURRED as LEAP_OCCURRED
from ..c37time import LEAP_PENDING as LEAP_PENDING
from ..c37time import LEAP_SECONDS as LEAP_SECONDS
from ..c37time import STAT_CONFIG_CHANGED as STAT_CONFIG_CHANGED
from ..c37time import STAT_DATA_INVALID as STAT_DATA_INVALID
from ..c37time import STAT_PMU_ERROR as STAT_PMU_ERROR
from ..c37time import STAT_SYNC_LOST as STAT_SYNC_LOST
from ..c37time import STAT_TEST_MODE as STAT_TEST_MODE
from ..c37time import TAI_UTC_1972 as TAI_UTC_1972
from ..c37time import TIME_BASE as TIME_BASE
from ..c37time import TQ_FAULT as TQ_FAULT
from ..c37time import TQ_LOCKED as TQ_LOCKED
from ..c37time import UTC_1972 as UTC_1972
from ..c37time import SyncState as SyncState
from ..c37time import UtcTime as UtcTime
from ..c37time import check_time_base as check_time_base
from ..c37time import from_soc_fracsec as from_soc_fracsec
from ..c37time import leap_bits as leap_bits
from ..c37time import quality_code as quality_code
from ..c37time import stat_time_bits as stat_time_bits
from ..c37time import tai_minus_utc as tai_minus_utc
from ..c37time import tai_to_utc as tai_to_utc
from ..c37time import time_quality as time_quality
from ..c37time import to_soc_fracsec as to_soc_fracsec
from ..c37time import utc_to_tai as utc_to_tai
