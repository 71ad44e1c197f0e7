"""Tenancy follows the 企业管理 tree: parent → child → grandchild, plus a sibling of the
child and an unrelated company.

Every account of an enterprise (main and sub-accounts) sees its own data and that of every
unit below it, at any depth; nobody sees upwards or sideways. Every customer handler that
takes an id answers 404 for a sibling's, the parent's (seen from the child) and a
stranger's id, and changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from litestar.testing import AsyncTestClient

from app.security.sessions import load_user
from app.services.tenancy import scope_for
from app.tables import (
    Booking,
    BookingItem,
    Certificate,
    DownloadJob,
    Enterprise,
    Instrument,
    User,
)
from tests.factories import make_booking, make_enterprise, make_instrument, make_user
from tests.helpers import (
    BOOKING,
    LAB_AUTH,
    client_as,
    instrument,
    lab_certificate,
    lab_order,
    login,
    make_admin,
    post,
    reg,
)


@dataclass
class Unit:
    """One enterprise of the tree and a row of each kind it owns."""

    name: str
    id: int
    booking: int  # 待审核: still editable
    booking_no: str
    item: int  # an instrument row of that booking
    instrument: int
    certificate: int
    unique_no: str
    job: str


async def _unit(client: AsyncTestClient, n: int, parent: int | None, username: str) -> Unit:
    ent = await make_enterprise(n, parent=parent)
    await make_user(ent, username=username)
    pending = await make_booking(ent, items=[{"name": f"温度计{n}", "serial_no": f"T{n}"}])
    item = await BookingItem.select().where(BookingItem.booking == pending.id).first()
    inst = await make_instrument(ent, name=f"压力表{n}", serial_no=f"P{n}")
    done = await make_booking(ent, items=1)
    r = await client.post(
        f"/api/v1/bookings/{done.booking_no}/review", json={"approved": True}, headers=LAB_AUTH
    )
    assert r.status_code == 200, r.text
    unique = await lab_order(client, str(done.booking_no), f"DD{n}", n=1)
    assert (await lab_certificate(client, f"ZS-{n}", unique[0])).status_code == 200
    cert = await Certificate.select().where(Certificate.cert_no == f"ZS-{n}").first()
    job = DownloadJob(
        key=f"job-of-unit-{n}",
        enterprise=ent.id,
        certificate_ids=json.dumps([cert["id"]]),
        status="done",
        total=1,
        done=1,
    )
    await job.save()
    return Unit(
        f"测试计量单位{n}",
        int(ent.id),
        int(pending.id),
        str(pending.booking_no),
        int(item["id"]),
        int(inst.id),
        int(cert["id"]),
        unique[0],
        job.key,
    )


async def _tree(client: AsyncTestClient) -> dict[str, Unit]:
    parent = await _unit(client, 1, None, "parent")
    await make_user(
        await Enterprise.objects().get(Enterprise.id == parent.id),
        username="parent_sub",
        role="sub_account",
    )
    child = await _unit(client, 2, parent.id, "child")
    grandchild = await _unit(client, 3, child.id, "grandchild")
    sibling = await _unit(client, 4, parent.id, "sibling")
    stranger = await _unit(client, 5, None, "stranger")
    return {
        "parent": parent,
        "child": child,
        "grandchild": grandchild,
        "sibling": sibling,
        "stranger": stranger,
    }


async def _foreign(c: AsyncTestClient, them: Unit, mine: Unit) -> list[tuple[str, Any]]:
    """Every id-taking customer handler, pointed at ``them``'s rows."""
    b, i, inst = them.booking, them.item, them.instrument
    calls = [
        ("booking", c.get(f"/bookings/{b}")),
        ("送检单", c.get(f"/bookings/{b}/print")),
        ("labels", c.get(f"/bookings/{b}/labels")),
        ("items edit", c.get(f"/bookings/{b}/items?edit={i}")),
        ("their item in my booking", c.get(f"/bookings/{mine.booking}/items?edit={i}")),
        ("add item", post(c, f"/bookings/{b}/items", {**BOOKING, **instrument(7)}, htmx=True)),
        (
            "replace their item",
            post(
                c,
                f"/bookings/{mine.booking}/items",
                {**BOOKING, **instrument(7), "item_id": str(i)},
                htmx=True,
            ),
        ),
        ("delete items", post(c, f"/bookings/{b}/items/delete", {"item_ids": [str(i)]})),
        (
            "delete their item",
            post(c, f"/bookings/{mine.booking}/items/delete", {"item_ids": [str(i)]}),
        ),
        ("import", post(c, f"/bookings/{b}/import", files={"file": ("a.xlsx", b"x")})),
        ("history picker", c.get(f"/bookings/{b}/history")),
        ("their history", post(c, f"/bookings/{mine.booking}/history", {"history_ids": [str(i)]})),
        ("custody picker", c.get(f"/bookings/{b}/custody")),
        (
            "their custody",
            post(c, f"/bookings/{mine.booking}/custody", {"custody_ids": [str(inst)]}),
        ),
        ("submit", post(c, f"/bookings/{b}/submit", BOOKING)),
        ("delete booking", post(c, "/bookings/delete", {"ids": [str(b)]})),
        ("instrument", c.get(f"/instruments/{inst}/edit")),
        ("save instrument", post(c, f"/instruments/{inst}", reg(1))),
        ("delete instrument", post(c, "/instruments/delete", {"ids": [str(inst)]})),
        ("edit ticked", post(c, "/instruments/edit", {"ids": [str(inst)]})),
        ("to booking", post(c, "/instruments/to-booking", {"ids": [str(inst)]})),
        ("register history", post(c, "/instruments/history", {"history_ids": [str(i)]})),
        ("certificate", c.get(f"/certificates/{them.certificate}/file")),
        ("download", post(c, "/certificates/download", {"ids": [str(them.certificate)]})),
        ("job", c.get(f"/certificates/jobs/{them.job}")),
        ("zip", c.get(f"/certificates/jobs/{them.job}/zip")),
    ]
    return [(name, await call) for name, call in calls]


async def _counts() -> tuple[int, ...]:
    return (
        await Booking.count(),
        await BookingItem.count(),
        await Instrument.count(),
        await DownloadJob.count(),
    )


async def test_scopes_follow_the_tree(client: AsyncTestClient) -> None:
    t = await _tree(client)
    expect = {
        "parent": ["parent", "child", "grandchild", "sibling"],
        "parent_sub": ["parent", "child", "grandchild", "sibling"],
        "child": ["child", "grandchild"],
        "grandchild": ["grandchild"],
        "sibling": ["sibling"],
        "stranger": ["stranger"],
    }
    for username, units in expect.items():
        row = await User.select(User.id).where(User.username == username).first()
        user = await load_user(row["id"])
        assert user is not None
        scope = await scope_for(user)
        assert set(scope.enterprise_ids) == {t[u].id for u in units}, username
        assert scope.enterprise_ids[0] == user.enterprise_id
        assert scope.has_units == (len(units) > 1)
        assert scope.unit_name(t["child"].id) == ("测试计量单位2" if "child" in units else "")
    # A cycle (no form can make one) still ends.
    await Enterprise.update({Enterprise.parent: t["grandchild"].id}).where(
        Enterprise.id == t["parent"].id
    )
    row = await User.select(User.id).where(User.username == "child").first()
    scope = await scope_for(await load_user(row["id"]))
    assert set(scope.enterprise_ids) == {t[u].id for u in expect["parent"]}


async def test_foreign_ids_are_404_everywhere(client: AsyncTestClient) -> None:
    t = await _tree(client)
    before = await _counts()
    async with client_as("child") as c:
        for other in ("sibling", "parent", "stranger"):
            answers = await _foreign(c, t[other], t["child"])
            wrong = [(name, r.status_code) for name, r in answers if r.status_code != 404]
            assert wrong == [], (other, wrong)
            r = await c.get(
                f"/query/progress?q={t[other].unique_no}", headers={"HX-Request": "true"}
            )
            assert r.status_code == 200 and "未找到" in r.text and "<table" not in r.text
    async with client_as("grandchild") as c:
        for other in ("child", "parent"):
            answers = await _foreign(c, t[other], t["grandchild"])
            wrong = [(name, r.status_code) for name, r in answers if r.status_code != 404]
            assert wrong == [], (other, wrong)
    async with client_as("sibling") as c:
        answers = await _foreign(c, t["grandchild"], t["sibling"])
        assert {r.status_code for _, r in answers} == {404}
    assert await _counts() == before
    assert (
        await Certificate.select(Certificate.downloaded_at).where(
            Certificate.downloaded_at.is_not_null()
        )
        == []
    )


async def test_parent_and_its_sub_accounts_see_and_act_below(client: AsyncTestClient) -> None:
    t = await _tree(client)
    for username in ("parent", "parent_sub"):
        async with client_as(username) as c:
            page = (await c.get("/bookings")).text
            for unit in ("parent", "child", "grandchild", "sibling"):
                assert t[unit].booking_no in page, (username, unit)
            assert t["stranger"].booking_no not in page
            # Each row names its unit; the list filters by unit.
            assert "<th>所属单位</th>" in page
            assert '<td data-label="所属单位">测试计量单位3</td>' in page
            r = await c.get(f"/bookings?unit={t['grandchild'].id}", headers={"HX-Request": "true"})
            assert t["grandchild"].booking_no in r.text and t["child"].booking_no not in r.text
            # A unit outside the scope does not widen it.
            r = await c.get(f"/bookings?unit={t['stranger'].id}")
            assert t["stranger"].booking_no not in r.text and t["child"].booking_no in r.text
            assert (await c.get(f"/bookings/{t['grandchild'].booking}")).status_code == 200
            r = await c.get(f"/bookings/{t['grandchild'].booking}/labels")
            assert r.status_code == 200 and f"{t['grandchild'].booking_no}-1" in r.text
            r = await c.get(f"/instruments/{t['grandchild'].instrument}/edit")
            assert r.status_code == 200 and "压力表3" in r.text
            assert "压力表3" in (await c.get("/instruments")).text
            r = await c.get(f"/certificates/{t['grandchild'].certificate}/file")
            assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
            r = await c.get(f"/certificates?unit={t['child'].id}")
            assert "ZS-2" in r.text and "ZS-3" not in r.text and "<th>所属单位</th>" in r.text
            page = (await c.get("/certificates")).text
            assert all(f"ZS-{n}" in page for n in (1, 2, 3, 4)) and "ZS-5" not in page
            r = await c.get(f"/query/progress?q={t['grandchild'].unique_no}")
            assert t["grandchild"].unique_no in r.text
    # The parent acts on a grandchild's row: 编辑 an instrument.
    async with client_as("parent") as c:
        form = reg(1, name="精密压力表3", serial_no="P3")
        r = await post(c, f"/instruments/{t['grandchild'].instrument}", form)
        assert r.status_code == 303
    row = await Instrument.select().where(Instrument.id == t["grandchild"].instrument).first()
    assert row["name"] == "精密压力表3" and row["enterprise"] == t["grandchild"].id


async def test_below_sees_nothing_above_and_a_leaf_has_no_unit_column(
    client: AsyncTestClient,
) -> None:
    t = await _tree(client)
    async with client_as("child") as c:
        page = (await c.get("/bookings")).text
        assert t["child"].booking_no in page and t["grandchild"].booking_no in page
        assert t["parent"].booking_no not in page and t["sibling"].booking_no not in page
        page = (await c.get("/certificates")).text
        assert "ZS-2" in page and "ZS-3" in page and "ZS-1" not in page and "ZS-4" not in page
    async with client_as("grandchild") as c:
        page = (await c.get("/bookings")).text
        assert t["grandchild"].booking_no in page and t["child"].booking_no not in page
        assert "所属单位" not in page
        assert "压力表2" not in (await c.get("/instruments")).text
        r = await c.get(f"/bookings/{t['grandchild'].booking}/custody")
        assert "压力表3" in r.text and "压力表2" not in r.text
        r = await c.get(f"/bookings/{t['grandchild'].booking}/history")
        assert "温度计2" not in r.text and "温度计1" not in r.text


async def test_register_shows_and_filters_by_unit(client: AsyncTestClient) -> None:
    parent = await _unit(client, 1, None, "parent")
    child = await _unit(client, 2, parent.id, "child")
    stranger = await _unit(client, 5, None, "stranger")
    async with client_as("parent") as browser:
        r = await browser.get("/instruments")
        assert "所属单位" in r.text and "压力表1" in r.text and "压力表2" in r.text
        assert child.name in r.text
        r = await browser.get(f"/instruments?unit={child.id}")
        assert "压力表2" in r.text and "压力表1" not in r.text
        r = await browser.get(f"/instruments?unit={stranger.id}")  # a filter never widens
        assert "压力表5" not in r.text and "压力表1" in r.text
        r = await browser.get(f"/instruments/export.xlsx?unit={child.id}")
        assert r.status_code == 200
    async with client_as("child") as browser:
        r = await browser.get("/instruments")
        assert "所属单位" not in r.text and "压力表1" not in r.text


async def test_home_names_the_unit_of_each_booking(client: AsyncTestClient) -> None:
    parent = await _unit(client, 1, None, "parent")
    child = await _unit(client, 2, parent.id, "child")
    async with client_as("parent") as browser:
        r = await browser.get("/")
        assert "所属单位" in r.text and child.name in r.text
    async with client_as("child") as browser:
        r = await browser.get("/")
        assert "所属单位" not in r.text


async def test_admin_sees_an_enterprise_accounts_and_subsidiaries(
    client: AsyncTestClient,
) -> None:
    parent = await _unit(client, 1, None, "parent")
    child = await _unit(client, 2, parent.id, "child")
    await make_admin()
    await login(client, "admin", "Admin12345x")
    r = await client.get(f"/admin/enterprises/{parent.id}")
    assert r.status_code == 200 and "parent" in r.text and child.name in r.text
    assert "企业管理员" in r.text and "只读" in r.text
    r = await client.get(f"/admin/enterprises/{child.id}")
    assert "上级单位" in r.text and parent.name in r.text
    assert (await client.get("/admin/enterprises/99999")).status_code == 404
    async with client_as("parent") as browser:
        assert (await browser.get(f"/admin/enterprises/{parent.id}")).status_code == 403
