"""Where gridbus's data files are: one lookup, through :mod:`importlib.resources`.

The package ships its data under ``gridbus/data/``::

    idl/grid.idl                      the data model (what ``gridbus idl generate`` compiles)
    qos/gridbus_qos.xml, topics.xml   QoS profiles and the topic -> profile map
    qos/cyclonedds-loopback.xml       the Cyclone configuration tests and demos use
    profiles/*.toml                   serial device profiles
    systems/fiu-testbed.toml          the shipped testbed system

These are real files, not symlinks to the checkout's top-level folders: a
symlink breaks on a Windows checkout and in a zip or wheel built without
following it.  The checkout keeps ``idl/``, ``qos/`` and ``translators/profiles/``
as the user-facing copies (what README and docs link to, what another vendor's
node compiles), and ``tests/test_resources.py`` fails, naming the file and
the ``cp`` that fixes it, as soon as a copy and its package file differ.

Why identical copies and a test rather than top-level sources copied at build
time: a build step does not run for an editable install or a plain checkout
on ``PYTHONPATH`` (how gridbus is developed and tested), so those would read
stale or missing files; copies work the same everywhere, and the test makes
drift loud.  The package copy is the one gridbus reads — ``gridbus idl generate``
compiles ``data/idl`` — so after editing ``idl/grid.idl``, copy it over
(the test says so) before generating.

Files are returned as real paths (Cyclone and idlc take file names): on a
normal install they are the package's own files; from a zip they are extracted
once and kept until the process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import shutil
import tempfile
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

PACKAGE = "gridbus"
DATA = "data"

_extracted = contextlib.ExitStack()  # files extracted from a zip live as long as the process
atexit.register(_extracted.close)


@functools.cache
def package_path(*parts: str) -> Path:
    """The file or folder ``gridbus/<parts>`` as a path on disk."""
    resource = resources.files(PACKAGE)
    for part in parts:
        resource = resource.joinpath(part)
    return _on_disk(resource)


def data_path(*parts: str) -> Path:
    """The data file or folder ``gridbus/data/<parts>`` as a path on disk."""
    return package_path(DATA, *parts)


def _on_disk(resource: Traversable) -> Path:
    """``resource`` itself when the package is on disk, else an extracted copy (file or folder:
    ``as_file`` takes folders only from Python 3.12 on)."""
    if isinstance(resource, Path):
        return resource
    if resource.is_file():
        return _extracted.enter_context(resources.as_file(resource))
    folder = Path(_extracted.enter_context(tempfile.TemporaryDirectory(prefix="gridbus-data-")))
    _copy(resource, folder / resource.name)
    return folder / resource.name


def _copy(source: Traversable, target: Path) -> None:
    if source.is_file():
        with source.open("rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        return
    target.mkdir()
    for child in source.iterdir():
        _copy(child, target / child.name)


def idl_dir() -> Path:
    """The folder of the shipped IDL files (``gridbus idl generate``'s default)."""
    return data_path("idl")


def qos_dir() -> Path:
    """The folder of the QoS profiles, the topic map and the Cyclone configuration."""
    return data_path("qos")


def profile_dir() -> Path:
    """The folder of the shipped serial device profiles."""
    return data_path("profiles")


def system_file(name: str = "fiu-testbed.toml") -> Path:
    """A shipped system file (the FIU testbed by default)."""
    return data_path("systems", name)
