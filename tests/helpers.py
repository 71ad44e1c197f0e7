"""What the tests do over and over, as plain functions: requests as a browser sends them,
accounts through the real forms, jobs run to the end, SMS read from the outbox, the form
data of a booking and of the 器具托管 register, spreadsheets built from the template.

Fixtures are in ``conftest.py``; rows put straight into the database are in ``factories.py``.
Imported only after ``tests/conftest.py`` has set the environment (pytest loads it first).
"""

from __future__ import annotations

import io
import re
import socket
import struct
import subprocess
import time
import zlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import openpyxl
import segno
from arq.connections import RedisSettings
from arq.worker import Worker
from fpdf import FPDF
from litestar.testing import AsyncTestClient

from app import jobs, tables
from app.clock import today
from app.main import create_app
from app.security.sessions import cookie_name
from app.services.accounts import ensure_admin
from app.services.instrument_xlsx import (
    BOOKING_COLUMNS,
    IMPORT_SHEET_TITLE,
    REGISTER_COLUMNS,
    Column,
    build_template,
)
from app.services.validators import uscc_check_char
from app.settings import get_settings
from workers.main import WorkerSettings

SETTINGS = get_settings()
PRODUCTION = bool(SETTINGS.redis_url)

# --------------------------------------------------------------------------- requests


async def csrf_token(client: httpx.AsyncClient) -> str:
    """A token for the session (or visitor) the client is now: the copy the app keeps in
    the ``csrftoken`` cookie, fetched with a page when the client has none (after login,
    logout or a change of session cookie, see ``set_session_cookie``)."""
    token = client.cookies.get("csrftoken")
    if not token:
        await client.get("/login")
        token = client.cookies.get("csrftoken")
    assert token, "no CSRF cookie"
    return token


async def post(
    client: httpx.AsyncClient,
    url: str,
    data: dict[str, Any] | None = None,
    htmx: bool = False,
    **kwargs: Any,
) -> Any:
    """A form POST carrying the CSRF token, as the browser would send it."""
    headers = {"X-CSRFToken": await csrf_token(client), **kwargs.pop("headers", {})}
    if htmx:
        headers["HX-Request"] = "true"
    return await client.post(url, data=data or {}, headers=headers, **kwargs)


@asynccontextmanager
async def at_once(client: AsyncTestClient) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the same app, with the same cookies, whose requests really run at the
    same time under ``asyncio.gather``. (The test client's transport blocks on its portal
    until each answer is complete: gathered requests over it run one after the other.)"""
    transport = httpx.ASGITransport(app=client.app)
    async with httpx.AsyncClient(
        transport=transport, base_url=str(client.base_url), cookies=client.cookies
    ) as parallel:
        yield parallel


def set_session_cookie(client: AsyncTestClient, value: str | None) -> None:
    """Replace the session cookie (None: drop it), as an attacker or a stale tab would send
    it. The CSRF token's copy goes too: tokens are bound to the session, so the next
    ``post`` fetches one for the session the client is now."""
    client.cookies.delete(cookie_name())
    client.cookies.delete("csrftoken")
    if value is not None:
        client.cookies.set(cookie_name(), value, domain="testserver.local")


# --------------------------------------------------------------------------- jobs and SMS


async def run_burst_worker(redis_url: str, **options: Any) -> Worker:
    """arq's worker in burst mode on ``redis_url``: runs what is queued, then stops.

    The one place the tests build a ``Worker`` (built inside the running loop, as arq wants);
    ``options`` go to it (``max_tries``...). Returns it, for ``jobs_complete`` and the like.
    """
    worker = Worker(
        functions=WorkerSettings.functions,
        redis_settings=RedisSettings.from_dsn(redis_url),
        burst=True,
        poll_delay=0,
        handle_signals=False,
        **options,
    )
    try:
        await worker.main()
    finally:
        await worker.close()
    return worker


async def run_jobs(client: AsyncTestClient | None = None) -> None:
    """Finish every queued job: in-process ones, or through a burst arq worker on Redis."""
    if PRODUCTION:
        await run_burst_worker(SETTINGS.redis_url, max_tries=1)
        return
    if client is not None and getattr(client, "blocking_portal", None) is not None:
        client.blocking_portal.call(jobs.drain)
    await jobs.drain()


async def outbox(phone: str | None = None) -> list[dict[str, Any]]:
    """短信记录 rows, newest first."""
    q = tables.SmsMessage.select().order_by(tables.SmsMessage.id, ascending=False)
    if phone:
        q = q.where(tables.SmsMessage.phone == phone)
    return await q


async def last_code(client: AsyncTestClient, phone: str) -> str:
    """The code from the newest SMS to ``phone``, read as the user would read it."""
    await run_jobs(client)
    for msg in await outbox(phone):
        if msg["kind"] == "code" and msg["status"] == "sent":
            m = re.search(r"验证码为(\d{6})", msg["text"])
            assert m, msg["text"]
            # A minute passes before the next code, as it would for a person.
            await tables.SmsCode.update(
                {tables.SmsCode.created_at: tables.SmsCode.created_at - timedelta(seconds=61)}
            ).where(tables.SmsCode.phone == phone)
            return m.group(1)
    raise AssertionError(f"no code SMS to {phone}")


async def mailbox(address: str | None = None) -> list[dict[str, Any]]:
    """邮件记录 rows, newest first (``address``: to that mailbox only)."""
    q = tables.EmailMessage.select().order_by(tables.EmailMessage.id, ascending=False)
    if address:
        q = q.where(tables.EmailMessage.address == address)
    return await q


async def choose_notifications(client: AsyncTestClient, email: str = "", **choices: str) -> Any:
    """通知设置 › 【保存】 as the form posts it: ``certificate="email"`` ticks 邮件 only for
    证书已出具, ``"sms email"`` both, ``""`` neither; a kind not named stays as the page
    shows it."""
    page = await client.get("/account/notifications")
    assert page.status_code == 200, page.text
    form = {"email": email}
    for name, kind, channel, checked in re.findall(
        r'name="(([a-z_]+)\.([a-z]+))" value="1"( checked)?', page.text
    ):
        if channel in choices.get(kind, channel if checked else "").split():
            form[name] = "1"
    return await post(client, "/account/notifications", form)


# --------------------------------------------------------------------------- accounts


def uscc(n: int) -> str:
    """A valid 统一社会信用代码 that differs by ``n``."""
    first = f"91320000{n:09d}"[:17]
    return first + uscc_check_char(first)


async def register_company(
    client: AsyncTestClient,
    n: int = 1,
    phone: str = "13800000001",
    username: str | None = None,
    password: str = "Secret123x",
) -> dict[str, str]:
    """Register a company through the real form (code read from the outbox)."""
    r = await post(client, "/sms-code", {"purpose": "register", "contact_phone": phone}, htmx=True)
    assert r.status_code in (200, 201), r.text
    code = await last_code(client, phone)
    form = {
        "name": f"测试计量单位{n}",
        "uscc": uscc(n),
        "address": "南京市光华路1号",
        "contact_name": "张三",
        "contact_phone": phone,
        "code": code,
        "username": username or f"company{n}",
        "password": password,
        "password2": password,
        "agree": "1",
    }
    r = await post(client, "/register", form)
    assert "待审核" in r.text, r.text
    return form


async def approve_company(uscc_code: str) -> int:
    """Approve directly in the database (the review UI has its own tests)."""
    await tables.Enterprise.update({tables.Enterprise.status: "approved"}).where(
        tables.Enterprise.uscc == uscc_code
    )
    row = (
        await tables.Enterprise.select(tables.Enterprise.id)
        .where(tables.Enterprise.uscc == uscc_code)
        .first()
    )
    return int(row["id"])


async def login(client: AsyncTestClient, username: str, password: str) -> Any:
    r = await post(client, "/login", {"username": username, "password": password})
    return r


async def make_admin() -> None:
    await ensure_admin("admin", "Admin12345x")


async def company_user(client: AsyncTestClient, n: int = 1, phone: str | None = None) -> dict:
    """A registered, approved, logged-in company."""
    form = await register_company(client, n, phone or f"1380000{n:04d}")
    await approve_company(form["uscc"])
    r = await login(client, form["username"], form["password"])
    assert r.status_code in (200, 303), r.text
    return form


# --------------------------------------------------------------------------- bookings

TOMORROW = (today() + timedelta(days=1)).isoformat()
# 基础信息, as saved on 系统管理 › 基础信息.
BASIC = {
    "client_name": "南京测试仪表有限公司",
    "cert_name": "南京测试仪表有限公司（证书）",
    "client_address": "南京市江宁区1号",
    "cert_address": "南京市江宁区2号",
    "contact_name": "王五",
    "contact_mobile": "13912345678",
    "contact_phone": "025-88888888",
}
# The booking form's own fields (also the columns of a Booking row).
BOOKING = {
    "client_name": "南京测试仪表有限公司",
    "client_address": "南京市江宁区1号",
    "contact_name": "王五",
    "phone": "025-88888888",
    "cert_name": "南京测试仪表有限公司",
    "cert_address": "南京市江宁区2号",
    "mobile": "13912345678",
    "expected_date": TOMORROW,
    "sender": "赵六",
}


def instrument(n: int = 1, **over: str) -> dict[str, str]:
    """One row of a booking's 器具信息, as the form posts it."""
    item = {
        "name": f"温度计{n}",
        "equipment_no": f"SB-{n}",
        "serial_no": f"2023011{n:03d}",
        "model": "1-2-3",
        "measuring_range": "1-100",
        "accuracy_class": "0.01",
        "supply_voltage": "/",
        "manufacturer": "明月公司",
        "verification_requirement": "见说明书",
        "certificate_type": "检定证书",
        "quantity": "1",
        "remark": "无",
    }
    item.update(over)
    return item


async def open_form(client: AsyncTestClient) -> int | str:
    """预约送检: the draft the form's URLs name: its id, or "new" while the user has none
    (opening the form makes none; the first 添加器具, import, picker or 提交 does)."""
    r = await client.get("/bookings/new")
    assert r.status_code == 200, r.text
    ref = r.text.split('action="/bookings/')[1].split("/submit")[0]
    return int(ref) if ref.isdecimal() else ref


async def add_item(
    client: httpx.AsyncClient, booking_id: int | str, item: dict[str, str], **form: str
) -> Any:
    """【添加器具】 (htmx), with the booking's fields as the form sends them along."""
    return await post(
        client, f"/bookings/{booking_id}/items", {**BOOKING, **item, **form}, htmx=True
    )


async def submitted_booking(client: AsyncTestClient, n_items: int = 1) -> dict[str, Any]:
    """A booking of ``n_items`` instruments, submitted through the form; returns its row."""
    booking_id = await open_form(client)
    for i in range(n_items):
        r = await add_item(client, booking_id, instrument(i + 1))
        assert "器具已添加" in r.text
    r = await post(client, f"/bookings/{booking_id}/submit", BOOKING)
    assert r.status_code == 303, r.text
    booking_no = r.headers["location"].split("submitted=")[1]
    return await tables.Booking.select().where(tables.Booking.booking_no == booking_no).first()


# --------------------------------------------------------------------------- 器具托管


def reg(n: int, **over: str) -> dict[str, str]:
    """One instrument of the 器具托管 register, as its form posts it."""
    item = {
        "name": f"压力表{n}",
        "equipment_no": f"SB-{n}",
        "serial_no": f"P{n:04d}",
        "model": "Y-100",
        "measuring_range": "0-1.6MPa",
        "accuracy_class": "1.6级",
        "supply_voltage": "/",
        "manufacturer": "红旗仪表",
        "verification_requirement": "",
        "certificate_type": "检定证书",
        "quantity": "1",
        "remark": "",
        "cycle_months": "12",
        "last_verified_on": "",
        "valid_until": "",
    }
    item.update(over)
    return item


# --------------------------------------------------------------------------- spreadsheets


def fill_template(
    rows: Sequence[dict[str, Any] | Sequence[Any] | None],
    columns: Sequence[Column] = BOOKING_COLUMNS,
) -> bytes:
    """Download the template, fill ``rows`` from row 2 with openpyxl, return the bytes.

    A dict is placed by column key, a sequence positionally, ``None`` leaves a blank row.
    """
    wb = openpyxl.load_workbook(io.BytesIO(build_template(columns)))
    ws = wb[IMPORT_SHEET_TITLE]
    for offset, row in enumerate(rows, start=2):
        if row is None:
            continue
        values = [row.get(c.key) for c in columns] if isinstance(row, dict) else list(row)
        for index, value in enumerate(values, start=1):
            ws.cell(row=offset, column=index, value=value)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def xlsx_row(n: int, **over: Any) -> list[Any]:
    """A row of the booking import template: instrument ``n``, two of it."""
    item: dict[str, Any] = {**instrument(n), "quantity": 2}
    item.update(over)
    return [item[c.key] for c in BOOKING_COLUMNS]


def register_xlsx(rows: Sequence[dict[str, Any]]) -> bytes:
    """The 器具托管 import template holding ``rows`` (dicts by column key)."""
    return fill_template(rows, REGISTER_COLUMNS)


# --------------------------------------------------------------------------- certificates

LAB_AUTH = {"Authorization": "Bearer lab-token-1"}


def make_pdf(text: str = "certificate", pages: int = 1) -> bytes:
    """A real PDF whose pages name ``text`` (its ASCII part): different texts, different files."""
    return certificate_pdf(pages, f"Certificate {text.encode('ascii', 'ignore').decode()}")


async def approved_booking(client: AsyncTestClient, items: int = 2) -> dict[str, Any]:
    """A company's booking, submitted and approved through the lab API."""
    booking = await submitted_booking(client, items)
    r = await client.post(
        f"/api/v1/bookings/{booking['booking_no']}/review",
        json={"approved": True},
        headers=LAB_AUTH,
    )
    assert r.status_code == 200, r.text
    return booking


async def lab_order(
    client: AsyncTestClient, booking_no: str, order_no: str = "DD001", n: int = 2
) -> list[str]:
    """The lab's order for ``booking_no`` with ``n`` instruments; their 唯一性号."""
    unique = [f"{order_no}-{k:03d}" for k in range(1, n + 1)]
    body = {
        "booking_no": booking_no,
        "instruments": [
            {"unique_no": u, "name": f"温度计{k}", "serial_no": f"T-{k}", "model": "WSS"}
            for k, u in enumerate(unique, 1)
        ],
    }
    r = await client.put(f"/api/v1/orders/{order_no}", json=body, headers=LAB_AUTH)
    assert r.status_code == 200, r.text
    return unique


async def lab_certificate(
    client: AsyncTestClient,
    cert_no: str,
    unique_no: str,
    pdf: bytes | None = None,
    paid: bool = True,
    completed_on: str = "2026-11-20",
) -> Any:
    return await client.put(
        f"/api/v1/certificates/{cert_no}",
        files={"file": ("c.pdf", pdf if pdf is not None else make_pdf(cert_no), "application/pdf")},
        data={"unique_no": unique_no, "completed_on": completed_on, "paid": str(paid).lower()},
        headers=LAB_AUTH,
    )


PDF_DATE = datetime(2026, 1, 1, tzinfo=UTC)


def certificate_pdf(pages: int = 1, text: str = "Calibration certificate") -> bytes:
    """A real PDF made with fpdf2: ``pages`` A4 pages, each with ``text`` and its number.
    The same arguments give the same bytes (fpdf2 would stamp the current second into it:
    "the same file again" would differ when a test crosses a second)."""
    pdf = FPDF()
    pdf.set_creation_date(PDF_DATE)
    for n in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("helvetica", size=14)
        pdf.cell(text=f"{text} - page {n}")
    return bytes(pdf.output())


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], seconds: float = 20) -> None:
    """Until ``proc`` listens on ``port`` (it must not exit meanwhile)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


# --------------------------------------------------------------------------- 企业管理


def tiny_png(width: int = 2, height: int = 2) -> bytes:
    """A real PNG (grey pixels), made with zlib: what a scanned 营业执照 is, in small."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    pixels = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


def subsidiary_form(n: int = 1, **over: str) -> dict[str, str]:
    """企业管理 › 【新增】 as the form posts it: 子公司{n}, in 南京市玄武区, account sub{n}."""
    values = {
        "uscc": uscc(500 + n),
        "name": f"测试子公司{n}",
        "province": "32",
        "city": "3201",
        "region_code": "320102",
        "address": f"南京市玄武区中山路{n}号",
        "username": f"sub{n}",
        "contact_name": "李四",
        "password": "Subsid123x",
        "phone": "025-84440000",
        "contact_phone": f"1390000{n:04d}",
    }
    values.update(over)
    return values


@asynccontextmanager
async def client_as(username: str, password: str = "Secret123x") -> AsyncIterator[Any]:
    """Another browser, logged in as ``username`` (tests that look from several accounts)."""
    async with AsyncTestClient(app=create_app(), base_url="http://testserver.local") as c:
        c.follow_redirects = False
        r = await login(c, username, password)
        assert r.status_code == 303, r.text
        yield c


# --------------------------------------------------------------------------- QR codes (#12)

# The path of a QR code as segno draws it in an inline <svg>: one ``d`` of moves and lines.
_QR_PATH = re.compile(r'<svg[^>]*class="qr"[^>]*>.*?<path[^>]*\sd="([^"]+)"', re.S)


def qr_payload_path(payload: str) -> str:
    """The ``d`` of the QR code that encodes exactly ``payload`` (segno, error level M,
    no Micro QR: what the print pages use). No decoder is needed: the same text in the
    same library gives the same modules, any other text other modules."""
    svg = segno.make(payload, error="m", micro=False).svg_inline(omitsize=True)
    found = re.search(r'\sd="([^"]+)"', svg)
    assert found, svg
    return found.group(1)


def qr_paths(html: str) -> list[str]:
    """The ``d`` of every QR code in a page, in order."""
    return _QR_PATH.findall(html)
