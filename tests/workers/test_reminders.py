"""The daily 器具即将到期 reminder: one SMS per due instrument, however often it runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker

from app.clock import today
from app.services import instruments
from app.tables import BasicInfo, Enterprise, Instrument, SmsMessage
from tests.conftest import run_jobs, uscc
from tests.workers.test_send_sms import REDIS_URL, pool  # noqa: F401  (fixture)
from workers.main import WorkerSettings

TODAY = today()


async def _register() -> dict[str, int]:
    a = Enterprise(name="甲单位", uscc=uscc(1), status="approved", contact_phone="13800000001")
    b = Enterprise(name="乙单位", uscc=uscc(2), status="approved", contact_phone="13800000002")
    await a.save()
    await b.save()
    # 乙 has 基础信息: its contact mobile there is the one reminded.
    await BasicInfo.insert(BasicInfo(enterprise=b.id, contact_mobile="13900000002"))
    rows = [
        (a.id, "到期甲1", TODAY + timedelta(days=3)),
        (a.id, "到期甲2", TODAY + timedelta(days=30)),
        (a.id, "超期甲", TODAY - timedelta(days=1)),  # already overdue: not "即将到期"
        (a.id, "正常甲", TODAY + timedelta(days=31)),
        (b.id, "到期乙", TODAY),
        (b.id, "无日期乙", None),
    ]
    await Instrument.insert(
        *[Instrument(enterprise=e, name=n, serial_no=n, valid_until=d) for e, n, d in rows]
    )
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


async def test_arq_cron_job_twice_against_redis(pool: Any) -> None:  # noqa: F811
    """The worker's own job, queued twice the same day (a rerun, a restarted worker)."""
    await _register()
    await pool.enqueue_job("remind_due_instruments", _job_id="remind-1")
    await pool.enqueue_job("remind_due_instruments", _job_id="remind-2")
    worker = Worker(
        functions=WorkerSettings.functions,
        redis_settings=RedisSettings.from_dsn(REDIS_URL),
        burst=True,
        poll_delay=0,
        handle_signals=False,
    )
    try:
        await worker.main()
    finally:
        await worker.close()
    assert worker.jobs_complete >= 2
    await run_jobs()  # the send_sms jobs it queued (in-process, or on the same Redis)
    sent = await _reminders()
    assert len(sent) == 3
    assert len({m["dedupe_key"] for m in sent}) == 3
