"""The system file: the shipped testbed loads; malformed files name file, line and reason."""
from __future__ import annotations

import pytest

from gridbus.testbed.system import SystemFileError, default_system_path, load_system

from conftest import gridbus


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


@pytest.mark.parametrize("old, new, reason, marker", [
    ('to = "Bus_2",  R = 0.50', 'to = "Bus_99", R = 0.50', "to 'Bus_99' is not a bus", 'Bus_99'),
    ('id = "G_3"', 'id = "L_7"', "expected G_x", 'id = "L_7"'),
    ('id = "G_4"\nbus = "Bus_5"', 'id = "G_4"\nbus = "Bus_5"\nwobble = 1.0', "unknown key 'wobble'", "wobble"),
    ('rating = 10400.0\nH = 1.0', 'rating = -5.0\nH = 1.0', "rating must be > 0", "rating = -5.0"),
    ('H = 1.2\nmode = "SPEED"', 'H = "heavy"\nmode = "SPEED"', "H must be a number", 'H = "heavy"'),
    ('mode = "SPEED"', 'mode = "POWER"', "no generator has mode", None),
    ('breaker = "CB_L3"', 'breaker = "CB_L1"', "already switches L_1", 'breaker = "CB_L1", P = 300'),
    ('"*.f" = { noise = 0.002', '"*.f" = { noisy = 0.002', "unknown key 'noisy'", '"*.f"'),
    ('SM = 1.0', 'XYZ = 1.0', "unknown object type prefix", "XYZ = 1.0"),
    ('[protection]', '[protection\n', "", None),
])
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


def test_cli_checks_a_system_file(tmp_path, env):
    ok = gridbus("testbed", "--check", env=env, check=True)
    assert '"objects": 84' in ok.stdout
    path, _ = _shipped_with(tmp_path, 'bus = "Bus_8"', 'bus = "Bus_0"')
    bad = gridbus("testbed", "--check", "--system", str(path), env=env)
    assert bad.returncode == 2
    assert f"{path}:" in bad.stderr and "Bus_0" in bad.stderr
