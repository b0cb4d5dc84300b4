"""Bad input on samples is caught when a sample is built, with the id and field named."""

from __future__ import annotations

import math

import pytest

from gridbus import FieldError, Registry, UnknownObjectError


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.default()


def test_object_ids_resolve_by_longest_prefix(registry):
    assert registry.parse_id("G_1").name == "Generator"
    assert registry.parse_id("PV_EM_2").name == "PVEmulator"
    assert registry.parse_id("W_EM_1").name == "WindEmulator"
    assert registry.parse_id("TL_1-2").name == "Line"
    assert registry.parse_id("Bus_14").name == "Busbar"


@pytest.mark.parametrize("bad", ["X_1", "G1", "G_", "", "G_1 ", "G_" + "9" * 40])
def test_unknown_object_ids(registry, bad):
    with pytest.raises(UnknownObjectError) as err:
        registry.parse_id(bad)
    assert repr(bad) in str(err.value)


def test_unknown_prefix(registry):
    with pytest.raises(UnknownObjectError, match="unknown object type prefix 'ZZ'"):
        registry.by_prefix("ZZ")


def test_build_checks_fields(registry):
    meas = registry.by_prefix("G").topic("Measurement")
    with pytest.raises(FieldError, match=r"G_1: unknown field\(s\) volts"):
        meas.build("G_1", volts=1)
    with pytest.raises(FieldError, match=r"G_1\.f .*expected a number"):
        meas.build("G_1", f="sixty")
    with pytest.raises(FieldError, match=r"G_1\.f .*above the maximum 400 Hz"):
        meas.build("G_1", f=1000.0)
    with pytest.raises(FieldError, match=r"G_1\.Va .*below the minimum 0 V"):
        meas.build("G_1", Va=-1)
    with pytest.raises(FieldError, match="expected a number"):
        meas.build("G_1", P=True)


def test_enums_integers_strings_and_booleans(registry):
    state = registry.by_prefix("G").topic("State")
    assert state.build("G_1", status="running", sync="true").status.name == "RUNNING"
    with pytest.raises(FieldError, match="'FLYING' is not one of OFF, STARTING"):
        state.build("G_1", status="FLYING")
    with pytest.raises(FieldError, match="expected a boolean"):
        state.build("G_1", sync="maybe")
    pmu = registry.by_prefix("PMU").topic("Measurement")
    with pytest.raises(FieldError, match="above the maximum 65535"):
        pmu.build("PMU_1", stat=70000)
    frame = pmu.build("PMU_1", magnitude=[120.0, 119.5], angle=[0.1, -2.0], freq=60.01, soc=1_700_000_000)
    assert list(frame.magnitude) == [120.0, 119.5] and frame.freq == 60.01 and frame.soc == 1_700_000_000
    with pytest.raises(FieldError, match=r"PMU_1\.magnitude .*at most 64 elements, got 65"):
        pmu.build("PMU_1", magnitude=[1.0] * 65)
    protection = registry.by_prefix("CB").topic("Protection")
    with pytest.raises(FieldError, match="longer than its bound of 128"):
        protection.build("CB_1", detail="x" * 200)


def test_command_set_points_default_to_unchanged(registry):
    command = registry.by_prefix("G").topic("Command").build("G_2", action="START", f_ref=60)
    assert command.action.name == "START" and command.f_ref == 60.0
    assert math.isnan(command.P_ref), "a set-point left out means 'leave unchanged'"


def test_fields_choose_their_topic(registry):
    generator = registry.by_prefix("G")
    assert generator.topic_of_fields(["P_ref"]).name == "Generator_Command"
    assert generator.topic_of_fields(["sync"]).name == "Generator_State"
    assert generator.topic_of_fields(["Va", "f"]).name == "Generator_Measurement"
    with pytest.raises(FieldError, match="has no field nonsense"):
        generator.topic_of_fields(["nonsense"])
