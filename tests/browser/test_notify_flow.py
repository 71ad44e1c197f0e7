"""通知设置 as a person clicks through it (#12 item 3), on a desktop (1366×900) and a phone
(390×844): the company's account opens 账号设置 › 通知设置, is refused a bad 邮箱 beside the
field (its ticks kept), gives a good one and chooses 邮件 only for 证书已出具, saves; the lab
issues a certificate through its API; the platform admin finds the e-mail in 平台管理 ›
邮件记录, and 短信记录 has no SMS for that certificate."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from playwright.async_api import expect

from app.services.validators import EMAIL_BAD
from tests.browser.helpers import field, log_in, log_out, open_admin_page, open_page, shot
from tests.factories import make_booking, make_enterprise, make_user
from tests.helpers import BOOKING, LAB_AUTH, mailbox, make_admin, make_pdf, outbox

PASSWORD = "Secret123x"
ADDRESS = "zhao.liu@example.com"


async def _lab(server: str, method: str, path: str, **kwargs: Any) -> None:
    async with httpx.AsyncClient(base_url=server, headers=LAB_AUTH) as lab:
        r = await lab.request(method, path, **kwargs)
    assert r.status_code == 200, r.text


async def _sent_email(address: str, seconds: float = 15) -> dict[str, Any]:
    """The e-mail to ``address`` once the job (in the server, or its arq worker) sent it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for mail in await mailbox(address):
            if mail["status"] == "sent":
                return mail
        await asyncio.sleep(0.1)
    raise AssertionError(f"no e-mail sent to {address}")


async def test_email_only_for_certificates(page: Any, server: str) -> None:
    if page.viewport_name == "desktop":
        await page.set_viewport_size({"width": 1366, "height": 900})
    ent = await make_enterprise(61, name="通知测试单位")
    user = await make_user(ent, PASSWORD, username="notify61")
    booking = await make_booking(ent, items=1, status="approved", created_by=user.id)
    line = {"unique_no": "DD61-001", "name": "温度计1", "serial_no": "T-1", "model": "WSS"}
    await _lab(
        server,
        "PUT",
        "/api/v1/orders/DD61",
        json={"booking_no": booking.booking_no, "instruments": [line]},
    )

    # ---- 账号设置 › 通知设置: SMS only, as before any choice.
    await log_in(page, "notify61", PASSWORD)
    await open_page(page, "账号设置", "通知设置")
    certificate = page.get_by_role("group", name="证书已出具")
    await expect(certificate.get_by_label("短信")).to_be_checked()
    await expect(certificate.get_by_label("邮件")).not_to_be_checked()
    await expect(page.get_by_role("group", name="验证码").get_by_label("短信")).to_be_disabled()

    # ---- 邮件 only for 证书已出具, with an address that is not one: refused beside it.
    await certificate.get_by_label("短信").uncheck()
    await certificate.get_by_label("邮件").check()
    await field(page, "邮箱").fill("zhao.liu@")
    await page.get_by_role("button", name="保存").click()
    await expect(page.locator("#e-email")).to_have_text(EMAIL_BAD)
    await expect(field(page, "邮箱")).to_have_value("zhao.liu@")
    await expect(certificate.get_by_label("邮件")).to_be_checked()
    await expect(certificate.get_by_label("短信")).not_to_be_checked()
    await shot(page, "notify-bad-address")

    await field(page, "邮箱").fill(ADDRESS)
    await page.get_by_role("button", name="保存").click()
    await expect(page.get_by_role("status").filter(has_text="已保存")).to_be_visible()
    await expect(field(page, "邮箱")).to_have_value(ADDRESS)
    await expect(certificate.get_by_label("邮件")).to_be_checked()
    await expect(certificate.get_by_label("短信")).not_to_be_checked()
    review = page.get_by_role("group", name="预约审核结果")
    await expect(review.get_by_label("短信")).to_be_checked()  # the others unchanged
    await shot(page, "notify-settings")

    # ---- The lab issues the certificate.
    await _lab(
        server,
        "PUT",
        "/api/v1/certificates/ZS61-A",
        files={"file": ("c.pdf", make_pdf("ZS61-A"), "application/pdf")},
        data={"unique_no": "DD61-001", "completed_on": "2026-11-20", "paid": "true"},
    )
    sent = await _sent_email(ADDRESS)
    assert sent["subject"] == "【计量客户服务平台】证书已出具：ZS61-A"
    assert [m for m in await outbox() if m["kind"] == "certificate"] == []
    await log_out(page)

    # ---- 平台管理: the e-mail in 邮件记录, no SMS of it in 短信记录.
    await make_admin()
    await log_in(page, "admin", "Admin12345x")
    await open_admin_page(page, "邮件记录")
    rows = page.get_by_role("region", name="邮件记录").get_by_role("row")
    await expect(rows).to_have_count(2)  # the header and the one e-mail
    await expect(rows.nth(1)).to_contain_text(ADDRESS)
    await expect(rows.nth(1)).to_contain_text("证书已出具：ZS61-A")
    await expect(rows.nth(1)).to_contain_text("已发送")
    await shot(page, "admin-emails")
    await open_admin_page(page, "短信记录")
    await page.get_by_label("手机号").fill(BOOKING["mobile"])
    await page.get_by_role("button", name="查询").click()
    await expect(page.get_by_role("table")).to_contain_text("暂无数据")
    await expect(page.get_by_role("table")).not_to_contain_text("ZS61-A")
