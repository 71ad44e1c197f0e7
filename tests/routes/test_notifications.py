"""Notifications people choose (#12) over HTTP: each message goes by the channels its
account ticked in 通知设置 (SMS only by default, as before), the 验证码 always by SMS; the
page refuses a bad 邮箱 beside the field; 用户管理 keeps an account's 邮箱; 平台管理 ›
邮件记录 lists every e-mail, for platform admins only."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import pytest
from litestar.testing import AsyncTestClient

from app.clock import today
from app.enums import NotifyKind
from app.services import instruments
from app.services.notify import NEED_ADDRESS
from app.services.validators import EMAIL_BAD
from app.tables import AuditLog, Enterprise, NotifyChoice, User
from tests.factories import make_email_message, make_instrument
from tests.helpers import (
    BOOKING,
    LAB_AUTH,
    approved_booking,
    choose_notifications,
    client_as,
    company_user,
    lab_certificate,
    lab_order,
    last_code,
    login,
    mailbox,
    make_admin,
    outbox,
    post,
    register_company,
    run_jobs,
)

ADDRESS = "wang.wu@example.com"
MOBILE = BOOKING["mobile"]  # the booking's 手机: where its SMS have always gone


async def _issue(client: AsyncTestClient, cert_no: str = "ZS-1", order_no: str = "DD1") -> str:
    """A booking of the logged-in account, approved, made an order, its certificate issued;
    every job run. Returns the instrument's 唯一性号."""
    booking = await approved_booking(client, items=1)
    [unique_no] = await lab_order(client, booking["booking_no"], order_no, n=1)
    r = await lab_certificate(client, cert_no, unique_no)
    assert r.status_code == 200, r.text
    await run_jobs(client)
    return unique_no


async def _sms_kinds(phone: str = MOBILE) -> list[str]:
    return [m["kind"] for m in await outbox(phone)]


# --------------------------------------------------------------------------- routing


async def test_without_a_choice_an_sms_as_before_and_no_email(client: AsyncTestClient) -> None:
    await company_user(client)
    await _issue(client)
    assert "certificate" in await _sms_kinds()
    assert await mailbox() == []


async def test_email_only_for_certificate_gives_an_email_and_no_sms(
    client: AsyncTestClient,
) -> None:
    await company_user(client)
    r = await choose_notifications(client, ADDRESS, certificate="email")
    assert r.status_code == 303, r.text
    await _issue(client, "ZS-7")
    kinds = await _sms_kinds()
    assert "certificate" not in kinds
    assert "booking_review" in kinds  # the other kinds still go by SMS
    [mail] = await mailbox(ADDRESS)
    assert mail["kind"] == NotifyKind.CERTIFICATE and mail["status"] == "sent"
    assert mail["provider_ref"] == "outbox" and mail["attempts"] == 1
    assert mail["subject"] == "【计量客户服务平台】证书已出具：ZS-7"
    assert "证书ZS-7已出具" in mail["body"] and "通知设置" in mail["body"]


@pytest.mark.parametrize(
    ("chosen", "by_sms", "by_email"),
    [("sms email", True, True), ("", False, False), ("sms", True, False)],
    ids=["both", "neither", "sms"],
)
async def test_both_neither_or_sms(
    client: AsyncTestClient, chosen: str, by_sms: bool, by_email: bool
) -> None:
    await company_user(client)
    r = await choose_notifications(client, ADDRESS, certificate=chosen)
    assert r.status_code == 303, r.text
    await _issue(client)
    assert ("certificate" in await _sms_kinds()) is by_sms
    assert len(await mailbox(ADDRESS)) == (1 if by_email else 0)
    # Issued again (the same file): the event is not told twice, by either channel.
    await lab_certificate(client, "ZS-1", "DD1-001")
    await run_jobs(client)
    assert (await _sms_kinds()).count("certificate") == (1 if by_sms else 0)
    assert len(await mailbox(ADDRESS)) == (1 if by_email else 0)


async def test_the_code_always_goes_by_sms(client: AsyncTestClient) -> None:
    form = await company_user(client)
    everything_by_email = {kind.value: "email" for kind in NotifyKind}
    r = await choose_notifications(client, ADDRESS, **everything_by_email)
    assert r.status_code == 303, r.text
    r = await post(client, "/sms-code", {"purpose": "login", "phone": form["contact_phone"]})
    assert r.status_code == 200, r.text
    assert await last_code(client, form["contact_phone"])
    assert await mailbox() == []


async def test_review_result_by_email_when_chosen(client: AsyncTestClient) -> None:
    await company_user(client)
    await choose_notifications(client, ADDRESS, booking_review="email")
    booking = await approved_booking(client, items=1)
    await run_jobs(client)
    assert "booking_review" not in await _sms_kinds()
    [mail] = await mailbox(ADDRESS)
    assert mail["subject"].endswith(f"预约审核结果：{booking['booking_no']}")
    assert "已审核通过" in mail["body"]


async def test_item_status_nothing_by_default_and_by_email_once_chosen(
    client: AsyncTestClient,
) -> None:
    await company_user(client)
    booking = await approved_booking(client, items=1)
    [unique_no] = await lab_order(client, booking["booking_no"], n=1)
    url = f"/api/v1/instruments/{unique_no}/status"
    r = await client.post(url, json={"status": "检测中"}, headers=LAB_AUTH)
    assert r.status_code == 200, r.text
    await run_jobs(client)
    assert "item_status" not in await _sms_kinds() and await mailbox() == []

    await choose_notifications(client, ADDRESS, item_status="email")
    for _ in range(2):  # the lab sends the same status twice: one e-mail
        r = await client.post(url, json={"status": "待取件"}, headers=LAB_AUTH)
        assert r.status_code == 200, r.text
    await run_jobs(client)
    [mail] = await mailbox(ADDRESS)
    assert mail["kind"] == "item_status" and "检测状态已更新为待取件" in mail["body"]
    assert "item_status" not in await _sms_kinds()


async def test_due_reminder_by_the_main_accounts_choice_once(client: AsyncTestClient) -> None:
    form = await company_user(client)
    await choose_notifications(client, ADDRESS, due_reminder="email")
    ent = await Enterprise.objects().first()
    await make_instrument(ent, valid_until=today() + timedelta(days=10))
    assert await instruments.remind_due() == 1
    await run_jobs()  # queued from the test's own loop, not the app's
    [mail] = await mailbox(ADDRESS)
    assert mail["kind"] == "due_reminder" and "到期" in mail["body"]
    assert "due_reminder" not in await _sms_kinds(form["contact_phone"])
    assert await instruments.remind_due() == 0  # the next day's run: nothing more
    # Switching to SMS does not bring the same reminder a second time.
    await choose_notifications(client, ADDRESS, due_reminder="sms")
    assert await instruments.remind_due() == 0
    await run_jobs()
    assert "due_reminder" not in await _sms_kinds(form["contact_phone"])


async def test_registration_result_follows_the_applicants_choice(
    client: AsyncTestClient,
) -> None:
    form = await register_company(client, n=5, phone="13800000005")
    # The applicant cannot log in before the review: its choice is written as 通知设置 would.
    applicant = await User.select(User.id).where(User.username == form["username"]).first()
    await User.update({User.email: ADDRESS}).where(User.id == applicant["id"])
    await NotifyChoice.insert(
        NotifyChoice(user=applicant["id"], choices=json.dumps({"registration": ["email"]}))
    )
    await make_admin()
    await login(client, "admin", "Admin12345x")
    ent = await Enterprise.select(Enterprise.id).first()
    r = await post(client, f"/admin/registrations/{ent['id']}/review", {"action": "approve"})
    assert r.status_code in (200, 303), r.text
    await run_jobs(client)
    assert await _sms_kinds("13800000005") == ["code"]
    [mail] = await mailbox(ADDRESS)
    assert mail["kind"] == "registration" and form["username"] in mail["body"]


async def test_a_sub_accounts_choice_rules_its_own_bookings(client: AsyncTestClient) -> None:
    await company_user(client)
    await choose_notifications(client, "boss@example.com", certificate="")
    sub = {
        "username": "clerk1",
        "name": "小李",
        "password": "Ledger2024x",
        "phone": "13700000001",
        "email": "clerk@example.com",
    }
    r = await post(client, "/settings/users", sub)
    assert r.status_code == 303, r.text
    async with client_as("clerk1", "Ledger2024x") as clerk:
        page = await clerk.get("/account/notifications")
        assert 'value="clerk@example.com"' in page.text
        assert "<legend>证书已出具</legend>" in page.text
        assert "器具即将到期" not in page.text  # the main account's
        r = await choose_notifications(clerk, "clerk@example.com", certificate="sms email")
        assert r.status_code == 303, r.text
        await _issue(clerk)
    assert "certificate" in await _sms_kinds()
    assert len(await mailbox("clerk@example.com")) == 1
    assert await mailbox("boss@example.com") == []


async def test_email_chosen_then_address_emptied_falls_back_to_sms(
    client: AsyncTestClient,
) -> None:
    await company_user(client)
    await choose_notifications(client, ADDRESS, certificate="email")
    await User.update({User.email: ""}).where(User.username == "company1")  # 用户管理 may
    await _issue(client)
    assert "certificate" in await _sms_kinds() and await mailbox() == []


# --------------------------------------------------------------------------- 通知设置


async def test_page_shows_the_choices_and_saves(client: AsyncTestClient) -> None:
    await company_user(client)
    home = await client.get("/")
    assert 'href="/account/notifications"' in home.text and "通知设置" in home.text
    r = await client.get("/account/notifications")
    assert r.status_code == 200
    for label in ("预约审核结果", "证书已出具", "器具即将到期", "检测状态变化", "验证码"):
        assert f"<legend>{label}</legend>" in r.text
    assert "注册审核结果" not in r.text  # it went out before this account could log in
    assert 'name="certificate.sms" value="1" checked' in r.text  # default: SMS only
    assert 'name="certificate.email" value="1">' in r.text
    assert 'name="item_status.sms" value="1">' in r.text  # no message before the choice
    r = await choose_notifications(client, " Wang.Wu@EXAMPLE.com ", certificate="sms email")
    assert r.status_code == 303 and r.headers["location"] == "/account/notifications?saved=1"
    r = await client.get(r.headers["location"])
    assert "已保存" in r.text and 'value="Wang.Wu@example.com"' in r.text
    assert 'name="certificate.email" value="1" checked' in r.text
    log = await AuditLog.select().where(AuditLog.event == "通知设置").first()
    assert "证书已出具：短信、邮件" in log["detail"]


async def test_htmx_save_redirects_on_the_client(client: AsyncTestClient) -> None:
    await company_user(client)
    r = await post(
        client, "/account/notifications", {"email": ADDRESS, "certificate.email": "1"}, htmx=True
    )
    assert r.status_code == 200 and r.headers["hx-redirect"] == "/account/notifications?saved=1"


@pytest.mark.parametrize(
    ("email", "message"),
    [("wang@", EMAIL_BAD), ("王五@example.com", EMAIL_BAD), ("", NEED_ADDRESS)],
    ids=["not-an-address", "chinese-local-part", "e-mail-without-address"],
)
async def test_a_bad_address_is_refused_beside_the_field(
    client: AsyncTestClient, email: str, message: str
) -> None:
    await company_user(client)
    r = await post(client, "/account/notifications", {"email": email, "certificate.email": "1"})
    assert r.status_code == 200
    assert f'<p class="field-error" id="e-email">{message}</p>' in r.text
    assert 'aria-invalid="true" aria-describedby="e-email"' in r.text
    assert f'value="{email}"' in r.text  # what was typed stays, and the ticks
    assert 'name="certificate.email" value="1" checked' in r.text
    assert 'name="certificate.sms" value="1">' in r.text
    assert await NotifyChoice.count() == 0  # nothing saved
    assert (await User.select(User.email).first())["email"] == ""


async def test_only_enterprise_accounts_have_the_page(client: AsyncTestClient) -> None:
    r = await client.get("/account/notifications")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    await make_admin()
    await login(client, "admin", "Admin12345x")
    r = await client.get("/account/notifications")
    assert r.status_code == 403


# --------------------------------------------------------------------------- 用户管理


async def test_user_form_keeps_a_valid_address_and_refuses_a_bad_one(
    client: AsyncTestClient,
) -> None:
    await company_user(client)
    sub = {"username": "clerk2", "name": "小王", "password": "Ledger2024x", "phone": "13700000002"}
    r = await post(client, "/settings/users", {**sub, "email": "clerk2@@example.com"})
    assert r.status_code == 200
    assert f'<p class="field-error" id="e-email">{EMAIL_BAD}</p>' in r.text
    assert 'value="clerk2@@example.com"' in r.text
    assert not await User.exists().where(User.username == "clerk2")
    r = await post(client, "/settings/users", {**sub, "email": "Clerk2@Example.com"})
    assert r.status_code == 303, r.text
    row = await User.select(User.id, User.email).where(User.username == "clerk2").first()
    assert row["email"] == "Clerk2@example.com"
    r = await client.get(f"/settings/users/{row['id']}/edit")
    assert 'value="Clerk2@example.com"' in r.text


# --------------------------------------------------------------------------- 邮件记录


async def test_email_log_lists_every_email_for_admins(client: AsyncTestClient) -> None:
    for n in range(22):
        await make_email_message(f"user{n}@example.com", subject=f"主题{n}")
    await make_email_message(
        ADDRESS, status="failed", attempts=5, error="SMTPResponseException: 554 rejected"
    )
    await make_admin()
    await login(client, "admin", "Admin12345x")
    home = await client.get("/")
    assert 'href="/admin/emails"' in home.text
    r = await client.get("/admin/emails")
    assert r.status_code == 200 and "<h1>邮件记录</h1>" in r.text
    assert "共 23 条" in r.text
    assert r.text.index(ADDRESS) < r.text.index("user21@example.com")  # newest first
    assert "user0@example.com" not in r.text  # on page 2
    assert "发送失败" in r.text and "554 rejected" in r.text and "已尝试5次" in r.text
    # Paged by keyset (#15): 下一页 holds the older ones, 上一页 leads back.
    following = re.search(r'<a href="([^"]+)">下一页</a>', r.text)
    assert following and "after=" in following.group(1)
    r = await client.get(html.unescape(following.group(1)))
    assert "user0@example.com" in r.text and ADDRESS not in r.text
    back = re.search(r'<a href="([^"]+)">上一页</a>', r.text)
    assert back and ADDRESS in (await client.get(html.unescape(back.group(1)))).text
    r = await client.get("/admin/emails", params={"address": ADDRESS})
    assert "共 1 条" in r.text and "user1@example.com" not in r.text
    for hostile in ("x", "-1", "99999999999", "2147483648"):  # never a 500
        r = await client.get("/admin/emails", params={"after": hostile, "before": hostile})
        assert r.status_code == 200 and "邮件记录" in r.text


async def test_email_log_is_for_platform_admins_only(client: AsyncTestClient) -> None:
    await make_email_message(ADDRESS)
    r = await client.get("/admin/emails")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fadmin%2Femails"
    await company_user(client)
    r = await client.get("/admin/emails")
    assert r.status_code == 403 and ADDRESS not in r.text
    assert 'href="/admin/emails"' not in (await client.get("/")).text
