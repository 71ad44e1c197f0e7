"""What a clerk meets every day (issue #13 items 3, 6, 10, 11), over HTTP: no instrument
twice in a 器具列表, the booking form's Enter, the 器具托管 import's 【点击上传】 → 【确定】,
the 待审核 login notice, 基础信息 prefilled from the registration."""

from __future__ import annotations

import os
import re
from datetime import date

from litestar.testing import AsyncTestClient

from app.settings import get_settings
from app.tables import AuditLog, Booking, BookingItem, Enterprise, Instrument
from tests.factories import make_instrument
from tests.helpers import (
    BOOKING,
    add_item,
    company_user,
    fill_template,
    instrument,
    login,
    open_form,
    post,
    reg,
    register_company,
    register_xlsx,
    submitted_booking,
    xlsx_row,
)

HX = {"HX-Request": "true"}


async def _rows(booking_id: int | str) -> list[dict]:
    """The rows of the booking the form's URLs name: "new" (a form opened before its draft
    existed) names the one draft its first POST made."""
    if booking_id == "new":
        draft = await Booking.select(Booking.id).where(Booking.status == "draft").first()
        if draft is None:
            return []
        booking_id = draft["id"]
    return await BookingItem.select().where(BookingItem.booking == booking_id)


# --------------------------------------------------------------------------- item 3


async def test_adding_an_instrument_already_in_the_list_is_refused(
    client: AsyncTestClient,
) -> None:
    await company_user(client)
    booking_id = await open_form(client)
    assert "器具已添加" in (await add_item(client, booking_id, instrument(1))).text
    # The same 出厂编号 + 型号规格 (case and spaces aside) under another name: not a new row.
    twin = instrument(1, name="另一个名字", serial_no=" " + instrument(1)["serial_no"] + " ")
    r = await add_item(client, booking_id, twin)
    assert "已在列表中" in r.text and "温度计1" in r.text
    assert 'value="另一个名字"' in r.text  # what was typed stays, to correct it
    assert len(await _rows(booking_id)) == 1
    # Saving the row being edited is not a duplicate of itself.
    row = (await _rows(booking_id))[0]
    r = await add_item(client, booking_id, instrument(1, quantity="3"), item_id=str(row["id"]))
    assert "器具已添加" in r.text and (await _rows(booking_id))[0]["quantity"] == 3
    # Another 型号规格 is another instrument.
    r = await add_item(client, booking_id, instrument(1, model="X-9"))
    assert "器具已添加" in r.text and len(await _rows(booking_id)) == 2
    # Without a 出厂编号 ("/", "无"), 器具名称 + 型号规格 tell instruments apart.
    for name in ("砝码甲", "砝码乙"):
        r = await add_item(client, booking_id, instrument(9, name=name, serial_no="/"))
        assert "器具已添加" in r.text
    r = await add_item(client, booking_id, instrument(9, name="砝码甲", serial_no="无"))
    assert "已在列表中" in r.text and len(await _rows(booking_id)) == 4
    # Without JavaScript: the whole page, the same message.
    r = await post(client, f"/bookings/{booking_id}/items", {**BOOKING, **instrument(1)})
    assert "<html" in r.text and "已在列表中" in r.text


async def test_pickers_skip_and_mark_what_is_already_in_the_list(
    client: AsyncTestClient,
) -> None:
    await company_user(client)
    ent = await Enterprise.objects().first()
    a = await make_instrument(ent, name="压力表A", serial_no="PA-1", model="Y-100")
    b = await make_instrument(ent, name="压力表B", serial_no="PB-1", model="Y-100")
    booking_id = await open_form(client)
    url = f"/bookings/{booking_id}/custody"
    r = await post(client, url, {"custody_ids": [str(a.id)]}, htmx=True)
    assert "已添加1个器具" in r.text
    # 压力表A is in the list: the picker says so and offers no tick box for it.
    r = await client.get(url, headers=HX)
    row_a = _picker_row(r.text, "压力表A")
    assert "已在列表中" in row_a and "disabled" in row_a
    assert "已在列表中" not in _picker_row(r.text, "压力表B")
    # Picked again anyway (a second tab): skipped and said so.
    r = await post(client, url, {"custody_ids": [str(a.id), str(b.id)]}, htmx=True)
    assert "已添加1个器具" in r.text and "已在列表中，跳过 1 个" in r.text
    assert len(await _rows(booking_id)) == 2
    r = await post(client, url, {"custody_ids": [str(a.id)]}, htmx=True)
    assert "已在列表中，跳过 1 个" in r.text and "已添加" not in r.text
    assert len(await _rows(booking_id)) == 2

    # 从历史预约数据选择: an earlier booking's instruments, one of them in this list.
    await submitted_booking(client, 2)  # submits the draft: 压力表A, 压力表B + 温度计1, 2
    booking_id = await open_form(client)
    assert "器具已添加" in (await add_item(client, booking_id, instrument(1))).text
    url = f"/bookings/{booking_id}/history"
    r = await client.get(url, headers=HX)
    assert "已在列表中" in _picker_row(r.text, "温度计1")
    assert "已在列表中" not in _picker_row(r.text, "温度计2")
    draft = await Booking.select(Booking.id).where(Booking.status == "draft").first()
    old = {
        row["name"]: row["id"]
        for row in await BookingItem.select().where(BookingItem.booking != draft["id"])
    }
    r = await post(
        client, url, {"history_ids": [str(old["温度计1"]), str(old["温度计2"])]}, htmx=True
    )
    assert "已添加1个器具" in r.text and "已在列表中，跳过 1 个" in r.text
    assert sorted(x["name"] for x in await _rows(booking_id)) == ["温度计1", "温度计2"]


def _picker_row(html: str, name: str) -> str:
    rows = [row for row in re.findall(r"<tr[ >].*?</tr>", html, re.S) if name in row]
    assert len(rows) == 1, rows
    return rows[0]


async def test_booking_import_skips_rows_already_in_the_list_or_twice_in_the_file(
    client: AsyncTestClient,
) -> None:
    await company_user(client)
    booking_id = await open_form(client)
    await add_item(client, booking_id, instrument(1))
    data = fill_template([xlsx_row(1), xlsx_row(2), xlsx_row(3), xlsx_row(2, name="又一个")])
    r = await post(
        client, f"/bookings/{booking_id}/import", files={"file": ("a.xlsx", data)}, htmx=True
    )
    assert "已导入2个器具" in r.text and "已在列表中，跳过 2 个" in r.text
    assert sorted(x["name"] for x in await _rows(booking_id)) == ["温度计1", "温度计2", "温度计3"]
    # Success closes the import dialog (app.js reads the marker); an error keeps it open.
    assert 'data-closes-dialog="import-dialog"' in r.text
    bad = fill_template([xlsx_row(4, name="")])
    r = await post(
        client, f"/bookings/{booking_id}/import", files={"file": ("b.xlsx", bad)}, htmx=True
    )
    assert "导入失败" in r.text and "data-closes-dialog" not in r.text


async def test_one_click_booking_from_the_register_skips_what_the_draft_has(
    client: AsyncTestClient,
) -> None:
    await company_user(client)
    await post(client, "/instruments", reg(1))
    await post(client, "/instruments", reg(2))
    ids = [str(i["id"]) for i in await Instrument.select(Instrument.id)]
    r = await post(client, "/instruments/to-booking", {"ids": ids[:1]})
    assert r.status_code == 303
    r = await post(client, "/instruments/to-booking", {"ids": ids})
    r = await client.get(r.headers["location"])
    assert "已从器具托管加入1个器具" in r.text and "已在列表中，跳过 1 个" in r.text
    assert await BookingItem.count() == 2


# --------------------------------------------------------------------------- item 6


async def test_enter_in_the_booking_fields_submits_nothing(client: AsyncTestClient) -> None:
    """The form's first submit button (its default, which Enter presses) is disabled."""
    await company_user(client)
    html = (await client.get("/bookings/new")).text
    form = html[html.index('id="booking-form"') :]
    first = re.search(r"<button[^>]*>", form[: form.index("</form>")])
    assert first and 'type="submit"' in first.group(0) and "disabled" in first.group(0)
    assert form.index(first.group(0)) < form.index('name="client_name"')


async def test_after_adding_the_name_field_has_the_focus(client: AsyncTestClient) -> None:
    await company_user(client)
    booking_id = await open_form(client)
    r = await add_item(client, booking_id, instrument(1))
    assert re.search(r'<input id="f-name"[^>]*autofocus', r.text)
    # A refused row puts the focus on nothing new (the error is beside its field).
    r = await add_item(client, booking_id, instrument(2, model=""))
    assert not re.search(r'<input id="f-name"[^>]*autofocus', r.text)
    assert "autofocus" not in (await client.get("/bookings/new")).text


# --------------------------------------------------------------------------- item 10


def _token(html: str) -> str:
    m = re.search(r'name="token" value="([A-Za-z0-9_-]+)"', html)
    assert m, html
    return m.group(1)


async def test_register_import_shows_what_it_will_do_and_imports_on_confirm(
    client: AsyncTestClient,
) -> None:
    await company_user(client)
    await post(client, "/instruments", reg(1, remark="旧备注"))
    rows = [
        {
            **reg(1),
            "remark": "新备注",
            "quantity": 2,
            "cycle_months": 6,
            "last_verified_on": date(2025, 1, 1),
        },
        {**reg(2), "quantity": 1, "cycle_months": 12, "valid_until": date(2026, 5, 1)},
        {**reg(3), "quantity": 1, "cycle_months": None},
        {**reg(3), "quantity": 4, "cycle_months": None},  # twice in the file: this row wins
    ]
    r = await post(
        client, "/instruments/import", files={"file": ("a.xlsx", register_xlsx(rows))}, htmx=True
    )
    # 【点击上传】 only reads: what will be added and updated, row by row, and 【确定】.
    assert r.status_code == 200 and "<html" not in r.text
    assert "将新增2个，更新1个" in r.text and "确定" in r.text
    assert re.search(r"第2行.*?更新.*?压力表1", r.text, re.S)
    assert re.search(r"第3行.*?新增.*?压力表2", r.text, re.S)
    assert "第5行与第4行是同一器具" in r.text
    assert "hx-trigger" not in r.headers
    assert await Instrument.count() == 1
    assert (await Instrument.select().first())["remark"] == "旧备注"
    token = _token(r.text)

    # Another account of another company cannot use the token.
    async with AsyncTestClient(app=client.app, base_url="http://testserver.local") as other:
        other.follow_redirects = False
        await company_user(other, 2)
        r = await post(other, "/instruments/import/confirm", {"token": token}, htmx=True)
        assert "已过期" in r.text and await Instrument.count() == 1

    # 【确定】: imported; the list comes back with the message, and the dialog closes.
    r = await post(client, "/instruments/import/confirm", {"token": token}, htmx=True)
    assert "导入完成：新增2个，更新1个" in r.text and 'id="instrument-list"' in r.text
    assert 'data-closes-dialog="import-dialog"' in r.text
    assert await Instrument.count() == 3
    one = await Instrument.select().where(Instrument.name == "压力表1").first()
    assert one["remark"] == "新备注" and one["valid_until"] == date(2025, 6, 30)
    three = await Instrument.select().where(Instrument.name == "压力表3").first()
    assert three["quantity"] == 4
    assert await AuditLog.exists().where(AuditLog.detail == "导入：新增2，更新1")
    # Once only: a second 【确定】 (double click, back button) imports nothing.
    r = await post(client, "/instruments/import/confirm", {"token": token}, htmx=True)
    assert "已过期" in r.text and "请重新上传" in r.text and await Instrument.count() == 3
    for junk in ("", "../../etc/passwd", "x" * 500):
        r = await post(client, "/instruments/import/confirm", {"token": junk}, htmx=True)
        assert r.status_code == 200 and "请重新上传" in r.text


async def test_register_import_errors_by_row_and_nothing_to_confirm(
    client: AsyncTestClient,
) -> None:
    await company_user(client)
    uploads = get_settings().data_dir / "uploads"
    before = set(uploads.glob("*"))
    bad = [{**reg(4), "quantity": 1, "cycle_months": 200}, {**reg(5, name=""), "quantity": 1}]
    r = await post(
        client, "/instruments/import", files={"file": ("b.xlsx", register_xlsx(bad))}, htmx=True
    )
    assert "第2行「检定周期(月)」" in r.text and "第3行「器具名称」" in r.text
    assert 'name="token"' not in r.text
    r = await post(
        client, "/instruments/import", files={"file": ("c.xlsx", b"PK\x03\x04junk")}, htmx=True
    )
    assert "不是有效的 Excel" in r.text and 'name="token"' not in r.text
    assert "请选择" in (await post(client, "/instruments/import", {}, htmx=True)).text
    assert set(uploads.glob("*")) == before  # a refused file is not kept


async def test_a_kept_upload_is_one_per_account_and_expires(client: AsyncTestClient) -> None:
    await company_user(client)
    first = _token(
        (
            await post(
                client,
                "/instruments/import",
                files={"file": ("a.xlsx", register_xlsx([{**reg(1), "quantity": 1}]))},
                htmx=True,
            )
        ).text
    )
    second = _token(
        (
            await post(
                client,
                "/instruments/import",
                files={"file": ("b.xlsx", register_xlsx([{**reg(2), "quantity": 1}]))},
                htmx=True,
            )
        ).text
    )
    kept = list((get_settings().data_dir / "uploads").glob("*"))
    assert len(kept) == 1  # the newer upload replaced the older one
    r = await post(client, "/instruments/import/confirm", {"token": first}, htmx=True)
    assert "已过期" in r.text and await Instrument.count() == 0
    # Half an hour later the file is gone too.
    old = kept[0].stat().st_mtime - 31 * 60
    os.utime(kept[0], (old, old))
    r = await post(client, "/instruments/import/confirm", {"token": second}, htmx=True)
    assert "已过期" in r.text and await Instrument.count() == 0
    assert not kept[0].exists()


async def test_register_import_without_javascript(client: AsyncTestClient) -> None:
    await company_user(client)
    rows = [{**reg(1), "quantity": 1}, {**reg(2), "quantity": 1}]
    r = await post(client, "/instruments/import", files={"file": ("a.xlsx", register_xlsx(rows))})
    assert "<html" in r.text and "将新增2个，更新0个" in r.text
    assert 'action="/instruments/import/confirm"' in r.text
    assert await Instrument.count() == 0
    r = await post(client, "/instruments/import/confirm", {"token": _token(r.text)})
    assert "<html" in r.text and "导入完成：新增2个，更新0个" in r.text
    assert await Instrument.count() == 2
    bad = [{**reg(5, name=""), "quantity": 1}]
    r = await post(client, "/instruments/import", files={"file": ("b.xlsx", register_xlsx(bad))})
    assert "<html" in r.text and "第2行「器具名称」" in r.text


async def test_awaiting_review_is_information_not_an_error(client: AsyncTestClient) -> None:
    form = await register_company(client)
    r = await login(client, form["username"], form["password"])
    assert "等待管理员审核" in r.text
    notice = re.search(r'<div class="notice ([a-z-]+)"[^>]*>[^<]*等待管理员审核', r.text)
    assert notice and notice.group(1) == "notice-info"
    assert f'value="{form["username"]}"' in r.text
    # A wrong password is still an error.
    r = await login(client, form["username"], "Wrong12345x")
    assert re.search(r"notice-error[^>]*>[^<]*(账号或密码|用户名或密码)", r.text)


# --------------------------------------------------------------------------- item 11


async def test_basic_info_starts_from_the_registration(client: AsyncTestClient) -> None:
    form = await company_user(client)
    r = await client.get("/settings/basic")
    for name, value in (
        ("client_name", form["name"]),
        ("cert_name", form["name"]),
        ("client_address", form["address"]),
        ("cert_address", form["address"]),
        ("contact_name", form["contact_name"]),
        ("contact_mobile", form["contact_phone"]),
    ):
        assert re.search(rf'name="{name}" [^>]*value="{re.escape(value)}"', r.text), name
    assert "已按注册信息预填" in r.text
    # A new booking starts from the same values before anything was saved.
    r = await client.get("/bookings/new")
    assert re.search(rf'name="client_name" [^>]*value="{form["name"]}"', r.text)
    assert re.search(rf'name="mobile" [^>]*value="{form["contact_phone"]}"', r.text)


async def test_long_names_and_addresses_get_a_wide_field(client: AsyncTestClient) -> None:
    await company_user(client)
    html = (await client.get("/bookings/new")).text
    long = r'<div class="field[^"]*\blong\b[^"]*">\s*<label for="f-{}"'
    for name in ("client_name", "client_address", "cert_name", "cert_address"):
        assert re.search(long.format(name), html), name
    assert not re.search(long.format("contact_name"), html)


async def test_deleting_only_approved_bookings_claims_no_deletion(
    client: AsyncTestClient,
) -> None:
    await company_user(client)
    a = await submitted_booking(client)
    await Booking.update({Booking.status: "approved"}).where(Booking.id == a["id"])
    r = await post(client, "/bookings/delete", {"ids": [str(a["id"])]}, htmx=True)
    assert "已通过审核" in r.text and "已删除" not in r.text
    r = await post(client, "/bookings/delete", {}, htmx=True)
    assert "请先勾选" in r.text and "已删除" not in r.text


# --------------------------------------------------------------------------- item 8


def current_entries(html: str) -> list[str]:
    """The menu entries marked as the page the user is on."""
    return re.findall(r'<a href="([^"]+)" class="active" aria-current="page">', html)


async def test_the_menu_marks_the_page_you_are_on(client: AsyncTestClient) -> None:
    """#13 item 8: every menu entry, opened, is the one entry marked (also on its sub-pages)."""
    await company_user(client)
    r = await client.get("/")
    entries = re.findall(r'<li><a href="(/[^"]*)" class="[^"]*"', r.text)
    assert "/bookings" in entries and "/instruments" in entries and len(entries) >= 8
    for href in entries:
        r = await client.get(href)
        assert r.status_code == 200, href
        assert current_entries(r.text) == [href], href
    booking = await submitted_booking(client)
    r = await client.get(f"/bookings/{booking['id']}")
    assert current_entries(r.text) == ["/bookings"]  # a record belongs to 预约记录
