"""Extras fail clearly and only where needed.

A real base install would be a fresh venv with gridbus and only its base
dependencies: slow to build (cyclonedds, numpy) and not possible offline.  A
subprocess whose first act is to put a finder at the head of ``sys.meta_path``
that refuses the extras' packages stands in for it: to gridbus's code, an
import of pymodbus, psycopg or matplotlib then fails exactly as in a venv
without them (``ModuleNotFoundError`` naming the package), while everything
else is the shared venv's.  It cannot catch an extra missing from pyproject's
base dependencies; :func:`test_extras_match_pyproject` checks that side.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gridbus import GridbusError, MissingExtra
from gridbus.extras import DISTRIBUTIONS, EXTRAS, require

ROOT = Path(__file__).resolve().parents[1]

BARE = """
import sys
class _NoExtras:
    '''Packages of gridbus's extras are not installed.'''
    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] in {'pymodbus', 'psycopg', 'matplotlib', 'andes'}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _NoExtras())
"""


def bare(code: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a Python without gridbus's extras."""
    return subprocess.run([sys.executable, "-c", BARE + code], capture_output=True, text=True, timeout=timeout)


def bare_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return bare(f"from gridbus.cli.main import main\nsys.exit(main({list(args)!r}))")


def test_extras_match_pyproject() -> None:
    """Every extra require() names exists in pyproject and installs the package it is named for."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for package, extra in EXTRAS.items():
        assert extra in extras, extra
        dist = DISTRIBUTIONS.get(package, package)
        assert any(req.startswith(dist) for req in extras[extra]), (package, extras[extra])


def test_require_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pymodbus", None)  # None in sys.modules: import fails
    with pytest.raises(MissingExtra) as caught:
        require("pymodbus.framer", "Modbus RTU")
    assert isinstance(caught.value, GridbusError) and isinstance(caught.value, ImportError)
    assert "pip install 'gridbus[serial]'" in str(caught.value)


def test_require_lets_other_import_errors_through() -> None:
    with pytest.raises(ModuleNotFoundError) as caught:
        require("gridbus_no_such_module", "nothing")
    assert not isinstance(caught.value, MissingExtra)


@pytest.mark.integration
def test_every_module_imports_without_extras() -> None:
    modules = [
        "gridbus",
        "gridbus.cli.main",
        "gridbus.translators.translator",
        "gridbus.translators.devices",
        "gridbus.translators.bench",
        "gridbus.historian.recorder",
        "gridbus.historian.analysis",
        "gridbus.experiments.runner",
        "gridbus.testbed.service",
        "gridbus.daq.agent",
        "gridbus.testbed.andes.engine",
        "gridbus.ems.service",
        "gridbus.control.agc",
    ]
    proc = bare("import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.integration
def test_scpi_device_needs_no_modbus() -> None:
    proc = bare_cli("device-sim", "load-scpi", "--duration", "0.3")
    assert proc.returncode == 0, proc.stderr
    assert '"protocol": "scpi"' in proc.stdout


@pytest.mark.integration
def test_modbus_device_names_the_extra() -> None:
    proc = bare_cli("device-sim", "vfd-modbus", "--duration", "0.3")
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'gridbus[serial]'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.integration
def test_andes_engine_names_the_extra() -> None:
    proc = bare_cli("testbed", "--engine", "andes", "--case", "ieee14", "--check")
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'gridbus[andes]'" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.integration
def test_controllers_do_not_import_the_simulator() -> None:
    """Dependencies point down: controllers and experiments never load gridbus.testbed."""
    proc = bare(
        "import gridbus.control.main, gridbus.control.synchronizer, gridbus.experiments.runner\n"
        "print(sorted(m for m in sys.modules if m.startswith('gridbus.testbed')))"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
