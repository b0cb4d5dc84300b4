"""The system file: the shipped testbed loads; malformed files name file, line and reason."""

from __future__ import annotations

import pytest
from helpers import gridbus

from gridbus.testbed.system import SystemFileError, default_system_path, load_system


def test_shipped_system_follows_the_paper():
    system = load_system()
    assert len(system.buses) == 14 and len(system.lines) == 18
    for line in ("TL_1-2", "TL_1-8", "TL_2-5", "TL_4-5", "TL_5-6", "TL_6-7", "TL_1-6"):
        assert line in system.lines
    ratings = {g: gen.rating for g, gen in system.generators.items()}
    assert ratings == {"G_1": 13800.0, "G_2": 13800.0, "G_3": 10400.0, "G_4": 10400.0}
    assert system.generators["G_1"].mode == "SPEED"
    assert [g for g, gen in system.generators.items() if gen.mode == "SPEED"] == ["G_1"]
    assert set(system.loads) == {"L_1", "L_2", "L_3", "L_4"}
    assert system.microgrids["MG_1"].Vdc == 380.0 and system.microgrids["MG_2"].Vdc == 325.0
    assert system.storage["ES_2"].capacity == 12000.0 and system.pv["PV_EM_2"].rating == 6000.0
    assert all(not b.closed for b in system.breakers.values())


def _shipped_with(tmp_path, old: str, new: str):
    text = default_system_path().read_text()
    assert old in text, old
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(old, new, 1))
    return path, text.replace(old, new, 1).splitlines()


@pytest.mark.parametrize(
    "old, new, reason, marker",
    [
        ('to = "Bus_2",  R = 0.50', 'to = "Bus_99", R = 0.50', "to 'Bus_99' is not a bus", "Bus_99"),
        ('id = "G_3"', 'id = "L_7"', "expected G_x", 'id = "L_7"'),
        ('id = "G_4"\nbus = "Bus_5"', 'id = "G_4"\nbus = "Bus_5"\nwobble = 1.0', "unknown key 'wobble'", "wobble"),
        ("rating = 10400.0\nH = 1.0", "rating = -5.0\nH = 1.0", "rating must be > 0", "rating = -5.0"),
        ('H = 1.2\nmode = "SPEED"', 'H = "heavy"\nmode = "SPEED"', "H must be a number", 'H = "heavy"'),
        ('mode = "SPEED"', 'mode = "POWER"', "no generator has mode", None),
        ('breaker = "CB_L3"', 'breaker = "CB_L1"', "already switches L_1", 'breaker = "CB_L1", P = 300'),
        ('"*.f" = { noise = 0.002', '"*.f" = { noisy = 0.002', "unknown key 'noisy'", '"*.f"'),
        ("SM = 1.0", "XYZ = 1.0", "unknown object type prefix", "XYZ = 1.0"),
        ("[protection]", "[protection\n", "", None),
    ],
)
def test_malformed_system_names_file_line_and_reason(tmp_path, old, new, reason, marker):
    path, lines = _shipped_with(tmp_path, old, new)
    with pytest.raises(SystemFileError) as err:
        load_system(path)
    message = str(err.value)
    assert message.startswith(f"{path}:"), message
    assert reason in message
    line = int(message.split(":")[1])
    if marker is not None:
        assert marker in lines[line - 1], (message, lines[line - 1])


def test_missing_system_file_is_a_clear_error(tmp_path):
    with pytest.raises(SystemFileError, match="cannot read"):
        load_system(tmp_path / "nope.toml")


@pytest.mark.integration
def test_cli_checks_a_system_file(tmp_path, env):
    ok = gridbus("testbed", "--check", env=env, check=True)
    assert '"objects": 84' in ok.stdout
    path, _ = _shipped_with(tmp_path, 'bus = "Bus_8"', 'bus = "Bus_0"')
    bad = gridbus("testbed", "--check", "--system", str(path), env=env)
    assert bad.returncode == 2
    assert f"{path}:" in bad.stderr and "Bus_0" in bad.stderr


# Numbers that load today and crash or run backwards later (issue 10, item 7): refused with file:line.
@pytest.mark.parametrize(
    "old, new, reason, marker",
    [
        ("step = 0.01", "step = 0", "step must be > 0", "step = 0"),
        ("step = 0.01", "step = -0.01", "step must be > 0", "step = -0.01"),
        ("step = 0.01", "step = nan", "step must be a number", "step = nan"),
        ("step = 0.01", "step = inf", "step must be a number", "step = inf"),
        ("step = 0.01", "step = 30.0", "step must be at most", "step = 30.0"),
        ("frequency = 60.0", "frequency = 0.0", "frequency must be > 0", "frequency = 0.0"),
        ("voltage = 120.0", "voltage = -120.0", "voltage must be > 0", "voltage = -120.0"),
        ("max_df = 0.5", "max_df = 0", "max_df must be > 0", "max_df = 0"),
        ("SM = 1.0", "SM = inf", "finite rate in Hz > 0", "SM = inf"),
        ("SM = 1.0", "SM = nan", "finite rate in Hz > 0", "SM = nan"),
        ("SM = 1.0", "SM = 0", "finite rate in Hz > 0", "SM = 0"),
        ("Tg = 0.1", "Tg = 0.0", "Tg must be > 0", "Tg = 0.0"),
        ('mode = "SPEED"', 'mode = "SPEED"\ndroop = 0', "droop must be > 0", "droop = 0"),
        (
            'R = 0.50, X = 0.70, B = 2e-5, breaker = "CB_1-2"',
            'R = 0.50, X = -0.70, B = 2e-5, breaker = "CB_1-2"',
            "X must be >= 0",
            "TL_1-2",
        ),
        (
            'R = 0.50, X = 0.70, B = 2e-5, breaker = "CB_1-8"',
            'R = 0, X = 0, B = 2e-5, breaker = "CB_1-8"',
            "R and X are both 0",
            "TL_1-8",
        ),
        ('breaker = "CB_L1", P = 600.0', 'breaker = "CB_L1", P = 600.0, rating = 0', "rating must be > 0", "L_1"),
        ('breaker = "CB_L1", P = 600.0', 'breaker = "CB_L1", P = -600.0', "P must be >= 0", "L_1"),
        ('breaker = "CB_L1", P = 600.0', 'breaker = "CB_L1", P = 600.0, rating = 500', "within its rating", "L_1"),
        ("capacity = 5000.0", "capacity = -5000.0", "capacity must be > 0", "ES_1"),
        ('SoC = 80.0 },\n  { id = "ES_2"', 'SoC = 180.0 },\n  { id = "ES_2"', "SoC must be 0..100", "ES_1"),
        ("rating = 2000.0, Ws = 8.0", "rating = 2000.0, Ws = 8.0, Ws_cut_in = 15.0", "wind speeds must rise", "W_EM_1"),
        (
            "rating = 13800.0\nH = 1.2\nmode",
            "rating = 13800.0\nH = 1.2\nf_max = 55.0\nmode",
            "above f_max",
            'id = "G_1"',
        ),
        ("rating = 4000.0\nVdc = 380.0", "rating = 0.0\nVdc = 380.0", "rating must be > 0", "rating = 0.0"),
    ],
)
def test_non_positive_or_non_finite_numbers_are_refused_with_file_and_line(tmp_path, old, new, reason, marker):
    path, lines = _shipped_with(tmp_path, old, new)
    with pytest.raises(SystemFileError) as err:
        load_system(path)
    message = str(err.value)
    assert message.startswith(f"{path}:"), message
    assert reason in message, message
    line = int(message.split(":")[1])
    assert marker in lines[line - 1], (message, lines[line - 1])


def test_command_bands_default_from_the_system_and_can_be_set(tmp_path):
    g1 = load_system().generators["G_1"]
    assert (g1.f_max, g1.V_min, g1.V_max) == (72.0, 60.0, 144.0)
    path, _ = _shipped_with(
        tmp_path, "rating = 13800.0\nH = 1.2\nmode", "rating = 13800.0\nH = 1.2\nf_max = 63.0\nmode"
    )
    assert load_system(path).generators["G_1"].f_max == 63.0
    assert load_system().loads["L_1"].rating == 10000.0


@pytest.mark.parametrize(
    "text, reason",
    [
        ('rates = 5\nbuses = ["Bus_1"]\n', "rates must be a table"),
        ('system = "fast"\nbuses = ["Bus_1"]\n', "system must be a table"),
    ],
)
def test_a_section_that_is_not_a_table_is_refused(tmp_path, text, reason):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SystemFileError, match=f"^{path}:1: {reason}"):
        load_system(path)


def test_loss_and_per_object_rates(tmp_path):
    """[loss] per object pattern and [rates] per object id (a device's own reporting rate)."""
    text = default_system_path().read_text() + '\n[loss]\n"L_*" = 0.1\n'
    path = tmp_path / "lossy.toml"
    path.write_text(text.replace("SM = 1.0", "SM = 1.0\nBus_4 = 5.0", 1))
    system = load_system(path)
    assert system.loss_of("L_3") == 0.1 and system.loss_of("G_1") == 0.0
    assert system.rates["Bus_4"] == 5.0
    path.write_text(text.replace('"L_*" = 0.1', '"L_*" = 1.5'))
    with pytest.raises(SystemFileError, match=r"lossy.toml:\d+: \[loss\] L_\* must be a probability"):
        load_system(path)
