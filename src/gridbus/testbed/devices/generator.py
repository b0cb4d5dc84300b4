"""A synchronous generator with its prime mover, governor, voltage regulator and synchronizer.

The machine turns alone while its breaker is open (its own speed and rotor
angle, which is what a synchronizer has to match) and with its island once it
is closed: the island's common speed is the plant's business
(:meth:`gridbus.testbed.plant.Plant.step`), the governor, the AVR and the
start/stop sequence are the machine's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import (
    LIVE,
    RATED_RPM,
    Band,
    Device,
    Stage,
    need,
    need_ref,
    one_of,
    unit,
    wrap,
)

if TYPE_CHECKING:
    from ..plant import Plant
    from ..system import System


@dataclass
class GeneratorParams:
    """What the system file says of a generator (``[[generator]]``)."""

    id: str
    bus: str
    breaker: str
    rating: float = unit("VA", positive=True)
    H: float = unit("s", 1.0, positive=True)  # inertia constant of generator + prime mover
    mode: str = "POWER"  # SPEED for the slack machine
    f_ref: float = unit("Hz", 60.0, positive=True)
    V_ref: float = unit("V", 120.0, positive=True)  # phase
    P_ref: float = unit("W", 0.0)  # for POWER mode
    droop: float = unit("pu", 0.05, positive=True)  # speed change for 1 pu power (POWER mode)
    Tg: float = unit("s", 0.5, positive=True)  # governor / prime-mover lag
    Kp: float = unit("pu/pu", 8.0, non_negative=True)  # power per speed error (SPEED mode)
    Ki: float = unit("pu/(pu s)", 4.0, non_negative=True)  # power per speed error·s (SPEED mode)
    accel: float = unit("pu/s", 0.2, positive=True)  # speed ramp while starting (the drive's)
    Ta: float = unit("s", 0.4, positive=True)  # AVR time constant
    losses: float = unit("pu", 0.01, non_negative=True)  # no-load mechanical losses
    P_max: float = unit("W", 0.0, non_negative=True)  # prime-mover limit (0 = the rating)
    # bands of the references the testbed obeys (P_ref is obeyed within ±rating)
    f_max: float = unit("Hz", 0.0, non_negative=True)  # highest f_ref (0 = 1.2 × the system frequency)
    V_min: float = unit("V", 0.0, non_negative=True)  # lowest V_ref (0 = 0.5 × the system voltage)
    V_max: float = unit("V", 0.0, non_negative=True)  # highest V_ref (0 = 1.2 × the system voltage)

    def check(self, system: System) -> None:
        """Its bus and mode; its bands, the defaults filled from the system's frequency and voltage."""
        need_ref("bus", self.bus, system.buses, "bus")
        one_of("mode", self.mode, ("SPEED", "POWER"))
        self.f_max = self.f_max or 1.2 * system.frequency
        self.V_min = self.V_min or 0.5 * system.voltage
        self.V_max = self.V_max or 1.2 * system.voltage
        need(self.f_ref <= self.f_max, "f_ref", f"f_ref {self.f_ref} is above f_max {self.f_max:g}")
        need(self.V_min < self.V_max, "V_max", f"V_max {self.V_max:g} must be above V_min {self.V_min:g}")
        need(
            self.V_min <= self.V_ref <= self.V_max,
            "V_ref",
            f"V_ref {self.V_ref} is outside V_min..V_max ({self.V_min:g}..{self.V_max:g} V)",
        )
        need(abs(self.P_ref) <= self.rating, "P_ref", f"P_ref {self.P_ref} is beyond its rating {self.rating:g}")


@dataclass
class GeneratorState:
    """The dynamic state of one generator and its prime mover."""

    status: str = "OFF"  # OFF STARTING RUNNING STOPPING FAULT
    mode: str = "POWER"
    f_ref: float = unit("Hz", 60.0)
    P_ref: float = unit("W", 0.0)
    V_ref: float = unit("V", 120.0)
    omega: float = unit("pu", 0.0)  # speed
    omega_target: float = unit("pu", 0.0)  # ramped speed reference
    delta: float = unit("rad", 0.0)  # rotor (terminal voltage) angle, nominal frame
    pm: float = unit("pu", 0.0)  # mechanical power, of the rating
    integral: float = 0.0  # speed-governor integrator
    E: float = unit("V", 0.0)  # regulated terminal voltage
    P: float = unit("W", 0.0)  # electrical output
    Q: float = unit("var", 0.0)
    autosync: bool = False
    ready: bool = False
    direction: str = "FORWARD"  # FORWARD or REVERSE, as commanded (the drive's own setting)

    @property
    def running(self) -> bool:
        return self.status in ("STARTING", "RUNNING", "STOPPING")


class GeneratorDevice(Device[GeneratorParams, GeneratorState]):
    prefix = "G"
    section = "generator"
    system_attr = "generators"
    params_type = GeneratorParams
    stage = Stage.MACHINES
    stateful = True
    commanded = True

    def initial(self, params: GeneratorParams) -> GeneratorState:
        return GeneratorState(mode=params.mode, f_ref=params.f_ref, P_ref=params.P_ref, V_ref=params.V_ref)

    @property
    def rating(self) -> float:
        return self.params.rating

    @property
    def p_max(self) -> float:
        return (self.params.P_max or self.params.rating) / self.params.rating

    def electrical(self) -> float:
        """Electrical output (W) of a machine that follows its prime mover."""
        m = self.var
        return (m.pm - self.params.losses * m.omega**2) * self.rating

    # -- commands ---------------------------------------------------------------------
    def limits(self) -> dict[str, Band]:
        g = self.params
        return {
            "f_ref": (0.0, g.f_max, f"f_max {g.f_max:g} Hz"),
            "P_ref": (-g.rating, g.rating, f"rating ±{g.rating:g} W"),
            "V_ref": (g.V_min, g.V_max, f"V_min..V_max {g.V_min:g}..{g.V_max:g} V"),
        }

    def command(self, plant: Plant, fields: dict[str, Any]) -> None:
        m, gid = self.var, self.id
        for key in ("f_ref", "P_ref", "V_ref"):
            if key in fields:
                setattr(m, key, float(fields[key]))
        if fields.get("mode") in ("SPEED", "POWER") and fields["mode"] != m.mode:
            m.mode = fields["mode"]
            plant.events.append(("state", gid))
        action = fields.get("action", "NONE")
        if action == "START" and m.status in ("OFF", "STOPPING", "FAULT"):
            m.status, m.omega_target = "STARTING", m.omega
            plant.events.append(("state", gid))
        elif action == "STOP" and m.status != "OFF":
            m.status, m.autosync = "STOPPING", False
            cb = plant.breaker_of.get(gid)
            if cb and plant.is_closed(cb):
                plant.open(cb, trip=True, detail=f"{gid} stopped: its breaker opened first")
            plant.events.append(("state", gid))
        elif action == "SYNCHRONIZE" and m.running:
            m.autosync = True
        elif action == "RESET" and m.status == "FAULT":  # a drive fault cleared: stopped, ready to start
            m.status, m.omega, m.E, m.pm = "OFF", 0.0, 0.0, 0.0
            plant.events.append(("state", gid))
        if fields.get("direction") in ("FORWARD", "REVERSE") and fields["direction"] != m.direction:
            m.direction = fields["direction"]
            plant.events.append(("state", gid))

    # -- time -------------------------------------------------------------------------
    def step(self, plant: Plant, dt: float) -> None:
        if self.id not in plant.connected:
            self._alone(plant.f0, dt)
        self._governor(plant.f0, dt, len(plant.island_of(self.id)) > 1)
        self._voltage_regulator(dt)
        self._status(plant)
        if self.var.autosync:
            self._autosync(plant)

    def _alone(self, f0: float, dt: float) -> None:
        """A machine on an open breaker: its own speed and angle, no electrical load."""
        m, cfg = self.var, self.params
        accel = (m.pm - cfg.losses * m.omega**2) / (2 * cfg.H)
        m.omega = max(0.0, m.omega + dt * accel)
        m.delta = wrap(m.delta + 2 * math.pi * f0 * (m.omega - 1.0) * dt)
        m.P = m.Q = 0.0

    def _governor(self, f0: float, dt: float, shared: bool) -> None:
        """Speed control (slack, or any machine alone) or power control with droop."""
        m, cfg = self.var, self.params
        if m.status in ("OFF", "FAULT"):
            m.pm = m.integral = 0.0
            return
        if m.status == "STOPPING":
            command = -2 * cfg.H * cfg.accel  # the drive brakes along its ramp
        else:
            target = m.f_ref / f0
            ramp = float(np.clip(target - m.omega_target, -cfg.accel * dt, cfg.accel * dt))
            m.omega_target += ramp
            losses = cfg.losses * m.omega**2
            if m.mode == "POWER" and shared:
                # power control holds the electrical output at P_ref, with speed droop
                command = m.P_ref / self.rating + losses + (m.omega_target - m.omega) / cfg.droop
                m.integral = m.pm
            else:
                # speed control: PI on the speed error plus the torque the ramp itself needs
                error = m.omega_target - m.omega
                m.integral = float(np.clip(m.integral + cfg.Ki * error * dt, -0.1, self.p_max))
                command = cfg.Kp * error + m.integral + 2 * cfg.H * ramp / dt
            command = float(np.clip(command, -0.1, self.p_max))
        m.pm += (command - m.pm) * min(1.0, dt / cfg.Tg)

    def _voltage_regulator(self, dt: float) -> None:
        m = self.var
        excited = m.status in ("STARTING", "RUNNING")
        target = m.V_ref * min(1.0, m.omega / 0.9) if excited else 0.0
        m.E += (target - m.E) * min(1.0, dt / self.params.Ta)

    def _status(self, plant: Plant) -> None:
        m, f0 = self.var, plant.f0
        before = (m.status, m.ready, plant.in_service(self.id))
        if m.status == "STARTING" and m.omega > 0.97 * m.f_ref / f0 and m.E > 0.9 * m.V_ref:
            m.status = "RUNNING"
        elif m.status == "STOPPING" and m.omega < 0.02:
            m.status, m.omega, m.E, m.pm = "OFF", 0.0, 0.0, 0.0
        m.ready = m.status == "RUNNING" and abs(m.omega * f0 - m.f_ref) < 0.2 and abs(m.E - m.V_ref) < 0.05 * m.V_ref
        if (m.status, m.ready, plant.in_service(self.id)) != before:
            plant.events.append(("state", self.id))

    def _autosync(self, plant: Plant) -> None:
        """The generator's own automatic synchronizer (the SYNCHRONIZE command)."""
        m = self.var
        cb = plant.breaker_of.get(self.id)
        if cb is None or plant.is_closed(cb):
            m.autosync = False
            return
        v_bus, a_bus, f_bus = plant.bus_side(self.params.bus)
        if v_bus < LIVE * plant.v_base:
            return
        dphi = wrap(a_bus - m.delta)
        m.f_ref = f_bus + float(np.clip(0.05 * dphi, -0.1, 0.1))
        m.V_ref = v_bus
        if abs(m.omega * plant.f0 - f_bus) < 0.1 and abs(m.E - v_bus) < 2.0 and abs(math.degrees(dphi)) < 5:
            m.autosync = False
            m.f_ref, m.V_ref = plant.f0, self.params.V_ref
            if plant.close(cb):
                m.mode = "POWER"
                plant.events.append(("state", self.id))

    # -- what the sensors see ---------------------------------------------------------
    def measure(self, plant: Plant) -> dict[str, float]:
        m = self.var
        v = m.E if not plant.in_service(self.id) else plant.bus_voltage(self.params.bus)
        i = math.hypot(m.P, m.Q) / (3 * v) if v > 1.0 else 0.0
        f = m.omega * plant.f0 if m.E > LIVE * plant.v_base else 0.0
        return {
            "Va": v,
            "Vb": v,
            "Vc": v,
            "Ia": i,
            "Ib": i,
            "Ic": i,
            "f": f,
            "P": m.P,
            "Q": m.Q,
            "speed": m.omega * RATED_RPM,
            "angle": wrap(m.delta),
        }

    def state(self, plant: Plant) -> dict[str, Any]:
        m = self.var
        return {
            "status": m.status,
            "mode": m.mode,
            "sync": plant.in_service(self.id) and m.running,
            "ready": m.ready,
            "direction": m.direction,
            "at_speed": m.status == "RUNNING" and abs(m.omega * plant.f0 - m.f_ref) < 0.2,
            "fault_code": 1 if m.status == "FAULT" else 0,  # the testbed has one kind of trip
            "f_ref_applied": m.f_ref,
            "P_ref_applied": m.P_ref,
        }
