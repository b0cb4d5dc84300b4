"""Python types generated from ``idl/`` by idlc (``gridbus idl generate``).

Do not edit the sub-packages by hand: a test regenerates them and fails when
they differ from what is committed.  ``metadata.json`` holds what the idlc
Python backend drops (units, ranges, field comments).
"""
