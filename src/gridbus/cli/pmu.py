"""``gridbus pmu ...``: synchrophasors (IEEE C37.118) on the bus.

The group only gathers its subcommands; each lives in the module of its concept:

- ``pmu_sim.py``: ``pmu sim`` (virtual PMUs) and ``pmu test`` (compliance tests)
- ``pmu_stream.py``: ``pmu gateway`` (C37.118.2 client and server) and ``pmu pdc``
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import pmu_sim, pmu_stream

if TYPE_CHECKING:
    from .common import Subcommands


def register(sub: Subcommands) -> None:
    """Add ``pmu`` and its subcommands to the ``gridbus`` subcommands."""
    parser = sub.add_parser("pmu", help="synchrophasors: virtual PMUs, C37.118 gateway, PDC, compliance tests")
    pmus = parser.add_subparsers(dest="pmu_command", required=True, metavar="PMU_COMMAND")
    pmu_sim.add_commands(pmus)
    pmu_stream.add_commands(pmus)
