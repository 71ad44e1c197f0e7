"""预约送检 end to end over HTTP: 基础信息, the draft form, import, history, 提交, 预约记录."""

from __future__ import annotations

import io
from datetime import timedelta

import openpyxl
from litestar.testing import AsyncTestClient

from app.clock import today
from app.services.instrument_xlsx import BOOKING_COLUMNS
from app.tables import AuditLog, Booking, BookingItem, User
from tests.helpers import (
    BASIC,
    BOOKING,
    TOMORROW,
    add_item,
    company_user,
    fill_template,
    instrument,
    open_form,
    post,
    submitted_booking,
    xlsx_row,
)


async def test_basic_info_prefills_new_bookings(client: AsyncTestClient) -> None:
    await company_user(client)
    r = await post(
        client, "/settings/basic", {**BASIC, "contact_mobile": "123", "cert_address": ""}
    )
    assert "请输入正确的11位手机号" in r.text and "请填写证书单位地址" in r.text
    assert f'value="{BASIC["client_name"]}"' in r.text
    r = await post(client, "/settings/basic", BASIC)
    assert "已保存" in r.text
    r = await client.get("/bookings/new")
    for value in BASIC.values():
        assert f'value="{value}"' in r.text
    assert await AuditLog.exists().where(AuditLog.event == "基础信息")
    # The menu shows the screens that exist.
    for label in ("预约送检", "预约记录", "基础信息"):
        assert label in r.text


async def test_draft_survives_reload_and_second_tab(client: AsyncTestClient) -> None:
    await company_user(client)
    booking_id = await open_form(client)
    r = await add_item(client, booking_id, instrument(1), sender="新送检人")
    assert "温度计1" in r.text and 'id="instrument-section"' in r.text
    assert "<html" not in r.text  # a fragment, not a page
    draft = await Booking.select(Booking.id).where(Booking.status == "draft").first()
    assert await open_form(client) == draft["id"]  # reload / second tab: the same draft
    page = (await client.get("/bookings/new")).text
    assert "温度计1" in page and 'value="新送检人"' in page


async def test_add_validates_beside_fields_and_keeps_input(client: AsyncTestClient) -> None:
    await company_user(client)
    booking_id = await open_form(client)
    r = await add_item(
        client, booking_id, instrument(1, name="", quantity="2.5", certificate_type="合格证")
    )
    assert "请填写器具名称" in r.text and "整数" in r.text and "应为以下之一" in r.text
    assert 'value="20230110' in r.text  # the serial typed is kept
    assert await BookingItem.count() == 0
    # Without htmx the whole page comes back, same messages.
    r = await post(client, f"/bookings/{booking_id}/items", {**BOOKING, **instrument(1, name="")})
    assert "<html" in r.text and "请填写器具名称" in r.text


async def test_edit_row_by_double_click_and_delete(client: AsyncTestClient) -> None:
    await company_user(client)
    booking_id = await open_form(client)
    for n in (1, 2, 3):
        await add_item(client, booking_id, instrument(n))
    items = await BookingItem.select().order_by(BookingItem.id)
    second = items[1]["id"]
    r = await client.get(
        f"/bookings/{booking_id}/items?edit={second}", headers={"HX-Request": "true"}
    )
    assert 'value="温度计2"' in r.text and f'name="item_id" value="{second}"' in r.text
    r = await add_item(
        client, booking_id, instrument(2, name="压力表", quantity="3"), item_id=str(second)
    )
    assert "压力表" in r.text
    assert await BookingItem.count() == 3
    assert (await Booking.select().first())["item_count"] == 5
    r = await post(
        client,
        f"/bookings/{booking_id}/items/delete",
        {"item_ids": [str(items[0]["id"])]},
        htmx=True,
    )
    assert "已删除1个器具" in r.text and "温度计1" not in r.text
    r = await post(client, f"/bookings/{booking_id}/items/delete", {}, htmx=True)
    assert "请先勾选" in r.text
    # 【清空】: blank fields; the rows stay where they are (since #11 the answer is the
    # fields alone, not the list again).
    r = await client.get(f"/bookings/{booking_id}/items", headers={"HX-Request": "true"})
    assert 'name="item_id" value=""' in r.text and 'id="instrument-fields"' in r.text
    assert "压力表" not in r.text and await BookingItem.count() == 2


async def test_a_cards_delete_takes_its_row_only(client: AsyncTestClient) -> None:
    """A 器具列表 card's own 【删除】 (phone) names its row; rows ticked meanwhile stay."""
    await company_user(client)
    booking_id = await open_form(client)
    for n in (1, 2, 3):
        await add_item(client, booking_id, instrument(n))
    first, second, third = [r["id"] for r in await BookingItem.select().order_by(BookingItem.id)]
    ticked = [str(first), str(second)]
    for htmx in (True, False):
        r = await post(
            client,
            f"/bookings/{booking_id}/items/delete",
            {"item_ids": ticked, "delete_item": str(third)},
            htmx=htmx,
        )
        assert r.status_code == 200 and "已删除1个器具" in r.text
        assert ("<html" in r.text) is not htmx
        third, ticked = second, [str(first)]
    assert [r["name"] for r in await BookingItem.select(BookingItem.name)] == ["温度计1"]


async def test_template_download(client: AsyncTestClient) -> None:
    await company_user(client)
    r = await client.get("/bookings/template.xlsx")
    assert r.status_code == 200 and "spreadsheetml" in r.headers["content-type"]
    ws = openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0]
    headers = [str(c.value).rstrip("*") for c in ws[1]]
    assert headers[:12] == [c.label for c in BOOKING_COLUMNS]
    assert ws.data_validations.dataValidation  # the 证书类型 dropdown


async def test_import_all_or_nothing(client: AsyncTestClient) -> None:
    await company_user(client)
    booking_id = await open_form(client)
    url = f"/bookings/{booking_id}/import"

    async def upload(data: bytes, name: str = "器具.xlsx") -> str:
        r = await post(client, url, files={"file": (name, data)}, htmx=True)
        assert r.status_code == 200
        return r.text

    text = await upload(fill_template([xlsx_row(1), xlsx_row(2)]))
    assert "已导入2个器具" in text and 'hx-swap-oob="outerHTML"' in text and "温度计2" in text
    assert await BookingItem.count() == 2
    text = await upload(fill_template([xlsx_row(3), xlsx_row(4, name="", quantity=0)]))
    assert "第3行「器具名称」" in text and "第3行「器具数量」" in text and "均未导入" in text
    assert await BookingItem.count() == 2
    assert "不是有效的 Excel" in await upload(b"name,serial\n1,2\n", "x.xlsx")
    # Without JavaScript the whole form comes back with the errors in the 器具信息 section.
    r = await post(client, url, files={"file": ("x.xlsx", b"not a workbook")})
    assert "<html" in r.text and "导入失败" in r.text and "温度计2" in r.text
    assert "请选择" in (await post(client, url, {}, htmx=True)).text
    big = fill_template([xlsx_row(1)]) + b"\0" * (5 * 1024 * 1024)
    assert "5" in (text := await upload(big)) and "MB" in text
    assert await BookingItem.count() == 2


async def test_history_picker_copies(client: AsyncTestClient) -> None:
    await company_user(client)
    await submitted_booking(client, 2)
    booking_id = await open_form(client)
    r = await client.get(f"/bookings/{booking_id}/history", headers={"HX-Request": "true"})
    assert "温度计1" in r.text and "温度计2" in r.text
    r = await client.get(f"/bookings/{booking_id}/history?q=温度计2")
    assert "温度计2" in r.text and "温度计1" not in r.text
    old = await BookingItem.select().where(BookingItem.name == "温度计2").first()
    r = await post(
        client, f"/bookings/{booking_id}/history", {"history_ids": [str(old["id"])]}, htmx=True
    )
    assert "已添加1个器具" in r.text and "温度计2" in r.text
    draft_id = await open_form(client)  # the 【确定】 made the draft
    assert await BookingItem.count().where(BookingItem.booking == draft_id) == 1


async def test_submit_checks_and_numbers_once(client: AsyncTestClient) -> None:
    await company_user(client)
    r = await post(client, f"/bookings/{await open_form(client)}/submit", BOOKING)
    assert "请至少添加一个器具" in r.text
    booking_id = await open_form(client)  # that 提交 made the draft; it keeps the fields
    assert isinstance(booking_id, int)
    await add_item(client, booking_id, instrument(1))
    yesterday = (today() - timedelta(days=1)).isoformat()
    r = await post(
        client,
        f"/bookings/{booking_id}/submit",
        {**BOOKING, "expected_date": yesterday, "mobile": "1", "client_name": ""},
    )
    assert "不能早于今天" in r.text and "正确的11位手机号" in r.text
    assert "请填写委托单位名称" in r.text and 'value="南京市江宁区1号"' in r.text
    assert (await Booking.select().first())["status"] == "draft"
    r = await post(client, f"/bookings/{booking_id}/submit", BOOKING)
    assert r.status_code == 303 and "submitted=YY" in r.headers["location"]
    first = await Booking.select().first()
    assert first["status"] == "pending" and first["booking_no"].startswith("YY")
    r = await post(client, f"/bookings/{booking_id}/submit", BOOKING)  # the double click
    assert r.status_code == 303
    assert await Booking.count() == 1
    assert (await Booking.select().first())["booking_no"] == first["booking_no"]
    records = (await client.get(r.headers["location"])).text
    assert first["booking_no"] in records and "待审核" in records and "预约已提交" in records
    home = (await client.get("/")).text
    assert first["booking_no"] in home and "查看更多" in home
    # The next 预约送检 is a new draft.
    assert await open_form(client) != booking_id


async def test_records_filters_paging_and_delete(client: AsyncTestClient) -> None:
    await company_user(client)
    a = await submitted_booking(client)
    b = await submitted_booking(client)
    await Booking.update({Booking.status: "approved"}).where(Booking.id == a["id"])
    r = await client.get("/bookings?status=已通过", headers={"HX-Request": "true"})
    assert a["booking_no"] in r.text and b["booking_no"] not in r.text and "<html" not in r.text
    assert "HX-Request" in r.headers["vary"]  # (and Accept-Encoding)
    r = await client.get(f"/bookings?q={b['booking_no']}")
    assert b["booking_no"] in r.text and a["booking_no"] not in r.text
    r = await client.get(f"/bookings?start={TOMORROW}&end={TOMORROW}")
    assert a["booking_no"] in r.text
    r = await client.get("/bookings?start=2000-01-01&end=2000-01-02")
    assert "暂无预约记录" in r.text
    c = await submitted_booking(client)
    # Deleting from a filtered list gives back the same filtered list.
    r = await post(
        client,
        "/bookings/delete",
        {"ids": [str(a["id"]), str(b["id"])]},
        htmx=True,
        headers={
            "HX-Current-URL": "http://testserver.local/bookings?status=%E5%B7%B2%E9%80%9A%E8%BF%87"
        },
    )
    assert "已删除1条预约" in r.text and f"{a['booking_no']}：已通过审核" in r.text
    assert f">{a['booking_no']}<" in r.text and c["booking_no"] not in r.text
    assert sorted(x["id"] for x in await Booking.select(Booking.id)) == [a["id"], c["id"]]


async def test_approved_booking_is_read_only(client: AsyncTestClient) -> None:
    await company_user(client)
    b = await submitted_booking(client)
    await Booking.update({Booking.status: "approved"}).where(Booking.id == b["id"])
    r = await client.get(f"/bookings/{b['id']}")
    assert "只能查看" in r.text and ">提交<" not in r.text and "添加器具" not in r.text
    r = await add_item(client, b["id"], instrument(9))
    assert "不能再修改" in r.text and await BookingItem.count() == 1
    r = await post(client, f"/bookings/{b['id']}/submit", BOOKING)
    assert "不能再修改" in r.text


async def test_rejected_booking_can_be_fixed_and_resubmitted(client: AsyncTestClient) -> None:
    await company_user(client)
    b = await submitted_booking(client)
    await Booking.update({Booking.status: "rejected", Booking.reject_reason: "缺少型号"}).where(
        Booking.id == b["id"]
    )
    r = await client.get(f"/bookings/{b['id']}")
    assert "缺少型号" in r.text and "提交" in r.text
    await add_item(client, b["id"], instrument(2))
    r = await post(client, f"/bookings/{b['id']}/submit", BOOKING)
    assert r.status_code == 303
    row = await Booking.select().where(Booking.id == b["id"]).first()
    assert row["status"] == "pending" and row["booking_no"] == b["booking_no"]
    assert row["reject_reason"] == ""


async def test_other_enterprise_gets_404_everywhere(client: AsyncTestClient) -> None:
    await company_user(client, n=1, phone="13800000001")
    theirs = await submitted_booking(client)
    await add_item(client, await open_form(client), instrument(5))
    draft_id = await open_form(client)
    their_item = await BookingItem.select().where(BookingItem.booking == draft_id).first()
    history_item = await BookingItem.select().where(BookingItem.booking == theirs["id"]).first()
    await post(client, "/logout")
    await company_user(client, n=2, phone="13800000002")
    mine = await open_form(client)
    tid, iid = theirs["id"], their_item["id"]
    checks = [
        await client.get(f"/bookings/{tid}"),
        await client.get(f"/bookings/{draft_id}"),
        await client.get(f"/bookings/{draft_id}/items?edit={iid}"),
        await client.get(f"/bookings/{mine}/items?edit={iid}"),
        await client.get(f"/bookings/{tid}/history"),
        await add_item(client, draft_id, instrument(6)),
        await add_item(client, mine, instrument(6), item_id=str(iid)),
        await post(client, f"/bookings/{draft_id}/items/delete", {"item_ids": [str(iid)]}),
        await post(client, f"/bookings/{mine}/items/delete", {"item_ids": [str(iid)]}),
        await post(client, f"/bookings/{draft_id}/import", files={"file": ("a.xlsx", b"x")}),
        await post(client, f"/bookings/{mine}/history", {"history_ids": [str(history_item["id"])]}),
        await post(client, f"/bookings/{tid}/submit", BOOKING),
        await post(client, "/bookings/delete", {"ids": [str(tid)]}),
    ]
    assert [r.status_code for r in checks] == [404] * len(checks)
    # Nothing of theirs changed, and their history is not in mine.
    assert await BookingItem.count().where(BookingItem.booking == draft_id) == 1
    assert await Booking.count() == 3
    r = await client.get(f"/bookings/{mine}/history")
    assert "温度计1" not in r.text
    r = await client.get("/bookings")
    assert theirs["booking_no"] not in r.text


async def test_import_of_5000_rows(client: AsyncTestClient) -> None:
    """The template's maximum in one go (PostgreSQL caps one query at 32,767 parameters)."""
    await company_user(client)
    booking_id = await open_form(client)
    data = fill_template([xlsx_row(n) for n in range(5000)])
    r = await post(
        client, f"/bookings/{booking_id}/import", files={"file": ("a.xlsx", data)}, htmx=True
    )
    assert "已导入5000个器具" in r.text
    assert await BookingItem.count() == 5000
    assert (await Booking.select().first())["item_count"] == 10000


async def test_keyword_search_ignores_case(client: AsyncTestClient) -> None:
    """预约单号 typed in lower case is found on PostgreSQL as on SQLite."""
    await company_user(client)
    b = await submitted_booking(client)
    r = await client.get(f"/bookings?q={b['booking_no'].lower()}")
    assert b["booking_no"] in r.text
    booking_id = await open_form(client)
    r = await client.get(f"/bookings/{booking_id}/history?q=SB-1".lower())
    assert "温度计1" in r.text


async def test_deleting_an_account_keeps_its_bookings(client: AsyncTestClient) -> None:
    await company_user(client)
    b = await submitted_booking(client)
    await User.delete().where(User.id == b["created_by"])
    row = await Booking.select().where(Booking.id == b["id"]).first()
    assert row is not None and row["created_by"] is None


async def test_ticked_ids_that_are_not_numbers_are_ignored(client: AsyncTestClient) -> None:
    # "²" is a digit to str.isdigit() but not a number to int(): once a 500.
    await company_user(client, n=41, phone="13800000041")
    r = await post(client, "/bookings/delete", {"ids": ["²", "x"]})
    assert r.status_code == 200 and "请先勾选要删除的预约" in r.text
    # With no draft yet, and with one.
    refs = ["new"]
    await add_item(client, "new", instrument(1))
    refs.append(await open_form(client))
    for ref in refs:
        r = await client.get(f"/bookings/{ref}/items?edit=²", headers={"HX-Request": "true"})
        assert r.status_code == 200
        r = await client.get(f"/bookings/{ref}/history?history_ids=²")
        assert r.status_code == 200
