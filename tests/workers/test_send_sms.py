"""The send_sms job through a real arq worker on real Redis: runs once, however often queued."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from arq.worker import Worker

from app import jobs
from app.clock import now
from app.services import sms
from app.services.sms_aliyun import SmsSendError
from app.tables import SmsMessage
from tests.helpers import PRODUCTION, run_jobs
from workers import tasks

# Every test here, the in-process ones too, is skipped when the worker tests' Redis is down.
pytestmark = pytest.mark.usefixtures("redis_url")


async def _message() -> int:
    msg = SmsMessage(
        phone="13800001234",
        kind="code",
        text="【计量客户服务平台】验证码为123456",
        params='{"code": "123456"}',
    )
    await msg.save()
    return int(msg.id)


async def test_worker_sends_once_even_when_queued_twice(
    pool: Any, burst: Callable[..., Awaitable[Worker]]
) -> None:
    message_id = await _message()
    first = await pool.enqueue_job("send_sms", message_id, _job_id=f"sms:{message_id}")
    again = await pool.enqueue_job("send_sms", message_id, _job_id=f"sms:{message_id}")
    assert first is not None and again is None  # arq refuses the duplicate job id
    await burst(max_tries=3)
    row = await SmsMessage.select().where(SmsMessage.id == message_id).first()
    assert row["status"] == "sent" and row["provider_ref"] == "outbox"
    assert await first.result(timeout=5) == "outbox"
    # A rerun (a killed worker's job, or a new job id) sends nothing more.
    rerun = await pool.enqueue_job("send_sms", message_id, _job_id=f"sms:{message_id}:retry")
    await burst(max_tries=3)
    assert await rerun.result(timeout=5) == "skipped"
    assert await sms.deliver(message_id) == "skipped"


async def test_failed_provider_is_retried_and_recorded(
    pool: Any, burst: Callable[..., Awaitable[Worker]], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    class Flaky:
        async def send(
            self, phone: str, template: str, params: dict[str, str], out_id: str | None = None
        ) -> str:
            calls.append(phone)
            if len(calls) == 1:
                raise RuntimeError("provider down")
            return "biz-42"

    monkeypatch.setattr(sms, "_backend", lambda: Flaky())
    monkeypatch.setattr(tasks, "RETRY_DELAY", 0)
    message_id = await _message()
    await pool.enqueue_job("send_sms", message_id, _job_id=f"sms:{message_id}")
    await burst(max_tries=3)
    row = await SmsMessage.select().where(SmsMessage.id == message_id).first()
    assert row["status"] == "sent" and row["provider_ref"] == "biz-42"
    assert len(calls) == 2 and "provider down" in row["error"]


async def test_provider_delivered_code_is_not_kept_in_clear(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Ok:
        async def send(
            self, phone: str, template: str, params: dict[str, str], out_id: str | None = None
        ) -> str:
            assert params == {"code": "123456"}
            return "biz-1"

    monkeypatch.setattr(sms, "_backend", lambda: Ok())
    message_id = await _message()
    assert await sms.deliver(message_id) == "sent"
    row = await SmsMessage.select().where(SmsMessage.id == message_id).first()
    assert "123456" not in row["text"] and "******" in row["text"] and row["params"] == "{}"


async def test_message_left_sending_by_a_dead_worker_is_sent_later() -> None:
    message_id = await _message()
    await SmsMessage.update({SmsMessage.status: "sending"}).where(SmsMessage.id == message_id)
    assert await sms.deliver(message_id) == "skipped"  # another worker may be sending it
    await SmsMessage.update({SmsMessage.created_at: now() - timedelta(minutes=6)}).where(
        SmsMessage.id == message_id
    )
    assert await sms.deliver(message_id) == "outbox"


class Provider:
    """A provider that keeps what it accepted by OutId, as Aliyun's QuerySendDetails does."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.accepted: list[str] = []
        self.asked: list[str] = []
        self.fail = fail

    async def send(
        self, phone: str, template: str, params: dict[str, str], out_id: str | None = None
    ) -> str:
        if self.fail is not None:
            fail, self.fail = self.fail, None
            raise fail
        self.accepted.append(out_id or "")
        return f"biz-{len(self.accepted)}"

    async def find_sent(self, phone: str, out_id: str, days: list[Any]) -> str | None:
        self.asked.append(out_id)
        return f"OutId={out_id}" if out_id in self.accepted else None


@pytest.mark.parametrize("went_out", [True, False], ids=["accepted", "never-arrived"])
async def test_rerun_of_a_send_cut_off_asks_the_provider_first(
    monkeypatch: pytest.MonkeyPatch, went_out: bool
) -> None:
    """The worker died after claiming the message (发送中): the job's rerun asks the
    provider by OutId and sends only what did not go out. Exactly once either way."""
    provider = Provider()
    monkeypatch.setattr(sms, "_backend", lambda: provider)
    message_id = await _message()
    out_id = f"sms-{message_id}"
    await SmsMessage.update({SmsMessage.status: "sending"}).where(SmsMessage.id == message_id)
    if went_out:
        provider.accepted.append(out_id)
    assert await sms.deliver(message_id) == "skipped"  # not a rerun: the try may be alive
    assert await sms.deliver(message_id, rerun=True) == "sent"
    assert provider.asked == [out_id] and provider.accepted == [out_id]
    row = await SmsMessage.select().where(SmsMessage.id == message_id).first()
    assert row["status"] == "sent"
    assert row["provider_ref"] == (f"OutId={out_id}" if went_out else "biz-1")
    assert await sms.deliver(message_id, rerun=True) == "skipped"
    assert provider.accepted == [out_id]


async def test_a_timeout_may_have_sent_so_the_retry_asks_a_refusal_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = Provider(fail=SmsSendError("Aliyun SMS request timed out after 10s"))
    monkeypatch.setattr(sms, "_backend", lambda: provider)
    message_id = await _message()
    with pytest.raises(SmsSendError):
        await sms.deliver(message_id)
    row = await SmsMessage.select().where(SmsMessage.id == message_id).first()
    assert row["status"] == "sending" and "timed out" in row["error"]
    assert await sms.deliver(message_id, rerun=True) == "sent"
    assert provider.asked == [f"sms-{message_id}"] and len(provider.accepted) == 1

    provider = Provider(fail=SmsSendError("refused", code="isv.BUSINESS_LIMIT_CONTROL"))
    monkeypatch.setattr(sms, "_backend", lambda: provider)
    other = await _message()
    with pytest.raises(SmsSendError):
        await sms.deliver(other)
    assert (await SmsMessage.select().where(SmsMessage.id == other).first())["status"] == "failed"
    assert await sms.deliver(other, rerun=True) == "sent"
    assert provider.asked == [] and provider.accepted == [f"sms-{other}"]


async def test_a_message_whose_job_was_never_queued_is_queued_by_the_sweep() -> None:
    """Redis was away when the message was stored and the app stopped before it came
    back: the worker's every-minute sweep queues it (a code only while it is valid)."""
    waiting = await _message()
    stale = await _message()
    await SmsMessage.update({SmsMessage.created_at: now() - timedelta(minutes=6)}).where(
        SmsMessage.id == stale
    )
    assert await tasks.requeue_sms({}) == 1
    if PRODUCTION:  # queued twice: one job (its id)
        assert await tasks.requeue_sms({}) == 1
        assert await (await jobs._arq_pool()).zcard("arq:queue") == 1
    await run_jobs()
    rows = {m["id"]: m["status"] for m in await SmsMessage.select()}
    assert rows == {waiting: "sent", stale: "queued"}
