"""jsonsafe.finite: the one NaN/inf -> null used by the historian's rows and the experiments' summaries."""

from __future__ import annotations

import json
import math

from gridbus.historian.rowjson import OTHER, json_writer
from gridbus.jsonsafe import finite


def test_non_finite_floats_become_null_at_any_depth_and_the_rest_is_kept():
    summary = {"settling_s": math.inf, "nadir": [59.7, math.nan, {"at": -math.inf, "ok": True}], "n": 3, "s": "x"}
    clean = finite(summary)
    assert clean == {"settling_s": None, "nadir": [59.7, None, {"at": None, "ok": True}], "n": 3, "s": "x"}
    assert json.loads(json.dumps(clean, allow_nan=False)) == clean  # strict JSON now


def test_the_historian_writes_the_same_nulls():
    write = json_writer([("values", OTHER)])
    values = [1.5, math.nan, math.inf]
    assert json.loads(write({"values": values})) == {"values": finite(values)}
