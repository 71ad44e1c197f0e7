"""A 5,000-row draft stays light (issue #11 item 3): 【添加器具】, 修改 and 删除 answer with
the fields, the row(s) they touched and the counts, not the whole 器具列表 (which was 3.6 MB
per answer); the list is paged, 50 rows a page in the order they were added, with or
without JavaScript."""

from __future__ import annotations

import re

from litestar.testing import AsyncTestClient

from app.tables import Booking, BookingItem, Enterprise, User
from tests.factories import make_booking
from tests.helpers import BOOKING, add_item, company_user, instrument, post

ROWS = 5000
HX = {"HX-Request": "true"}
# The bound for an answer to 【添加器具】 on a long draft (uncompressed).
MAX_ANSWER = 10 * 1024
NAME = "数字式精密压力校验仪"


def _row(k: int) -> dict[str, object]:
    """A row as long as real ones (the answer's size is the point)."""
    return {
        "name": f"{NAME}{k}号",
        "equipment_no": f"SB-2024-{k:05d}",
        "serial_no": f"SN-2024-{k:05d}",
        "model": "YBS-WB 0~60MPa",
        "measuring_range": "0~60MPa",
        "accuracy_class": "0.02级",
        "supply_voltage": "AC 220V",
        "manufacturer": "北京康斯特仪表科技股份有限公司",
        "verification_requirement": "依据 JJG 875-2019 检定",
        "certificate_type": "检定证书",
        "quantity": k % 3 + 1,
        "remark": "附件齐全",
    }


async def long_draft(client: AsyncTestClient) -> tuple[int, list[int]]:
    """A logged-in company whose draft has ROWS rows; its id and the rows' ids in order."""
    form = await company_user(client)
    user = await User.objects().where(User.username == form["username"]).first()
    ent = await Enterprise.objects().where(Enterprise.id == user.enterprise).first()
    draft = await make_booking(
        ent,
        items=[_row(k) for k in range(1, ROWS + 1)],
        status="draft",
        created_by=user.id,
        booking_no=None,
    )
    ids = await BookingItem.select(BookingItem.id).where(BookingItem.booking == draft.id)
    return draft.id, sorted(r["id"] for r in ids)


def listed(html: str) -> list[int]:
    """The ids of the rows an answer lists (their tick boxes)."""
    return [int(i) for i in re.findall(r'name="item_ids" value="(\d+)"', html)]


async def test_adding_to_a_5000_row_draft_answers_with_the_row_alone(
    client: AsyncTestClient,
) -> None:
    draft, ids = await long_draft(client)
    r = await add_item(client, draft, instrument(1, name="新加的温度计", quantity="2"))
    assert r.status_code == 200, r.text
    assert len(r.content) <= MAX_ANSWER, len(r.content)
    new = (await BookingItem.select().where(BookingItem.id > ids[-1]).first())["id"]
    # The new row, appended to the rows shown; no other row.
    assert listed(r.text) == [new]
    assert re.search(r'<tbody hx-swap-oob="beforeend:#instrument-rows">\s*<tr id="item-', r.text)
    assert "新加的温度计" in r.text and "instrument-empty" not in r.text
    # The counts and the message out of band; the fields blank again, the cursor in 器具名称.
    total = sum(k % 3 + 1 for k in range(1, ROWS + 1)) + 2
    assert re.search(r'<div id="instrument-foot" hx-swap-oob="true">', r.text)
    assert f"共 {ROWS + 1} 行，器具数量合计 {total}" in r.text
    assert "第 1/101 页" in r.text  # the page the user is on (list_page: none sent, the first)
    notices = r'<div id="instrument-notices" hx-swap-oob="true">\s*<div[^>]*>器具已添加'
    assert re.search(notices, r.text)
    assert re.search(r'<input id="f-name" name="name" type="text" value=""[^>]*autofocus', r.text)
    assert 'name="item_id" value=""' in r.text
    booking = await Booking.select().where(Booking.id == draft).first()
    assert booking["item_count"] == total and booking["item_rows"] == ROWS + 1
    assert await BookingItem.count().where(BookingItem.booking == draft) == ROWS + 1


async def test_editing_deleting_and_refusing_on_a_5000_row_draft(client: AsyncTestClient) -> None:
    draft, ids = await long_draft(client)
    total = sum(k % 3 + 1 for k in range(1, ROWS + 1))
    # 修改 of row 4000: that row alone comes back, in place of the old one.
    row = ids[3999]
    r = await client.get(f"/bookings/{draft}/items?edit={row}", headers=HX)
    assert len(r.content) <= MAX_ANSWER and listed(r.text) == []
    assert f'value="{NAME}4000号"' in r.text and f'name="item_id" value="{row}"' in r.text
    r = await add_item(
        client, draft, {**instrument(1), **_row(4000), "name": "改过的", "quantity": "9"},
        item_id=str(row),
    )  # fmt: skip
    assert len(r.content) <= MAX_ANSWER, len(r.content)
    assert listed(r.text) == [row] and f'<tr id="item-{row}" hx-swap-oob="true"' in r.text
    assert "改过的" in r.text and "beforeend" not in r.text
    total += 9 - (4000 % 3 + 1)
    assert f"共 {ROWS} 行，器具数量合计 {total}" in r.text
    # The same instrument as row 2 again: refused, saying which row has it.
    r = await add_item(client, draft, {**instrument(1), **_row(2), "name": "又一个"})
    assert len(r.content) <= MAX_ANSWER and listed(r.text) == []
    assert "已在列表中（第2行" in r.text and 'value="又一个"' in r.text
    # 删除 two ticked rows: those rows go, the counts follow.
    gone = [ids[0], ids[4998]]
    r = await post(
        client, f"/bookings/{draft}/items/delete", {"item_ids": [str(i) for i in gone]}, htmx=True
    )
    assert len(r.content) <= MAX_ANSWER and listed(r.text) == []
    for i in gone:
        assert f'<tr id="item-{i}" hx-swap-oob="delete">' in r.text
    total -= (1 % 3 + 1) + (4999 % 3 + 1)
    assert "已删除2个器具" in r.text and f"共 {ROWS - 2} 行，器具数量合计 {total}" in r.text
    booking = await Booking.select().where(Booking.id == draft).first()
    assert (booking["item_count"], booking["item_rows"]) == (total, ROWS - 2)


async def test_a_long_list_is_paged_with_and_without_javascript(client: AsyncTestClient) -> None:
    draft, ids = await long_draft(client)
    # The form: the first 50 rows, in the order they were added, and the way on.
    page = (await client.get("/bookings/new")).text
    assert listed(page) == ids[:50] and f"共 {ROWS} 行" in page and "第 1/100 页" in page
    assert f'href="/bookings/{draft}?page=2"' in page and "上一页" not in page
    # htmx: the list alone; without JavaScript, the form at that page.
    r = await client.get(f"/bookings/{draft}/rows?page=2", headers=HX)
    assert listed(r.text) == ids[50:100] and "第 2/100 页" in r.text and "<html" not in r.text
    assert 'id="item-list"' in r.text and "HX-Request" in r.headers["vary"]
    for url in (f"/bookings/{draft}/rows?page=100", f"/bookings/{draft}?page=100"):
        r = await client.get(url)
        assert "<html" in r.text and listed(r.text) == ids[4950:], url
        assert "下一页" not in r.text and f'href="/bookings/{draft}?page=99"' in r.text
    assert listed((await client.get("/bookings/new?page=3")).text) == ids[100:150]
    assert listed((await client.get("/bookings/new?page=999")).text) == ids[4950:]
    # The row being edited comes along to another page (its save replaces it on screen).
    r = await client.get(f"/bookings/{draft}/rows?page=3&item_id={ids[10]}", headers=HX)
    assert listed(r.text) == [*ids[100:150], ids[10]]
    assert f'<tr id="item-{ids[10]}" data-dblclick-get' in r.text
    # Without JavaScript 【添加器具】 shows the page of the new row.
    r = await post(client, f"/bookings/{draft}/items", {**BOOKING, **instrument(1)})
    assert "<html" in r.text and "器具已添加" in r.text and "第 101/101 页" in r.text
    new = listed(r.text)
    assert len(new) == 1 and new[0] > ids[-1]
    # htmx: deleting the last rows of the last page shows the new last page.
    r = await post(
        client,
        f"/bookings/{draft}/items/delete",
        {"item_ids": [str(new[0])], "list_page": "101"},
        htmx=True,
    )
    assert '<div id="item-list" hx-swap-oob="true">' in r.text and "第 100/100 页" in r.text
    assert listed(r.text) == ids[4950:] and "已删除1个器具" in r.text
    # Without JavaScript 删除 shows the page the user was on.
    r = await post(
        client, f"/bookings/{draft}/items/delete", {"item_ids": [str(ids[60])], "list_page": "2"}
    )
    assert "已删除1个器具" in r.text and "第 2/100 页" in r.text
    assert listed(r.text) == ids[50:60] + ids[61:101]


async def test_the_first_add_of_a_blank_form_gets_the_whole_section(
    client: AsyncTestClient,
) -> None:
    """A form opened before its draft existed says "new": its first 【添加器具】 makes the
    draft and gets the whole section (swapped in place of the fields), which names it."""
    await company_user(client)
    r = await add_item(client, "new", instrument(1))
    draft = await Booking.select(Booking.id).where(Booking.status == "draft").first()
    assert r.headers["hx-retarget"] == "#instrument-section"
    assert r.headers["hx-reswap"] == "outerHTML"
    assert 'id="instrument-section"' in r.text
    assert f'name="draft_id" value="{draft["id"]}"' in r.text
    assert f'hx-post="/bookings/{draft["id"]}/items"' in r.text and "温度计1" in r.text
    # From then on only the row.
    r = await add_item(client, draft["id"], instrument(2))
    assert 'id="instrument-section"' not in r.text and "hx-retarget" not in r.headers
    assert "温度计2" in r.text and "温度计1" not in r.text
    assert '<template><tr id="instrument-empty"' not in r.text  # the list was not empty
