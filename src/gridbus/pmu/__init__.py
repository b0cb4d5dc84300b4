"""Synchrophasors: virtual PMUs, C37.118.1 estimation, C37.118 time rules, compliance tests."""
