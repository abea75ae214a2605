"""Shared fixtures. Timeouts scale with FOREMAN_TEST_TIMEOUT_SCALE for slow machines."""

from __future__ import annotations

import os

TIMEOUT_SCALE = float(os.environ.get("FOREMAN_TEST_TIMEOUT_SCALE", "1"))


def unit(seconds: float) -> float:
    """A test timeout, scaled for slow CI machines."""
    return seconds * TIMEOUT_SCALE
