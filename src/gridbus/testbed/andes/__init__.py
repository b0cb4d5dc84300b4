"""The ANDES engine: a standard power-system test case, simulated by ANDES, on the bus.

LTB (the CURENT Large-scale Testbed) couples ANDES to its sensors, EMS and
controllers through a messaging server (DiME).  Here ANDES is one more
:class:`~gridbus.testbed.engine.Engine` of the testbed service, so it publishes
on the lab's topics and obeys the lab's commands, peer to peer:

* :mod:`.scenario` — the scenario file (timed events, sensors, PMUs);
* :mod:`.case` — the ANDES case, its object ids and the events compiled in;
* :mod:`.network` — branch and bus admittances (flows for the engine, the EMS's model);
* :mod:`.engine` — :class:`AndesEngine`, stepped by the service;
* :mod:`.pmus` — C37.118 frames from the simulator's phasors;
* :mod:`.offline` — the same case and scenario run by ANDES alone (the reference).

``andes`` is the optional extra ``gridbus[andes]``: importing this package
does not import it; building a case does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .scenario import Event, Scenario, empty_scenario, load_scenario, scenario_file

if TYPE_CHECKING:
    from .engine import AndesEngine

__all__ = ["Event", "Scenario", "empty_scenario", "load_scenario", "open_engine", "scenario_file"]


def open_engine(
    case: str | None = None,
    scenario: str | Path | Scenario | None = None,
    pmu_buses: list[str] | None = None,
    step: float = 1 / 30,
) -> AndesEngine:
    """An :class:`~.engine.AndesEngine` for ``case`` (or the scenario's) with ``scenario`` compiled in."""
    from .case import AndesCase
    from .engine import AndesEngine

    if isinstance(scenario, Scenario):
        chosen = scenario
    elif scenario is not None:
        chosen = load_scenario(scenario)
    else:
        chosen = empty_scenario(case or "ieee14")
    if case is not None:
        chosen.case = case
    if pmu_buses is not None:
        chosen.pmu_buses = pmu_buses
    return AndesEngine(AndesCase(chosen, step=step))
