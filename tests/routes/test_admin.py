"""平台管理: 注册审核, 协议客户, 短信记录, 操作日志 — and who may open them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import AsyncTestClient

from app.clock import TZ, now
from app.security.sessions import cookie_name
from app.tables import AuditLog, ContractPhone, Enterprise, SmsCode, SmsMessage, User
from tests.factories import make_enterprise
from tests.helpers import (
    company_user,
    last_code,
    login,
    make_admin,
    outbox,
    post,
    register_company,
    run_jobs,
    set_session_cookie,
    uscc,
)
from workers.main import WorkerSettings


async def _admin(client: AsyncTestClient) -> None:
    await make_admin()
    r = await login(client, "admin", "Admin12345x")
    assert r.status_code == 303


async def test_approve_sends_sms_and_logs(client: AsyncTestClient) -> None:
    form = await register_company(client, n=1, phone="13800000001")
    await _admin(client)
    r = await client.get("/admin/registrations")
    assert form["name"] in r.text and "待审核" in r.text and form["username"] in r.text
    ent = await Enterprise.select().first()
    r = await post(client, f"/admin/registrations/{ent['id']}/review", {"action": "approve"})
    assert r.status_code == 303
    assert (await Enterprise.select().first())["status"] == "approved"
    await run_jobs(client)
    texts = [m["text"] for m in await outbox("13800000001")]
    assert any("审核通过" in t and form["username"] in t for t in texts)
    log = await AuditLog.select().where(AuditLog.event == "注册审核").first()
    assert log["username"] == "admin" and "通过" in log["detail"]
    # 短信记录 lists it, newest first.
    r = await client.get("/admin/sms")
    assert r.text.index("审核通过") < r.text.index("验证码为")
    # Reviewing twice changes nothing.
    r = await post(
        client, f"/admin/registrations/{ent['id']}/review", {"action": "reject", "reason": "x"}
    )
    assert "无需重复审核" in r.text
    assert (await Enterprise.select().first())["status"] == "approved"


async def test_reject_needs_reason_and_tells_by_sms(client: AsyncTestClient) -> None:
    form = await register_company(client, n=2, phone="13800000002")
    await _admin(client)
    ent = await Enterprise.select().first()
    r = await post(client, f"/admin/registrations/{ent['id']}/review", {"action": "reject"})
    assert "驳回时请填写原因" in r.text
    # Enter in the reason field sends no action: nothing is decided.
    r = await post(client, f"/admin/registrations/{ent['id']}/review", {"reason": "资料不全"})
    assert "请点击【通过】或【驳回】" in r.text
    assert (await Enterprise.select().first())["status"] == "pending"
    r = await post(
        client,
        f"/admin/registrations/{ent['id']}/review",
        {"action": "reject", "reason": "营业执照信息不符"},
    )
    assert r.status_code == 303
    await run_jobs(client)
    assert any("营业执照信息不符" in m["text"] for m in await outbox("13800000002"))
    await post(client, "/logout")
    r = await login(client, form["username"], form["password"])
    assert "未通过审核：营业执照信息不符" in r.text
    r = await post(client, "/admin/registrations/99999/review", {"action": "approve"})
    assert r.status_code == 303  # logged out: back to login


async def test_review_unknown_is_404(client: AsyncTestClient) -> None:
    await _admin(client)
    r = await post(client, "/admin/registrations/99999/review", {"action": "approve"})
    assert r.status_code == 404 and "不存在" in r.text


async def test_contract_customers_add_edit_validate(client: AsyncTestClient) -> None:
    await _admin(client)
    assert "新增" in (await client.get("/admin/contracts")).text
    bad = {
        "name": "协议甲",
        "uscc": "91350100M000100Y44",
        "contract_no": "",
        "phones": "13611110000，123",
    }
    r = await post(client, "/admin/contracts", bad)
    assert "校验位不正确" in r.text and "请输入合同编号" in r.text and "123" in r.text
    assert 'value="协议甲"' in r.text and await Enterprise.count() == 0
    good = {
        "name": "协议甲",
        "uscc": uscc(30),
        "contract_no": "HT-1",
        "phones": "13611110000，13611110001",
    }
    r = await post(client, "/admin/contracts", good)
    assert r.status_code == 303
    ent = await Enterprise.select().first()
    assert ent["is_contract"] and ent["status"] == "approved"
    assert await ContractPhone.count() == 2
    r = await client.get(f"/admin/contracts/{ent['id']}/edit")
    assert "13611110000，13611110001" in r.text
    r = await post(
        client,
        f"/admin/contracts/{ent['id']}",
        {**good, "contract_no": "HT-2", "phones": "13611110002"},
    )
    assert r.status_code == 303
    assert (await Enterprise.select().first())["contract_no"] == "HT-2"
    assert [p["phone"] for p in await ContractPhone.select()] == ["13611110002"]
    # A phone of another contract customer is refused.
    r = await post(
        client,
        "/admin/contracts",
        {"name": "协议乙", "uscc": uscc(31), "contract_no": "HT-3", "phones": "13611110002"},
    )
    assert "已属于其他协议客户" in r.text
    assert (await client.get("/admin/contracts/99999/edit")).status_code == 404
    assert await AuditLog.exists().where(AuditLog.event == "协议客户")


async def test_contract_phones_of_only_separators_are_missing(client: AsyncTestClient) -> None:
    await _admin(client)
    form = {"name": "协议丙", "uscc": uscc(32), "contract_no": "HT-4", "phones": "，, ;"}
    r = await post(client, "/admin/contracts", form)
    assert r.status_code == 200 and "请输入联系人手机" in r.text
    assert await Enterprise.count() == 0


async def test_contract_audit_says_added_then_saved(client: AsyncTestClient) -> None:
    await _admin(client)
    form = {"name": "协议丁", "uscc": uscc(33), "contract_no": "HT-5", "phones": "13611114444"}
    assert (await post(client, "/admin/contracts", form)).status_code == 303
    ent = await Enterprise.select(Enterprise.id).first()
    assert (await post(client, f"/admin/contracts/{ent['id']}", form)).status_code == 303
    details = [
        a["detail"]
        for a in await AuditLog.select(AuditLog.detail)
        .where(AuditLog.event == "协议客户")
        .order_by(AuditLog.id)
    ]
    assert [d.split("：")[0] for d in details] == ["新增", "保存"]


async def test_audit_log_search(client: AsyncTestClient) -> None:
    await _admin(client)
    await login(client, "nobody", "WrongPass1")
    await login(client, "admin", "Admin12345x")
    r = await client.get("/admin/audit?q=nobody")
    assert "nobody" in r.text and "失败" in r.text
    r = await client.get("/admin/audit?event=登录&q=admin")
    assert "admin" in r.text and "nobody" not in r.text
    r = await client.get("/admin/audit?start=2000-01-01&end=2000-01-02")
    assert "暂无数据" in r.text


async def test_customer_gets_403_on_admin_pages(client: AsyncTestClient) -> None:
    await company_user(client, n=3, phone="13800000003")
    for url in ("/admin/registrations", "/admin/contracts", "/admin/sms", "/admin/audit"):
        r = await client.get(url)
        assert r.status_code == 403 and "没有权限" in r.text
    r = await post(client, "/admin/contracts", {"name": "x"})
    assert r.status_code == 403
    home = await client.get("/")
    assert "平台管理" not in home.text and "注册审核" not in home.text


async def test_anonymous_is_sent_to_login(client: AsyncTestClient) -> None:
    r = await client.get("/admin/sms")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fadmin%2Fsms"
    r = await client.get("/", headers={"HX-Request": "true"})
    assert r.status_code == 401 and r.headers["hx-redirect"].startswith("/login")


async def test_admin_sees_platform_menu(client: AsyncTestClient) -> None:
    await _admin(client)
    r = await client.get("/")
    for label in ("平台管理", "注册审核", "协议客户", "短信记录", "操作日志"):
        assert label in r.text


async def test_phone_taken_off_contract_loses_its_account(client: AsyncTestClient) -> None:
    phone = "13611112222"
    await _admin(client)
    good = {"name": "协议丙", "uscc": uscc(40), "contract_no": "HT-9", "phones": phone}
    await post(client, "/admin/contracts", good)
    ent = await Enterprise.select().first()
    await post(client, "/logout")

    async def phone_login() -> Any:
        await SmsCode.update({SmsCode.created_at: now() - timedelta(minutes=5)}).where(
            SmsCode.phone == phone
        )
        await SmsMessage.delete().where(SmsMessage.phone == phone)
        await post(client, "/sms-code", {"purpose": "login", "phone": phone}, htmx=True)
        await run_jobs(client)
        sent = await outbox(phone)
        code = (await last_code(client, phone)) if sent else "000000"
        return await post(client, "/login/phone", {"phone": phone, "code": code})

    assert (await phone_login()).status_code == 303
    contract_cookie = client.cookies.get(cookie_name())
    await login(client, "admin", "Admin12345x")
    r = await post(client, f"/admin/contracts/{ent['id']}", {**good, "phones": "13611113333"})
    assert r.status_code == 303
    set_session_cookie(client, contract_cookie)
    assert (await client.get("/")).status_code == 303  # its session ended
    r = await phone_login()
    assert not await outbox(phone)  # no code is sent to a phone without an account
    assert r.status_code == 200 and "验证码错误" in r.text
    # Listed again, the same account comes back (no second one).
    await login(client, "admin", "Admin12345x")
    await post(client, f"/admin/contracts/{ent['id']}", good)
    await post(client, "/logout")
    assert (await phone_login()).status_code == 303
    assert await User.count().where(User.phone == phone) == 1


async def test_audit_date_filter_is_china_time(client: AsyncTestClient) -> None:
    """An event at 00:30 China time (16:30 UTC the day before) is found on its China date."""
    await _admin(client)
    await AuditLog.insert(
        AuditLog(at=datetime(2026, 3, 9, 16, 30, tzinfo=UTC), event="登录", username="night-owl")
    )
    r = await client.get("/admin/audit?start=2026-03-10&end=2026-03-10")
    assert "night-owl" in r.text and "2026-03-10 00:30" in r.text
    r = await client.get("/admin/audit?start=2026-03-09&end=2026-03-09")
    assert "night-owl" not in r.text


def test_worker_cron_runs_at_8_china_time() -> None:
    assert WorkerSettings.timezone is TZ
    assert WorkerSettings.cron_jobs[0].hour == {8}


async def test_registrations_list_only_what_registered(client: AsyncTestClient) -> None:
    """注册审核 lists enterprises that registered themselves: a subsidiary a parent created
    in 企业管理 (approved on creation) never registered, and is not listed under any tab."""
    parent = await make_enterprise(1, name="母公司甲")
    await make_enterprise(2, name="子公司乙", parent=parent.id)
    await _admin(client)
    for status in ("", "approved"):
        r = await client.get(f"/admin/registrations?status={status}")
        assert r.status_code == 200
        assert "母公司甲" in r.text
        assert "子公司乙" not in r.text
