"""协议客户 import (SPEC §9): a template, then all rows or none, every error by row and
column; an existing 协议客户 (same USCC) is updated."""

from __future__ import annotations

import io

import openpyxl
from litestar.testing import AsyncTestClient

from app.fields import CONTRACT_FIELDS
from app.services.instrument_xlsx import IMPORT_SHEET_TITLE, build_template
from app.tables import AuditLog, ContractPhone, Enterprise
from tests.helpers import login, make_admin, post, uscc


def contracts_xlsx(rows: list[list[str]]) -> bytes:
    wb = openpyxl.load_workbook(io.BytesIO(build_template(CONTRACT_FIELDS)))
    ws = wb[IMPORT_SHEET_TITLE]
    for r, row in enumerate(rows, start=2):
        for c, value in enumerate(row, start=1):
            ws.cell(row=r, column=c, value=value)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


async def _import(client: AsyncTestClient, data: bytes) -> str:
    r = await post(client, "/admin/contracts/import", files={"file": ("c.xlsx", data)}, htmx=True)
    assert r.status_code == 200, r.text
    return r.text


async def test_contract_import_adds_updates_and_refuses_whole(client: AsyncTestClient) -> None:
    await make_admin()
    await login(client, "admin", "Admin12345x")
    r = await client.get("/admin/contracts/template.xlsx")
    assert r.status_code == 200
    headers = [
        c.value for c in openpyxl.load_workbook(io.BytesIO(r.content))[IMPORT_SHEET_TITLE][1]
    ]
    assert headers[:4] == ["单位名称*", "统一社会信用代码*", "合同编号*", "联系人手机*"]

    text = await _import(
        client,
        contracts_xlsx(
            [
                ["甲单位", uscc(70), "HT-1", "13800000070,13800000071"],
                ["乙单位", uscc(71), "HT-2", "13800000072"],
            ]
        ),
    )
    assert "新增2个，更新0个" in text
    assert await Enterprise.count().where(Enterprise.is_contract == True) == 2  # noqa: E712
    assert await ContractPhone.count() == 3

    # One bad row refuses the whole file; each error names its row and column.
    bad = contracts_xlsx(
        [
            ["甲单位改名", uscc(70), "HT-1b", "13800000070"],
            ["丙单位", "91320000000000000X", "HT-3", "12345"],
            ["丁单位", uscc(71), "HT-4", "13800000070"],
        ]
    )
    text = await _import(client, bad)
    assert "第3行「统一社会信用代码」" in text and "第3行「联系人手机」" in text
    assert "第4行「联系人手机」" in text  # 13800000070 belongs to 甲单位
    assert await Enterprise.count().where(Enterprise.name == "甲单位改名") == 0

    text = await _import(client, contracts_xlsx([["甲单位改名", uscc(70), "HT-1b", "13800000070"]]))
    assert "新增0个，更新1个" in text
    ent = await Enterprise.select().where(Enterprise.uscc == uscc(70)).first()
    assert ent["name"] == "甲单位改名" and ent["contract_no"] == "HT-1b"
    phones = await ContractPhone.select(ContractPhone.phone).where(
        ContractPhone.enterprise == ent["id"]
    )
    assert [p["phone"] for p in phones] == ["13800000070"]
    assert await AuditLog.count().where(AuditLog.detail.like("导入%")) == 2


async def test_duplicate_uscc_in_one_file(client: AsyncTestClient) -> None:
    await make_admin()
    await login(client, "admin", "Admin12345x")
    data = contracts_xlsx(
        [["甲", uscc(80), "HT-1", "13800000080"], ["乙", uscc(80), "HT-2", "13800000081"]]
    )
    text = await _import(client, data)
    assert "第3行「统一社会信用代码」：与第2行重复" in text
    assert await Enterprise.count() == 0


async def test_not_a_spreadsheet_and_customers_403(client: AsyncTestClient) -> None:
    await make_admin()
    await login(client, "admin", "Admin12345x")
    assert "不是有效的 Excel" in await _import(client, b"PK\x03\x04 not really")
