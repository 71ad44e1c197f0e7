"""E-mail (#12): queue a message (邮件记录) and deliver it through the configured backend.

The twin of ``sms.py``: ``queue`` stores the message and enqueues the ``send_email`` job (an
arq worker in production, in-process in embedded mode); ``deliver`` is what the job runs.
A message is claimed by a compare-and-set on its status before it is sent, so a job that
runs twice (queued twice, or rerun by arq) sends it once; a failed try is recorded
(发送失败, with the error and the number of tries) and raised, so arq tries again later.

``EMAIL_BACKEND=outbox`` only stores (the message is read in 平台管理 › 邮件记录);
``smtp`` sends through ``SMTP_HOST`` with aiosmtplib, STARTTLS required by default.

SMTP cannot be asked afterwards whether a message arrived (Aliyun's SMS can, see
``sms.deliver``): a try cut off after the server took the message but before it was marked
sent is sent again by the rerun. Every try carries the same Message-ID, so the receiving
side can tell the copies apart.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime, parseaddr
from typing import Any

import aiosmtplib

from app import jobs
from app.clock import now
from app.enums import SmsStatus
from app.services import listing, tallies
from app.services.listing import Cursor, Window
from app.settings import get_settings
from app.tables import EmailMessage

STUCK_AFTER = timedelta(minutes=5)
SUBJECT_MAX = 200


async def queue(
    address: str, kind: str, subject: str, body: str, dedupe_key: str | None = None
) -> int | None:
    """Store an e-mail and queue its delivery. With ``dedupe_key`` a second call is a no-op.

    Returns the message id, or None when ``dedupe_key`` was already used.
    """
    if dedupe_key is not None:
        if await EmailMessage.exists().where(EmailMessage.dedupe_key == dedupe_key):
            return None
    message = EmailMessage(
        address=address,
        kind=kind,
        subject=subject[:SUBJECT_MAX],
        body=body,
        dedupe_key=dedupe_key,
    )
    try:
        await message.save()
    except Exception:
        # A concurrent call with the same dedupe_key won the unique constraint.
        if dedupe_key is not None and await EmailMessage.exists().where(
            EmailMessage.dedupe_key == dedupe_key
        ):
            return None
        raise
    await jobs.enqueue("send_email", message.id, job_id=f"email:{message.id}")
    return int(message.id)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    user: str
    password: str
    sender: str  # the From header, e.g. "计量客户服务平台 <noreply@example.com>"
    starttls: bool
    timeout: float


class SmtpBackend:
    """Sends through an SMTP server with aiosmtplib: one connection per message (a job
    sends one message; a pooled connection would outlive the job)."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, message: MimeMessage) -> str:
        """Send ``message``; returns the server's answer to it. Raises on any failure."""
        c = self.config
        if not parseaddr(c.sender)[1]:
            raise ValueError("SMTP_FROM is not set: the From address of every e-mail")
        # aiosmtplib's timeout bounds each step; the whole exchange is bounded as well, so
        # a server that answers a byte at a time cannot hold the job past its own limit.
        async with asyncio.timeout(c.timeout * 4):
            _, answer = await aiosmtplib.send(
                message,
                hostname=c.host,
                port=c.port,
                username=c.user or None,
                password=c.password if c.user else None,
                start_tls=c.starttls,  # True: STARTTLS or no sending; False: plain SMTP
                timeout=c.timeout,
            )
        return answer


def _backend() -> SmtpBackend | None:
    settings = get_settings()
    if settings.email_backend == "smtp":
        return SmtpBackend(
            SmtpConfig(
                host=settings.smtp_host,
                port=settings.smtp_port,
                user=settings.smtp_user,
                password=settings.smtp_password,
                sender=settings.smtp_from,
                starttls=settings.smtp_starttls,
                timeout=settings.smtp_timeout,
            )
        )
    return None  # outbox: stored only


def build(row: dict[str, Any], sender: str) -> MimeMessage:
    """The MIME message of a stored e-mail: plain UTF-8 text, a Message-ID fixed by the
    message's id (the same on every try)."""
    message = MimeMessage()
    message["From"] = sender
    message["To"] = row["address"]
    message["Subject"] = row["subject"]
    message["Date"] = format_datetime(row["created_at"])
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = f"<email-{row['id']}.{int(row['created_at'].timestamp())}@{domain}>"
    message.set_content(row["body"])
    return message


async def deliver(message_id: int, rerun: bool = False) -> str:
    """Send a queued e-mail once. Raises on failure (recorded first) so arq retries it.

    - outbox: marked sent in the one statement that claims it;
    - smtp: claimed (发送中) before the call, then marked sent, or 发送失败 with the error.
      One found 发送中 was cut off mid-send: only its job's rerun (``rerun``) takes it
      again, or any delivery after STUCK_AFTER (see the module's note on SMTP).
    """
    row = await EmailMessage.select().where(EmailMessage.id == message_id).first()
    if row is None or row["status"] == SmsStatus.SENT:
        return "skipped"
    cut_off = row["status"] == SmsStatus.SENDING
    if cut_off and not (rerun or row["created_at"] < now() - STUCK_AFTER):
        return "skipped"  # another worker may be sending it
    # Compare-and-set on the status read: of two deliveries at once, one claims it.
    unchanged = (EmailMessage.id == message_id) & (EmailMessage.status == row["status"])
    tried = EmailMessage.attempts + 1
    backend = _backend()
    if backend is None:
        done = (
            await EmailMessage.update(
                {
                    EmailMessage.status: SmsStatus.SENT,
                    EmailMessage.provider_ref: "outbox",
                    EmailMessage.attempts: tried,
                    EmailMessage.sent_at: now(),
                }
            )
            .where(unchanged)
            .returning(EmailMessage.id)
        )
        return "outbox" if done else "skipped"
    claim = {EmailMessage.status: SmsStatus.SENDING, EmailMessage.attempts: tried}
    claimed = await EmailMessage.update(claim).where(unchanged).returning(EmailMessage.id)
    if not claimed:
        return "skipped"
    try:
        answer = await backend.send(build(row, backend.config.sender))
    except Exception as exc:
        await EmailMessage.update(
            {EmailMessage.status: SmsStatus.FAILED, EmailMessage.error: _describe(exc)}
        ).where(EmailMessage.id == message_id)
        raise
    await EmailMessage.update(
        {
            EmailMessage.status: SmsStatus.SENT,
            EmailMessage.provider_ref: answer[:200],
            EmailMessage.sent_at: now(),
        }
    ).where(EmailMessage.id == message_id)
    return "sent"


def _describe(exc: BaseException) -> str:
    """The error as 邮件记录 shows it: its kind and text (a timeout has no text of its own),
    never the SMTP password."""
    text = f"{type(exc).__name__}: {exc}".strip().removesuffix(":")
    password = get_settings().smtp_password
    if password:
        text = text.replace(password, "******")
    return text[:500]


async def requeue_waiting() -> int:
    """Queue again the e-mails still 待发送 from the last day (the worker's cron, every
    minute): their job was never queued, as when Redis was away and the app process
    stopped before it came back. A queued job is not queued twice (its job id)."""
    rows = await EmailMessage.select(EmailMessage.id).where(
        (EmailMessage.status == SmsStatus.QUEUED)
        & (EmailMessage.created_at > now() - timedelta(days=1))
    )
    for row in rows:
        await jobs.enqueue("send_email", row["id"], job_id=f"email:{row['id']}")
    return len(rows)


def _message_where(p: dict[str, Any]) -> list[Any]:
    # index email_message (address, id): one mailbox's, newest first
    return [EmailMessage.address == p["address"]] if "address" in p else []


async def list_messages(cursor: Cursor, per_page: int = 20, address: str = "") -> Window:
    """邮件记录, newest first, a keyset page; ``address`` narrows it to one mailbox. Every
    e-mail ever sent is here, so it is counted up to a limit ("10000+"), as 短信记录's
    filters are, and paged by id."""
    values = {"address": address} if (address := address.strip()) else {}
    total = await tallies.bounded_count(
        ("mail.count", *values),
        lambda p: EmailMessage.select(EmailMessage.id).where(*_message_where(p)),
        **values,
    )
    return await listing.window(
        ("mail", *values),
        lambda p: EmailMessage.select().where(*_message_where(p)),
        EmailMessage.id,
        cursor,
        per_page,
        total,
        **values,
    )
