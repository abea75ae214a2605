"""Shared fixtures. Timeouts: foreman.testing.timeouts.unit (scaled by an env variable).

Hypothesis: on CI (`CI` set) examples are derandomized and deadlines off, so a run is
reproducible and a slow machine does not fail a test on timing; developers' runs keep
exploring new random examples (that is how property failures are found).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _private_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own HOME, so default state paths (~/.local/share/foreman/…: the
    audit database, the calendar file) never touch the developer's real files, and the
    developer's own config (~/.config/foreman, $XDG_CONFIG_HOME) is never read."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return home
