"""系统管理 › 用户管理 and 部门管理 over HTTP: the department tree and its refusals, sub-accounts
(新增/编辑/删除, 启用/停用) and every bad input, what a sub-account may and may not open, the
操作日志, and tenancy on every handler that takes an id."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app.security.sessions import cookie_name, load_user
from app.services import org
from app.services.errors import FormError
from app.services.tenancy import scope_for
from app.tables import AuditLog, Booking, Department, User
from tests.factories import make_enterprise, make_user
from tests.helpers import (
    company_user,
    login,
    post,
    set_session_cookie,
    submitted_booking,
)

PASSWORD = "Secret123x"


def sub(n: int = 1, **over: str) -> dict[str, str]:
    """The 用户管理 form of sub-account ``n``."""
    return {
        "username": f"zhang{n}",
        "name": f"张{n}",
        "password": "Kx7mWq2024",
        "phone": f"1391234{n:04d}",
        "department": "",
        **over,
    }


def dept(name: str, parent: int | None = None, **over: str) -> dict[str, str]:
    return {"name": name, "parent": str(parent or ""), "level": "", "code": "", **over}


async def add_department(
    client: AsyncTestClient, name: str, parent: int | None = None, **over: str
) -> int:
    r = await post(client, "/settings/departments", dept(name, parent, **over))
    assert r.status_code == 303, r.text
    row = await Department.select(Department.id).where(Department.name == name).first()
    return int(row["id"])


async def add_sub(client: AsyncTestClient, n: int = 1, **over: str) -> int:
    r = await post(client, "/settings/users", sub(n, **over))
    assert r.status_code == 303 and r.headers["location"] == "/settings/users?done=created", r.text
    row = await User.select(User.id).where(User.username == sub(n, **over)["username"]).first()
    return int(row["id"])


async def log_in_fresh(client: AsyncTestClient, username: str, password: str) -> str:
    """Log in without ending the session the client holds now; returns the new one's key
    (switch between accounts with ``set_session_cookie``)."""
    set_session_cookie(client, None)
    r = await login(client, username, password)
    assert r.status_code == 303, r.text
    key = client.cookies.get(cookie_name())
    assert key
    return key


def _main_key(client: AsyncTestClient) -> str:
    key = client.cookies.get(cookie_name())
    assert key
    return key


# --------------------------------------------------------------------------- 部门管理


async def test_department_tree_and_its_refusals(client: AsyncTestClient) -> None:
    await company_user(client)
    head = await add_department(client, "总部", code="ZB", level="一级")
    prod = await add_department(client, "生产部", head, code="SC", level="二级")
    qc = await add_department(client, "质检科", prod, code="ZJ")
    await add_department(client, "财务部", head, code="CW")

    r = await client.get("/settings/departments")
    assert r.status_code == 200 and "部门管理" in r.text
    page = r.text
    # Depth first: each department right above its sub-departments, nested lists.
    assert page.index("总部") < page.index("生产部") < page.index("质检科") < page.index("财务部")
    assert page.count("<ul>") >= 2 and "代码 ZB" in page and "一级" in page
    r = await client.get("/settings/departments", headers={"HX-Request": "true"})
    assert "质检科" in r.text and "<html" not in r.text and r.headers["vary"] == "HX-Request"

    # The parent select of 生产部 offers neither itself nor 质检科 below it.
    r = await client.get(f"/settings/departments/{prod}/edit")
    assert 'value="生产部"' in r.text
    options = r.text.split('id="f-parent"')[1].split("</select>")[0]
    assert f'value="{head}"' in options
    assert f'value="{prod}"' not in options and f'value="{qc}"' not in options
    # 新增下级 starts below the department.
    r = await client.get(f"/settings/departments/new?parent={prod}")
    assert f'<option value="{prod}" selected>' in r.text

    # A loop, typed by hand: refused beside 父部门名称, nothing saved, input kept.
    for parent in (prod, qc):
        r = await post(client, f"/settings/departments/{prod}", dept("生产部二", parent, code="SC"))
        assert r.status_code == 200 and "不能选择本部门或其下级部门作为父部门" in r.text
        assert 'id="e-parent"' in r.text and 'value="生产部二"' in r.text
    assert (await Department.select().where(Department.id == prod).first())["parent"] == head

    # 部门代码 unique within the enterprise; 部门名称 required; nothing saved.
    before = await Department.count()
    r = await post(client, "/settings/departments", dept("销售部", head, code="SC"))
    assert "本单位已有该部门代码" in r.text and 'id="e-code"' in r.text
    assert 'value="销售部"' in r.text
    r = await post(client, "/settings/departments", dept("", head, level="x" * 21))
    assert "请输入部门名称" in r.text and "部门级别不能超过20个字" in r.text
    assert await Department.count() == before
    # Editing keeps its own code; moving it up is fine.
    r = await post(client, f"/settings/departments/{qc}", dept("质检科", head, code="ZJ"))
    assert r.status_code == 303 and r.headers["location"] == "/settings/departments?done=saved"
    assert (await Department.select().where(Department.id == qc).first())["parent"] == head
    assert "已保存" in (await client.get("/settings/departments?done=saved")).text

    # A parent is not deleted, and the page says why; nor one with users.
    await add_sub(client, 1, department=str(qc))
    r = await post(client, "/settings/departments/delete", {"ids": [str(head)]}, htmx=True)
    assert r.status_code == 200 and "<html" not in r.text
    assert "「总部」下还有下级部门" in r.text
    r = await post(client, "/settings/departments/delete", {"ids": [str(qc)]})
    assert "<html" in r.text and "「质检科」下还有1个用户" in r.text
    r = await post(client, "/settings/departments/delete", {"ids": [str(prod), str(qc)]})
    assert "「质检科」下还有1个用户" in r.text
    assert await Department.count() == before
    assert "请先勾选要删除的部门" in (await post(client, "/settings/departments/delete")).text

    # A leaf goes; a parent goes with all of its sub-departments ticked.
    r = await post(client, "/settings/departments/delete", {"ids": [str(prod)]}, htmx=True)
    assert "已删除1个部门" in r.text
    events = await AuditLog.select().where(AuditLog.event == "部门管理").order_by(AuditLog.id)
    assert [e["detail"] for e in events][:2] == ["新增部门：总部（ZB）", "新增部门：生产部（SC）"]
    assert events[-1]["detail"] == "删除部门：生产部"
    assert all(e["username"] == "company1" and e["ip"] for e in events)


# --------------------------------------------------------------------------- 用户管理


async def test_sub_account_add_edit_search_delete(client: AsyncTestClient) -> None:
    await company_user(client)
    qc = await add_department(client, "质检科")
    r = await client.get("/settings/users/new")
    assert "登录账号" in r.text and "用户姓名" in r.text and "质检科" in r.text
    assert 'name="password"' in r.text and 'autocomplete="new-password"' in r.text

    zhang = await add_sub(client, 1, department=str(qc))
    row = await User.select().where(User.id == zhang).first()
    assert row["role"] == "sub_account" and row["department"] == qc and row["is_active"]
    assert row["password_hash"].startswith("$argon2")
    page = (await client.get("/settings/users?done=created")).text
    assert "已新增" in page and "zhang1" in page and "质检科" in page and "子账户" in page
    assert "企业管理员" in page and "（当前账号）" in page
    await add_sub(client, 2)
    for q, shown, hidden in (
        ("zhang2", "张2", "张1"),
        ("张1", "zhang1", "zhang2"),
        ("0001", "zhang1", "zhang2"),
    ):
        r = await client.get(f"/settings/users?q={q}", headers={"HX-Request": "true"})
        assert shown in r.text and hidden not in r.text and "<html" not in r.text

    # 编辑: the form shows the account (never its password); an empty 密码 keeps it.
    r = await client.get(f"/settings/users/{zhang}/edit")
    assert 'value="zhang1"' in r.text and f'<option value="{qc}" selected>' in r.text
    assert "不修改请留空" in r.text and "$argon2" not in r.text
    r = await post(
        client, f"/settings/users/{zhang}", sub(1, name="张一", password="", department="")
    )
    assert r.status_code == 303 and r.headers["location"] == "/settings/users?done=saved"
    edited = await User.select().where(User.id == zhang).first()
    assert edited["name"] == "张一" and edited["department"] is None
    assert edited["password_hash"] == row["password_hash"]
    r = await post(client, f"/settings/users/{zhang}", sub(1, password="Another123x"))
    assert r.status_code == 303
    assert (await User.select().where(User.id == zhang).first())["password_hash"] != row[
        "password_hash"
    ]

    # 删除 the ticked sub-accounts; what they booked stays with the enterprise.
    main_key = _main_key(client)
    sub_key = await log_in_fresh(client, "zhang1", "Another123x")
    booking = await submitted_booking(client)
    assert booking["created_by"] == zhang
    set_session_cookie(client, main_key)
    r = await post(client, "/settings/users/delete", {"ids": [str(zhang)]}, htmx=True)
    assert "已删除1个用户" in r.text and "zhang1" not in r.text
    assert not await User.exists().where(User.id == zhang)
    kept = await Booking.select().where(Booking.id == booking["id"]).first()
    assert kept is not None and kept["created_by"] is None
    set_session_cookie(client, sub_key)  # its session ended with it
    assert (await client.get("/")).status_code == 303
    set_session_cookie(client, main_key)
    assert "请先勾选要删除的用户" in (await post(client, "/settings/users/delete")).text

    details = [
        e["detail"]
        for e in await AuditLog.select().where(AuditLog.event == "用户管理").order_by(AuditLog.id)
    ]
    assert details == [
        "新增子账户：zhang1（张1）",
        "新增子账户：zhang2（张2）",
        "编辑用户：zhang1（张一）",
        "编辑用户（修改密码）：zhang1（张1）",
        "删除用户：zhang1（张1）",
    ]


async def test_user_form_bad_input(client: AsyncTestClient) -> None:
    await company_user(client)
    # 登录账号 unique across the platform: another company's account has it.
    other = await make_enterprise(2)
    await make_user(other, username="taken1")
    r = await post(client, "/settings/users", sub(1, username="taken1"))
    assert r.status_code == 200 and "该登录账号已被使用" in r.text and 'id="e-username"' in r.text
    assert 'value="张1"' in r.text and 'value="13912340001"' in r.text  # the rest kept
    assert "Kx7mWq2024" not in r.text  # a password is never echoed
    r = await post(client, "/settings/users", sub(1, username="company1"))  # the caller's own
    assert "该登录账号已被使用" in r.text
    # Weak passwords (SPEC §3), a bad phone, a bad username, required fields.
    for password, text in (
        ("short1", "至少8位"),
        ("abcdefghij", "字母和数字"),
        ("password1", "过于常见"),
        ("zhang1abc9", "包含账号"),
    ):
        r = await post(client, "/settings/users", sub(1, password=password))
        assert text in r.text and 'id="e-password"' in r.text, password
    r = await post(client, "/settings/users", sub(1, phone="1234"))
    assert "请输入正确的11位手机号" in r.text and 'id="e-phone"' in r.text
    r = await post(client, "/settings/users", sub(1, username="a b"))
    assert "登录账号为3-50位" in r.text
    r = await post(client, "/settings/users", {"department": ""}, htmx=True)
    for text in ("请输入登录账号", "请输入用户姓名", "请输入密码", "请输入手机"):
        assert text in r.text
    assert await User.count() == 2  # company1 and taken1 only
    # On 编辑 the password may be empty, but not weak.
    zhang = await add_sub(client, 1)
    r = await post(client, f"/settings/users/{zhang}", sub(1, password="abc"))
    assert "至少8位" in r.text
    r = await post(client, f"/settings/users/{zhang}", sub(1, username="taken1", password=""))
    assert "该登录账号已被使用" in r.text
    assert (await User.select().where(User.id == zhang).first())["username"] == "zhang1"


async def test_main_account_cannot_delete_or_disable_itself(client: AsyncTestClient) -> None:
    await company_user(client)
    me = (await User.select(User.id).where(User.username == "company1").first())["id"]
    zhang = await add_sub(client, 1)
    r = await post(client, "/settings/users/delete", {"ids": [str(me), str(zhang)]}, htmx=True)
    assert r.status_code == 200 and "不能删除当前登录的企业主账户" in r.text
    assert await User.count() == 2  # nothing deleted, not even the sub-account
    r = await post(client, f"/settings/users/{me}/disable")
    assert "不能停用当前登录的企业主账户" in r.text and "<html" in r.text
    assert (await User.select().where(User.id == me).first())["is_active"]
    # Another main account of the enterprise (its 协议用户) is not a sub-account either.
    ent = (await User.select(User.enterprise).where(User.id == me).first())["enterprise"]
    contract = await User.insert(
        User(username="xy13900000000", role="contract_user", enterprise=ent, phone="13900000000")
    ).returning(User.id)
    r = await post(client, "/settings/users/delete", {"ids": [str(contract[0]["id"])]})
    assert "是企业主账户，不能删除" in r.text
    r = await post(client, f"/settings/users/{contract[0]['id']}/disable")
    assert "是企业主账户，不能停用" in r.text
    # The main account's own row can be edited (its password too, staying logged in).
    r = await post(client, f"/settings/users/{me}", sub(9, username="company1", name="王经理"))
    assert r.status_code == 303 and (await client.get("/settings/users")).status_code == 200


async def test_disabled_sub_account_is_logged_out_and_cannot_log_in(
    client: AsyncTestClient,
) -> None:
    await company_user(client)
    main_key = _main_key(client)
    zhang = await add_sub(client, 1)
    sub_key = await log_in_fresh(client, "zhang1", "Kx7mWq2024")
    assert (await client.get("/bookings/new")).status_code == 200

    set_session_cookie(client, main_key)
    r = await post(client, f"/settings/users/{zhang}/disable", htmx=True)
    assert "已停用 zhang1" in r.text and "<html" not in r.text and "启用" in r.text
    set_session_cookie(client, sub_key)
    assert (await client.get("/bookings/new")).status_code == 303  # the session is gone
    set_session_cookie(client, None)
    r = await login(client, "zhang1", "Kx7mWq2024")
    assert "账号已停用" in r.text

    set_session_cookie(client, main_key)
    r = await post(client, f"/settings/users/{zhang}/enable")
    assert "已启用 zhang1" in r.text
    await log_in_fresh(client, "zhang1", "Kx7mWq2024")
    details = [e["detail"] for e in await AuditLog.select().where(AuditLog.event == "用户管理")]
    assert "停用子账户：zhang1（张1）" in details and "启用子账户：zhang1（张1）" in details


# --------------------------------------------------------------------------- roles


SETTINGS_URLS = [
    ("get", "/settings/users"),
    ("get", "/settings/users/new"),
    ("post", "/settings/users"),
    ("get", "/settings/users/{me}/edit"),
    ("post", "/settings/users/{me}"),
    ("post", "/settings/users/delete"),
    ("post", "/settings/users/{me}/disable"),
    ("post", "/settings/users/{me}/enable"),
    ("get", "/settings/departments"),
    ("get", "/settings/departments/new"),
    ("post", "/settings/departments"),
    ("get", "/settings/departments/{dept}/edit"),
    ("post", "/settings/departments/{dept}"),
    ("post", "/settings/departments/delete"),
    ("get", "/settings/basic"),
]


async def test_sub_account_has_everything_but_settings(client: AsyncTestClient) -> None:
    await company_user(client)
    qc = await add_department(client, "质检科")
    zhang = await add_sub(client, 1, department=str(qc))
    home = (await client.get("/")).text
    assert "系统管理" in home and 'href="/settings/users"' in home
    assert 'href="/settings/departments"' in home

    await log_in_fresh(client, "zhang1", "Kx7mWq2024")
    home = await client.get("/")
    assert home.status_code == 200
    assert "系统管理" not in home.text and "/settings/" not in home.text
    for href in ("/bookings/new", "/bookings", "/instruments", "/certificates"):
        assert f'href="{href}"' in home.text
    for method, url in SETTINGS_URLS:
        url = url.format(me=zhang, dept=qc)
        r = await (client.get(url) if method == "get" else post(client, url, {"ids": [str(zhang)]}))
        assert r.status_code == 403, (method, url)
        assert "仅企业主账户可以使用系统管理" in r.text
    # ...but books like the main account (预约送检 → 提交), for the enterprise.
    booking = await submitted_booking(client)
    assert booking["status"] == "pending" and booking["created_by"] == zhang
    assert (await client.get("/bookings")).status_code == 200
    assert booking["booking_no"] in (await client.get("/bookings")).text


# --------------------------------------------------------------------------- tenancy


async def test_another_enterprise_ids_answer_404(client: AsyncTestClient) -> None:
    other = await make_enterprise(2)
    stranger = await make_user(other, username="stranger", role="sub_account")
    theirs = Department(enterprise=other.id, name="他们的部门")
    await theirs.save()
    await company_user(client)
    mine = await add_department(client, "我的部门")
    me = (await User.select(User.id).where(User.username == "company1").first())["id"]

    user, their_dept = str(stranger.id), str(theirs.id)
    for method, url, form in (
        ("get", f"/settings/users/{user}/edit", {}),
        ("post", f"/settings/users/{user}", sub(5)),
        ("post", f"/settings/users/{user}/disable", {}),
        ("post", f"/settings/users/{user}/enable", {}),
        ("post", "/settings/users/delete", {"ids": [user]}),
        ("get", f"/settings/departments/{their_dept}/edit", {}),
        ("post", f"/settings/departments/{their_dept}", dept("改名")),
        ("post", "/settings/departments/delete", {"ids": [their_dept]}),
        # An id in a form field never widens the scope either.
        ("post", "/settings/users", sub(6, department=their_dept)),
        ("post", f"/settings/users/{me}", sub(7, username="company1", department=their_dept)),
        ("post", "/settings/departments", dept("新部门", theirs.id)),
        ("post", f"/settings/departments/{mine}", dept("我的部门", theirs.id)),
    ):
        r = await (client.get(url) if method == "get" else post(client, url, form))
        assert r.status_code == 404, (method, url, r.text[:200])
    assert (await User.select().where(User.id == stranger.id).first())["is_active"]
    assert (await Department.select().where(Department.id == theirs.id).first())[
        "name"
    ] == "他们的部门"
    assert await User.count().where(User.enterprise == other.id) == 1
    # Nor does the list show them.
    assert "stranger" not in (await client.get("/settings/users")).text
    assert "他们的部门" not in (await client.get("/settings/departments")).text
    assert "他们的部门" not in (await client.get("/settings/users/new")).text


@pytest.mark.parametrize("htmx", [False, True])
async def test_forms_keep_input_with_and_without_htmx(client: AsyncTestClient, htmx: bool) -> None:
    await company_user(client)
    r: Any = await post(client, "/settings/departments", dept("", code="X1"), htmx=htmx)
    assert r.status_code == 200 and 'value="X1"' in r.text and "请输入部门名称" in r.text
    r = await post(client, "/settings/users", sub(1, phone="12"), htmx=htmx)
    assert r.status_code == 200 and 'value="zhang1"' in r.text and "11位手机号" in r.text


async def test_same_username_at_once_from_two_enterprises() -> None:
    """Both pass the early check; the unique index refuses the second, beside the field."""
    admins = []
    for n in (1, 2):
        ent = await make_enterprise(n)
        user = await make_user(ent)
        admins.append((await scope_for(await load_user(user.id)), await load_user(user.id)))
    results = await asyncio.gather(
        *(
            org.save_user(scope, org.UserInput.from_form(sub(1)), by, "1.1.1.1")
            for scope, by in admins
        ),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, FormError)]
    assert len(errors) == 1 and errors[0].errors == {"username": org.USERNAME_TAKEN}, results
    assert await User.count().where(User.username == "zhang1") == 1
