"""Checks of what a Bus is configured with, before Cyclone sees it.

Cyclone is lenient where a lab cannot afford it: on an empty or truncated
configuration file it falls back to its defaults (every interface,
multicast), and it crashes on a partition name near 64 KiB.  So gridbus
checks the domain id, the Cyclone configuration and the partition name first
and raises :class:`~gridbus.errors.ConfigError` saying what is wrong and where.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError
from .qos import DATA_DIR
from .xmltree import XmlError, local_name, parse

__all__ = [
    "LOOPBACK_CONFIG",
    "MAX_PARTITION_BYTES",
    "check_cyclone_uri",
    "check_partition",
    "cyclone_config",
    "default_domain",
]

LOOPBACK_CONFIG = DATA_DIR / "cyclonedds-loopback.xml"
MAX_PARTITION_BYTES = 256  # Cyclone segfaults near 64 KiB; names are short


def default_domain() -> int:
    """``GRIDBUS_DOMAIN`` from the environment, else 0."""
    text = os.environ.get("GRIDBUS_DOMAIN", "0")
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"GRIDBUS_DOMAIN={text!r} is not an integer domain id") from None
    if not 0 <= value <= 232:
        raise ConfigError(f"domain id {value} out of range 0..232")
    return value


def cyclone_config(config: str | Path | None) -> str | None:
    """The Cyclone configuration a Bus uses: the caller's, else the user's
    ``CYCLONEDDS_URI``, else gridbus's loopback-only file.

    Whatever is given is parsed first: Cyclone itself falls back to its
    defaults (every interface, multicast) on an empty or truncated file, which
    would put a lab's traffic on its LAN without a word.
    """
    if config is None:
        uri = os.environ.get("CYCLONEDDS_URI", "")
        if uri.strip():
            check_cyclone_uri(uri)
            return None  # Cyclone reads it itself
        return LOOPBACK_CONFIG.read_text()
    text = str(config)
    if text.lstrip().startswith("<"):
        _check_cyclone_xml(text, "the Cyclone DDS configuration text", fragment=True)
        return text
    return _read_cyclone_file(Path(text.removeprefix("file://")), "")


def check_cyclone_uri(uri: str) -> None:
    """Check what ``CYCLONEDDS_URI`` names: files (``file://``, comma separated) or XML text."""
    expanded = os.path.expandvars(uri).strip()
    if expanded.startswith("<"):
        _check_cyclone_xml(expanded, "CYCLONEDDS_URI", fragment=True)
        return
    for part in (p.strip() for p in expanded.split(",")):
        if part.startswith("<"):
            _check_cyclone_xml(part, "CYCLONEDDS_URI", fragment=True)
        elif part:
            _read_cyclone_file(Path(part.removeprefix("file://")), " (named by CYCLONEDDS_URI)")


def _read_cyclone_file(path: Path, named_by: str) -> str:
    """The text of a Cyclone configuration file, checked (ConfigError naming the file)."""
    if not path.exists():
        raise ConfigError(f"Cyclone DDS configuration {path}{named_by} does not exist")
    if not path.is_file():
        raise ConfigError(f"Cyclone DDS configuration {path}{named_by} is not a regular file")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"Cyclone DDS configuration {path}{named_by}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Cyclone DDS configuration {path}{named_by}: not UTF-8 text (byte {exc.start})") from None
    _check_cyclone_xml(text, f"{path}", fragment=False, named_by=named_by)
    return text


def _check_cyclone_xml(text: str, where: str, fragment: bool, named_by: str = "") -> None:
    """Parse a Cyclone configuration; ConfigError with ``where:line`` if it is not one.

    A file must have the ``<CycloneDDS>`` root; XML text may be a fragment
    (``<General>...</General>``), which Cyclone places under an implied root.
    """
    if not text.strip():
        raise ConfigError(
            f"{where}{named_by}: empty Cyclone DDS configuration (Cyclone would "
            "silently fall back to its defaults: every interface and multicast)"
        )
    body = text.encode("utf-8")
    if fragment and not text.lstrip().startswith("<?"):
        body = b"<CycloneDDS>" + body + b"</CycloneDDS>"  # same line numbers
    try:
        root = parse(body)
    except XmlError as exc:
        raise ConfigError(
            f"{where}:{exc.line}{named_by}: not a Cyclone DDS configuration: malformed XML: {exc.reason}"
        ) from None
    name = local_name(root)
    if name.lower() != "cyclonedds":
        raise ConfigError(f"{where}:{root.sourceline}{named_by}: the root element is <{name}>, expected <CycloneDDS>")


def check_partition(name: str) -> None:
    """Refuse a partition name Cyclone cannot use (ConfigError saying why).

    Cyclone crashes (segfault) on a name near 64 KiB; DDS reads ``*``, ``?``
    and ``[`` as wildcards, and two wildcard partitions never match each other,
    so a Bus with one would not even hear itself.
    """
    if not isinstance(name, str):
        raise ConfigError(f"partition name must be text, not {type(name).__name__}")
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_PARTITION_BYTES:
        raise ConfigError(
            f"partition name is {size} bytes long; at most {MAX_PARTITION_BYTES} "
            f"bytes are allowed (starts {name[:20]!r})"
        )
    for position, char in enumerate(name):
        if char in "*?[]\\":
            raise ConfigError(
                f"partition name {name!r} contains {char!r} at position {position}: "
                "DDS reads it as a wildcard pattern; use a plain name"
            )
        if not char.isprintable():
            raise ConfigError(f"partition name {name!r} contains the control character {char!r} at position {position}")
