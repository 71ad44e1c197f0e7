"""Thin task functions: each calls a service. The arq worker and embedded mode share them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from arq import Retry

# Seconds before a failed SMS is tried again, times the try number (arq's max_tries caps it).
RETRY_DELAY = 10


async def send_sms(ctx: dict[str, Any], message_id: int) -> str:
    """Send one queued SMS (idempotent: a message already sent is not sent again)."""
    from app.services import sms

    try:
        return await sms.deliver(message_id)
    except Exception as exc:
        # arq only retries on Retry; in-process (no "job_try") the failure stays recorded.
        if "job_try" in ctx:
            raise Retry(defer=RETRY_DELAY * ctx["job_try"]) from exc
        raise


async def remind_due_instruments(ctx: dict[str, Any]) -> int:
    """The daily 器具即将到期 reminder (idempotent: one SMS per instrument and due date)."""
    from app.services import instruments

    return await instruments.remind_due()


async def daily_cleanup(ctx: dict[str, Any]) -> None:
    """Old throttling records, and expired sessions kept in the database (embedded mode)."""
    from app.security import DatabaseSessionStore
    from app.services.accounts import purge_old_records

    await purge_old_records()
    await DatabaseSessionStore().purge_expired()


TASKS: dict[str, Callable[..., Awaitable[Any]]] = {
    "send_sms": send_sms,
    "remind_due_instruments": remind_due_instruments,
    "daily_cleanup": daily_cleanup,
}
