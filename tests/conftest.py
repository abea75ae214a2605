"""Shared fixtures. Timeouts: foreman.testing.timeouts.unit (scaled by an env variable).

Hypothesis: on CI (`CI` set) examples are derandomized and deadlines off, so a run is
reproducible and a slow machine does not fail a test on timing; developers' runs keep
exploring new random examples (that is how property failures are found).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from foreman.logs import StderrHandler

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


@pytest.fixture(autouse=True)
def _own_logging() -> Iterator[None]:
    """`foreman.cli.main` sets up the process's logging, as a command should; a test that
    calls it in-process leaves none of it to the next test."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
    root.setLevel(level)
