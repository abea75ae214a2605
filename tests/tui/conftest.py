"""Fixtures of the console tests: the served stack (see tui_stack.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from tui_stack import Stack, serve_stack


@pytest_asyncio.fixture
async def stack() -> AsyncIterator[Stack]:
    async with serve_stack() as served:
        yield served
