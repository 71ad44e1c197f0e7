"""The send_email job (#12) through a real arq worker on real Redis, against real SMTP servers
started here: sent once however often queued; a server that refuses (5xx) or never answers
is tried again with a delay, then the message stays recorded as 发送失败 with the error
(nothing lost); a server that refuses once gets the message once; STARTTLS is required and
the login goes over it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path
from typing import Any

import pytest
from arq.worker import Worker

from app.services import mail
from app.services.listing import Cursor
from app.tables import EmailMessage
from tests.factories import make_email_message
from tests.helpers import PRODUCTION, run_jobs
from workers import tasks

# Every test here is skipped when the worker tests' Redis is down.
pytestmark = pytest.mark.usefixtures("redis_url")

ADDRESS = "wang.wu@example.com"
SUBJECT = "【计量客户服务平台】证书已出具：ZS-1"
BODY = "您送检的器具“温度计”（唯一性号U1）的证书ZS-1已出具，请登录平台在【电子证书】中下载。"


async def _queued() -> int:
    """An e-mail stored as ``mail.queue`` stores it, its job not queued yet."""
    row = await make_email_message(
        ADDRESS,
        subject=SUBJECT,
        body=BODY,
        status="queued",
        attempts=0,
        provider_ref="",
        sent_at=None,
    )
    return int(row.id)


async def _row(message_id: int) -> dict[str, Any]:
    return await EmailMessage.select().where(EmailMessage.id == message_id).first()


async def test_smtp_sends_once_however_often_queued(
    pool: Any, burst: Callable[..., Awaitable[Worker]], smtp_server: Any, smtp_env: Any
) -> None:
    inbox, port = smtp_server()
    smtp_env(port)
    message_id = await _queued()
    first = await pool.enqueue_job("send_email", message_id, _job_id=f"email:{message_id}")
    again = await pool.enqueue_job("send_email", message_id, _job_id=f"email:{message_id}")
    assert first is not None and again is None  # the job id de-duplicates
    await burst(max_tries=3)
    assert await first.result(timeout=5) == "sent"
    row = await _row(message_id)
    assert row["status"] == "sent" and row["attempts"] == 1 and row["sent_at"] is not None
    assert "queued as M1" in row["provider_ref"]
    [envelope] = inbox.accepted
    assert envelope.mail_from == "noreply@example.com" and envelope.rcpt_tos == [ADDRESS]
    sent = message_from_bytes(envelope.original_content, policy=email_policy.default)
    assert sent["Subject"] == SUBJECT and sent["To"] == ADDRESS
    assert sent["From"].addresses[0].display_name == "计量客户服务平台"
    assert sent["Message-ID"].startswith(f"<email-{message_id}.")
    assert sent.get_content().strip() == BODY
    # A rerun under another job id (or the job's own rerun) sends nothing more.
    rerun = await pool.enqueue_job("send_email", message_id, _job_id=f"email:{message_id}:x")
    await burst(max_tries=3)
    assert await rerun.result(timeout=5) == "skipped"
    assert await mail.deliver(message_id, rerun=True) == "skipped"
    assert len(inbox.accepted) == 1


async def test_refusing_server_is_retried_then_recorded_failed(
    pool: Any,
    burst: Callable[..., Awaitable[Worker]],
    smtp_server: Any,
    smtp_env: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tasks, "RETRY_DELAY", 0)  # the growing delay: the next test
    inbox, port = smtp_server(refuse=None)
    smtp_env(port)
    message_id = await _queued()
    await pool.enqueue_job("send_email", message_id, _job_id=f"email:{message_id}")
    await burst(max_tries=3)
    assert inbox.tries == 3 and inbox.accepted == []  # tried three times, never taken
    row = await _row(message_id)
    assert row["status"] == "failed" and row["attempts"] == 3 and row["sent_at"] is None
    assert "554" in row["error"] and "rejected by policy" in row["error"]
    # Nothing lost: 邮件记录 still shows it, with why.
    found = await mail.list_messages(Cursor(), 20, ADDRESS)
    assert found.total.n == 1 and found.rows[0]["status"] == "failed"


async def test_retry_delay_grows_with_each_try() -> None:
    """arq's Retry defers by RETRY_DELAY times the try number (10 s, 20 s, ...)."""
    message_id = await _queued()
    await EmailMessage.update({EmailMessage.status: "sent"}).where(EmailMessage.id == message_id)
    assert await tasks.send_email({"job_try": 2}, message_id) == "skipped"

    async def fail(message_id: int, rerun: bool = False) -> str:
        raise ConnectionRefusedError("refused")

    with pytest.MonkeyPatch.context() as m:
        m.setattr(mail, "deliver", fail)
        for job_try in (1, 2, 3):
            with pytest.raises(tasks.Retry) as raised:
                await tasks.send_email({"job_try": job_try}, message_id)
            assert raised.value.defer_score == tasks.RETRY_DELAY * job_try * 1000


async def test_server_refusing_once_gets_the_message_once(
    pool: Any,
    burst: Callable[..., Awaitable[Worker]],
    smtp_server: Any,
    smtp_env: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tasks, "RETRY_DELAY", 0)
    inbox, port = smtp_server(refuse=1)
    smtp_env(port)
    message_id = await _queued()
    await pool.enqueue_job("send_email", message_id, _job_id=f"email:{message_id}")
    await burst(max_tries=3)
    assert inbox.tries == 2 and len(inbox.accepted) == 1
    row = await _row(message_id)
    assert row["status"] == "sent" and row["attempts"] == 2
    assert "554" in row["error"]  # the first try's refusal stays on record


async def test_server_that_times_out_is_retried_then_recorded_failed(
    pool: Any,
    burst: Callable[..., Awaitable[Worker]],
    silent_smtp: tuple[int, list[Any]],
    smtp_env: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tasks, "RETRY_DELAY", 0)
    port, connections = silent_smtp
    smtp_env(port, SMTP_TIMEOUT="0.3")
    message_id = await _queued()
    await pool.enqueue_job("send_email", message_id, _job_id=f"email:{message_id}")
    await burst(max_tries=2)
    assert len(connections) == 2  # one connection per try
    row = await _row(message_id)
    assert row["status"] == "failed" and row["attempts"] == 2
    assert "Timeout" in row["error"]


async def test_starttls_is_required_and_the_login_goes_over_it(
    smtp_server: Any, smtp_env: Any, tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))  # trust the test certificate
    inbox, port = smtp_server(tls=tls_files)
    smtp_env(port, SMTP_STARTTLS="1", SMTP_USER="mailer", SMTP_PASSWORD="s3cret pass")
    message_id = await _queued()
    assert await mail.deliver(message_id) == "sent"
    assert inbox.logins == [(b"mailer", b"s3cret pass")] and len(inbox.accepted) == 1
    # A server that offers no STARTTLS gets nothing, and never the password.
    plain, plain_port = smtp_server()
    smtp_env(plain_port, SMTP_STARTTLS="1", SMTP_USER="mailer", SMTP_PASSWORD="s3cret pass")
    other = await _queued()
    with pytest.raises(Exception, match="STARTTLS"):
        await mail.deliver(other)
    row = await _row(other)
    assert row["status"] == "failed" and "STARTTLS" in row["error"]
    assert plain.tries == 0 and plain.logins == [] and "s3cret" not in row["error"]


async def test_missing_from_address_is_recorded(smtp_server: Any, smtp_env: Any) -> None:
    inbox, port = smtp_server()
    smtp_env(port, SMTP_FROM="")
    message_id = await _queued()
    with pytest.raises(ValueError, match="SMTP_FROM"):
        await mail.deliver(message_id)
    row = await _row(message_id)
    assert row["status"] == "failed" and "SMTP_FROM" in row["error"] and inbox.tries == 0


async def test_queue_runs_the_job_and_dedupes(pool: Any, smtp_server: Any, smtp_env: Any) -> None:
    """mail.queue as the app calls it: in-process in embedded mode, through arq in
    production; the same dedupe key twice stores and sends one message."""
    inbox, port = smtp_server()
    smtp_env(port)
    first = await mail.queue(ADDRESS, "certificate", SUBJECT, BODY, dedupe_key="email:cert:1")
    again = await mail.queue(ADDRESS, "certificate", SUBJECT, BODY, dedupe_key="email:cert:1")
    assert first is not None and again is None
    await run_jobs()
    assert len(inbox.accepted) == 1 and (await _row(first))["status"] == "sent"


async def test_cut_off_send_is_taken_again_only_by_its_rerun(
    smtp_server: Any, smtp_env: Any
) -> None:
    inbox, port = smtp_server()
    smtp_env(port)
    message_id = await _queued()
    await EmailMessage.update({EmailMessage.status: "sending"}).where(EmailMessage.id == message_id)
    assert await mail.deliver(message_id) == "skipped"  # its try may still be running
    assert await mail.deliver(message_id, rerun=True) == "sent"
    assert await mail.deliver(message_id, rerun=True) == "skipped"
    assert len(inbox.accepted) == 1


async def test_waiting_emails_are_queued_again(pool: Any) -> None:
    """The job of a 待发送 e-mail was never queued (Redis away): the cron queues it."""
    message_id = await _queued()
    assert await mail.requeue_waiting() == 1
    await run_jobs()
    row = await _row(message_id)
    assert row["status"] == "sent" and row["provider_ref"] == "outbox"
    assert await mail.requeue_waiting() == 0


@pytest.mark.skipif(not PRODUCTION, reason="production mode: REDIS_URL queues jobs to arq")
async def test_production_queue_goes_through_arq(pool: Any) -> None:
    queued = await mail.queue(ADDRESS, "certificate", SUBJECT, BODY)
    assert queued is not None
    assert (await _row(queued))["status"] == "queued"  # waits for a worker
    await run_jobs()  # an arq burst worker
    assert (await _row(queued))["status"] == "sent"
