"""Shared fixtures. Timeouts: foreman.testing.timeouts.unit (scaled by an env variable)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own HOME, so default state paths (~/.local/share/foreman/…: the
    audit database, the calendar file) never touch the developer's real files."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    return home
