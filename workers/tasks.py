"""Thin task functions: each calls a service. The arq worker and embedded mode share them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any


async def send_sms(ctx: dict[str, Any], message_id: int) -> str:
    """Send one queued SMS (idempotent: a message already sent is not sent again)."""
    from app.services import sms

    return await sms.deliver(message_id)


TASKS: dict[str, Callable[..., Awaitable[Any]]] = {"send_sms": send_sms}
