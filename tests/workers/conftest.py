"""Worker tests: a real arq worker on a real Redis (``REDIS_URL``, else ``TEST_REDIS_URL`` or
db 14 of the local Redis); skipped, with the reason, when that Redis is not reachable."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import urlparse

import pytest
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

from tests.helpers import SETTINGS, run_burst_worker

REDIS_URL = SETTINGS.redis_url or os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


def _redis_down() -> bool:
    u = urlparse(REDIS_URL)
    try:
        socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), 1).close()
        return False
    except OSError:
        return True


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The worker tests' Redis; the test is skipped when it is not reachable."""
    if _redis_down():
        pytest.skip(f"Redis at {REDIS_URL} is not reachable")
    return REDIS_URL


@pytest.fixture
async def pool(redis_url: str) -> AsyncIterator[Any]:
    """arq's pool on an empty Redis database, to queue jobs as the app does."""
    p = await create_pool(RedisSettings.from_dsn(redis_url))
    await p.flushdb()
    yield p
    await p.flushdb()
    await p.aclose()


@pytest.fixture
def burst(redis_url: str) -> Callable[..., Awaitable[Worker]]:
    """``await burst(max_tries=3)``: the burst worker over what ``pool`` queued."""
    return partial(run_burst_worker, redis_url)
