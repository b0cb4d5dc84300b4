"""The virtual testbed's physics, checked on the plant itself (no bus needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gridbus.errors import UnknownObjectError
from gridbus.model import Registry
from gridbus.testbed.plant import CommandRejected, Plant
from gridbus.testbed.sensors import Sensors
from gridbus.testbed.system import load_system


def started(*closed: str) -> Plant:
    """The shipped testbed with G_1 running and the given breakers closed."""
    plant = Plant(load_system())
    plant.command("G_1", {"action": "START"})
    plant.run(10)
    for cb in ("CB_G1", *closed):
        assert plant.close(cb), cb
    plant.run(2)
    return plant


def synchronize(plant: Plant, gid: str, p_ref: float) -> None:
    plant.command(gid, {"action": "START"})
    plant.run(8)
    plant.command(gid, {"action": "SYNCHRONIZE"})
    cb = plant.breaker_of[gid]
    for _ in range(5000):
        plant.step()
        if plant.breakers[cb]:
            break
    assert plant.breakers[cb], f"{gid} did not synchronize"
    plant.command(gid, {"P_ref": p_ref})


def test_slack_start_reaches_nominal_voltage_and_frequency():
    plant = Plant(load_system())
    g1 = plant.machines["G_1"]
    assert g1.status == "OFF" and plant.measurements()["G_1"]["f"] == 0.0
    plant.command("G_1", {"action": "START"})
    plant.run(2)
    assert g1.status == "STARTING" and 0 < g1.omega < 0.9  # ramping, not a jump
    plant.run(8)
    m = plant.measurements()["G_1"]
    assert g1.status == "RUNNING" and g1.ready
    assert m["f"] == pytest.approx(60.0, abs=0.05)
    assert 115.0 <= m["Va"] <= 121.0
    assert m["speed"] == pytest.approx(1800.0, abs=2.0)


def test_power_balance_generation_equals_load_plus_line_losses():
    plant = started("CB_1-2", "CB_1-8", "CB_L1", "CB_2-5", "CB_5-6", "CB_6-7", "CB_L3", "CB_L4")
    plant.command("L_4", {"P_ref": 1200.0})
    plant.run(5)
    generation = sum(m.P for m in plant.machines.values())
    load = plant.total_load()
    losses = sum(line.R * 3 * plant.line_I[tid] ** 2 for tid, line in plant.system.lines.items())
    assert load == pytest.approx(600 + 300 + 1200)
    assert generation == pytest.approx(load + losses, rel=1e-3)
    assert 0 < losses < 0.1 * load


def test_line_flow_at_the_from_end_is_the_load_plus_the_line_loss():
    """G_1 feeds L_1 (600 W, unity power factor) over TL_1-8 alone: P = load + 3·R·I²."""
    plant = started("CB_1-8", "CB_L1")
    m = plant.measurements()
    line = plant.system.lines["TL_1-8"]
    current = m["TL_1-8"]["Ia"]
    loss = 3 * line.R * current**2
    assert m["L_1"]["P"] == pytest.approx(600.0)
    assert 1.0 < loss < 20.0
    assert m["TL_1-8"]["P"] == pytest.approx(m["L_1"]["P"] + loss, abs=0.5)
    # the line absorbs vars in its reactance and gives back a little from its shunt
    assert m["TL_1-8"]["Q"] == pytest.approx(3 * line.X * current**2, abs=1.5)
    assert m["G_1"]["P"] == pytest.approx(m["TL_1-8"]["P"], rel=1e-3)  # the line is all G_1 feeds
    assert m["TL_1-2"]["P"] == m["TL_1-2"]["Q"] == 0.0  # open: no flow


def test_load_step_dips_frequency_then_the_slack_governor_restores_it():
    plant = started("CB_1-8", "CB_L1")
    assert plant.bus_f[0] == pytest.approx(60.0, abs=0.01)
    plant.command("L_1", {"P_ref": 1600.0})  # +1 kW step
    lowest = 60.0
    for _ in range(100):
        plant.step()
        lowest = min(lowest, plant.bus_f[0])
    assert 59.5 < lowest < 59.98  # a visible, bounded dip
    plant.run(5)
    assert plant.bus_f[0] == pytest.approx(60.0, abs=0.01)  # isochronous slack
    assert plant.machines["G_1"].P == pytest.approx(1600.0, rel=0.02)


def test_radial_feeder_sags_with_load_and_the_ring_restores_the_voltage():
    """Case 3 of the paper: load 4 at the end of TL 1-2, 2-5, 5-6, 6-7."""
    plant = started("CB_1-2", "CB_2-5", "CB_4-5", "CB_5-6", "CB_6-7", "CB_L3", "CB_L4")
    synchronize(plant, "G_2", 0.0)
    synchronize(plant, "G_3", 300.0)
    voltages = []
    for p4 in (500.0, 900.0, 1300.0, 1700.0):
        plant.command("L_4", {"P_ref": p4})
        plant.run(3)
        voltages.append(plant.measurements()["Bus_7"]["Va"])
    assert all(a > b for a, b in zip(voltages, voltages[1:], strict=False)), voltages
    assert 111.0 < voltages[-1] < 114.0  # below the 114 V limit, like Fig. 19
    assert plant.close("CB_1-6")
    plant.run(3)
    ring = plant.measurements()["Bus_7"]["Va"]
    assert ring >= 114.0 and ring - voltages[-1] > 1.5
    assert plant.machines["G_3"].P == pytest.approx(300.0, abs=10.0)


def test_open_machine_keeps_its_own_frequency_and_angle():
    plant = started("CB_1-2")
    plant.command("G_2", {"action": "START", "f_ref": 60.5})
    plant.run(10)
    g1, g2 = plant.measurements()["G_1"], plant.measurements()["G_2"]
    assert g2["f"] == pytest.approx(60.5, abs=0.05) and g1["f"] == pytest.approx(60.0, abs=0.05)
    angles = []
    for _ in range(3):
        plant.run(0.5)
        angles.append(plant.measurements()["G_2"]["angle"] - plant.measurements()["G_1"]["angle"])
    slips = [(b - a) % (2 * math.pi) for a, b in zip(angles, angles[1:], strict=False)]
    # a 0.5 Hz slip turns the phase difference by a quarter turn every 0.5 s
    assert all(s == pytest.approx(math.pi / 2, abs=0.1) for s in slips)


def test_out_of_phase_closure_trips_and_reports_the_differences():
    plant = started("CB_1-2")
    plant.command("G_2", {"action": "START", "f_ref": 61.5})
    plant.run(10)
    plant.events.clear()
    assert plant.close("CB_G2") is False
    assert plant.breakers["CB_G2"] is False
    faults = [p for kind, p in plant.events if kind == "protection"]
    assert len(faults) == 1 and faults[0]["fault"] == "OUT_OF_PHASE_CLOSURE" and faults[0]["trip"]
    assert faults[0]["df"] == pytest.approx(1.5, abs=0.1)


def test_synchronized_closure_shares_load_by_power_control():
    plant = started("CB_1-8", "CB_L1", "CB_1-2")
    synchronize(plant, "G_2", 300.0)
    closure = [p for kind, p in plant.events if kind == "protection" and p["id"] == "CB_G2"][-1]
    limits = plant.system.protection
    assert closure["fault"] == "NO_FAULT"
    assert abs(closure["df"]) < limits.max_df and abs(math.degrees(closure["dphi"])) < limits.max_dphi
    plant.run(5)
    assert plant.machines["G_2"].P == pytest.approx(300.0, abs=5.0)
    assert plant.machines["G_1"].P == pytest.approx(
        300.0 + sum(line.R * 3 * plant.line_I[t] ** 2 for t, line in plant.system.lines.items()), abs=5.0
    )


def test_stopping_a_connected_generator_opens_its_breaker_and_the_slack_takes_over():
    plant = started("CB_1-8", "CB_L1", "CB_1-2")
    synchronize(plant, "G_2", 300.0)
    plant.run(3)
    plant.events.clear()
    plant.command("G_2", {"action": "STOP"})
    assert plant.breakers["CB_G2"] is False
    plant.run(20)
    assert plant.machines["G_2"].status == "OFF"
    assert plant.machines["G_1"].P == pytest.approx(600.0, rel=0.02)
    assert any(kind == "protection" and p["id"] == "CB_G2" and p["trip"] for kind, p in plant.events)


def test_microgrid_exports_its_reference_and_its_battery_balances():
    plant = started("CB_1-8", "CB_8-9", "CB_9-10", "CB_MG1")
    plant.command("MG_1", {"P_ref": 1000.0})
    plant.command("PV_EM_1", {"Ir_ref": 1000.0})
    plant.command("W_EM_1", {"Ws_ref": 12.0})
    plant.run(2)
    m = plant.measurements()
    assert m["MG_1"]["P"] == pytest.approx(1000.0)
    assert m["PV_EM_1"]["P"] == pytest.approx(3000.0) and m["W_EM_1"]["P"] == pytest.approx(2000.0)
    # 5 kW of sources, 1 kW exported: the battery charges (negative current) and SoC rises
    soc = m["ES_1"]["SoC"]
    assert m["ES_1"]["I"] < 0
    plant.run(10)
    assert plant.measurements()["ES_1"]["SoC"] > soc
    # islanded: nothing flows to the AC grid
    plant.command("MG_1", {"mode": "ISLANDED"})
    plant.run(1)
    assert plant.measurements()["MG_1"]["P"] == 0.0
    assert ("state", "MG_1") in plant.events


def test_unknown_object_in_a_command_is_refused():
    plant = Plant(load_system())
    with pytest.raises(UnknownObjectError, match="G_9"):
        plant.command("G_9", {"action": "START"})


def test_sensors_add_noise_bias_quantization_and_delay():
    system = load_system()
    system.sensors = [("G_1.f", type(system.sensor("x", "y"))(noise=0.01, quantum=0.005, bias=0.1, delay=0.5))]
    sensors = Sensors(system, seed=3)
    topic = Registry.default().parse_id("G_1").topics["Measurement"]
    readings = []
    for step in range(200):  # true f: 60 Hz, then 61 Hz from t = 1 s
        t = step * 0.01
        true = {"f": 60.0 if t < 1.0 else 61.0, "Va": 120.0}
        readings.append((t, sensors.read(t, "G_1", topic, true)))
    f_values = np.array([r["f"] for t, r in readings if t < 1.0])
    assert np.mean(f_values) == pytest.approx(60.1, abs=0.01)  # bias
    assert 0.003 < np.std(f_values) < 0.02  # noise
    assert np.allclose(np.round(f_values / 0.005) * 0.005, f_values)  # quantization
    at = {round(t, 2): r["f"] for t, r in readings}
    assert at[1.2] < 60.5 and at[1.6] > 60.5  # 0.5 s late
    assert all(r["Va"] == 120.0 for _t, r in readings)  # other fields untouched


# -- commands beyond a device's rating (issue 10, item 4) ---------------------------------


@pytest.mark.parametrize(
    "object_id, fields, field",
    [
        ("G_1", {"f_ref": math.inf}, "f_ref"),
        ("G_1", {"f_ref": 80.0}, "f_ref"),  # above 1.2 x 60 Hz
        ("G_1", {"P_ref": 2e4}, "P_ref"),  # beyond 13.8 kVA
        ("G_1", {"V_ref": 200.0}, "V_ref"),
        ("G_1", {"V_ref": 10.0}, "V_ref"),
        ("G_1", {"V_ref": -math.inf}, "V_ref"),
        ("L_1", {"P_ref": 1e12}, "P_ref"),
        ("L_1", {"Q_ref": -2e4}, "Q_ref"),
        ("MG_1", {"P_ref": 5000.0}, "P_ref"),  # 4 kVA converter (was clipped silently)
        ("ES_1", {"I_ref": 100.0}, "I_ref"),  # was clipped to 40 A silently
        ("PV_EM_1", {"Ir_ref": 3000.0}, "Ir_ref"),
        ("PV_EM_1", {"Temp_ref": 150.0}, "Temp_ref"),
        ("W_EM_1", {"Ws_ref": 45.0}, "Ws_ref"),
    ],
)
def test_a_set_point_beyond_the_rating_is_refused_and_the_last_good_one_stays(object_id, fields, field):
    plant = Plant(load_system())
    before = plant.measurements(), repr(plant.devices)
    with pytest.raises(CommandRejected) as err:
        plant.command(object_id, fields)
    assert (err.value.object_id, err.value.field) == (object_id, field)
    assert repr(plant.devices) == before[1]


def test_a_command_with_one_bad_set_point_is_refused_whole():
    plant = Plant(load_system())
    with pytest.raises(CommandRejected, match="not finite"):
        plant.command("G_1", {"action": "START", "f_ref": math.inf})
    plant.run(1)
    assert plant.machines["G_1"].status == "OFF" and plant.machines["G_1"].f_ref == 60.0
    plant.command("G_1", {"action": "START", "f_ref": 61.0, "P_ref": math.nan})  # NaN = unchanged
    assert plant.machines["G_1"].status == "STARTING" and plant.machines["G_1"].f_ref == 61.0


# -- voltage collapse of the radial feeder (issue 10, item 9) ------------------------------


def test_past_voltage_collapse_loads_report_the_power_that_arrives_and_an_event_says_so():
    plant = started("CB_1-6", "CB_6-7", "CB_L4")
    plant.command("L_4", {"P_ref": 9000.0})  # past the feeder's collapse point (about 7.7 kW)
    plant.events.clear()
    plant.run(3)
    delivered, _ = plant.load_PQ["L_4"]
    v7 = plant.measurements()["Bus_7"]["Va"]
    assert plant.collapsed == {"L_4": "G_1"}
    assert delivered == pytest.approx(9000.0 * (v7 / 120.0) ** 2, rel=1e-6) and delivered < 7000.0
    assert plant.measurements()["L_4"]["P"] == pytest.approx(delivered)
    # the generator, the meter and the load agree: what arrives is what is produced minus losses
    losses = sum(line.R * 3 * plant.line_I[tid] ** 2 for tid, line in plant.system.lines.items())
    assert plant.machines["G_1"].P == pytest.approx(delivered + losses, rel=1e-3)
    energy = plant.meter_energy["SM_4"][0]
    plant.run(1)
    assert (plant.meter_energy["SM_4"][0] - energy) * 3600 == pytest.approx(delivered, rel=0.01)
    collapses = [p for kind, p in plant.events if kind == "collapse"]
    assert len(collapses) == 1 and collapses[0]["object"] == "L_4" and "G_1" in collapses[0]["detail"]
    assert not any(kind == "restored" for kind, _ in plant.events)
    plant.command("L_4", {"P_ref": 1700.0})
    plant.run(3)
    assert plant.collapsed == {} and plant.load_PQ["L_4"][0] == pytest.approx(1700.0)
    restored = [p for kind, p in plant.events if kind == "restored"]
    assert len(restored) == 1 and restored[0]["object"] == "L_4"
    assert len([p for kind, p in plant.events if kind == "collapse"]) == 1


# -- the device registry (issue 11) ---------------------------------------------------------


def test_every_device_kind_is_registered_by_prefix_with_units_on_its_parameters():
    from dataclasses import fields

    from gridbus.testbed.devices import DEVICE_KINDS

    plant = Plant(load_system())
    assert {type(d) for d in plant.devices.values()} == set(DEVICE_KINDS.values())
    for prefix, kind in DEVICE_KINDS.items():
        assert kind.prefix == prefix
        for f in fields(kind.params_type):
            if f.type == "float":
                assert f.metadata.get("unit"), f"{kind.__name__}: {f.name} has no unit"
    for object_id, device in plant.devices.items():
        assert object_id.startswith(device.prefix + "_")
        assert isinstance(device.state(plant), dict) and isinstance(device.measure(plant), dict)
