"""The arq worker: ``arq workers.main.WorkerSettings`` (production mode, needs REDIS_URL)."""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.connections import RedisSettings

from app.clock import TZ
from app.db import close_pool, start_pool
from app.settings import get_settings
from workers.tasks import (
    daily_cleanup,
    package_certificates,
    remind_due_instruments,
    send_sms,
)


async def startup(ctx: dict[str, Any]) -> None:
    await start_pool()


async def shutdown(ctx: dict[str, Any]) -> None:
    await close_pool()


class WorkerSettings:
    functions = [send_sms, remind_due_instruments, daily_cleanup, package_certificates]
    # The reminder at 08:00 China time, whatever the host's time zone (and once at start-up,
    # catching up after a restart; it is idempotent). unique=True keeps two workers from
    # both running it.
    timezone = TZ
    cron_jobs = [
        cron(remind_due_instruments, hour={8}, minute={0}, run_at_startup=True),
        cron(daily_cleanup, hour={3}, minute={30}),
    ]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(get_settings().redis_url or "redis://127.0.0.1:6379")
    max_tries = 5
    # A job whose worker was killed is picked up by another worker only once its
    # in-progress mark expires: job_timeout + 10 s after it started (arq).
    job_timeout = get_settings().job_timeout
    # Keep results briefly so a repeated _job_id is not queued twice right after a run.
    keep_result = 3600
