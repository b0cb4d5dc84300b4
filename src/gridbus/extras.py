"""Optional dependencies, imported only where a feature uses them.

A base install (``pip install gridbus``) must run everything that needs no
extra: a SCPI device simulator must not die because Modbus support is missing.
So an extra's package is never imported at module level; the code that uses it
calls :func:`require`, which imports it or raises :class:`~gridbus.errors.MissingExtra`
naming the extra to install (the CLI prints it and exits 2).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtra

# top-level package -> the extra of pyproject.toml's [project.optional-dependencies] that installs it
EXTRAS = {
    "pymodbus": "serial",
    "psycopg": "postgres",
    "matplotlib": "experiments",
    "zenoh": "zenoh",
    "cryptography": "zenoh",
    "andes": "andes",
}

# top-level package -> its name on PyPI, where the two differ
DISTRIBUTIONS = {"zenoh": "eclipse-zenoh"}


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` (a package of an extra, or one of its submodules) for ``feature``.

    Raises MissingExtra when the extra's package is absent; any other import failure
    (a broken install, a missing dependency of the package itself) propagates unchanged.
    """
    top = module.partition(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if top not in EXTRAS or exc.name is None or exc.name.partition(".")[0] != top:
            raise
        raise MissingExtra(feature, top, EXTRAS[top]) from exc
