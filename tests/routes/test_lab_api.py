"""The lab system's API and 平台管理 › 预约审核: both results, tokens, 404, 409, idempotency."""

from __future__ import annotations

from litestar.testing import AsyncTestClient
from openapi_spec_validator import validate

from app.tables import AuditLog, Booking
from tests.helpers import (
    BOOKING,
    company_user,
    login,
    make_admin,
    outbox,
    post,
    run_jobs,
    submitted_booking,
)

AUTH = {"Authorization": "Bearer lab-token-1"}


async def _booking(client: AsyncTestClient, items: int = 2) -> dict:
    await company_user(client)
    return await submitted_booking(client, items)


async def _sms_count(client: AsyncTestClient) -> int:
    await run_jobs(client)
    return len([m for m in await outbox(BOOKING["mobile"]) if m["kind"] == "booking_review"])


async def test_list_pending_with_instruments(client: AsyncTestClient) -> None:
    b = await _booking(client)
    r = await client.get("/api/v1/bookings", headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 1
    got = body["bookings"][0]
    assert got["booking_no"] == b["booking_no"] and got["status"] == "待审核"
    assert [i["name"] for i in got["instruments"]] == ["温度计1", "温度计2"]
    assert got["mobile"] == BOOKING["mobile"]
    r = await client.get("/api/v1/bookings?status=已通过", headers=AUTH)
    assert r.json()["total"] == 0
    r = await client.get("/api/v1/bookings?status=草稿", headers=AUTH)
    assert r.status_code == 400


async def test_approve_once_then_idempotent(client: AsyncTestClient) -> None:
    b = await _booking(client)
    url = f"/api/v1/bookings/{b['booking_no']}/review"
    r = await client.post(url, json={"approved": True}, headers=AUTH)
    assert r.status_code == 200
    assert r.json() == {
        "booking_no": b["booking_no"],
        "status": "已通过",
        "reason": "",
        "changed": True,
    }
    assert await _sms_count(client) == 1
    r = await client.post(url, json={"approved": True}, headers=AUTH)
    assert r.status_code == 200 and r.json()["changed"] is False
    assert await _sms_count(client) == 1  # no second SMS
    text = (await outbox(BOOKING["mobile"]))[0]["text"]
    assert b["booking_no"] in text and "审核通过" in text
    assert await AuditLog.exists().where(
        (AuditLog.event == "预约审核") & (AuditLog.username == "实验室系统")
    )
    # Another decision on a reviewed booking is a conflict.
    r = await client.post(url, json={"approved": False, "reason": "x"}, headers=AUTH)
    assert r.status_code == 409 and "已通过" in r.json()["detail"]
    # The customer now sees it read-only.
    r = await client.get(f"/bookings/{b['id']}")
    assert "只能查看" in r.text


async def test_reject_with_reason(client: AsyncTestClient) -> None:
    b = await _booking(client)
    url = f"/api/v1/bookings/{b['booking_no']}/review"
    # Well-formed JSON, but a rejection needs a reason (the schema's oneOf): 422.
    r = await client.post(url, json={"approved": False}, headers=AUTH)
    assert r.status_code == 422 and "原因" in r.json()["detail"]
    assert r.json()["errors"] == {"reason": "驳回时请填写原因"}
    r = await client.post(url, json={"approved": False, "reason": "器具型号不全"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["status"] == "已驳回"
    r = await client.post(url, json={"approved": False, "reason": "器具型号不全"}, headers=AUTH)
    assert r.json()["changed"] is False
    assert await _sms_count(client) == 1
    assert "器具型号不全" in (await outbox(BOOKING["mobile"]))[0]["text"]
    row = await Booking.select().first()
    assert row["status"] == "rejected" and row["reject_reason"] == "器具型号不全"


async def test_tokens_unknown_and_wrong_state(client: AsyncTestClient) -> None:
    b = await _booking(client)
    url = f"/api/v1/bookings/{b['booking_no']}/review"
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "lab-token-1"}):
        r = await client.post(url, json={"approved": True}, headers=headers)
        assert r.status_code == 401 and "令牌" in r.json()["detail"]
        assert (await client.get("/api/v1/bookings", headers=headers)).status_code == 401
    r = await client.post("/api/v1/bookings/YY000/review", json={"approved": True}, headers=AUTH)
    assert r.status_code == 404 and "不存在" in r.json()["detail"]
    # A booking already 已驳回 cannot be approved by a stale call.
    await Booking.update({Booking.status: "rejected"}).where(Booking.id == b["id"])
    r = await client.post(
        url, json={"approved": True}, headers={"Authorization": "Bearer lab-token-2"}
    )
    assert r.status_code == 409
    r = await client.post(
        url, content=b"not json", headers={**AUTH, "content-type": "application/json"}
    )
    assert r.status_code == 400
    assert await _sms_count(client) == 0


async def test_schema_documents_the_api(client: AsyncTestClient) -> None:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/api/v1/bookings" in paths and "/api/v1/bookings/{booking_no}/review" in paths
    assert "bearer" in r.json()["components"]["securitySchemes"]
    assert "/login" not in paths  # pages are not part of the API
    validate(r.json())  # a valid OpenAPI 3.1 document


async def test_schema_states_the_contract(client: AsyncTestClient) -> None:
    """Every operation: bearer security, 400 and 401 with the one error body, a path
    number's pattern and length; the bounds and the review's conditional reason."""
    schema = (await client.get("/schema/openapi.json")).json()
    operations = [op for item in schema["paths"].values() for op in item.values()]
    assert len(operations) == 6
    for op in operations:
        assert op["security"] == [{"bearer": []}]
        for code in ("200", "400", "401"):
            assert code in op["responses"], (op["operationId"], code)
        for code, answer in op["responses"].items():
            if code != "200":
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/ApiError"
        for p in op.get("parameters", []):
            if p["in"] == "path":
                assert p["schema"]["maxLength"] <= 50 and p["schema"]["pattern"]
    listing = schema["paths"]["/api/v1/bookings"]["get"]
    bounds = {p["name"]: p["schema"] for p in listing["parameters"]}
    assert (bounds["page"]["minimum"], bounds["page"]["maximum"]) == (1, 10_000)
    assert (bounds["per_page"]["minimum"], bounds["per_page"]["maximum"]) == (1, 200)
    assert set(schema["components"]["schemas"]["LabStatus"]["enum"]) == {
        "待审核",
        "已通过",
        "已驳回",
        "",
    }
    reject = schema["components"]["schemas"]["ReviewIn"]["oneOf"][1]
    assert reject["properties"]["approved"]["const"] is False
    assert "reason" in reject["required"] and reject["properties"]["reason"]["minLength"] == 1


async def test_bounds_are_refused_not_clamped(client: AsyncTestClient) -> None:
    url = "/api/v1/bookings?per_page=-3106483800253898240&page=7283"
    r = await client.get(url, headers=AUTH)
    assert r.status_code == 400 and r.json()["extra"][0]["key"] == "per_page"
    for query in ("page=0", "page=10001", "per_page=201", "per_page=0"):
        assert (await client.get(f"/api/v1/bookings?{query}", headers=AUTH)).status_code == 400
    r = await client.get("/api/v1/bookings?page=10000&per_page=200", headers=AUTH)
    assert r.status_code == 200 and r.json()["bookings"] == []
    # A JSON boolean is true or false, not 0 (Litestar alone would convert it).
    r = await client.post("/api/v1/bookings/YY1/review", json={"approved": 0}, headers=AUTH)
    assert r.status_code == 400 and r.json()["extra"][0]["key"] == "approved"


async def test_admin_review_screen(client: AsyncTestClient) -> None:
    b = await _booking(client)
    await post(client, "/logout")
    await make_admin()
    await login(client, "admin", "Admin12345x")
    r = await client.get("/admin/bookings")
    assert b["booking_no"] in r.text
    r = await client.get(f"/admin/bookings/{b['id']}")
    assert "温度计1" in r.text and "通过" in r.text
    r = await post(client, f"/admin/bookings/{b['id']}/review", {"action": "reject"})
    assert "驳回时请填写原因" in r.text
    r = await post(client, f"/admin/bookings/{b['id']}/review", {"reason": "型号不全"})
    assert "请点击【通过】或【驳回】" in r.text
    assert (await Booking.select().first())["status"] == "pending"
    r = await post(client, f"/admin/bookings/{b['id']}/review", {"action": "approve"})
    assert r.status_code == 303
    assert (await Booking.select().first())["status"] == "approved"
    assert await _sms_count(client) == 1
    r = await client.get("/admin/sms")
    assert "已审核通过" in r.text
    assert (await client.get("/admin/bookings/99999")).status_code == 404
