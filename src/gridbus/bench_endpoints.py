"""Moved to :mod:`gridbus.bench.endpoints`; this name stays for old imports."""

from .bench.endpoints import BusOptions, Endpoint, endpoint, gridbus_endpoint, payload_for, raw_endpoint

__all__ = ["BusOptions", "Endpoint", "endpoint", "gridbus_endpoint", "payload_for", "raw_endpoint"]
