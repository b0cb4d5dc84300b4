"""The bridge's Zenoh session: mutual TLS only, no discovery beyond the named peers.

A bridge is the one door between a site's DDS domain and the WAN, so its
Zenoh session is locked down: every endpoint is ``tls/``, the peer must show
a certificate signed by the site's CA (``enable_mtls``), and multicast
scouting and gossip are off (a bridge talks to the endpoints it is given,
never to whatever answers on the LAN).  Zenoh retries a ``connect`` endpoint
until the far bridge answers, which is how a dropped WAN link comes back.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..extras import require

__all__ = ["TlsFiles", "check_endpoint", "open_session", "session_config"]

_ENDPOINT = re.compile(r"tls/(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9.\-]+):(\d{1,5})")


@dataclass(frozen=True)
class TlsFiles:
    """This bridge's certificate and key, and the CA that signs its peers'."""

    cert: Path
    key: Path
    ca: Path

    def check(self) -> None:
        for label, path in (("--cert", self.cert), ("--key", self.key), ("--ca", self.ca)):
            if not path.is_file():
                raise ConfigError(f"bridge {label} {path}: no such file")
            head = path.read_bytes()[:64]
            if b"-----BEGIN" not in head:
                raise ConfigError(f"bridge {label} {path}: not a PEM file")


def check_endpoint(endpoint: str, what: str) -> str:
    """``endpoint`` if it is ``tls/HOST:PORT``; ConfigError naming ``what`` otherwise.

    Plain ``tcp/`` or ``udp/`` would carry grid commands unauthenticated and
    in clear text across a WAN: the bridge refuses them.
    """
    match = _ENDPOINT.fullmatch(endpoint)
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise ConfigError(f"{what} {endpoint!r}: the bridge speaks mutual TLS only; give tls/HOST:PORT")
    return endpoint


def session_config(listen: list[str], connect: list[str], tls: TlsFiles, mode: str = "peer") -> str:
    """The Zenoh configuration (JSON5) of a bridge's session (``mode="client"``: a board's)."""
    tls.check()
    files = {
        "root_ca_certificate": str(tls.ca),
        "listen_certificate": str(tls.cert),
        "listen_private_key": str(tls.key),
        "connect_certificate": str(tls.cert),
        "connect_private_key": str(tls.key),
        "enable_mtls": True,
        "verify_name_on_connect": False,  # identity is the CA's signature; sites are often reached by IP
    }
    config: dict[str, Any] = {
        "mode": mode,
        "listen": {"endpoints": listen},
        "connect": {
            "endpoints": connect,
            "timeout_ms": -1,  # keep trying: the far site may come up later
            "exit_on_failure": False,
            "retry": {"period_init_ms": 200, "period_max_ms": 1000, "period_increase_factor": 2},
        },
        "scouting": {"multicast": {"enabled": False}, "gossip": {"enabled": False}},
        "transport": {"link": {"tls": files}},
    }
    return json.dumps(config)


def open_session(listen: list[str], connect: list[str], tls: TlsFiles, mode: str = "peer") -> Any:
    """Open the bridge's Zenoh session (ConfigError if Zenoh refuses the configuration)."""
    zenoh = require("zenoh", "gridbus bridge")
    text = session_config(listen, connect, tls, mode)
    try:
        return zenoh.open(zenoh.Config.from_json5(text))
    except zenoh.ZError as exc:
        raise ConfigError(f"Zenoh refused the bridge session ({', '.join(listen + connect)}): {exc}") from None
