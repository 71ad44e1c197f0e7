"""Every form error path answers HTML (the form again, messages beside the fields), as a
plain POST and as an htmx request: never JSON, never the page's source shown as text."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app.tables import Enterprise
from tests.factories import make_enterprise, make_instrument
from tests.helpers import (
    BOOKING,
    company_user,
    login,
    make_admin,
    open_form,
    post,
    submitted_booking,
)


def _html(r: Any, *expect: str) -> None:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html"), r.headers["content-type"]
    assert not r.text.lstrip().startswith('"'), "HTML sent as a JSON string"
    for text in expect:
        assert text in r.text, (text, r.text[:500])


@pytest.mark.parametrize("htmx", [False, True])
async def test_public_forms(client: AsyncTestClient, htmx: bool) -> None:
    _html(await post(client, "/login", {"username": "x", "password": "y"}, htmx=htmx), "错误")
    _html(await post(client, "/register", {"name": "甲"}, htmx=htmx), "请")
    _html(await post(client, "/forgot", {"phone": "1"}, htmx=htmx), "请")
    _html(await post(client, "/login/phone", {"phone": "1", "code": "1"}, htmx=htmx), "手机")
    _html(await post(client, "/sms-code", {"purpose": "login", "phone": "1"}, htmx=htmx), "手机")


@pytest.mark.parametrize("htmx", [False, True])
async def test_customer_forms(client: AsyncTestClient, htmx: bool) -> None:
    await company_user(client)
    booking_id = await open_form(client)
    items = f"/bookings/{booking_id}/items"
    _html(await post(client, items, {**BOOKING, "name": ""}, htmx=htmx), "请填写器具名称")
    _html(await post(client, f"{items}/delete", {}, htmx=htmx), "请先勾选")
    _html(await post(client, f"/bookings/{booking_id}/history", {}, htmx=htmx), "请先勾选")
    _html(await post(client, f"/bookings/{booking_id}/custody", {}, htmx=htmx), "请先勾选")
    _html(await post(client, f"/bookings/{booking_id}/submit", {}, htmx=htmx), "请")
    _html(await post(client, "/bookings/delete", {}, htmx=htmx), "请先勾选")
    _html(await post(client, "/settings/basic", {"contact_mobile": "1"}, htmx=htmx), "手机")
    _html(await post(client, "/instruments", {"name": ""}, htmx=htmx), "请填写器具名称")
    ent = await Enterprise.objects().first()
    one = await make_instrument(ent, name="压力表", serial_no="A1")
    _html(await post(client, f"/instruments/{one.id}", {"name": ""}, htmx=htmx), "请填写器具名称")
    for action in ("delete", "history", "to-booking"):
        _html(await post(client, f"/instruments/{action}", {}, htmx=htmx), "请先勾选")


@pytest.mark.parametrize("htmx", [False, True])
async def test_admin_forms(client: AsyncTestClient, htmx: bool) -> None:
    await company_user(client)
    booking = await submitted_booking(client)
    pending = await make_enterprise(9, name="待审单位", status="pending")
    contract = await make_enterprise(8, name="协议单位", is_contract=True)
    await make_admin()
    await login(client, "admin", "Admin12345x")
    reject = {"action": "reject", "reason": ""}
    _html(
        await post(client, f"/admin/registrations/{pending.id}/review", reject, htmx=htmx),
        "驳回时请填写原因",
        "待审单位",
    )
    _html(
        await post(client, f"/admin/bookings/{booking['id']}/review", reject, htmx=htmx),
        "驳回时请填写原因",
        booking["booking_no"],
    )
    _html(await post(client, "/admin/contracts", {"name": ""}, htmx=htmx), "请")
    _html(await post(client, f"/admin/contracts/{contract.id}", {"name": ""}, htmx=htmx), "请")
