"""The user (and scope) cached per session (app/security/sessions.py): a request reads the
user from the database only when the store's generation changed, and every change of who
may do or see what shows at once, in every process.

Each ``AsyncTestClient(app=create_app())`` is an app with a cache of its own: a second one
holding the same session cookie stands for another process (embedded mode shares the
database, production mode the database and Redis).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app.clock import now
from app.main import create_app
from app.security import sessions
from app.security.sessions import (
    GENERATION_KEY,
    DatabaseSessionStore,
    auth_changed,
    cookie_name,
)
from app.tables import ContractPhone, Enterprise, User, WebSession
from tests.factories import make_enterprise
from tests.helpers import (
    PRODUCTION,
    client_as,
    company_user,
    last_code,
    login,
    make_admin,
    post,
    set_session_cookie,
    subsidiary_form,
)


@asynccontextmanager
async def other_process(key: str) -> AsyncIterator[AsyncTestClient]:
    """Another app (its own cache) holding the session ``key``."""
    async with AsyncTestClient(app=create_app(), base_url="http://testserver.local") as c:
        c.follow_redirects = False
        set_session_cookie(c, key)
        yield c


def session_key(client: AsyncTestClient) -> str:
    key = client.cookies.get(cookie_name())
    assert key
    return key


async def warm(*clients: AsyncTestClient, path: str = "/bookings") -> None:
    """Each client's app has the user cached (two requests: the second is served from it)."""
    for c in clients:
        for _ in range(2):
            assert (await c.get(path)).status_code == 200


async def test_the_user_is_read_once_until_the_generation_changes(
    client: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await company_user(client)
    reads: list[int] = []
    real = sessions.load_user

    async def counting(user_id: int) -> Any:
        reads.append(user_id)
        return await real(user_id)

    monkeypatch.setattr(sessions, "load_user", counting)
    for _ in range(3):
        assert (await client.get("/bookings")).status_code == 200
    assert len(reads) == 1  # the first request read it, the others found it cached
    await auth_changed()
    assert (await client.get("/bookings")).status_code == 200
    assert (await client.get("/")).status_code == 200
    assert len(reads) == 2


async def test_a_disabled_sub_account_loses_access_at_once_in_every_process(
    client: AsyncTestClient,
) -> None:
    await company_user(client)
    form = {"username": "zhang1", "name": "张1", "password": "Kx7mWq2024", "phone": "13912340001"}
    assert (await post(client, "/settings/users", {**form, "department": ""})).status_code == 303
    zhang = await User.select(User.id).where(User.username == "zhang1").first()
    async with client_as("zhang1", "Kx7mWq2024") as sub:
        async with other_process(session_key(sub)) as sub_elsewhere:
            await warm(sub, sub_elsewhere)
            r = await post(client, f"/settings/users/{zhang['id']}/disable", htmx=True)
            assert "已停用 zhang1" in r.text
            assert (await sub.get("/bookings")).status_code == 303
            assert (await sub_elsewhere.get("/bookings")).status_code == 303


async def test_a_disabled_unit_loses_access_at_once_in_every_process(
    client: AsyncTestClient,
) -> None:
    await company_user(client)
    r = await post(
        client, "/settings/enterprises", subsidiary_form(1), files={"licence": ("", b"")}
    )
    assert r.status_code == 303, r.text
    unit = await Enterprise.select(Enterprise.id).where(Enterprise.name == "测试子公司1").first()
    async with client_as("sub1", "Subsid123x") as sub:
        async with other_process(session_key(sub)) as sub_elsewhere:
            await warm(sub, sub_elsewhere)
            r = await post(
                client, "/settings/enterprises/disable", {"ids": [str(unit["id"])]}, htmx=True
            )
            assert "已停用1个单位" in r.text
            assert (await sub.get("/bookings")).status_code == 303
            assert (await sub_elsewhere.get("/bookings")).status_code == 303


async def test_a_new_subsidiary_is_in_the_scope_at_once_in_every_process(
    client: AsyncTestClient,
) -> None:
    await company_user(client)
    async with other_process(session_key(client)) as elsewhere:
        await warm(client, elsewhere)
        assert 'name="unit"' not in (await elsewhere.get("/bookings")).text  # one unit
        r = await post(
            client, "/settings/enterprises", subsidiary_form(1), files={"licence": ("", b"")}
        )
        assert r.status_code == 303, r.text
        for c in (client, elsewhere):
            page = (await c.get("/bookings")).text
            assert 'name="unit"' in page and "测试子公司1" in page  # the 所属单位 filter
        # Renamed: the new name at once.
        unit = (
            await Enterprise.select(Enterprise.id).where(Enterprise.name == "测试子公司1").first()
        )
        r = await post(
            client,
            f"/settings/enterprises/{unit['id']}",
            subsidiary_form(1, name="改名子公司1", password=""),
            files={"licence": ("", b"")},
        )
        assert r.status_code == 303, r.text
        page = (await elsewhere.get("/bookings")).text
        assert "改名子公司1" in page and "测试子公司1" not in page


async def test_a_renamed_account_shows_at_once_in_every_process(client: AsyncTestClient) -> None:
    await company_user(client)
    form = {"username": "zhang1", "name": "张1", "password": "Kx7mWq2024", "phone": "13912340001"}
    assert (await post(client, "/settings/users", {**form, "department": ""})).status_code == 303
    zhang = await User.select(User.id).where(User.username == "zhang1").first()
    async with client_as("zhang1", "Kx7mWq2024") as sub:
        async with other_process(session_key(sub)) as sub_elsewhere:
            await warm(sub, sub_elsewhere, path="/")
            r = await post(
                client,
                f"/settings/users/{zhang['id']}",
                {**form, "name": "张三丰", "password": "", "department": ""},
            )
            assert r.status_code == 303, r.text
            for c in (sub, sub_elsewhere):
                r = await c.get("/")
                assert r.status_code == 200 and "张三丰" in r.text


async def test_contract_customer_edits_show_at_once_in_every_process(
    client: AsyncTestClient,
) -> None:
    ent = await make_enterprise(20, name="协议单位", is_contract=True, contract_no="HT-2026-001")
    await ContractPhone.insert(ContractPhone(enterprise=ent.id, phone="13611110000"))
    await post(client, "/sms-code", {"purpose": "login", "phone": "13611110000"}, htmx=True)
    code = await last_code(client, "13611110000")
    r = await post(client, "/login/phone", {"phone": "13611110000", "code": code})
    assert r.status_code == 303
    await make_admin()
    form = {"name": "协议单位", "uscc": ent.uscc, "contract_no": "HT-2026-001"}
    async with (
        other_process(session_key(client)) as elsewhere,
        client_as("admin", "Admin12345x") as admin,
    ):
        await warm(client, elsewhere, path="/")
        # 单位名称 changed: the header says the new one.
        r = await post(
            admin,
            f"/admin/contracts/{ent.id}",
            {**form, "name": "协议单位新名", "phones": "13611110000"},
        )
        assert r.status_code == 303, r.text
        for c in (client, elsewhere):
            assert "协议单位新名" in (await c.get("/")).text
        # The phone taken off the contract: its account is out at once.
        r = await post(
            admin,
            f"/admin/contracts/{ent.id}",
            {**form, "name": "协议单位新名", "phones": "13611119999"},
        )
        assert r.status_code == 303, r.text
        for c in (client, elsewhere):
            assert (await c.get("/")).status_code == 303


async def test_password_reset_and_logout_end_the_session_in_every_process(
    client: AsyncTestClient,
) -> None:
    form = await company_user(client)
    key = session_key(client)
    async with other_process(key) as elsewhere:
        await warm(client, elsewhere)
        await post(client, "/logout")
        assert (await elsewhere.get("/bookings")).status_code == 303
        r = await login(client, form["username"], form["password"])
        assert r.status_code == 303
        set_session_cookie(elsewhere, session_key(client))
        await warm(elsewhere)
        await post(
            client, "/sms-code", {"purpose": "reset", "phone": form["contact_phone"]}, htmx=True
        )
        code = await last_code(client, form["contact_phone"])
        reset = {
            "username": form["username"],
            "phone": form["contact_phone"],
            "password": "NewPass2026",
            "password2": "NewPass2026",
            "code": code,
        }
        assert (await post(client, "/forgot", reset)).status_code == 303
        assert (await elsewhere.get("/bookings")).status_code == 303


@pytest.mark.skipif(PRODUCTION, reason="embedded mode's store: the web_session table")
async def test_the_generation_row_outlives_the_purge_of_idle_sessions() -> None:
    store = DatabaseSessionStore()
    await store.new_generation()
    _, generation = await store.lookup("nothing")
    assert generation
    await WebSession.update({WebSession.last_seen: now() - timedelta(days=2)}).where(
        WebSession.key_hash == GENERATION_KEY
    )
    await store.purge_expired()
    assert (await store.lookup("nothing"))[1] == generation
    await store.new_generation()
    assert (await store.lookup("nothing"))[1] not in ("", generation)
