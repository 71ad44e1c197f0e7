"""打印送检单 and the instrument labels (#12 item 2): the pages, who may open them, the links
to them, and the label codes in the lab API's booking answer."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from app.tables import Booking, BookingItem
from tests.factories import make_booking, make_enterprise, make_user
from tests.helpers import (
    BOOKING,
    LAB_AUTH,
    add_item,
    client_as,
    company_user,
    instrument,
    login,
    make_admin,
    open_form,
    post,
    qr_paths,
    qr_payload_path,
    submitted_booking,
)


async def test_the_print_sheet_is_a_page_of_its_own(client: AsyncTestClient) -> None:
    await company_user(client)
    b = await submitted_booking(client, 3)
    r = await client.get(f"/bookings/{b['id']}/print")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    # No sidebar, no menu: a sheet of paper with a 打印 button (app.js calls print()).
    assert 'id="sidebar"' not in page and "data-menu-toggle" not in page
    assert "data-print" in page and ">打印</button>" in page
    assert "<script>" not in page and "onclick" not in page  # strict CSP
    for text in (
        "送检单",
        b["booking_no"],
        BOOKING["client_name"],
        BOOKING["client_address"],
        BOOKING["cert_address"],
        BOOKING["contact_name"],
        BOOKING["mobile"],
        BOOKING["sender"],
        BOOKING["expected_date"],
        "待审核",
        "温度计1",
        "温度计3",
        "2023011003",  # 出厂编号 of the third row
    ):
        assert text in page, text
    # One QR code: exactly the 预约单号, as an <svg> in the page (the CSP forbids no
    # inline SVG; a data: URL is not needed).
    assert qr_paths(page) == [qr_payload_path(b["booking_no"])]
    assert "data:image" not in page


async def test_the_labels_carry_the_booking_number_and_row(client: AsyncTestClient) -> None:
    await company_user(client)
    b = await submitted_booking(client, 3)
    r = await client.get(f"/bookings/{b['id']}/labels")
    assert r.status_code == 200
    codes = [f"{b['booking_no']}-{n}" for n in (1, 2, 3)]
    assert qr_paths(r.text) == [qr_payload_path(code) for code in codes]
    for n, code in enumerate(codes, 1):
        assert code in r.text
        assert f"温度计{n}" in r.text and f"2023011{n:03d}" in r.text
    assert 'id="sidebar"' not in r.text and "data-print" in r.text


async def test_labels_fill_a_sheet_of_24_then_the_next(client: AsyncTestClient) -> None:
    enterprise = await make_enterprise(1)
    await make_user(enterprise, username="big")
    rows = [{"name": f"压力表{k}", "serial_no": f"P-{k:03d}", "model": "Y-100"} for k in range(30)]
    booking = await make_booking(enterprise, rows)
    await login(client, "big", "Secret123x")
    r = await client.get(f"/bookings/{booking.id}/labels")
    assert r.text.count('class="label-sheet"') == 2
    assert r.text.count('class="label"') == 30
    assert f"{booking.booking_no}-30" in r.text and "P-029" in r.text
    r = await client.get(f"/bookings/{booking.id}/print")
    assert r.text.count('<tr class="item-row"') == 30


async def test_a_draft_has_no_sheet(client: AsyncTestClient) -> None:
    await company_user(client)
    draft = await open_form(client)
    assert "器具已添加" in (await add_item(client, draft, instrument(1))).text
    draft_id = (await Booking.select(Booking.id).first())["id"]
    for what in ("print", "labels"):
        r = await client.get(f"/bookings/{draft_id}/{what}")
        assert r.status_code == 404 and "尚未提交" in r.text, what
    # Its 预约送检 page offers no print link; 预约记录 neither.
    assert f"/bookings/{draft_id}/print" not in (await client.get(f"/bookings/{draft_id}")).text
    assert f"/bookings/{draft_id}/print" not in (await client.get("/bookings")).text


async def test_links_from_the_records_and_the_booking(client: AsyncTestClient) -> None:
    await company_user(client)
    b = await submitted_booking(client, 1)
    for url in ("/bookings", f"/bookings/{b['id']}"):
        page = (await client.get(url)).text
        assert f'href="/bookings/{b["id"]}/print"' in page, url
        assert f'href="/bookings/{b["id"]}/labels"' in page, url
    r = await client.get("/bookings", headers={"HX-Request": "true"})  # a filter's swap
    assert f'href="/bookings/{b["id"]}/print"' in r.text


async def test_another_enterprise_gets_404(client: AsyncTestClient) -> None:
    mine = await make_enterprise(1)
    other = await make_enterprise(2)
    child = await make_enterprise(3, parent=mine.id)
    await make_user(mine, username="mine")
    await make_user(child, username="child")
    theirs = await make_booking(other, 2)
    childs = await make_booking(child, 2)
    own = await make_booking(mine, 2)
    async with client_as("mine") as c:
        for what in ("print", "labels"):
            assert (await c.get(f"/bookings/{theirs.id}/{what}")).status_code == 404
            # A parent prints its subsidiary's, as it sees them elsewhere.
            r = await c.get(f"/bookings/{childs.id}/{what}")
            assert r.status_code == 200 and str(childs.booking_no) in r.text
            assert (await c.get(f"/bookings/{own.id}/{what}")).status_code == 200
    async with client_as("child") as c:
        for what in ("print", "labels"):
            assert (await c.get(f"/bookings/{own.id}/{what}")).status_code == 404
            assert (await c.get(f"/bookings/{theirs.id}/{what}")).status_code == 404
            assert (await c.get(f"/admin/bookings/{childs.id}/{what}")).status_code == 403


async def test_institute_staff_print_any_booking(client: AsyncTestClient) -> None:
    enterprise = await make_enterprise(1)
    booking = await make_booking(enterprise, 2, status="approved")
    draft = await make_booking(enterprise, 1, status="draft")
    await make_admin()
    await login(client, "admin", "Admin12345x")
    r = await client.get(f"/admin/bookings/{booking.id}/print")
    assert r.status_code == 200 and str(booking.booking_no) in r.text and "已通过" in r.text
    assert f'href="/admin/bookings/{booking.id}"' in r.text  # 返回 leads back to staff's page
    r = await client.get(f"/admin/bookings/{booking.id}/labels")
    assert r.status_code == 200 and f"{booking.booking_no}-2" in r.text
    page = (await client.get(f"/admin/bookings/{booking.id}")).text
    assert f'href="/admin/bookings/{booking.id}/print"' in page
    assert f'href="/admin/bookings/{booking.id}/labels"' in page
    for what in ("print", "labels"):
        assert (await client.get(f"/admin/bookings/{draft.id}/{what}")).status_code == 404
        assert (await client.get(f"/admin/bookings/99999/{what}")).status_code == 404
        # The customer's address is for customers (an admin has no enterprise).
        assert (await client.get(f"/bookings/{booking.id}/{what}")).status_code == 403


async def test_the_lab_api_gives_each_row_its_label_code(client: AsyncTestClient) -> None:
    await company_user(client)
    b = await submitted_booking(client, 3)
    # The row numbers follow the list as shown, after a row is deleted too.
    second = await BookingItem.select(BookingItem.id).where(BookingItem.name == "温度计2").first()
    r = await post(client, f"/bookings/{b['id']}/items/delete", {"item_ids": [str(second["id"])]})
    assert r.status_code == 200
    r = await client.get("/api/v1/bookings", headers=LAB_AUTH)
    got = r.json()["bookings"][0]["instruments"]
    assert [(i["name"], i["row"], i["label_code"]) for i in got] == [
        ("温度计1", 1, f"{b['booking_no']}-1"),
        ("温度计3", 2, f"{b['booking_no']}-2"),
    ]
    labels = (await client.get(f"/bookings/{b['id']}/labels")).text
    assert qr_paths(labels) == [qr_payload_path(i["label_code"]) for i in got]
    schema = (await client.get("/schema/openapi.json")).json()
    out = schema["components"]["schemas"]["InstrumentOut"]
    assert {"row", "label_code"} <= set(out["required"])
    assert "预约单号" in out["properties"]["label_code"]["description"]
