"""Thin task functions: each calls a service. The arq worker and embedded mode share them."""

from __future__ import annotations

from typing import Any

from arq import Retry

from app.jobs import task
from app.security.sessions import DatabaseSessionStore
from app.services import certificates, instruments, mail, sms, tallies, throttle
from app.services.accounts import purge_old_records

# Seconds before a failed SMS or e-mail is tried again, times the try number (arq's
# max_tries caps the tries; the last failure stays recorded as 发送失败).
RETRY_DELAY = 10


@task
async def send_sms(ctx: dict[str, Any], message_id: int) -> str:
    """Send one queued SMS (idempotent: a message already sent is not sent again; a rerun
    of a try cut off mid-send first asks the provider whether it went out)."""
    try:
        return await sms.deliver(message_id, rerun=ctx.get("job_try", 1) > 1)
    except Exception as exc:
        # arq only retries on Retry; in-process (no "job_try") the failure stays recorded.
        if "job_try" in ctx:
            raise Retry(defer=RETRY_DELAY * ctx["job_try"]) from exc
        raise


@task
async def requeue_sms(ctx: dict[str, Any]) -> int:
    """Every minute: SMS still 待发送 whose job was never queued (Redis was away)."""
    return await sms.requeue_waiting()


@task
async def fold_tallies(ctx: dict[str, Any]) -> int:
    """Every minute: each list tally's rows folded into one per key (the sums stay short)."""
    return await tallies.fold()


@task
async def send_email(ctx: dict[str, Any], message_id: int) -> str:
    """Send one queued e-mail (idempotent: a message already sent is not sent again; a
    failed try is recorded, then retried later with a growing delay)."""
    try:
        return await mail.deliver(message_id, rerun=ctx.get("job_try", 1) > 1)
    except Exception as exc:
        # As send_sms: arq retries on Retry; in-process the failure stays recorded.
        if "job_try" in ctx:
            raise Retry(defer=RETRY_DELAY * ctx["job_try"]) from exc
        raise


@task
async def requeue_email(ctx: dict[str, Any]) -> int:
    """Every minute: e-mails still 待发送 whose job was never queued (Redis was away)."""
    return await mail.requeue_waiting()


@task
async def remind_due_instruments(ctx: dict[str, Any]) -> int:
    """The daily 器具即将到期 reminder (idempotent: one SMS per instrument and due date)."""
    return await instruments.remind_due()


@task
async def daily_cleanup(ctx: dict[str, Any]) -> None:
    """Old throttling records, expired sessions kept in the database (embedded mode) and
    expired certificate zips."""
    await purge_old_records()
    await DatabaseSessionStore().purge_expired()
    await certificates.purge_expired_downloads()
    await throttle.purge()


@task
async def package_certificates(ctx: dict[str, Any], job_id: int) -> str:
    """【下载证书】: one zip of the job's certificates (a rerun starts the zip again)."""
    return await certificates.package(job_id)
