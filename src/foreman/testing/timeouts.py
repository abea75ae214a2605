"""Test timeouts as multiples of a unit, scaled by FOREMAN_TEST_TIMEOUT_SCALE on slow CI."""

from __future__ import annotations

import os


def unit(seconds: float) -> float:
    return seconds * float(os.environ.get("FOREMAN_TEST_TIMEOUT_SCALE", "1"))
