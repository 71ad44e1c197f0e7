"""Background jobs: through arq and Redis in production, in-process in embedded mode.

The job functions are the same either way (``workers/tasks.py``); embedded mode runs them
as asyncio tasks of the app process, so a slow SMS provider never delays a response.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from app.clock import seconds_until
from app.settings import get_settings

log = logging.getLogger(__name__)

Task = Callable[..., Awaitable[Any]]
# The job functions by name, filled by ``@task`` in workers/tasks.py (imported by
# app.main): the queue knows them by name and never imports the workers.
TASKS: dict[str, Task] = {}
_pools: dict[int, ArqRedis] = {}
_tasks: set[asyncio.Task[Any]] = set()


def task(fn: Task) -> Task:
    """Register a job function under its name."""
    TASKS[fn.__name__] = fn
    return fn


async def _arq_pool() -> ArqRedis:
    loop_id = id(asyncio.get_running_loop())
    pool = _pools.get(loop_id)
    if pool is None:
        pool = await create_pool(RedisSettings.from_dsn(get_settings().redis_url))
        _pools[loop_id] = pool
    return pool


async def enqueue(name: str, *args: Any, job_id: str | None = None) -> None:
    """Queue job ``name`` of workers.tasks with ``args``. ``job_id`` de-duplicates in arq."""
    if get_settings().redis_url:
        pool = await _arq_pool()
        await pool.enqueue_job(name, *args, _job_id=job_id)
        return

    async def run() -> None:
        try:
            await TASKS[name]({}, *args)
        except Exception:  # a failed job must not take the app down; it is logged
            log.exception("in-process job %s failed", name)

    task = asyncio.get_running_loop().create_task(run())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def drain() -> None:
    """Wait for every in-process job started so far (tests, shutdown)."""
    while _tasks:
        await asyncio.gather(*list(_tasks), return_exceptions=True)


async def close() -> None:
    await drain()
    pool = _pools.pop(id(asyncio.get_running_loop()), None)
    if pool is not None:
        await pool.aclose()


async def daily_scheduler() -> None:
    """Embedded mode's cron: the reminder and the clean-up once at start (catching up) and
    daily at 08:00.

    Production runs the same job through arq's cron (workers/main.py). The job is
    idempotent, so a restart that runs it again sends nothing twice.
    """
    while True:
        await enqueue("remind_due_instruments")
        await enqueue("daily_cleanup")
        await asyncio.sleep(seconds_until(8))
