"""The daily 器具即将到期 reminder: one SMS per due instrument, however often it runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from arq.worker import Worker

from app.clock import today
from app.services import instruments
from app.tables import BasicInfo, Instrument, SmsMessage
from tests.factories import make_enterprise, make_instrument
from tests.helpers import run_jobs

TODAY = today()


async def _register() -> dict[str, int]:
    a = await make_enterprise(1, name="甲单位", contact_phone="13800000001")
    b = await make_enterprise(2, name="乙单位", contact_phone="13800000002")
    # 乙 has 基础信息: its contact mobile there is the one reminded.
    await BasicInfo.insert(BasicInfo(enterprise=b.id, contact_mobile="13900000002"))
    rows = [
        (a, "到期甲1", TODAY + timedelta(days=3)),
        (a, "到期甲2", TODAY + timedelta(days=30)),
        (a, "超期甲", TODAY - timedelta(days=1)),  # already overdue: not "即将到期"
        (a, "正常甲", TODAY + timedelta(days=31)),
        (b, "到期乙", TODAY),
        (b, "无日期乙", None),
    ]
    for ent, name, valid_until in rows:
        await make_instrument(ent, name=name, serial_no=name, valid_until=valid_until)
    return {"a": int(a.id), "b": int(b.id)}


async def _reminders() -> list[dict[str, Any]]:
    return (
        await SmsMessage.select().where(SmsMessage.kind == "due_reminder").order_by(SmsMessage.id)
    )


async def test_twice_the_same_day_sends_once() -> None:
    await _register()
    assert await instruments.remind_due() == 3
    assert await instruments.remind_due() == 0
    await run_jobs()
    sent = await _reminders()
    assert sorted(m["phone"] for m in sent) == ["13800000001", "13800000001", "13900000002"]
    assert all(m["status"] == "sent" for m in sent)
    assert any("到期甲1" in m["text"] and "到期" in m["text"] for m in sent)
    # A new due date (the instrument was verified again) is reminded again.
    await Instrument.update({Instrument.valid_until: TODAY + timedelta(days=5)}).where(
        Instrument.name == "到期乙"
    )
    assert await instruments.remind_due() == 1


async def test_arq_cron_job_twice_against_redis(
    pool: Any, burst: Callable[..., Awaitable[Worker]]
) -> None:
    """The worker's own job, queued twice the same day (a rerun, a restarted worker)."""
    await _register()
    await pool.enqueue_job("remind_due_instruments", _job_id="remind-1")
    await pool.enqueue_job("remind_due_instruments", _job_id="remind-2")
    worker = await burst()
    assert worker.jobs_complete >= 2
    await run_jobs()  # the send_sms jobs it queued (in-process, or on the same Redis)
    sent = await _reminders()
    assert len(sent) == 3
    assert len({m["dedupe_key"] for m in sent}) == 3
