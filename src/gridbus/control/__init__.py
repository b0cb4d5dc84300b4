"""Automation controllers (section 6 of the DDS paper, Figures 11-15).

State machines that drive the testbed through the bus only — the same code
runs against the virtual testbed and against a lab:

* :class:`~.generators.SlackStartup` — slack generator startup/shutdown (Fig. 12);
* :class:`~.generators.PowerStartup` — power-controlled generator startup/shutdown (Fig. 13);
* :class:`~.synchronizer.Synchronizer` — frequency, voltage and phase matching (Fig. 14);
* :class:`~.main.MainController` — start in order, topology, loads, ready; safe shutdown (Fig. 15).

Every transition is published on ``Controller_State`` (``CTRL_x``); a stale or
missing measurement stops a sequence (stage FAULT) instead of acting on old data.
Their time is the testbed's simulated time, read from its data (:class:`~.clock.DataClock`).
"""

from .clock import Clock, DataClock
from .statemachine import StaleMeasurement, StateMachine
from .view import GridView

__all__ = ["Clock", "DataClock", "GridView", "StaleMeasurement", "StateMachine"]
