"""tomlfile.top_table: the one check that a top-level name is a [table], for every TOML file gridbus reads."""

from __future__ import annotations

import pytest

from gridbus import ConfigError, ScenarioError
from gridbus.bridge.config import BridgeConfig, load_file
from gridbus.testbed.andes import load_scenario
from gridbus.tomlfile import read_toml, top_table


def test_top_table_gives_the_table_or_empty_and_names_file_and_line(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text("[a]\nk = 1\n")
    doc, loc = read_toml(path, ConfigError, "test file")
    assert top_table(doc, "a", loc) == {"k": 1}
    assert top_table(doc, "missing", loc) == {}
    path.write_text('title = "x"\nrates = 5\n[a]\nk = 1\n')
    doc, loc = read_toml(path, ConfigError, "test file")
    with pytest.raises(ConfigError, match=rf"^{path}:2: rates must be a table \(\[rates\]\)$"):
        top_table(doc, "rates", loc)


def test_bridge_and_scenario_files_share_the_table_error(tmp_path):
    bridge = tmp_path / "site.toml"
    bridge.write_text('rate = 10\n[bridge]\nsite = "A"\n')
    with pytest.raises(ConfigError, match=r"site.toml:1: rate must be a table \(\[rate\]\)"):
        load_file(bridge, BridgeConfig())
    scenario = tmp_path / "bad.toml"
    scenario.write_text('sensors = "noisy"\n[scenario]\nduration = 5\n')
    with pytest.raises(ScenarioError, match=r"bad.toml:1: sensors must be a table \(\[sensors\]\)"):
        load_scenario(scenario)
