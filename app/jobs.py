"""Background jobs: through arq and Redis in production, in-process in embedded mode.

The job functions are the same either way (``workers/tasks.py``); embedded mode runs them
as asyncio tasks of the app process, so a slow SMS provider never delays a response.

Redis away never fails the request that queues a job (its rows are written by then): the
job waits in the process and is queued as soon as Redis answers again (for REQUEUE_FOR).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from redis.exceptions import RedisError

from app.clock import seconds_until
from app.settings import get_settings

log = logging.getLogger(__name__)

Task = Callable[..., Awaitable[Any]]
# The job functions by name, filled by ``@task`` in workers/tasks.py (imported by
# app.main): the queue knows them by name and never imports the workers.
TASKS: dict[str, Task] = {}
_pools: dict[int, ArqRedis] = {}
_tasks: set[asyncio.Task[Any]] = set()

# Redis away: an enqueue gives up after ENQUEUE_TIMEOUT seconds (refused: at once); the job
# waits in _backlog (at most MAX_BACKLOG) and is tried again, backing off to 5 s, for up to
# REQUEUE_FOR seconds. Queueing a job twice is harmless: its job id de-duplicates it.
ENQUEUE_TIMEOUT = 3.0
REQUEUE_FOR = 600.0
MAX_BACKLOG = 10_000
QUEUE_AWAY = (RedisError, OSError, TimeoutError)
_backlog: list[tuple[str, tuple[Any, ...], str | None]] = []
_retriers: dict[int, asyncio.Task[None]] = {}
# The loop each pool of _pools was made on (a pool serves only its own loop).
_pool_loops: dict[int, asyncio.AbstractEventLoop] = {}


def task(fn: Task) -> Task:
    """Register a job function under its name."""
    TASKS[fn.__name__] = fn
    return fn


async def _arq_pool() -> ArqRedis:
    loop = asyncio.get_running_loop()
    loop_id = id(loop)
    pool = _pools.get(loop_id)
    if pool is not None and _pool_loops.get(loop_id) is not loop:
        pool = None  # the id of a closed loop, come back for a new one
    if pool is None:
        _pool_loops[loop_id] = loop
        settings = RedisSettings.from_dsn(get_settings().redis_url)
        settings.conn_retries = 0  # no waiting seconds for Redis within a request
        pool = await create_pool(settings)
        _pools[loop_id] = pool
    return pool


async def _to_arq(name: str, args: tuple[Any, ...], job_id: str | None) -> None:
    async with asyncio.timeout(ENQUEUE_TIMEOUT):
        pool = await _arq_pool()
        await pool.enqueue_job(name, *args, _job_id=job_id)


async def enqueue(name: str, *args: Any, job_id: str | None = None) -> None:
    """Queue job ``name`` of workers.tasks with ``args``. ``job_id`` de-duplicates in arq.

    With Redis away the job is kept and queued once Redis is back (see the module's note).
    """
    if get_settings().redis_url:
        try:
            await _to_arq(name, args, job_id)
        except QUEUE_AWAY as exc:
            log.warning("Redis away, job %s %s kept to queue later: %r", name, job_id, exc)
            _later(name, args, job_id)
        return

    async def run() -> None:
        try:
            await TASKS[name]({}, *args)
        except Exception:  # a failed job must not take the app down; it is logged
            log.exception("in-process job %s failed", name)

    task = asyncio.get_running_loop().create_task(run())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def _later(name: str, args: tuple[Any, ...], job_id: str | None) -> None:
    if len(_backlog) < MAX_BACKLOG:
        _backlog.append((name, args, job_id))
    else:
        log.error("job backlog full: job %s %s dropped", name, job_id)
    loop = asyncio.get_running_loop()
    retrier = _retriers.get(id(loop))
    # An id can come back for a new loop once the old one is gone (tests run a loop each):
    # a task of a closed loop never finishes, so it is replaced, not waited for.
    if retrier is None or retrier.done() or retrier.get_loop() is not loop:
        _retriers[id(loop)] = loop.create_task(_retry_backlog())


async def _retry_backlog() -> None:
    """Queue the kept jobs, in order, as soon as Redis answers again."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REQUEUE_FOR
    delay = 0.25
    while _backlog and loop.time() < deadline:
        await asyncio.sleep(delay)
        try:
            while _backlog:
                await _to_arq(*_backlog[0])
                _backlog.pop(0)
        except QUEUE_AWAY:
            delay = min(delay * 2, 5.0)
    if _backlog:
        log.error("Redis away for %.0f s: %d jobs not queued", REQUEUE_FOR, len(_backlog))
        _backlog.clear()


async def drain() -> None:
    """Wait for every in-process job started so far (tests, shutdown)."""
    while _tasks:
        await asyncio.gather(*list(_tasks), return_exceptions=True)


async def close() -> None:
    await drain()
    retrier = _retriers.pop(id(asyncio.get_running_loop()), None)
    if retrier is not None:
        retrier.cancel()
    _pool_loops.pop(id(asyncio.get_running_loop()), None)
    pool = _pools.pop(id(asyncio.get_running_loop()), None)
    if pool is not None:
        await pool.aclose()


# Seconds between two folds of the list tallies (app/services/tallies.py).
FOLD_EVERY = 60


async def folder() -> None:
    """Embedded mode's fold of the list tallies, every minute (production: arq's cron)."""
    while True:
        await asyncio.sleep(FOLD_EVERY)
        await enqueue("fold_tallies")


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
