"""Data files have one home in the package, and the checkout's copies match it.

See gridbus/resources.py for why the top-level ``idl/``, ``qos/`` and
``translators/profiles/`` are copies kept identical by this test rather than
sources copied at build time.
"""

from __future__ import annotations

import filecmp
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from gridbus import resources

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DATA = ROOT / "src" / "gridbus" / "data"
# user-facing copy in the checkout -> package folder under gridbus/data
COPIES = {
    ROOT / "idl": "idl",
    ROOT / "qos": "qos",
    ROOT / "translators" / "profiles": "profiles",
    ROOT / "scenarios": "scenarios",
}


@pytest.mark.parametrize("copy", list(COPIES), ids=lambda p: str(p.relative_to(ROOT)))
def test_checkout_copies_are_identical(copy: Path) -> None:
    package = PACKAGE_DATA / COPIES[copy]
    pattern = "*.toml" if COPIES[copy] in ("profiles", "systems", "scenarios") else "*"
    ours = {p.name for p in copy.glob(pattern) if p.is_file()}
    theirs = {p.name for p in package.glob(pattern) if p.is_file()}
    assert ours == theirs, f"{copy.relative_to(ROOT)} and {package.relative_to(ROOT)} hold different files"
    for name in sorted(ours):
        assert filecmp.cmp(copy / name, package / name, shallow=False), (
            f"{copy.relative_to(ROOT)}/{name} differs from the package's copy; after editing one, "
            f"copy it over the other (cp {copy.relative_to(ROOT)}/{name} "
            f"{package.relative_to(ROOT)}/{name}, or the reverse)"
        )


def test_package_data_are_real_files() -> None:
    """No symlinks: they break on Windows checkouts and in zip installs."""
    links = [p for p in PACKAGE_DATA.rglob("*") if p.is_symlink()]
    assert not links, links


def test_lookups_point_into_the_package() -> None:
    assert resources.idl_dir() == PACKAGE_DATA / "idl"
    assert (resources.idl_dir() / "grid.idl").is_file()
    assert (resources.qos_dir() / "gridbus_qos.xml").is_file()
    assert (resources.qos_dir() / "cyclonedds-loopback.xml").is_file()
    assert resources.system_file().is_file()
    assert sorted(p.stem for p in resources.profile_dir().glob("*.toml")) == [
        "drive-acs-like",
        "load-scpi",
        "speed-controller-ascii",
        "vfd-modbus",
    ]


def test_every_module_uses_the_one_lookup() -> None:
    from gridbus import idl, qos
    from gridbus.testbed import system
    from gridbus.translators import profile

    assert qos.DATA_DIR == resources.qos_dir()
    assert idl.METADATA_FILE == resources.package_path("types", "metadata.json")
    assert profile.profile_dir() == resources.profile_dir()
    assert system.default_system_path() == resources.system_file()


@pytest.mark.integration
def test_found_inside_a_zip(tmp_path: Path) -> None:
    """A zipped gridbus (zipapp, zip import) still finds its data: extracted as real files."""
    archive = tmp_path / "gridbus.zip"
    src = ROOT / "src"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in (src / "gridbus").rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, path.relative_to(src).as_posix())
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import gridbus.resources as r\n"
        "assert r.__file__.startswith(sys.argv[1]), r.__file__\n"
        "print(r.system_file().read_text().count('['), (r.data_path('qos', 'topics.xml')).is_file())"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(archive)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    count, topics = proc.stdout.split()
    assert int(count) > 0 and topics == "True"


def test_every_data_file_is_declared_package_data() -> None:
    """A file under gridbus/data that no package-data pattern matches would be missing from wheels."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["gridbus"]
    package = ROOT / "src" / "gridbus"
    for path in PACKAGE_DATA.rglob("*"):
        if path.is_file():
            relative = path.relative_to(package)
            assert any(relative.match(pattern) for pattern in patterns), relative
