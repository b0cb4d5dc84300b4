"""The bridge's settings, from the command line and an optional TOML file.

``gridbus bridge --file site-a.toml`` reads::

    [bridge]
    site = "A"                          # this site's name on the WAN (key expressions)
    listen = ["tls/0.0.0.0:7447"]       # and/or connect = ["tls/site-b.example:7447"]
    cert = "a.pem"                      # paths relative to this file
    key = "a.key"
    ca = "ca.pem"

    [out]                               # this site's DDS -> WAN
    allow = ["*"]                       # the default: everything but commands
    deny = ["SmartMeter_*"]

    [in]                                # WAN -> this site's DDS
    allow = ["*", "Breaker_Command"]    # a command topic crosses only if named
    deny = ["Breaker_Command/CB_9"]

    [rate]                              # max publications per second per object
    "*_Measurement" = 10.0

A list in the file replaces the default (``allow = ["*"]``, ``deny = []``);
command-line options override ``[bridge]`` and add to the lists (so
``--allow-in Breaker_Command`` alone means "everything but commands, and
breaker commands").  Every mistake is reported as ``file:line: reason``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..tomlfile import Locator, read_toml, top_table
from .link import TlsFiles, check_endpoint
from .policy import Direction, Policy

__all__ = ["BridgeConfig", "check_site", "load_file"]

_SITE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}")  # one key-expression chunk, no wildcards
_SECTIONS = {"bridge", "out", "in", "rate"}
_BRIDGE_KEYS = {"site", "listen", "connect", "cert", "key", "ca", "domain"}


@dataclass
class BridgeConfig:
    """Everything a :class:`~gridbus.bridge.bridge.Bridge` needs besides its Bus."""

    site: str = ""
    listen: list[str] = field(default_factory=list)
    connect: list[str] = field(default_factory=list)
    tls: TlsFiles | None = None
    policy: Policy = field(default_factory=Policy)
    domain: int | None = None

    def check(self) -> None:
        check_site(self.site, "--site")
        if not self.listen and not self.connect:
            raise ConfigError("the bridge needs --listen tls/HOST:PORT or --connect tls/HOST:PORT (or both)")
        for endpoint in self.listen:
            check_endpoint(endpoint, "--listen")
        for endpoint in self.connect:
            check_endpoint(endpoint, "--connect")
        if self.tls is None:
            raise ConfigError("the bridge needs --cert, --key and --ca (mutual TLS is not optional)")
        self.tls.check()


def check_site(site: str, what: str) -> str:
    if not _SITE.fullmatch(site or ""):
        raise ConfigError(f"{what} {site!r}: a site name is 1-63 letters, digits, '_', '.' or '-'")
    return site


def load_file(path: str | Path, config: BridgeConfig) -> BridgeConfig:
    """Fill ``config`` from the TOML file ``path`` (ConfigError with ``file:line``)."""
    doc, loc = read_toml(path, ConfigError, "bridge configuration")
    base = Path(path).resolve().parent
    for key in doc:
        if key not in _SECTIONS:
            raise loc.error(f"unknown section [{key}]; known: {', '.join(sorted(_SECTIONS))}", section=key)
    bridge = top_table(doc, "bridge", loc)
    for key in bridge:
        if key not in _BRIDGE_KEYS:
            raise loc.error(f"unknown key {key!r} in [bridge]; known: {', '.join(sorted(_BRIDGE_KEYS))}", key=key)
    if "site" in bridge:
        config.site = _string(bridge["site"], "site", loc)
        if not _SITE.fullmatch(config.site):
            raise loc.error(f"site {config.site!r}: 1-63 letters, digits, '_', '.' or '-'", key="site")
    if "domain" in bridge:
        if not isinstance(bridge["domain"], int) or not 0 <= bridge["domain"] <= 232:
            raise loc.error("domain must be an integer 0..232", key="domain")
        config.domain = bridge["domain"]
    for name in ("listen", "connect"):
        for endpoint in _strings(bridge.get(name, []), name, loc):
            try:
                getattr(config, name).append(check_endpoint(endpoint, name))
            except ConfigError as exc:
                raise loc.error(str(exc), key=name) from None
    if {"cert", "key", "ca"} & bridge.keys():
        missing = {"cert", "key", "ca"} - bridge.keys()
        if missing:
            raise loc.error(f"[bridge] gives cert, key and ca together; missing: {', '.join(sorted(missing))}")
        files = {k: base / _string(bridge[k], k, loc) for k in ("cert", "key", "ca")}
        for k, p in files.items():
            if not p.is_file():
                raise loc.error(f"{k} {p}: no such file", key=k)
        config.tls = TlsFiles(files["cert"], files["key"], files["ca"])
    for section, attr in (("out", "out"), ("in", "into")):
        table = top_table(doc, section, loc)
        direction: Direction = getattr(config.policy, attr)
        for key, value in table.items():
            if key not in ("allow", "deny"):
                raise loc.error(f"unknown key {key!r} in [{section}]; known: allow, deny", key=key, section=section)
            setattr(direction, key, _strings(value, key, loc, section))
    for pattern, hz in top_table(doc, "rate", loc).items():
        if isinstance(hz, bool) or not isinstance(hz, (int, float)):
            raise loc.error(f"[rate] {pattern!r} must be a number of Hz", key=pattern, section="rate")
        try:
            config.policy.rates.add(pattern, float(hz), "[rate]")
        except ConfigError as exc:
            raise loc.error(str(exc).removeprefix("[rate]: "), key=pattern, section="rate") from None
    return config


def _string(value: Any, key: str, loc: Locator) -> str:
    if not isinstance(value, str) or not value:
        raise loc.error(f"{key} must be a non-empty string", key=key)
    return value


def _strings(value: Any, key: str, loc: Locator, section: str | None = None) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise loc.error(f"{key} must be a list of strings", key=key, section=section)
    return list(value)
