"""Production's shape: two app processes and two arq workers on one PostgreSQL and Redis.
A session made on one process serves on the other; login holds and SMS limits count
across processes; every queued job runs once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.services.accounts import BAD_LOGIN, LOCKED
from app.tables import SmsMessage
from tests.factories import make_enterprise, make_user
from tests.helpers import PRODUCTION, SETTINGS, free_port, wait_for_port

pytestmark = pytest.mark.skipif(
    not PRODUCTION, reason="production mode only (DATABASE_URL and REDIS_URL)"
)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def two_of_each(clean_db: None) -> Iterator[list[str]]:
    """Two uvicorn processes and two arq workers; the two base URLs."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DB_POOL": "1"}
    log = open(Path(SETTINGS.data_dir) / "processes.log", "ab")  # noqa: SIM115
    ports = [free_port(), free_port()]
    web = [
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.asgi:app", "--port", str(port),
             "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        for port in ports
    ]  # fmt: skip
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "arq", "workers.main.WorkerSettings"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]  # fmt: skip
    try:
        for port, proc in zip(ports, web, strict=True):
            wait_for_port(port, proc)
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for proc in web + workers:
            proc.terminate()
        for proc in web + workers:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def _csrf(client: httpx.Client) -> dict[str, str]:
    client.get("/login")
    return {"X-CSRFToken": client.cookies.get("csrftoken", "")}


async def test_sessions_limits_and_jobs_across_processes(two_of_each: list[str]) -> None:
    a_url, b_url = two_of_each
    ent = await make_enterprise(61)
    await make_user(ent, "Secret123x", username="multi61")
    await make_user(ent, "Secret123x", username="held61", phone="13800000062")

    with httpx.Client(base_url=a_url) as a, httpx.Client(base_url=b_url) as b:
        # A session made on A serves on B.
        r = a.post("/login", data={"username": "multi61", "password": "Secret123x"},
                   headers=_csrf(a))  # fmt: skip
        assert r.status_code == 303
        b.cookies.update(a.cookies)
        r = b.get("/bookings")
        assert r.status_code == 200 and "预约记录" in r.text

        # Five wrong passwords, alternating A and B: the account is held on both.
        for i in range(5):
            client = (a, b)[i % 2]
            client.cookies.clear()
            r = client.post("/login", data={"username": "held61", "password": "wrong-1234x"},
                            headers=_csrf(client))  # fmt: skip
            assert BAD_LOGIN in r.text or LOCKED in r.text
        a.cookies.clear()
        r = a.post("/login", data={"username": "held61", "password": "Secret123x"},
                   headers=_csrf(a))  # fmt: skip
        assert LOCKED in r.text

        # SMS limits: one code a minute per phone, whichever process is asked.
        a.cookies.clear()
        b.cookies.clear()
        form = {"purpose": "login", "phone": "13800000062"}
        r = a.post("/sms-code", data=form, headers={**_csrf(a), "HX-Request": "true"})
        assert r.status_code == 200 and "已发送" in r.text
        r = b.post("/sms-code", data=form, headers={**_csrf(b), "HX-Request": "true"})
        assert "已发送" not in r.text and "秒" in r.text

    # The one code SMS is sent once, by one of the two workers.
    for _ in range(100):
        sent = await SmsMessage.select().where(SmsMessage.phone == "13800000062")
        if sent and all(m["status"] == "sent" for m in sent):
            break
        await asyncio.sleep(0.1)
    assert len(sent) == 1 and sent[0]["status"] == "sent"
