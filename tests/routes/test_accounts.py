"""客户注册, the three logins, 忘记密码 and the SMS code rules (SPEC §3), over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from litestar.testing import AsyncTestClient

from app.clock import now
from app.security.sessions import (
    DatabaseSessionStore,
    auth_changed,
    cookie_name,
    session_store,
)
from app.security.sessions import hash_key as _key_hash
from app.services.accounts import purge_old_records
from app.tables import AuditLog, ContractPhone, Enterprise, LoginAttempt, SmsCode, User, WebSession
from tests.factories import make_enterprise, make_sms_code
from tests.helpers import (
    approve_company,
    company_user,
    last_code,
    login,
    outbox,
    post,
    register_company,
    run_jobs,
    set_session_cookie,
    uscc,
)

PHONE = "13900000001"


async def _register_form(
    client: AsyncTestClient, phone: str = PHONE, **over: str
) -> dict[str, str]:
    r = await post(client, "/sms-code", {"purpose": "register", "contact_phone": phone}, htmx=True)
    assert "验证码已发送" in r.text
    form = {
        "name": "南京测试仪表有限公司",
        "uscc": uscc(7),
        "address": "南京市江宁区1号",
        "contact_name": "李四",
        "contact_phone": phone,
        "code": await last_code(client, phone),
        "username": "nanjing1",
        "password": "Meter2024x",
        "password2": "Meter2024x",
        "agree": "1",
    }
    form.update(over)
    return form


async def test_register_waits_for_review_then_logs_in(client: AsyncTestClient) -> None:
    form = await _register_form(client)
    r = await post(client, "/register", form)
    assert r.status_code == 200 and "待审核" in r.text
    ent = await Enterprise.select().first()
    assert ent["status"] == "pending" and ent["uscc"] == form["uscc"]
    user = await User.select().where(User.username == "nanjing1").first()
    assert user["role"] == "enterprise_admin" and user["password_hash"].startswith("$argon2")

    r = await login(client, "nanjing1", "Meter2024x")
    assert "待审核" in r.text and client.cookies.get(cookie_name()) is None

    await approve_company(form["uscc"])
    r = await login(client, "nanjing1", "Meter2024x")
    assert r.status_code == 303 and r.headers["location"] == "/"
    home = await client.get("/")
    assert "首页" in home.text and "南京测试仪表有限公司" in home.text
    assert "暂无预约记录" in home.text
    assert await AuditLog.exists().where(
        (AuditLog.event == "登录") & (AuditLog.result == "成功") & (AuditLog.username == "nanjing1")
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("uscc", "91350100M000100Y44", "校验位不正确"),
        ("uscc", "12345", "应为18位"),
        ("password2", "Other2024x", "两次输入的密码不一致"),
        ("password", "short1", "至少8位"),
        ("password", "password123", "过于常见"),
        ("password", "onlyletters", "字母和数字"),
        ("contact_phone", "12345678901", "正确的11位手机号"),
        ("agree", "", "免责声明"),
        ("name", "", "请输入单位名称"),
        ("username", "a b", "登录账号为"),
    ],
)
async def test_register_bad_input_keeps_fields_saves_nothing(
    client: AsyncTestClient, field: str, value: str, message: str
) -> None:
    form = await _register_form(client)
    form[field] = value
    if field == "password":
        form["password2"] = value
    r = await post(client, "/register", form)
    assert r.status_code == 200
    assert message in r.text
    # The other fields are kept (passwords never echo back).
    for key in ("name", "address", "contact_name", "username"):
        if key != field:
            assert f'value="{form[key]}"' in r.text
    assert 'value="Meter2024x"' not in r.text
    assert await Enterprise.count() == 0 and await User.count() == 0
    # The code was not spent on a form that had other errors.
    assert not (await SmsCode.select().first())["used"]


async def test_register_duplicate_uscc_and_username(client: AsyncTestClient) -> None:
    first = await register_company(client, n=3, phone="13700000003", username="dup")
    form = await _register_form(client, phone="13700000004", uscc=first["uscc"], username="dup")
    r = await post(client, "/register", form)
    assert "该统一社会信用代码已注册" in r.text and "该登录账号已被使用" in r.text
    assert await Enterprise.count() == 1


async def test_wrong_expired_reused_code(client: AsyncTestClient) -> None:
    form = await _register_form(client)
    good = form["code"]
    bad = "000000" if good != "000000" else "111111"
    r = await post(client, "/register", {**form, "code": bad})
    assert "验证码错误，还可尝试4次" in r.text and await Enterprise.count() == 0

    await SmsCode.update({SmsCode.expires_at: now() - timedelta(seconds=1)}).where(
        SmsCode.phone == PHONE
    )
    r = await post(client, "/register", form)
    assert "验证码已过期" in r.text and await Enterprise.count() == 0

    await SmsCode.update({SmsCode.expires_at: now() + timedelta(minutes=5)}).where(
        SmsCode.phone == PHONE
    )
    r = await post(client, "/register", form)
    assert "待审核" in r.text
    r = await post(client, "/register", {**form, "uscc": uscc(8), "username": "other2"})
    assert "验证码已使用" in r.text and await Enterprise.count() == 1


async def test_code_locked_after_five_wrong_tries(client: AsyncTestClient) -> None:
    form = await _register_form(client)
    bad = "000000" if form["code"] != "000000" else "111111"
    for _ in range(5):
        r = await post(client, "/register", {**form, "code": bad})
    assert "错误次数过多" in r.text
    r = await post(client, "/register", form)  # even the right code is dead now
    assert "错误次数过多" in r.text and await Enterprise.count() == 0


async def test_code_too_soon_and_hourly_daily_caps(client: AsyncTestClient) -> None:
    r = await post(client, "/sms-code", {"purpose": "register", "contact_phone": PHONE}, htmx=True)
    assert "验证码已发送" in r.text and 'data-countdown="60"' in r.text
    r = await post(client, "/sms-code", {"purpose": "register", "contact_phone": PHONE}, htmx=True)
    assert "秒后再试" in r.text
    assert await SmsCode.count() == 1

    # Five in the last hour (none in the last minute) hit the hourly cap.
    await SmsCode.delete().where(SmsCode.phone == PHONE)
    for i in range(5):
        await make_sms_code(PHONE, created_at=now() - timedelta(minutes=10 + i))
    r = await post(client, "/sms-code", {"purpose": "register", "contact_phone": PHONE}, htmx=True)
    assert "1小时内获取验证码已达5次" in r.text

    await SmsCode.delete().where(SmsCode.phone == PHONE)
    for i in range(10):
        await make_sms_code(PHONE, created_at=now() - timedelta(hours=2 + i))
    r = await post(client, "/sms-code", {"purpose": "register", "contact_phone": PHONE}, htmx=True)
    assert "今日获取验证码已达10次" in r.text


async def test_code_per_address_cap(client: AsyncTestClient) -> None:
    for i in range(30):
        await make_sms_code(f"1360000{i:04d}", ip="testclient")
    r = await post(client, "/sms-code", {"purpose": "register", "contact_phone": PHONE}, htmx=True)
    assert "当前网络获取验证码过于频繁" in r.text


async def test_code_bad_phone_and_no_js_fallback(client: AsyncTestClient) -> None:
    r = await post(client, "/sms-code", {"purpose": "register", "contact_phone": "123"}, htmx=True)
    assert "正确的11位手机号" in r.text
    # Without htmx the whole form comes back with the user's input kept.
    r = await post(
        client, "/sms-code", {"purpose": "register", "contact_phone": PHONE, "name": "保留的单位名"}
    )
    assert "验证码已发送" in r.text and 'value="保留的单位名"' in r.text and "客户注册" in r.text


async def test_unknown_phone_gets_same_answer_and_no_sms(client: AsyncTestClient) -> None:
    known = await company_user(client, n=1, phone="13800000011")
    await client.get("/")  # logged in; log out to use the public pages
    await post(client, "/logout")
    await run_jobs(client)
    before = len(await outbox())
    r1 = await post(
        client, "/sms-code", {"purpose": "login", "phone": known["contact_phone"]}, htmx=True
    )
    r2 = await post(client, "/sms-code", {"purpose": "login", "phone": "13511112222"}, htmx=True)
    assert r1.text == r2.text and "验证码已发送" in r1.text
    await run_jobs(client)
    assert len(await outbox()) == before + 1
    assert not await outbox("13511112222")
    r = await post(client, "/login/phone", {"phone": "13511112222", "code": "123456"})
    assert "验证码错误" in r.text and client.cookies.get(cookie_name()) is None


async def test_password_login_one_message_and_throttle(client: AsyncTestClient) -> None:
    form = await company_user(client, n=2, phone="13800000022")
    await post(client, "/logout")
    r = await login(client, form["username"], "WrongPass1")
    assert "用户名或密码错误" in r.text
    r2 = await login(client, "nobody-here", "WrongPass1")
    assert "用户名或密码错误" in r2.text
    for _ in range(2):
        r = await login(client, form["username"], "WrongPass1")
    assert "用户名或密码错误" in r.text  # 3 failures by the user, 4 from this address
    r = await login(client, form["username"], "WrongPass1")
    assert "锁定15分钟" in r.text  # the 5th failure from this address holds it
    # The 6th try, with the right password, is held.
    r = await login(client, form["username"], form["password"])
    assert "锁定15分钟" in r.text and r.status_code == 200
    assert client.cookies.get(cookie_name()) is None
    assert await AuditLog.exists().where((AuditLog.event == "登录") & (AuditLog.detail == "已锁定"))
    # After 15 minutes the hold is over.
    await LoginAttempt.update({LoginAttempt.at: now() - timedelta(minutes=16)}).where(
        LoginAttempt.success == False  # noqa: E712
    )
    r = await login(client, form["username"], form["password"])
    assert r.status_code == 303


async def test_account_held_from_any_address(client: AsyncTestClient) -> None:
    form = await company_user(client, n=3, phone="13800000033")
    await post(client, "/logout")
    for i in range(5):
        await LoginAttempt.insert(LoginAttempt(username=form["username"], ip=f"10.0.0.{i}"))
    r = await login(client, form["username"], form["password"])
    assert "锁定15分钟" in r.text


async def test_login_rotates_session_id_and_logout_ends_it(client: AsyncTestClient) -> None:
    form = await company_user(client, n=4, phone="13800000044")
    await post(client, "/logout")
    planted = "attacker-chosen-session-id"
    await session_store().save(
        _key_hash(planted), {"uid": None, "created": now().timestamp(), "seen": now().timestamp()}
    )
    set_session_cookie(client, planted)
    r = await login(client, form["username"], form["password"])
    new = client.cookies.get(cookie_name())
    assert r.status_code == 303 and new and new != planted
    assert await session_store().get(_key_hash(planted)) is None
    # The pre-login id is dead: it does not open the home page.
    set_session_cookie(client, planted)
    r = await client.get("/")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    set_session_cookie(client, new)
    assert (await client.get("/")).status_code == 200
    r = await post(client, "/logout")
    assert r.status_code == 303
    set_session_cookie(client, new)
    assert (await client.get("/")).status_code == 303


async def test_idle_and_absolute_timeouts(client: AsyncTestClient) -> None:
    await company_user(client, n=5, phone="13800000055")
    key = client.cookies.get(cookie_name())
    store = session_store()
    data = await store.get(_key_hash(key))
    data["seen"] = now().timestamp() - 31 * 60
    await store.save(_key_hash(key), data)
    assert (await client.get("/")).status_code == 303

    form = {"username": "company5", "password": "Secret123x"}
    await login(client, **form)
    key = client.cookies.get(cookie_name())
    data = await store.get(_key_hash(key))
    data["created"] = now().timestamp() - 12 * 3600 - 1
    await store.save(_key_hash(key), data)
    assert (await client.get("/")).status_code == 303


async def test_disabled_account_ends_session(client: AsyncTestClient) -> None:
    form = await company_user(client, n=6, phone="13800000066")
    assert (await client.get("/")).status_code == 200
    await User.update({User.is_active: False}).where(User.username == form["username"])
    # The user is cached per session: a change made outside the services (which do this
    # themselves, tests/routes/test_user_cache.py) must say so for it to count at once.
    await auth_changed()
    assert (await client.get("/")).status_code == 303
    r = await login(client, form["username"], form["password"])
    assert "账号已停用" in r.text


async def test_phone_login(client: AsyncTestClient) -> None:
    form = await company_user(client, n=7, phone="13800000077")
    await post(client, "/logout")
    r = await post(
        client, "/sms-code", {"purpose": "login", "phone": form["contact_phone"]}, htmx=True
    )
    code = await last_code(client, form["contact_phone"])
    r = await post(client, "/login/phone", {"phone": form["contact_phone"], "code": code})
    assert r.status_code == 303
    assert form["name"] in (await client.get("/")).text
    assert await AuditLog.exists().where(AuditLog.event == "手机号登录")


async def test_phone_login_bad_input(client: AsyncTestClient) -> None:
    r = await post(client, "/login/phone", {"phone": "abc", "code": ""})
    assert "正确的11位手机号" in r.text and "请输入短信验证码" in r.text
    r = await post(client, "/login/phone", {"phone": "13800000088", "code": "123456"})
    assert "请先获取短信验证码" in r.text


async def test_pending_account_cannot_log_in_by_phone(client: AsyncTestClient) -> None:
    form = await register_company(client, n=9, phone="13800000099")
    await post(client, "/sms-code", {"purpose": "login", "phone": form["contact_phone"]}, htmx=True)
    code = await last_code(client, form["contact_phone"])
    r = await post(client, "/login/phone", {"phone": form["contact_phone"], "code": code})
    assert "没有可登录的账号" in r.text and client.cookies.get(cookie_name()) is None


async def test_contract_user_logs_in_by_phone_without_registering(client: AsyncTestClient) -> None:
    ent = await make_enterprise(20, name="协议单位", is_contract=True, contract_no="HT-2026-001")
    await ContractPhone.insert(ContractPhone(enterprise=ent.id, phone="13611110000"))
    await post(client, "/sms-code", {"purpose": "login", "phone": "13611110000"}, htmx=True)
    code = await last_code(client, "13611110000")
    r = await post(client, "/login/phone", {"phone": "13611110000", "code": code})
    assert r.status_code == 303
    user = await User.select().where(User.phone == "13611110000").first()
    assert user["role"] == "contract_user" and user["enterprise"] == ent.id
    assert "协议单位" in (await client.get("/")).text
    # The second login reuses that account.
    await post(client, "/logout")
    await SmsCode.update({SmsCode.created_at: now() - timedelta(minutes=2)}).where(
        SmsCode.phone == "13611110000"
    )
    await post(client, "/sms-code", {"purpose": "login", "phone": "13611110000"}, htmx=True)
    code = await last_code(client, "13611110000")
    r = await post(client, "/login/phone", {"phone": "13611110000", "code": code})
    assert r.status_code == 303 and await User.count().where(User.phone == "13611110000") == 1


async def test_phone_with_two_accounts_chooses(client: AsyncTestClient) -> None:
    a = await company_user(client, n=11, phone="13800000111")
    await post(client, "/logout")
    b = await register_company(client, n=12, phone="13800000112", username="second")
    await approve_company(b["uscc"])
    await User.update({User.phone: a["contact_phone"]}).where(User.username == "second")
    await post(client, "/sms-code", {"purpose": "login", "phone": a["contact_phone"]}, htmx=True)
    code = await last_code(client, a["contact_phone"])
    r = await post(client, "/login/phone", {"phone": a["contact_phone"], "code": code})
    assert "选择要登录的账号" in r.text and "second" in r.text and a["username"] in r.text
    token = r.text.split('name="token" value="')[1].split('"')[0]
    nonce = client.cookies.get("choose")
    second = await User.select(User.id).where(User.username == "second").first()
    choice = {"token": token, "user_id": str(second["id"])}
    # The token alone, from a browser without the cookie, is refused.
    client.cookies.delete("choose")
    r = await post(client, "/login/phone/choose", choice)
    assert "重新获取验证码" in r.text
    client.cookies.set("choose", nonce, domain="testserver.local", path="/login/phone/choose")
    r = await post(client, "/login/phone/choose", choice)
    assert r.status_code == 303
    assert b["name"] in (await client.get("/")).text
    # Single use: the same token and cookie again are refused.
    await post(client, "/logout")
    client.cookies.set("choose", nonce, domain="testserver.local", path="/login/phone/choose")
    r = await post(client, "/login/phone/choose", choice)
    assert "重新获取验证码" in r.text
    # A forged choice (an id not in the signed list) is refused.
    r = await post(client, "/login/phone/choose", {"token": token, "user_id": "999"})
    assert "重新获取验证码" in r.text


async def test_forgot_password(client: AsyncTestClient) -> None:
    form = await company_user(client, n=13, phone="13800000133")
    await post(client, "/logout")
    await post(client, "/sms-code", {"purpose": "reset", "phone": form["contact_phone"]}, htmx=True)
    code = await last_code(client, form["contact_phone"])
    reset = {
        "username": form["username"],
        "phone": form["contact_phone"],
        "password": "NewPass2026",
        "password2": "NewPass2026",
        "code": code,
    }
    r = await post(client, "/forgot", {**reset, "password2": "Mismatch2026"})
    assert "两次输入的密码不一致" in r.text and f'value="{form["username"]}"' in r.text
    r = await post(client, "/forgot", {**reset, "username": "somebody-else"})
    assert "用户名与手机号不匹配" in r.text  # told only with a right code for that phone
    r = await post(client, "/forgot", {**reset, "phone": "13800009999"})
    assert "请先获取短信验证码" in r.text
    await post(client, "/sms-code", {"purpose": "reset", "phone": form["contact_phone"]}, htmx=True)
    reset["code"] = await last_code(client, form["contact_phone"])
    r = await post(client, "/forgot", reset)
    assert r.status_code == 303 and r.headers["location"] == "/login?notice=reset"
    assert "密码已重置" in (await client.get("/login?notice=reset")).text
    assert "用户名或密码错误" in (await login(client, form["username"], form["password"])).text
    assert (await login(client, form["username"], "NewPass2026")).status_code == 303
    assert await AuditLog.exists().where(AuditLog.event == "重置密码")


async def test_reset_ends_other_sessions(client: AsyncTestClient) -> None:
    form = await company_user(client, n=14, phone="13800000144")
    key = client.cookies.get(cookie_name())
    await post(client, "/sms-code", {"purpose": "reset", "phone": form["contact_phone"]}, htmx=True)
    code = await last_code(client, form["contact_phone"])
    await post(
        client,
        "/forgot",
        {
            "username": form["username"],
            "phone": form["contact_phone"],
            "password": "NewPass2026",
            "password2": "NewPass2026",
            "code": code,
        },
    )
    set_session_cookie(client, key)
    assert (await client.get("/")).status_code == 303


async def test_open_redirect_refused(client: AsyncTestClient) -> None:
    form = await company_user(client, n=15, phone="13800000155")
    await post(client, "/logout")
    r = await post(
        client,
        "/login",
        {"username": form["username"], "password": form["password"], "next": "//evil.example.com/"},
    )
    assert r.headers["location"] == "/"


async def test_htmx_login_gets_client_redirect(client: AsyncTestClient) -> None:
    form = await company_user(client, n=16, phone="13800000166")
    await post(client, "/logout")
    r = await post(
        client, "/login", {"username": form["username"], "password": form["password"]}, htmx=True
    )
    assert r.headers.get("hx-redirect") == "/"


async def test_database_sessions_are_purged_after_idle_timeout() -> None:
    store = DatabaseSessionStore()
    stamp = now().timestamp()
    await store.save("old", {"uid": 1, "created": stamp, "seen": stamp})
    await store.save("fresh", {"uid": 1, "created": stamp, "seen": stamp})
    await WebSession.update({WebSession.last_seen: now() - timedelta(minutes=40)}).where(
        WebSession.key_hash == "old"
    )
    await store.purge_expired()
    assert await store.get("old") is None and await store.get("fresh") is not None


async def test_rejected_company_can_apply_again(client: AsyncTestClient) -> None:
    first = await register_company(client, n=21, phone="13800000210", username="again")
    await Enterprise.update(
        {Enterprise.status: "rejected", Enterprise.reject_reason: "地址不全"}
    ).where(Enterprise.uscc == first["uscc"])
    form = await _register_form(
        client,
        phone="13800000211",
        uscc=first["uscc"],
        username="again",
        address="南京市江宁区完整地址8号",
    )
    r = await post(client, "/register", form)
    assert "待审核" in r.text
    ent = await Enterprise.select().where(Enterprise.uscc == first["uscc"]).first()
    assert ent["status"] == "pending" and ent["address"] == "南京市江宁区完整地址8号"
    assert await Enterprise.count() == 1 and await User.count() == 1


async def test_old_throttling_records_are_purged() -> None:
    await LoginAttempt.insert(
        LoginAttempt(username="a", ip="1", at=now() - timedelta(days=3)),
        LoginAttempt(username="b", ip="1"),
    )
    await make_sms_code("1", purpose="login", ip="1", created_at=now() - timedelta(days=3))
    await purge_old_records()
    assert [r["username"] for r in await LoginAttempt.select()] == ["b"]
    assert await SmsCode.count() == 0
