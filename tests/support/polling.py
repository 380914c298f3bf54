"""A bound on a polling loop: the test fails with what it waited for, never with a timing claim."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest


@contextlib.asynccontextmanager
async def within(seconds: float, waited_for: str | Callable[[], str]) -> AsyncIterator[None]:
    """Fail the test (naming ``waited_for``, a text or a function giving one from the loop's last
    state) if the block has not finished after ``seconds``: a loop polling for an outcome."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        what = waited_for() if callable(waited_for) else waited_for
        pytest.fail(f"still waiting after {seconds} s: {what}")
