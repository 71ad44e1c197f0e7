"""PostgreSQL or Redis goes away for real, under load (production mode).

A small TCP proxy in the test (asyncio, on 127.0.0.1) stands between the services and a
real uvicorn process and arq worker. While clients keep sending requests, the service goes
away, then serves again: the proxy either cuts every connection and refuses new ones for
OUTAGE seconds ("down", as a restarting service does), or lets nothing through either way
for PARTITION seconds while every connection stays open ("partition": packets dropped, the
case a request can hang on, app/deadline.py). Then:

- every request that failed got the clear 503 page (系统服务暂时不可用), none a 500 or a
  stack trace, and none took longer than 10 s;
- nothing is half-written: an import is all its rows or none, a submitted booking has its
  操作日志 row, a code SMS the page said was sent goes out;
- the same processes serve normally again, without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.enums import BookingStatus, SmsStatus
from app.security.passwords import hash_password
from app.services import audit
from app.tables import AuditLog, Booking, Instrument, SmsCode, SmsMessage, User
from tests.factories import make_booking, make_enterprise
from tests.helpers import (
    BOOKING,
    PRODUCTION,
    SETTINGS,
    add_item,
    company_user,
    free_port,
    instrument,
    open_form,
    post,
    reg,
    register_xlsx,
)

production_only = pytest.mark.skipif(
    not PRODUCTION, reason="production mode only (DATABASE_URL and REDIS_URL)"
)
ROOT = Path(__file__).resolve().parents[2]
BEFORE = 2.0  # seconds of normal service before the outage
RECOVERY = 10.0  # the app must serve normally again within this long after the service
SLOWEST = 10.0  # no request may take longer (the client gives up a little later)
OUTAGE = float(os.environ.get("OUTAGE_SECONDS", "10"))  # how long the service is down
# A partition lasts longer than SLOWEST: a request hanging for all of it must show as slow.
PARTITION = max(OUTAGE, SLOWEST + 3)
UNAVAILABLE = "系统服务暂时不可用"


# --------------------------------------------------------------------------- the proxy


class Proxy:
    """TCP from 127.0.0.1:<port> to ``upstream``. ``down()`` cuts every connection and
    stops listening (connections are refused, as by a service that restarts); ``up()``
    listens again on the same port. At most ``limit`` connections at a time."""

    def __init__(self, upstream: tuple[str, int], limit: int = 200) -> None:
        self.upstream = upstream
        self.limit = limit
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.flowing = asyncio.Event()  # cleared: a partition, nothing gets through
        self.flowing.set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    def url(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's."""
        u = urlparse(url)
        netloc = f"{u.username}@" if u.username else ""
        return urlunparse(u._replace(netloc=f"{netloc}127.0.0.1:{self.port}"))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._open) >= 2 * self.limit:
            writer.transport.abort()
            return
        try:
            await self.flowing.wait()
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.upstream), 5
            )
        except (OSError, TimeoutError):
            writer.transport.abort()
            return
        self._open |= {writer, up_writer}
        try:
            await asyncio.gather(
                _pipe(reader, up_writer, self.flowing), _pipe(up_reader, writer, self.flowing)
            )
        finally:
            for w in (writer, up_writer):
                self._open.discard(w)
                w.transport.abort()


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event
) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            await flowing.wait()
            writer.write(data)
            await writer.drain()
    writer.transport.abort()  # one side closed: close the other too


# --------------------------------------------------------------------------- processes


async def _listening(port: int, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode}"
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError("the app did not start")


@dataclass
class Stack:
    base: str
    proxy: Proxy
    web: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    mode: str  # "down" or "partition"
    outage: float  # seconds the service is away


@pytest.fixture
async def stack(request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    """uvicorn and an arq worker whose service of ``request.param`` ((postgres | redis,
    down | partition)) goes through the proxy; the test itself talks to both directly."""
    service, mode = request.param
    url = SETTINGS.database_url if service == "postgres" else SETTINGS.redis_url
    u = urlparse(url)
    proxy = Proxy((u.hostname or "127.0.0.1", u.port or (5432 if service == "postgres" else 6379)))
    await proxy.up()
    name = "DATABASE_URL" if service == "postgres" else "REDIS_URL"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DB_POOL": "1", name: proxy.url(url)}
    log = open(Path(SETTINGS.data_dir) / f"outage-{service}.log", "ab")  # noqa: SIM115
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.asgi:app", "--port", str(port),
         "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "arq", "workers.main.WorkerSettings"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        await _listening(port, web)
        outage = PARTITION if mode == "partition" else OUTAGE
        yield Stack(f"http://127.0.0.1:{port}", proxy, web, worker, mode, outage)
    finally:
        for proc in (web, worker):
            proc.terminate()
        for proc in (web, worker):
            try:  # waiting off the loop: the proxy serves their goodbyes
                await asyncio.to_thread(proc.wait, 10)
            except subprocess.TimeoutExpired:
                proc.kill()
        await proxy.down()
        log.close()


# --------------------------------------------------------------------------- the load


@dataclass
class Outcome:
    what: str
    start: float  # seconds since the load began
    seconds: float
    status: int = 0
    text: str = ""
    error: str = ""
    tag: Any = None

    @property
    def ok(self) -> bool:
        return not self.error and self.status in (200, 303)

    @property
    def clear_503(self) -> bool:
        return self.status == 503 and UNAVAILABLE in self.text and "Traceback" not in self.text


@dataclass
class Load:
    """Clients sending requests in loops; ``outcomes`` of every request."""

    base: str
    t0: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def now(self) -> float:
        return asyncio.get_running_loop().time() - self.t0

    async def send(
        self, client: httpx.AsyncClient, what: str, call: Callable[[], Awaitable[httpx.Response]],
        tag: Any = None,
    ) -> Outcome:  # fmt: skip
        start = self.now()
        outcome = Outcome(what, start, 0.0, tag=tag)
        try:
            r = await call()
            outcome.status, outcome.text = r.status_code, r.text
        except httpx.HTTPError as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.seconds = self.now() - start
        self.outcomes.append(outcome)
        return outcome

    async def loop(self, step: Callable[[], Awaitable[Any]], pause: float = 0.05) -> None:
        while not self.stop.is_set():
            await step()
            await asyncio.sleep(pause)


def _token(html: str) -> str:
    """The kept upload's token in 【点击上传】's answer."""
    m = re.search(r'name="token" value="([A-Za-z0-9_-]+)"', html)
    assert m, html[:500]
    return m.group(1)


def _client(base: str, cookies: httpx.Cookies | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base, cookies=cookies, timeout=SLOWEST + 5, follow_redirects=False
    )


async def _login(base: str, username: str) -> httpx.Cookies:
    async with _client(base) as c:
        await c.get("/login")
        r = await c.post(
            "/login",
            data={"username": username, "password": "Secret123x"},
            headers={"X-CSRFToken": c.cookies.get("csrftoken", "")},
        )
        assert r.status_code == 303, r.text
        await c.get("/bookings")  # the CSRF token is new after login
        return c.cookies


async def _accounts(n: int) -> list[dict[str, Any]]:
    """``n`` companies, each with a user (phone 1390000xxxx) and a draft of one instrument."""
    made = []
    password_hash = hash_password("Secret123x")  # once: Argon2 takes a second or two here
    for k in range(n):
        ent = await make_enterprise(300 + k)
        user = User(role="enterprise_admin", enterprise=ent.id, username=f"outage{k}",
                    password_hash=password_hash, phone=f"1390000{k:04d}")  # fmt: skip
        await user.save()
        draft = await make_booking(ent, 1, status="draft")
        made.append({"enterprise": ent.id, "user": user.id, "username": f"outage{k}",
                     "phone": f"1390000{k:04d}", "draft": draft.id})  # fmt: skip
    return made


async def _run_outage(stack: Stack, accounts: list[dict[str, Any]]) -> Load:
    """The load, with the service away from BEFORE to BEFORE + stack.outage; it stops once
    every kind of request has succeeded again after the service came back."""
    load = Load(stack.base)
    # Four at a time: more parallel tries from one address count as guessing.
    sessions: list[httpx.Cookies] = []
    for k in range(0, len(accounts), 4):
        group = accounts[k : k + 4]
        sessions += await asyncio.gather(*(_login(stack.base, a["username"]) for a in group))
    clients = [_client(stack.base, cookies) for cookies in sessions]
    anonymous = _client(stack.base)
    await anonymous.get("/login")
    csrf = anonymous.cookies.get("csrftoken", "")
    drafts = iter(zip(accounts[1:], clients[1:], strict=True))
    batches = iter(range(1, 1000))
    phones = iter(accounts)
    importer = clients[0]

    async def read() -> None:
        await load.send(clients[0], "read", lambda: clients[0].get("/bookings"))

    async def health() -> None:
        await load.send(anonymous, "healthz", lambda: anonymous.get("/healthz"))

    async def submit() -> None:
        account, c = next(drafts, (None, None))
        if account is None:
            return
        token = {"X-CSRFToken": c.cookies.get("csrftoken", "")}
        await load.send(
            c, "submit",
            lambda: c.post(f"/bookings/{account['draft']}/submit", data=BOOKING, headers=token),
            tag=account["draft"],
        )  # fmt: skip
        await asyncio.sleep(1.5)

    async def import_batch() -> None:
        batch = next(batches)
        rows = [reg(i, name=f"批次{batch}", serial_no=f"B{batch}-{i}") for i in range(50)]
        data = await asyncio.to_thread(register_xlsx, rows)  # not on the proxy's loop
        csrf = {"X-CSRFToken": importer.cookies.get("csrftoken", "")}
        # 【点击上传】 reads the file and keeps it; 【确定】 imports it (the writes).
        upload = await load.send(
            importer, "upload",
            lambda: importer.post(
                "/instruments/import", headers=csrf,
                files={"file": ("i.xlsx", data, "application/octet-stream")},
            ),
            tag=batch,
        )  # fmt: skip
        if not upload.ok:
            return
        token = {"token": _token(upload.text)}
        await load.send(
            importer, "import",
            lambda: importer.post("/instruments/import/confirm", data=token, headers=csrf),
            tag=batch,
        )  # fmt: skip

    async def code() -> None:
        account = next(phones, None)
        if account is None:
            return
        form = {"purpose": "login", "phone": account["phone"]}
        await load.send(
            anonymous, "sms-code",
            lambda: anonymous.post(
                "/sms-code", data=form, headers={"X-CSRFToken": csrf, "HX-Request": "true"}
            ),
            tag=account["phone"],
        )  # fmt: skip
        await asyncio.sleep(1.5)

    async def outage() -> None:
        await asyncio.sleep(BEFORE)
        if stack.mode == "partition":
            stack.proxy.flowing.clear()
        else:
            await stack.proxy.down()
        await asyncio.sleep(stack.outage)
        if stack.mode == "partition":
            stack.proxy.flowing.set()
        else:
            await stack.proxy.up()
        # Until every kind succeeds again (or RECOVERY runs out), then a little more.
        back = BEFORE + stack.outage
        kinds = {"read", "healthz", "upload", "import"}
        while load.now() < back + RECOVERY:
            recovered = {o.what for o in load.outcomes if o.start > back and o.ok}
            if kinds <= recovered:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        load.stop.set()

    load.t0 = asyncio.get_running_loop().time()
    try:
        await asyncio.gather(
            outage(), load.loop(read), load.loop(health), load.loop(submit),
            load.loop(import_batch), load.loop(code),
        )  # fmt: skip
    finally:
        for c in [*clients, anonymous]:
            await c.aclose()
    return load


def _check_answers(load: Load, outage: float) -> None:
    """Every answer was a success or the clear 503 page, within SLOWEST seconds; the
    outage was felt; after it every kind of request succeeded again."""
    bad = [o for o in load.outcomes if not (o.ok or o.clear_503)]
    assert not bad, [(o.what, round(o.start, 1), o.status, o.error, o.text[:300]) for o in bad]
    slow = [o for o in load.outcomes if o.seconds > SLOWEST]
    assert not slow, [(o.what, round(o.start, 1), round(o.seconds, 1)) for o in slow]
    during = [o for o in load.outcomes if BEFORE + 0.5 < o.start < BEFORE + outage - 0.5]
    assert any(o.clear_503 for o in during), "the outage was not felt"
    before = [o for o in load.outcomes if o.start + o.seconds < BEFORE]
    assert before and all(o.ok for o in before), [(o.what, o.status) for o in before if not o.ok]
    back = BEFORE + outage
    for kind in ("read", "healthz", "upload", "import"):
        after = [o for o in load.outcomes if o.what == kind and o.start > back]
        first = next((o for o in after if o.ok), None)
        assert first is not None and first.start < back + RECOVERY, (kind, after[:5])
        later = [o for o in after if o.start > first.start + 1.0]
        assert all(o.ok for o in later), (kind, [(o.status, o.error) for o in later if not o.ok])


async def _check_writes(load: Load) -> None:
    """Nothing half-written: each import is all its rows or none (all when the page said
    so) with its 操作日志 row, each booking is a draft or submitted with its 操作日志 row
    (submitted when the page said so), each code the page said was sent goes out once."""
    for o in (o for o in load.outcomes if o.what == "import"):
        rows = await Instrument.count().where(Instrument.name == f"批次{o.tag}")
        assert rows in ((50,) if o.ok else (0, 50)), (o.tag, rows, o.status)
    imported = await Instrument.count().where(Instrument.name.like("批次%")) // 50
    assert await AuditLog.count().where(AuditLog.detail.like("导入：新增50%")) == imported
    for o in (o for o in load.outcomes if o.what == "submit"):
        booking = await Booking.select().where(Booking.id == o.tag).first()
        logged = await AuditLog.count().where(
            (AuditLog.event == "提交预约") & (AuditLog.detail == (booking["booking_no"] or "-"))
        )
        if booking["status"] == BookingStatus.PENDING:
            assert logged == 1, (o.tag, o.status)
        else:
            assert not o.ok and booking["status"] == BookingStatus.DRAFT and logged == 0
    # A code the page said was sent goes out, once. A 503 may leave its code row (it then
    # counts against the one-a-minute limit; the page said to try again later).
    codes = [o for o in load.outcomes if o.what == "sms-code"]

    async def delivered() -> bool:
        for o in codes:
            sent = await SmsMessage.count().where(
                (SmsMessage.phone == o.tag) & (SmsMessage.status == SmsStatus.SENT)
            )
            if sent > 1 or (o.ok and sent != 1):
                return False
        return True

    for _ in range(300):  # the worker (through the proxy too) sends what was queued
        if await delivered():
            break
        await asyncio.sleep(0.1)
    assert await delivered(), [(o.tag, o.status) for o in codes]
    for o in codes:
        assert await SmsCode.count().where(SmsCode.phone == o.tag) == 1 or not o.ok, o.tag


# A partition: Redis answers the 503 within its 5 s socket timeout. PostgreSQL needs the
# request's deadline (app/deadline.py): a query already sent waits for the network to heal,
# and asyncpg's cancel of it waits on the same network, so without the deadline requests
# took as long as the partition.
@production_only
@pytest.mark.parametrize(
    "stack",
    [("postgres", "down"), ("postgres", "partition"), ("redis", "down"), ("redis", "partition")],
    ids=["postgres-down", "postgres-partition", "redis-down", "redis-partition"],
    indirect=True,
)
async def test_service_away_under_load_fails_clearly_loses_nothing_recovers(
    stack: Stack,
) -> None:
    accounts = await _accounts(6)
    load = await _run_outage(stack, accounts)
    assert stack.web.poll() is None and stack.worker.poll() is None  # never restarted
    _check_answers(load, stack.outage)
    await _check_writes(load)


# --------------------------------------------------------------------------- between writes
# The cut can fall between two writes of one request, a moment the proxy hits only by
# chance: here the database goes away exactly there (both modes).


def _gone(*args: Any, **kwargs: Any) -> Any:
    raise ConnectionResetError(104, "Connection reset by peer")


async def test_a_submit_cut_off_between_its_writes_stays_a_draft(
    client: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await company_user(client)
    booking_id = await open_form(client)
    assert "器具已添加" in (await add_item(client, booking_id, instrument(1))).text
    monkeypatch.setattr(audit, "record", _gone)  # the 操作日志 row: the second write
    r = await post(client, f"/bookings/{booking_id}/submit", BOOKING)
    assert r.status_code == 503 and UNAVAILABLE in r.text
    [row] = await Booking.select()  # the draft 添加器具 made
    assert row["status"] == BookingStatus.DRAFT and not row["booking_no"]
    monkeypatch.undo()
    r = await post(client, f"/bookings/{booking_id}/submit", BOOKING)
    assert r.status_code == 303
    assert await AuditLog.count().where(AuditLog.event == "提交预约") == 1


async def test_an_import_cut_off_between_its_writes_adds_nothing(
    client: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await company_user(client)
    files = {"file": ("i.xlsx", register_xlsx([reg(i) for i in range(20)]))}

    async def confirm() -> Any:
        r = await post(client, "/instruments/import", files=files, htmx=True)
        return await post(client, "/instruments/import/confirm", {"token": _token(r.text)})

    monkeypatch.setattr(audit, "record", _gone)
    r = await confirm()
    assert r.status_code == 503 and UNAVAILABLE in r.text
    assert await Instrument.count() == 0
    monkeypatch.undo()
    r = await confirm()
    assert "导入完成：新增20个" in r.text and await Instrument.count() == 20
