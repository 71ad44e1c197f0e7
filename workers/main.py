"""The arq worker: ``arq workers.main.WorkerSettings`` (production mode, needs REDIS_URL)."""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.connections import RedisSettings
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.clock import TZ
from app.db import close_pool, start_pool
from app.settings import get_settings
from workers.tasks import (
    daily_cleanup,
    fold_tallies,
    package_certificates,
    remind_due_instruments,
    requeue_email,
    requeue_sms,
    send_email,
    send_sms,
)

# Redis away (a restart, a cut connection): each command waits and tries again, backing off
# to 2 s, for about three minutes before giving up. arq itself would stop the worker at the
# first failed poll.
REDIS_RETRIES = 90


def redis_settings() -> RedisSettings:
    settings = RedisSettings.from_dsn(get_settings().redis_url or "redis://127.0.0.1:6379")
    settings.retry = Retry(ExponentialBackoff(cap=2, base=0.1), REDIS_RETRIES)
    # OSError: a refused connect comes as one (redis-py wraps it only after its retries).
    settings.retry_on_error = [RedisConnectionError, RedisTimeoutError, OSError]
    return settings


async def startup(ctx: dict[str, Any]) -> None:
    await start_pool()


async def shutdown(ctx: dict[str, Any]) -> None:
    await close_pool()


class WorkerSettings:
    functions = [send_sms, send_email, remind_due_instruments, daily_cleanup, package_certificates]
    # The reminder at 08:00 China time, whatever the host's time zone (and once at start-up,
    # catching up after a restart; it is idempotent). unique=True keeps two workers from
    # both running it.
    timezone = TZ
    cron_jobs = [
        cron(remind_due_instruments, hour={8}, minute={0}, run_at_startup=True),
        cron(daily_cleanup, hour={3}, minute={30}),
        cron(requeue_sms, second={30}, keep_result=0),
        cron(fold_tallies, second={0}, keep_result=0),
        cron(requeue_email, second={40}, keep_result=0),
    ]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = redis_settings()
    max_tries = 5
    # A job whose worker was killed is picked up by another worker only once its
    # in-progress mark expires: job_timeout + 10 s after it started (arq).
    job_timeout = get_settings().job_timeout
    # Keep results briefly so a repeated _job_id is not queued twice right after a run.
    keep_result = 3600
