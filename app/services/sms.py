"""SMS: queue a message (短信记录) and deliver it through the configured backend.

``queue`` stores the message and enqueues the ``send_sms`` job; ``deliver`` is what the job
runs. Delivery claims the message atomically, so a job that runs twice sends once.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from app import jobs
from app.clock import now
from app.enums import SmsStatus
from app.services.sms_aliyun import AliyunConfig, AliyunSmsBackend
from app.settings import get_settings
from app.tables import SmsMessage

SIGN = "【计量客户服务平台】"
CODE_RE = re.compile(r"验证码为\d{6}")
STUCK_AFTER = timedelta(minutes=5)


async def queue(
    phone: str,
    kind: str,
    text: str,
    params: dict[str, str] | None = None,
    dedupe_key: str | None = None,
) -> int | None:
    """Store an SMS and queue its delivery. With ``dedupe_key`` a second call is a no-op.

    Returns the message id, or None when ``dedupe_key`` was already used.
    """
    if dedupe_key is not None:
        exists = await SmsMessage.exists().where(SmsMessage.dedupe_key == dedupe_key)
        if exists:
            return None
    message = SmsMessage(
        phone=phone,
        kind=kind,
        text=SIGN + text,
        params=json.dumps(params or {}, ensure_ascii=False),
        dedupe_key=dedupe_key,
    )
    try:
        await message.save()
    except Exception:
        # A concurrent call with the same dedupe_key won the unique constraint.
        if dedupe_key is not None and await SmsMessage.exists().where(
            SmsMessage.dedupe_key == dedupe_key
        ):
            return None
        raise
    await jobs.enqueue("send_sms", message.id, job_id=f"sms:{message.id}")
    return int(message.id)


def _backend() -> Any:
    settings = get_settings()
    if settings.sms_backend == "aliyun":
        return AliyunSmsBackend(
            AliyunConfig(
                access_key_id=settings.aliyun_access_key_id,
                access_key_secret=settings.aliyun_access_key_secret,
                sign_name=settings.aliyun_sign_name,
                endpoint=settings.aliyun_endpoint,
            )
        )
    return None  # outbox: stored only


async def deliver(message_id: int) -> str:
    """Send a queued message once. Raises on provider failure so arq retries it.

    A message left sending by a worker that died is claimed again after STUCK_AFTER.
    """
    claimable = SmsMessage.status.is_in([SmsStatus.QUEUED, SmsStatus.FAILED]) | (
        (SmsMessage.status == SmsStatus.SENDING) & (SmsMessage.created_at < now() - STUCK_AFTER)
    )
    claimed = (
        await SmsMessage.update({SmsMessage.status: SmsStatus.SENDING})
        .where((SmsMessage.id == message_id) & claimable)
        .returning(SmsMessage.phone, SmsMessage.kind, SmsMessage.params)
    )
    if not claimed:
        return "skipped"
    row = claimed[0]
    backend = _backend()
    if backend is None:
        await SmsMessage.update(
            {
                SmsMessage.status: SmsStatus.SENT,
                SmsMessage.provider_ref: "outbox",
                SmsMessage.sent_at: now(),
            }
        ).where(SmsMessage.id == message_id)
        return "outbox"
    template = get_settings().aliyun_templates.get(row["kind"], "")
    try:
        ref = await backend.send(row["phone"], template, json.loads(row["params"]))
    except Exception as exc:
        await SmsMessage.update(
            {SmsMessage.status: SmsStatus.FAILED, SmsMessage.error: str(exc)[:500]}
        ).where(SmsMessage.id == message_id)
        raise
    done: dict[Any, Any] = {
        SmsMessage.status: SmsStatus.SENT,
        SmsMessage.provider_ref: ref,
        SmsMessage.sent_at: now(),
    }
    if row["kind"] == "code":
        # Delivered by a real provider: the code is stored only as a hash from now on.
        text = await SmsMessage.select(SmsMessage.text).where(SmsMessage.id == message_id).first()
        done[SmsMessage.text] = CODE_RE.sub("验证码为******", text["text"] if text else "")
        done[SmsMessage.params] = "{}"
    await SmsMessage.update(done).where(SmsMessage.id == message_id)
    return "sent"


async def list_messages(page: int, per_page: int = 20, phone: str = "") -> tuple[list[dict], int]:
    """短信记录, newest first."""
    query = SmsMessage.select().order_by(SmsMessage.id, ascending=False)
    count = SmsMessage.count()
    if phone:
        query = query.where(SmsMessage.phone == phone)
        count = count.where(SmsMessage.phone == phone)
    rows = await query.limit(per_page).offset((page - 1) * per_page)
    return rows, await count
