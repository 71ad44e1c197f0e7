"""SMS: queue a message (短信记录) and deliver it through the configured backend.

``queue`` stores the message and enqueues the ``send_sms`` job; ``deliver`` is what the job
runs. Delivery claims the message atomically, so a job that runs twice sends once, and a
job cut off mid-send asks the provider before sending again (see ``deliver``).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from app import jobs
from app.clock import TZ, now, today
from app.enums import SmsStatus
from app.services import listing, tallies
from app.services.listing import Cursor, Window
from app.services.sms_aliyun import AliyunConfig, AliyunSmsBackend
from app.services.tallies import Counting
from app.settings import get_settings
from app.tables import SmsMessage

SIGN = "【计量客户服务平台】"
CODE_RE = re.compile(r"验证码为\d{6}")
STUCK_AFTER = timedelta(minutes=5)
CODE_VALID = timedelta(minutes=5)  # accounts.CODE_TTL: a code SMS later than this is useless


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


async def deliver(message_id: int, rerun: bool = False) -> str:
    """Send a queued message once. Raises on provider failure so arq retries it.

    Exactly once, even when a worker is killed mid-send:

    - the outbox backend marks the message sent in the one statement that claims it;
    - a provider's message is claimed (发送中) before the call and marked sent after it. One
      found 发送中 was cut off mid-send (or the call timed out): it is taken again only by
      its job's rerun (``rerun``: arq reruns a job once the try before it is lost) or after
      STUCK_AFTER, and then the provider is asked first whether it went out (by the OutId
      ``sms-<id>``): sent again only when it did not.
    """
    row = (
        await SmsMessage.select(
            SmsMessage.status, SmsMessage.phone, SmsMessage.kind, SmsMessage.params,
            SmsMessage.created_at,
        )
        .where(SmsMessage.id == message_id)
        .first()
    )  # fmt: skip
    if row is None or row["status"] == SmsStatus.SENT:
        return "skipped"
    cut_off = row["status"] == SmsStatus.SENDING
    if cut_off and not (rerun or row["created_at"] < now() - STUCK_AFTER):
        return "skipped"  # another worker may be sending it
    # Compare-and-set on the status read: of two deliveries at once, one claims it.
    unchanged = (SmsMessage.id == message_id) & (SmsMessage.status == row["status"])
    backend = _backend()
    if backend is None:
        done = (
            await SmsMessage.update(
                {
                    SmsMessage.status: SmsStatus.SENT,
                    SmsMessage.provider_ref: "outbox",
                    SmsMessage.sent_at: now(),
                }
            )
            .where(unchanged)
            .returning(SmsMessage.id)
        )
        return "outbox" if done else "skipped"
    claimed = (
        await SmsMessage.update({SmsMessage.status: SmsStatus.SENDING})
        .where(unchanged)
        .returning(SmsMessage.id)
    )
    if not claimed:
        return "skipped"
    out_id = f"sms-{message_id}"
    ref = None
    try:
        if cut_off and hasattr(backend, "find_sent"):
            days = sorted({row["created_at"].astimezone(TZ).date(), today()})
            ref = await backend.find_sent(row["phone"], out_id, days)
        if ref is None:
            template = get_settings().aliyun_templates.get(row["kind"], "")
            ref = await backend.send(row["phone"], template, json.loads(row["params"]), out_id)
    except Exception as exc:
        await _failed(message_id, exc)
        raise
    await _sent(message_id, row["kind"], ref)
    return "sent"


async def _failed(message_id: int, exc: Exception) -> None:
    """A refusal (the provider answered with an error code) is 发送失败, and the retry
    sends again. Anything else (a timeout, a cut connection) may have gone out: it stays
    发送中, so the retry asks the provider before sending again."""
    code = getattr(exc, "code", None)
    refused = bool(code) and code != "OK"
    values: dict[Any, Any] = {SmsMessage.error: str(exc)[:500]}
    if refused:
        values[SmsMessage.status] = SmsStatus.FAILED
    await SmsMessage.update(values).where(SmsMessage.id == message_id)


async def _sent(message_id: int, kind: str, ref: str) -> None:
    done: dict[Any, Any] = {
        SmsMessage.status: SmsStatus.SENT,
        SmsMessage.provider_ref: ref[:100],
        SmsMessage.sent_at: now(),
    }
    if kind == "code":
        # Delivered by a real provider: the code is stored only as a hash from now on.
        text = await SmsMessage.select(SmsMessage.text).where(SmsMessage.id == message_id).first()
        done[SmsMessage.text] = CODE_RE.sub("验证码为******", text["text"] if text else "")
        done[SmsMessage.params] = "{}"
    await SmsMessage.update(done).where(SmsMessage.id == message_id)


async def requeue_waiting() -> int:
    """Queue again the messages still 待发送 (the worker's cron, every minute): their job was
    never queued, as when Redis was away and the app process stopped before it came back.
    A code only while it is valid; the rest for a day. A message whose job is queued
    already is not queued twice (its job id). Returns how many were looked at."""
    t = now()
    rows = await SmsMessage.select(SmsMessage.id).where(
        (SmsMessage.status == SmsStatus.QUEUED)
        & (SmsMessage.created_at > t - timedelta(days=1))
        & ((SmsMessage.kind != "code") | (SmsMessage.created_at > t - CODE_VALID))
    )
    for row in rows:
        await jobs.enqueue("send_sms", row["id"], job_id=f"sms:{row['id']}")
    return len(rows)


def _message_where(p: dict[str, Any]) -> list[Any]:
    where: list[Any] = []
    if "phone" in p:
        where.append(SmsMessage.phone == p["phone"])
    if "status" in p:
        where.append(SmsMessage.status == p["status"])
    if "since" in p:  # index sms_message (status, created_at)
        where.append(SmsMessage.created_at >= p["since"])
    return where


def count_messages(phone: str = "", status: str = "", since: datetime | None = None) -> Counting:
    """短信记录's total (of one phone, one status, since an instant): the tally's, or
    (filtered) counted up to a limit. The 首页's 发送失败 of the last 24 h is one."""
    values = _message_values(phone, status, since)
    if not values:
        return tallies.total(tallies.SMS, None)
    return tallies.bounded_count(
        ("sms.count", *sorted(values)),
        lambda p: SmsMessage.select(SmsMessage.id).where(*_message_where(p)),
        **values,
    )


def _message_values(phone: str, status: str, since: datetime | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if phone:
        values["phone"] = phone
    if status:
        values["status"] = status
    if since is not None:
        values["since"] = since
    return values


async def list_messages(
    cursor: Cursor,
    per_page: int = 20,
    phone: str = "",
    status: str = "",
    since: datetime | None = None,
) -> Window:
    """短信记录, newest first, a keyset page (of one phone, one status, since an instant)."""
    values = _message_values(phone, status, since)
    total = await count_messages(phone, status, since)
    return await listing.window(
        ("sms", *sorted(values)),
        lambda p: SmsMessage.select().where(*_message_where(p)),
        SmsMessage.id,
        cursor,
        per_page,
        total,
        **values,
    )
