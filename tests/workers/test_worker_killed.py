"""kill -9 of a real arq worker in the middle of jobs: another worker process reruns them,
the SMS go out exactly once, and the certificate zip is whole (production mode).

Two workers, A and B, run as processes of their own with a short JOB_TIMEOUT (arq reruns
a job whose worker died once its in-progress mark expires: JOB_TIMEOUT + 10 s). B is
frozen (SIGSTOP) while the jobs are queued, so that A is the one that takes them; A is
held mid-job on purpose, then killed:

- two SMS, through a stand-in for Aliyun's SMS API on 127.0.0.1: the first was accepted
  by the provider before A died (A never heard back), the second never reached it;
- 【下载证书】's packaging job, whose second certificate file is a named pipe: A waits
  at it, half-way through the zip, until it is killed.

Then B resumes and reruns all three: it asks the provider about each SMS by its OutId and
sends only the one that did not go out; it writes the zip again from the start.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from litestar.testing import AsyncTestClient

from app.enums import JobStatus, SmsStatus
from app.services import sms
from app.tables import Certificate, CertificateFile, DownloadJob, SmsMessage
from tests.helpers import (
    PRODUCTION,
    SETTINGS,
    approved_booking,
    company_user,
    lab_certificate,
    lab_order,
    post,
    run_jobs,
)

pytestmark = pytest.mark.skipif(
    not PRODUCTION, reason="production mode only (DATABASE_URL and REDIS_URL)"
)
ROOT = Path(__file__).resolve().parents[2]
JOB_TIMEOUT = 6  # seconds: the rerun comes JOB_TIMEOUT + 10 s after a try started
WAIT = 60  # seconds any one step may take before the test gives up


# --------------------------------------------------------------------------- the provider


@dataclass
class Provider:
    """Aliyun's SendSms and QuerySendDetails, as far as the workers use them.

    ``accepted`` is what went out to phones (OutIds, in order). SendSms from worker A for
    an OutId in ``accept_then_hold`` is accepted and then never answered; for one in
    ``lose`` it is not even accepted (lost on the way). Everything else is answered.
    """

    accept_then_hold: set[str] = field(default_factory=set)
    lose: set[str] = field(default_factory=set)
    accepted: list[str] = field(default_factory=list)
    phones: dict[str, str] = field(default_factory=dict)  # OutId: phone, of those accepted
    held: list[str] = field(default_factory=list)
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (key id, action, OutId)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self, query: dict[str, str]) -> dict[str, Any]:
        action, out_id = query.get("Action", ""), query.get("OutId", "")
        with self.lock:
            self.calls.append((query.get("AccessKeyId", ""), action, out_id))
        if action == "QuerySendDetails":
            assert re.fullmatch(r"\d{8}", query.get("SendDate", "")), query
            with self.lock:
                rows = [
                    {"PhoneNum": query["PhoneNumber"], "SendStatus": 3, "OutId": o,
                     "SendDate": "2026-01-01 00:00:00"}
                    for o in self.accepted if self.phones[o] == query["PhoneNumber"]
                ]  # fmt: skip
            return {"Code": "OK", "TotalCount": len(rows),
                    "SmsSendDetailDTOs": {"SmsSendDetailDTO": rows}}  # fmt: skip
        assert action == "SendSms" and out_id, query
        from_a = query.get("AccessKeyId") == "worker-a"
        with self.lock:
            if not (from_a and out_id in self.lose):
                self.accepted.append(out_id)
                self.phones[out_id] = query["PhoneNumbers"]
            held = from_a and out_id in self.accept_then_hold | self.lose
            if held:
                self.held.append(out_id)
        if held:
            self.release.wait(WAIT)  # A dies meanwhile: nobody reads the answer
        return {"Code": "OK", "BizId": f"biz-{out_id}", "RequestId": "r"}


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            body = json.dumps(provider.answer(dict(parse_qsl(urlsplit(self.path).query))))
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())
            except OSError:
                pass  # the worker that asked is gone

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    return Handler


@pytest.fixture
def provider() -> Iterator[tuple[Provider, str]]:
    state = Provider()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()


# --------------------------------------------------------------------------- the workers


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
async def workers(provider: tuple[Provider, str]) -> AsyncIterator[Any]:
    """``await workers()``: workers A and B, real arq processes on the test's PostgreSQL and
    Redis, sending SMS through the stand-in provider (each with its own key id, so it knows
    who asks); stopped at the end."""
    started: dict[str, Worker] = {}

    async def start() -> dict[str, Worker]:
        for name in ("a", "b"):
            env = {
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "DB_POOL": "1",
                "JOB_TIMEOUT": str(JOB_TIMEOUT),
                "SMS_BACKEND": "aliyun",
                "ALIYUN_SMS_ENDPOINT": provider[1],
                "ALIYUN_SMS_ACCESS_KEY_ID": f"worker-{name}",
                "ALIYUN_SMS_ACCESS_KEY_SECRET": "not-a-secret",
                "ALIYUN_SMS_SIGN_NAME": "计量客户服务平台",
                "ALIYUN_SMS_TEMPLATE_CODE": "SMS_1",
            }
            log = Path(SETTINGS.data_dir) / f"worker-{name}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "arq", "workers.main.WorkerSettings"],
                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            started[name] = Worker(name, proc, log)
        for w in started.values():
            await _until(lambda w=w: "Starting worker" in w.text(), f"worker {w.name} up")
        return started

    try:
        yield start
    finally:
        for w in started.values():
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGCONT)
                w.proc.terminate()
        for w in started.values():
            try:
                w.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                w.proc.kill()


async def _until(check: Any, what: str, seconds: float = WAIT) -> None:
    """Wait (polling) until ``check()`` is true; fail naming ``what`` after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await _call(check):
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        await asyncio.sleep(0.1)


async def _call(check: Any) -> Any:
    result = check()
    return await result if asyncio.iscoroutine(result) else result


# --------------------------------------------------------------------------- the pipe


async def _open_for_writing(path: Path, seconds: float = WAIT) -> int:
    """Open the named pipe to write: returns once a worker has opened it to read."""
    opening = asyncio.create_task(asyncio.to_thread(os.open, path, os.O_WRONLY))
    done, _ = await asyncio.wait({opening}, timeout=seconds)
    if not done:
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))  # frees the waiting thread
        os.close(await opening)
        raise AssertionError(f"no worker opened {path.name}")
    return opening.result()


async def _certificates(client: AsyncTestClient, n: int = 3) -> list[dict[str, Any]]:
    """``n`` paid certificates of a logged-in company, made through the lab API."""
    await company_user(client)
    booking = await approved_booking(client, n)
    unique = await lab_order(client, booking["booking_no"], "DD9", n)
    for k, u in enumerate(unique):
        assert (await lab_certificate(client, f"ZS9-{k}", u)).status_code == 200
    await run_jobs(client)  # the SMS of all this, before the workers start
    return await Certificate.select().order_by(Certificate.id)


# --------------------------------------------------------------------------- the test


async def test_worker_killed_mid_jobs_they_rerun_on_the_other_sms_once(
    client: AsyncTestClient,
    provider: tuple[Provider, str],
    workers: Any,
) -> None:
    fake = provider[0]
    certs = await _certificates(client)
    # The second certificate's file becomes a named pipe, holding its real bytes back.
    second = (
        await CertificateFile.select().where(CertificateFile.certificate == certs[1]["id"]).first()
    )
    pipe = Path(SETTINGS.data_dir) / second["path"]
    pdf = pipe.read_bytes()
    pipe.unlink()
    os.mkfifo(pipe)

    started = await workers()
    a, b = started["a"], started["b"]
    b.proc.send_signal(signal.SIGSTOP)  # A takes the jobs; B resumes after A is killed
    try:
        first = await sms.queue("13900000001", "code", "您的验证码为111111", {"code": "111111"})
        lost = await sms.queue("13900000002", "code", "您的验证码为222222", {"code": "222222"})
        assert first and lost
        fake.accept_then_hold.add(f"sms-{first}")
        fake.lose.add(f"sms-{lost}")
        r = await post(client, "/certificates/download", {"ids": [str(c["id"]) for c in certs]},
                       htmx=True)  # fmt: skip
        key = re.search(r"/certificates/jobs/([\w-]+)", r.text).group(1)

        # A is mid-send of both SMS, and half-way through the zip (waiting at the pipe).
        await _until(lambda: len(fake.held) == 2, "A sending both SMS")
        writer = await _open_for_writing(pipe)
        job = await DownloadJob.select().where(DownloadJob.key == key).first()
        assert job["status"] == JobStatus.RUNNING
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(timeout=10)
        os.close(writer)
    finally:
        b.proc.send_signal(signal.SIGCONT)

    # Nothing half-done is offered meanwhile: no zip, the job page still says 正在打包.
    target = Path(SETTINGS.data_dir) / "zips" / f"{key}.zip"
    assert not target.exists()
    assert (await client.get(f"/certificates/jobs/{key}/zip")).status_code == 404
    r = await client.get(f"/certificates/jobs/{key}", headers={"HX-Request": "true"})
    assert "正在打包" in r.text
    rows = await SmsMessage.select().where(SmsMessage.id.is_in([first, lost]))
    assert {m["status"] for m in rows} == {SmsStatus.SENDING}

    # B reruns the packaging once A's in-progress mark expires: it waits at the pipe too,
    # and this time gets the file's bytes.
    writer = await _open_for_writing(pipe)
    os.write(writer, pdf)
    os.close(writer)

    async def all_done() -> bool:
        job = await DownloadJob.select().where(DownloadJob.key == key).first()
        sent = await SmsMessage.count().where(
            SmsMessage.id.is_in([first, lost]) & (SmsMessage.status == SmsStatus.SENT)
        )
        return job["status"] == JobStatus.DONE and sent == 2

    await _until(all_done, "B finishing the three jobs")

    # Each SMS went out exactly once: the first by A (B found it by its OutId and did not
    # send it again), the lost one by B.
    assert sorted(fake.accepted) == sorted([f"sms-{first}", f"sms-{lost}"])
    sends = [(who, o) for who, action, o in fake.calls if action == "SendSms"]
    assert sends.count(("worker-b", f"sms-{lost}")) == 1
    assert ("worker-b", f"sms-{first}") not in sends
    asked = [who for who, action, _ in fake.calls if action == "QuerySendDetails"]
    assert asked == ["worker-b", "worker-b"]
    refs = {m["id"]: m["provider_ref"] for m in await SmsMessage.select().where(
        SmsMessage.id.is_in([first, lost]))}  # fmt: skip
    assert refs[first].startswith(f"OutId=sms-{first}") and refs[lost] == f"biz-sms-{lost}"
    phones = SmsMessage.phone.is_in(["13900000001", "13900000002"])
    assert await SmsMessage.count().where(phones) == 2

    # The zip, written again from the start by B, is whole.
    assert re.search(r"package_certificates\(\d+\) try=2", b.text()), b.text()
    with zipfile.ZipFile(target) as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == ["ZS9-0.pdf", "ZS9-1.pdf", "ZS9-2.pdf"]
        assert archive.read("ZS9-1.pdf") == pdf
    assert not target.with_suffix(".part").exists()
    job = await DownloadJob.select().where(DownloadJob.key == key).first()
    assert job["done"] == job["total"] == 3
    assert (await client.get(f"/certificates/jobs/{key}/zip")).status_code == 200
