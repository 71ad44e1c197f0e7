"""系统管理 › 企业管理 over HTTP: 新增 / 编辑 / 删除 / 停用 / 启用 of subsidiaries, every bad
input beside its field with nothing saved, the 行政区域 selects with and without htmx, the
证件 file's access, and 操作日志."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from app.settings import get_settings
from app.tables import AuditLog, Enterprise, EnterpriseLicence, User
from tests.factories import make_booking, make_enterprise, make_user
from tests.helpers import (
    client_as,
    company_user,
    login,
    make_admin,
    post,
    subsidiary_form,
    tiny_png,
    uscc,
)

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def licence(name: str = "营业执照.png", data: bytes | None = None) -> dict[str, Any]:
    return {"licence": (name, tiny_png() if data is None else data, "image/png")}


async def save(client: AsyncTestClient, form: dict[str, str], **files: Any) -> Any:
    """【保存】 of 【新增】, multipart as the browser sends it (with or without a file)."""
    return await post(client, "/settings/enterprises", form, files=files or {"licence": ("", b"")})


def field_error(html: str, key: str) -> str:
    """The message shown beside field ``key``."""
    m = re.search(rf'<p class="field-error" id="e-{key}">([^<]*)</p>', html)
    return m.group(1) if m else ""


def licence_files() -> list[Path]:
    root = get_settings().data_dir / "licences"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def main_account(client: AsyncTestClient) -> int:
    """A registered, approved, logged-in company (company1); its enterprise id."""
    form = await company_user(client)
    row = await Enterprise.select(Enterprise.id).where(Enterprise.uscc == form["uscc"]).first()
    return int(row["id"])


async def test_create_list_and_the_subsidiary_logs_in(client: AsyncTestClient) -> None:
    parent_id = await main_account(client)
    r = await client.get("/settings/enterprises")
    assert r.status_code == 200 and "企业管理" in r.text and "暂无子公司" in r.text
    assert 'href="/settings/enterprises/new"' in r.text and ">新增</a>" in r.text
    r = await client.get("/settings/enterprises", headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text and 'id="enterprise-list"' in r.text
    assert r.headers["vary"] == "HX-Request"

    r = await client.get("/settings/enterprises/new")
    for label in (
        "社会统一信用代码",
        "单位名称",
        "行政区域",
        "单位地址",
        "登录账号",
        "联系人",
        "登录密码",
        "单位电话",
        "联系人手机",
        "证件",
    ):
        assert f"{label}</label>" in r.text or f"{label}</legend>" in r.text, label
    assert ">保存</button>" in r.text and 'enctype="multipart/form-data"' in r.text
    assert "江苏省" in r.text and "请先选择省" in r.text  # the provinces, no city yet

    r = await save(client, subsidiary_form(1), **licence())
    assert r.status_code == 303 and r.headers["location"] == "/settings/enterprises?done=created"
    sub = await Enterprise.select().where(Enterprise.uscc == uscc(501)).first()
    assert sub["parent"] == parent_id and sub["status"] == "approved"
    assert sub["region_code"] == "320102" and sub["phone"] == "025-84440000"
    account = await User.select().where(User.username == "sub1").first()
    assert account["enterprise"] == sub["id"] and account["role"] == "enterprise_admin"
    assert account["phone"] == "13900000001" and account["name"] == "李四"
    assert len(licence_files()) == 1 and licence_files()[0].read_bytes() == tiny_png()
    # Outside the web root: below DATA_DIR, never under app/static.
    assert "static" not in str(licence_files()[0])

    page = (await client.get("/settings/enterprises?done=created")).text
    assert "已新增子公司" in page and "测试子公司1" in page and "江苏省 南京市 玄武区" in page
    assert "sub1" in page and "已通过" in page and "/settings/enterprises/licences/" in page

    async with client_as("sub1", "Subsid123x") as sub_client:
        r = await sub_client.get("/")
        assert r.status_code == 200 and "测试子公司1" in r.text
        # A subsidiary's main account manages its own subsidiaries (none yet).
        r = await sub_client.get("/settings/enterprises")
        assert r.status_code == 200 and "暂无子公司" in r.text

    log = await AuditLog.select().where(AuditLog.event == "企业管理").first()
    assert log["username"] == "company1" and log["ip"] and log["at"] is not None
    assert "新增子公司：测试子公司1" in log["detail"] and "sub1" in log["detail"]


async def test_sub_accounts_and_admins_may_not_manage(client: AsyncTestClient) -> None:
    ent = await make_enterprise(1)
    await make_user(ent, username="helper", role="sub_account")
    assert (await login(client, "helper", "Secret123x")).status_code == 303
    assert (await client.get("/settings/enterprises")).status_code == 403
    assert (await save(client, subsidiary_form(1))).status_code == 403
    await make_admin()
    await post(client, "/logout")
    assert (await login(client, "admin", "Admin12345x")).status_code == 303
    assert (await client.get("/settings/enterprises")).status_code == 403
    assert await Enterprise.count() == 1


async def test_every_bad_input_beside_its_field_and_nothing_saved(client: AsyncTestClient) -> None:
    await main_account(client)
    other = await make_enterprise(2)
    await make_user(other, username="taken1")
    enterprises, users = await Enterprise.count(), await User.count()
    cases: list[tuple[dict[str, str], dict[str, Any], str, str]] = [
        ({"username": "taken1"}, {}, "username", "该登录账号已被使用"),
        ({"username": "company1"}, {}, "username", "该登录账号已被使用"),
        ({"uscc": uscc(501)[:17] + "0"}, {}, "uscc", "校验位"),
        ({"uscc": uscc(2)}, {}, "uscc", "已在平台注册"),  # another company's USCC
        ({"province": "", "city": "", "region_code": ""}, {}, "region_code", "请选择行政区域"),
        ({"region_code": ""}, {}, "region_code", "请选择行政区域"),  # stopped at the city
        ({"region_code": "320100"}, {}, "region_code", "请选择行政区域"),  # not a district
        ({"contact_phone": "12345"}, {}, "contact_phone", "11位手机号"),
        ({"password": "short1"}, {}, "password", "至少8位"),
        ({"name": ""}, {}, "name", "请输入单位名称"),
        ({"address": ""}, {}, "address", "请输入单位地址"),
        ({"phone": "call me"}, {}, "phone", "电话号码"),
        ({}, licence(data=b"%PDF-" + b"0" * (20 * 1024 * 1024)), "licence", "不能超过10MB"),
        ({}, licence("营业执照.png", b"only text, renamed .png\n"), "licence", "只改扩展名"),
        ({}, licence("执照.gif", b"GIF89a\x02\x00\x02\x00\x80\x00\x00"), "licence", "不支持 GIF"),
        ({}, licence("执照.png", b""), "licence", "空的"),
    ]
    for over, files, key, expected in cases:
        r = await save(client, subsidiary_form(1, **over), **files)
        assert r.status_code == 200, (over, r.status_code)
        assert expected in field_error(r.text, key), (key, expected, r.text[-3000:])
        assert "请修改标红的项目后再保存" in r.text
        # The other input is kept; the password never comes back.
        kept = over.get("address", "南京市玄武区中山路1号")
        assert f'value="{kept}"' in r.text and "Subsid123x" not in r.text
        assert await Enterprise.count() == enterprises and await User.count() == users
        assert licence_files() == [] and await EnterpriseLicence.count() == 0
    # A good file with another mistake: nothing saved, and the form says to choose it again.
    r = await save(client, subsidiary_form(1, username="taken1"), **licence())
    assert "重新选择证件文件" in field_error(r.text, "licence") and licence_files() == []
    # A JPEG and a PDF are fine (told by content, whatever the name says).
    r = await save(client, subsidiary_form(1), **licence("scan.PNG", b"\xff\xd8\xff\xe0JFIF"))
    assert r.status_code == 303
    r = await save(client, subsidiary_form(2), **licence("licence", PDF))
    assert r.status_code == 303
    rows = await EnterpriseLicence.select().order_by(EnterpriseLicence.id)
    kinds = [r["media_type"] for r in rows]
    assert kinds == ["image/jpeg", "application/pdf"]


async def test_region_selects_with_htmx_and_without_javascript(client: AsyncTestClient) -> None:
    await main_account(client)
    r = await client.get(
        "/settings/enterprises/regions?changed=province&province=32",
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200 and "<html" not in r.text
    assert 'id="region-city"' in r.text and ">南京市</option>" in r.text
    assert 'id="region-district" hx-swap-oob="outerHTML"' in r.text  # emptied below
    assert ">玄武区<" not in r.text
    r = await client.get(
        "/settings/enterprises/regions?changed=city&province=32&city=3201",
        headers={"HX-Request": "true"},
    )
    assert 'value="320102"' in r.text and ">玄武区</option>" in r.text
    assert "region-city" not in r.text
    # A city of another province gives no districts.
    r = await client.get("/settings/enterprises/regions?changed=city&province=11&city=3201")
    assert "玄武区" not in r.text
    # 东莞市 has no districts: it is its own, chosen at once.
    r = await client.get("/settings/enterprises/regions?changed=city&province=44&city=4419")
    assert 'value="441900" selected' in r.text

    # Without JavaScript: 【更新下级选项】 posts the form, which comes back with the options.
    form = subsidiary_form(1, province="32", city="", region_code="")
    r = await post(client, "/settings/enterprises/form", form, files={"licence": ("", b"")})
    assert r.status_code == 200 and ">南京市</option>" in r.text and ">玄武区<" not in r.text
    assert 'value="测试子公司1"' in r.text and "Subsid123x" not in r.text
    assert await Enterprise.count() == 1
    r = await post(
        client, "/settings/enterprises/form", {**form, "city": "3201"}, files={"licence": ("", b"")}
    )
    assert 'value="3201" selected' in r.text and ">玄武区</option>" in r.text
    # A province changed after the city: the old city and district are dropped.
    r = await post(
        client,
        "/settings/enterprises/form",
        {**form, "province": "11", "city": "3201", "region_code": "320102"},
        files={"licence": ("", b"")},
    )
    assert ">东城区</option>" not in r.text and "selected>南京市" not in r.text
    assert 'value="11" selected' in r.text and "市辖区" in r.text


async def test_edit_replaces_the_licence_and_the_password(client: AsyncTestClient) -> None:
    await main_account(client)
    assert (await save(client, subsidiary_form(1), **licence())).status_code == 303
    sub = await Enterprise.select().where(Enterprise.uscc == uscc(501)).first()
    r = await client.get(f"/settings/enterprises/{sub['id']}/edit")
    assert r.status_code == 200 and 'value="测试子公司1"' in r.text
    assert 'value="320102" selected' in r.text and 'value="3201" selected' in r.text
    assert 'value="sub1" readonly' in r.text and "营业执照.png" in r.text
    # 【编辑】 in the toolbar opens the one ticked row.
    r = await post(client, "/settings/enterprises/edit", {"ids": [str(sub["id"])]})
    assert r.headers["location"] == f"/settings/enterprises/{sub['id']}/edit"
    r = await post(client, "/settings/enterprises/edit", {})
    assert "请勾选一个单位" in r.text

    form = subsidiary_form(
        1, name="测试子公司甲", province="11", city="1101", region_code="110101", password=""
    )
    r = await post(
        client, f"/settings/enterprises/{sub['id']}", form, files=licence("licence.pdf", PDF)
    )
    assert r.status_code == 303, r.text
    row = await Enterprise.select().where(Enterprise.id == sub["id"]).first()
    assert row["name"] == "测试子公司甲" and row["region_code"] == "110101"
    files = licence_files()
    assert len(files) == 1 and files[0].read_bytes() == PDF  # the old one is gone
    assert (await client.get("/settings/enterprises")).text.count("北京市 东城区") == 1
    async with client_as("sub1", "Subsid123x"):
        pass  # the password was kept
    # A bad edit: messages, nothing changed.
    r = await post(
        client,
        f"/settings/enterprises/{sub['id']}",
        {**form, "uscc": "123", "password": "x"},
        files={"licence": ("", b"")},
    )
    assert "18位" in field_error(r.text, "uscc") and "至少8位" in field_error(r.text, "password")
    row = await Enterprise.select().where(Enterprise.id == sub["id"]).first()
    assert row["uscc"] == uscc(501)
    # A new password: the subsidiary logs in with it.
    r = await post(
        client,
        f"/settings/enterprises/{sub['id']}",
        {**form, "password": "Newpass123x"},
        files={"licence": ("", b"")},
    )
    assert r.status_code == 303
    async with client_as("sub1", "Newpass123x"):
        pass
    details = [r["detail"] for r in await AuditLog.select().where(AuditLog.event == "企业管理")]
    assert any("修改了单位名称、行政区域" in d and "证件" in d for d in details), details
    assert any("登录密码" in d for d in details)


async def test_only_own_direct_subsidiaries_are_managed(client: AsyncTestClient) -> None:
    parent_id = await main_account(client)
    mine = await make_enterprise(10, parent=parent_id)
    grandchild = await make_enterprise(11, parent=mine.id)
    stranger = await make_enterprise(12)
    theirs = await make_enterprise(13, parent=stranger.id)
    for other in (grandchild, stranger, theirs):
        checks = [
            await client.get(f"/settings/enterprises/{other.id}/edit"),
            await post(
                client,
                f"/settings/enterprises/{other.id}",
                subsidiary_form(9),
                files={"licence": ("", b"")},
            ),
            await post(client, "/settings/enterprises/delete", {"ids": [str(other.id)]}),
            await post(client, "/settings/enterprises/disable", {"ids": [str(other.id)]}),
            await post(client, "/settings/enterprises/edit", {"ids": [str(other.id)]}),
            await post(
                client,
                "/settings/enterprises/form",
                {"enterprise_id": str(other.id)},
                files={"licence": ("", b"")},
            ),
        ]
        assert [r.status_code for r in checks] == [404] * len(checks), other.id
    page = (await client.get("/settings/enterprises")).text
    assert "测试计量单位10" in page
    assert "测试计量单位11" not in page and "测试计量单位13" not in page
    assert await Enterprise.count() == 5
    assert {r["status"] for r in await Enterprise.select(Enterprise.status)} == {"approved"}


async def test_delete_disable_and_enable(client: AsyncTestClient) -> None:
    parent_id = await main_account(client)
    for n in (1, 2, 3):
        assert (await save(client, subsidiary_form(n), **licence())).status_code == 303
    ids = {
        r["name"]: r["id"]
        for r in await Enterprise.select(Enterprise.id, Enterprise.name).where(
            Enterprise.parent == parent_id
        )
    }
    busy, empty, parent_of = ids["测试子公司1"], ids["测试子公司2"], ids["测试子公司3"]
    busy_ent = await Enterprise.objects().get(Enterprise.id == busy)
    await make_booking(busy_ent)
    await make_enterprise(20, parent=parent_of)

    r = await post(client, "/settings/enterprises/delete", {}, htmx=True)
    assert "请先勾选要删除的单位" in r.text
    async with client_as("sub2", "Subsid123x") as gone_client:
        r = await post(
            client,
            "/settings/enterprises/delete",
            {"ids": [str(busy), str(empty), str(parent_of)]},
            htmx=True,
        )
        assert r.status_code == 200 and "<html" not in r.text and "已删除1个单位" in r.text
        assert "测试子公司1：有预约记录，不能删除，可以停用" in r.text
        assert "测试子公司3：有下级单位，不能删除，可以停用" in r.text
        # The deleted unit's account is gone, and so is its session.
        assert (await gone_client.get("/")).status_code == 303
    assert await Enterprise.exists().where(Enterprise.id == busy)
    assert not await Enterprise.exists().where(Enterprise.id == empty)
    assert not await User.exists().where(User.username == "sub2")
    assert len(licence_files()) == 2 and await EnterpriseLicence.count() == 2

    async with client_as("sub1", "Subsid123x") as sub_client:
        r = await post(client, "/settings/enterprises/disable", {"ids": [str(busy)]}, htmx=True)
        assert "已停用1个单位" in r.text and "已停用" in r.text
        assert (await sub_client.get("/bookings")).status_code == 303  # logged out
    await post(client, "/logout")
    r = await login(client, "sub1", "Subsid123x")
    assert r.status_code == 200 and "单位已停用，请联系上级单位" in r.text
    assert (await login(client, "company1", "Secret123x")).status_code == 303
    # The parent still sees the disabled unit's booking.
    assert "测试子公司1" in (await client.get("/bookings")).text
    r = await post(client, "/settings/enterprises/enable", {"ids": [str(busy)]})
    assert "已启用1个单位" in r.text
    async with client_as("sub1", "Subsid123x"):
        pass
    details = [r["detail"] for r in await AuditLog.select().where(AuditLog.event == "企业管理")]
    assert any(d.startswith("删除子公司：测试子公司2") for d in details)
    assert any(d.startswith("停用子公司：测试子公司1") for d in details)
    assert any(d.startswith("启用子公司：测试子公司1") for d in details)


async def test_licence_only_for_its_unit_its_parent_and_admins(client: AsyncTestClient) -> None:
    parent_id = await main_account(client)
    assert (await save(client, subsidiary_form(1), **licence())).status_code == 303
    assert (await save(client, subsidiary_form(2))).status_code == 303  # the sibling
    lic = await EnterpriseLicence.select().first()
    url = f"/settings/enterprises/licences/{lic['id']}"
    r = await client.get(url)
    assert r.status_code == 200 and r.content == tiny_png()
    assert r.headers["content-type"] == "image/png" and r.headers["x-content-type-options"]
    assert r.headers["content-disposition"].startswith("inline")

    sub = await Enterprise.select().where(Enterprise.uscc == uscc(501)).first()
    helper = await make_user(
        await Enterprise.objects().get(Enterprise.id == parent_id),
        username="helper",
        role="sub_account",
    )
    assert helper.id
    grandchild = await make_enterprise(30, parent=sub["id"])
    await make_user(grandchild, username="grandchild")
    stranger = await make_enterprise(31)
    await make_user(stranger, username="stranger")
    await make_admin()
    allowed = [("sub1", "Subsid123x"), ("helper", "Secret123x"), ("admin", "Admin12345x")]
    for username, password in allowed:
        async with client_as(username, password) as c:
            r = await c.get(url)
            assert r.status_code == 200 and r.content == tiny_png(), username
    for username, password in [
        ("sub2", "Subsid123x"),  # a sibling
        ("grandchild", "Secret123x"),  # below it: sees nothing above
        ("stranger", "Secret123x"),
    ]:
        async with client_as(username, password) as c:
            assert (await c.get(url)).status_code == 404, username
            assert (await c.get("/settings/enterprises/licences/999")).status_code == 404
    await post(client, "/logout")
    r = await client.get(url)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_disabling_a_unit_stops_the_units_below_it(client: AsyncTestClient) -> None:
    """停用 of a subsidiary stops its whole branch: the accounts of the units below it are
    logged out and cannot log in, and 启用 brings them back (their own 已停用 stays)."""
    parent_id = await main_account(client)
    assert (await save(client, subsidiary_form(1))).status_code == 303
    child = await Enterprise.objects().get(Enterprise.parent == parent_id)
    grandchild = await make_enterprise(30, parent=child.id)
    await make_user(grandchild, username="grandchild")
    async with client_as("grandchild") as below:
        r = await post(client, "/settings/enterprises/disable", {"ids": [str(child.id)]})
        assert "已停用1个单位" in r.text
        assert (await below.get("/bookings")).status_code == 303  # logged out at once
        r = await login(below, "grandchild", "Secret123x")
        assert r.status_code == 200 and "单位已停用，请联系上级单位" in r.text
    r = await post(client, "/settings/enterprises/enable", {"ids": [str(child.id)]})
    assert "已启用1个单位" in r.text
    async with client_as("grandchild") as below:
        assert (await below.get("/bookings")).status_code == 200
