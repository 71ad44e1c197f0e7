"""The lab API's second half (SPEC §10): orders, instrument status, certificates, payment.
Idempotent, bearer token, JSON errors with the right status."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from app.tables import Certificate, CertificateFile, OrderItem, SmsMessage
from tests.helpers import (
    LAB_AUTH,
    approved_booking,
    company_user,
    lab_certificate,
    lab_order,
    make_pdf,
    run_jobs,
    submitted_booking,
)


async def test_order_from_approved_booking_is_idempotent(client: AsyncTestClient) -> None:
    await company_user(client)
    booking = await approved_booking(client)
    body = {
        "booking_no": booking["booking_no"],
        "instruments": [{"unique_no": "U1", "name": "温度计", "serial_no": "T-1"}],
    }
    r = await client.put("/api/v1/orders/DD9", json=body, headers=LAB_AUTH)
    assert r.status_code == 200 and r.json()["changed"] is True
    r = await client.put("/api/v1/orders/DD9", json=body, headers=LAB_AUTH)
    assert r.status_code == 200 and r.json()["changed"] is False
    row = await OrderItem.select().first()
    assert row["status"] == "awaiting" and row["unique_no"] == "U1"
    # Another order for the same booking, or the 唯一性号 under another order: 409.
    r = await client.put("/api/v1/orders/DD10", json=body, headers=LAB_AUTH)
    assert r.status_code == 409


async def test_order_errors(client: AsyncTestClient) -> None:
    await company_user(client)
    pending = await submitted_booking(client)
    line = {"unique_no": "U1", "name": "温度计"}
    r = await client.put(
        "/api/v1/orders/DD1",
        json={"booking_no": pending["booking_no"], "instruments": [line]},
        headers=LAB_AUTH,
    )
    assert r.status_code == 409 and "尚未审核通过" in r.json()["detail"]
    r = await client.put(
        "/api/v1/orders/DD1", json={"booking_no": "YY0", "instruments": [line]}, headers=LAB_AUTH
    )
    assert r.status_code == 404
    r = await client.put(
        "/api/v1/orders/DD1",
        json={"booking_no": pending["booking_no"], "instruments": []},
        headers=LAB_AUTH,
    )
    assert r.status_code == 400
    r = await client.put("/api/v1/orders/DD1", json={"booking_no": "x", "instruments": [line]})
    assert r.status_code == 401
    bad = {**line, "status": "不存在的状态"}
    r = await client.put(
        "/api/v1/orders/DD1",
        json={"booking_no": pending["booking_no"], "instruments": [bad]},
        headers=LAB_AUTH,
    )
    assert r.status_code == 400
    assert await OrderItem.count() == 0


async def test_status_changes(client: AsyncTestClient) -> None:
    await company_user(client)
    booking = await approved_booking(client)
    unique = await lab_order(client, booking["booking_no"])
    url = f"/api/v1/instruments/{unique[0]}/status"
    r = await client.post(url, json={"status": "检测中"}, headers=LAB_AUTH)
    assert r.status_code == 200 and r.json()["status"] == "检测中" and r.json()["changed"]
    r = await client.post(url, json={"status": "检测中"}, headers=LAB_AUTH)
    assert r.status_code == 200 and r.json()["changed"] is False
    # A late retry of an older event does not undo a newer one.
    r = await client.post(
        url, json={"status": "待收样", "at": "2020-01-01T08:00:00+08:00"}, headers=LAB_AUTH
    )
    assert r.status_code == 200 and r.json()["status"] == "检测中"
    r = await client.post(url, json={"status": "未知"}, headers=LAB_AUTH)
    assert r.status_code == 400
    r = await client.post(
        url, json={"status": "待取件", "at": "2026-11-26T10:00:00"}, headers=LAB_AUTH
    )
    # The schema's date-time needs an offset: a naive time is refused by validation (400).
    assert r.status_code == 400 and r.json()["extra"][0]["key"] == "at"
    r = await client.post(
        "/api/v1/instruments/NOPE/status", json={"status": "检测中"}, headers=LAB_AUTH
    )
    assert r.status_code == 404


async def test_certificate_upload_replace_and_payment(client: AsyncTestClient) -> None:
    await company_user(client)
    booking = await approved_booking(client)
    unique = await lab_order(client, booking["booking_no"])
    pdf = make_pdf("ZS-1")
    r = await lab_certificate(client, "ZS-1", unique[0], pdf, paid=False)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "cert_no": "ZS-1",
        "unique_no": unique[0],
        "completed_on": "2026-11-20",
        "paid": False,
        "version": 1,
        "changed": True,
    }
    r = await lab_certificate(client, "ZS-1", unique[0], pdf, paid=False)
    assert r.status_code == 200 and r.json()["changed"] is False and r.json()["version"] == 1
    r = await lab_certificate(client, "ZS-1", unique[0], make_pdf("ZS-1 v2"), paid=False)
    assert r.status_code == 200 and r.json()["version"] == 2
    files = await CertificateFile.select().order_by(CertificateFile.version)
    assert len(files) == 2 and files[0]["superseded_at"] is not None
    assert files[1]["superseded_at"] is None
    cert = await Certificate.select().first()
    assert cert["sha256"] == files[1]["sha256"]
    # 缴费状态, idempotent.
    url = "/api/v1/certificates/ZS-1/payment"
    r = await client.post(url, json={"paid": True}, headers=LAB_AUTH)
    assert r.status_code == 200 and r.json()["paid"] is True and r.json()["changed"]
    r = await client.post(url, json={"paid": True}, headers=LAB_AUTH)
    assert r.json()["changed"] is False
    # 证书已出具: one SMS per issued version.
    await run_jobs(client)
    sent = await SmsMessage.select().where(SmsMessage.kind == "certificate")
    assert len(sent) == 2 and "ZS-1" in sent[0]["text"]


async def test_certificate_bad_input_stores_nothing(client: AsyncTestClient) -> None:
    await company_user(client)
    booking = await approved_booking(client)
    unique = await lab_order(client, booking["booking_no"])
    # A well-formed upload whose file is no PDF: 422, the message by field.
    r = await lab_certificate(client, "ZS-2", unique[0], b"not a pdf at all")
    assert r.status_code == 422 and "PDF" in r.json()["detail"] and "file" in r.json()["errors"]
    r = await lab_certificate(client, "ZS-2", "NO-SUCH", make_pdf())
    assert r.status_code == 404
    r = await lab_certificate(client, "ZS-2", unique[0], make_pdf(), completed_on="26/11/2026")
    assert r.status_code == 400
    r = await lab_certificate(client, "ZS/2", unique[0], make_pdf())
    assert r.status_code in (400, 404)
    big = b"%PDF-1.4\n" + b"0" * (30 * 1024 * 1024)
    r = await lab_certificate(client, "ZS-2", unique[0], big)
    assert r.status_code == 413
    r = await client.post(
        "/api/v1/certificates/NOPE/payment", json={"paid": True}, headers=LAB_AUTH
    )
    assert r.status_code == 404
    assert await Certificate.count() == 0 and await CertificateFile.count() == 0
    # The certificate number already belongs to another instrument: 409.
    assert (await lab_certificate(client, "ZS-3", unique[0])).status_code == 200
    r = await lab_certificate(client, "ZS-3", unique[1])
    assert r.status_code == 409
