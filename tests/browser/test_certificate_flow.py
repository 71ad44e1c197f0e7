"""查询服务 and 电子证书 as a person clicks through them (manual ch. 2 and 4), on a desktop
and a phone, with the lab side driven through the API: a booking becomes an order; the
大单号 typed shows each instrument's status, and a change appears by itself; an unpaid
certificate is red and refused; a paid one downloads as a zip (已下载 afterwards); a
file-name rule names the next zip's file; 证书防伪查询 tells a genuine, an altered, a
foreign and a non-PDF file apart; the QR link's page says 核验通过; a 协议用户 downloads an
unpaid certificate."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from playwright.async_api import expect

from app.security.sessions import auth_changed
from app.services.certificates import verify_url
from app.tables import Certificate, Enterprise
from tests.browser.helpers import log_in, open_page, shot
from tests.factories import make_booking, make_enterprise, make_user
from tests.helpers import LAB_AUTH, make_pdf

PASSWORD = "Secret123x"


async def _lab(server: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server, headers=LAB_AUTH) as lab:
        r = await lab.request(method, path, **kwargs)
    assert r.status_code == 200, r.text
    return r.json()


async def _certificate(server: str, cert_no: str, unique_no: str, paid: bool) -> None:
    await _lab(
        server,
        "PUT",
        f"/api/v1/certificates/{cert_no}",
        files={"file": ("c.pdf", make_pdf(cert_no), "application/pdf")},
        data={"unique_no": unique_no, "completed_on": "2026-11-20", "paid": str(paid).lower()},
    )


async def _zip_from(page: Any, link: Any) -> zipfile.ZipFile:
    async with page.expect_download() as info:
        await link.click()
    download = await info.value
    return zipfile.ZipFile(io.BytesIO(Path(await download.path()).read_bytes()))


async def _download_ticked(page: Any, cert_no: str) -> zipfile.ZipFile:
    """Tick ``cert_no``, 【下载证书】, wait for this job's link (not an earlier one's)."""
    link = page.get_by_role("link", name="下载证书压缩包")
    before = await link.get_attribute("href") if await link.count() else None
    await page.get_by_role("checkbox", name=f"选择证书 {cert_no}").check()
    await page.get_by_role("button", name="下载证书", exact=True).click()
    await expect(link).to_be_visible(timeout=20_000)
    await expect(link).not_to_have_attribute("href", before or "")
    return await _zip_from(page, link)


async def _verify(page: Any, name: str, data: bytes) -> Any:
    await page.get_by_label("证书文件").set_input_files(
        files=[{"name": name, "mimeType": "application/pdf", "buffer": data}]
    )
    await page.get_by_role("button", name="点击上传").click()
    return page.locator("#verdict")


async def test_certificates_end_to_end(page: Any, server: str) -> None:
    ent = await make_enterprise(41, name="证书测试单位")
    await make_user(ent, PASSWORD, username="certs41")
    booking = await make_booking(ent, items=2, status="approved")
    lines = [
        {"unique_no": f"DD41-00{k}", "name": f"温度计{k}", "serial_no": f"T-{k}", "model": "WSS"}
        for k in (1, 2)
    ]
    await _lab(
        server,
        "PUT",
        "/api/v1/orders/DD41",
        json={"booking_no": booking.booking_no, "instruments": lines},
    )

    # 检测进度查询: typing the 大单号 shows each instrument, no button pressed.
    await log_in(page, "certs41", PASSWORD)
    await open_page(page, "查询服务", "检测进度查询")
    await page.get_by_label("大单号或唯一性号").press_sequentially("DD41")
    result = page.locator("#progress-result")
    await expect(result.get_by_role("row").filter(has_text="DD41-001")).to_contain_text("待收样")
    await expect(result.get_by_role("row").filter(has_text="DD41-002")).to_contain_text("温度计2")
    await _lab(server, "POST", "/api/v1/instruments/DD41-001/status", json={"status": "检测中"})
    await expect(result.get_by_role("row").filter(has_text="DD41-001")).to_contain_text(
        "检测中", timeout=10_000
    )
    await shot(page, "certificates-progress")

    # 电子证书: the unpaid one is red, said in words, has no tick box and no URL.
    await _certificate(server, "ZS41-A", "DD41-001", paid=True)
    await _certificate(server, "ZS41-B", "DD41-002", paid=False)
    await open_page(page, "电子证书", "电子证书")
    unpaid_row = page.get_by_role("row").filter(has_text="ZS41-B")
    await expect(unpaid_row.locator(".unpaid")).to_have_text("ZS41-B")
    await expect(unpaid_row).to_contain_text("未缴费")
    await expect(unpaid_row.get_by_role("checkbox")).to_have_count(0)
    unpaid = await Certificate.select().where(Certificate.cert_no == "ZS41-B").first()
    refused = await page.request.get(f"/certificates/{unpaid['id']}/file")
    assert refused.status == 409
    await shot(page, "certificates-list")

    archive = await _download_ticked(page, "ZS41-A")
    assert archive.namelist() == ["ZS41-A.pdf"]
    issued = archive.read("ZS41-A.pdf")
    await expect(page.get_by_role("row").filter(has_text="ZS41-A")).to_contain_text(
        "已下载", timeout=10_000
    )

    # 自定义文件名: 器具名称 + 出厂编号.
    await page.get_by_role("button", name="自定义文件名").click()
    dialog = page.get_by_role("dialog", name="自定义文件名")
    await dialog.get_by_role("checkbox", name="器具名称").check()
    await dialog.get_by_role("checkbox", name="出厂编号").check()
    await dialog.get_by_role("button", name="将勾选的名称加入文件名字规则").click()
    await expect(dialog.get_by_role("button", name="移除 出厂编号")).to_be_visible()
    await dialog.get_by_role("button", name="移除 证书编号").click()
    await expect(dialog.get_by_text("示例：器具名称_出厂编号.pdf")).to_be_visible()
    await dialog.get_by_role("button", name="保存").click()
    await expect(dialog.get_by_text("证书文件命名规则已保存")).to_be_visible()
    await shot(page, "certificates-rule")
    await dialog.get_by_role("button", name="关闭").click()
    archive = await _download_ticked(page, "ZS41-A")
    assert archive.namelist() == ["温度计1_T-1.pdf"]

    # 证书防伪查询: genuine, altered, another PDF, not a PDF.
    await open_page(page, "查询服务", "证书防伪查询")
    await expect(await _verify(page, "a.pdf", issued)).to_contain_text("核验通过")
    await expect(page.locator("#verdict")).to_contain_text("ZS41-A")
    altered = issued + b"\n% changed after issue\n"
    await expect(await _verify(page, "b.pdf", altered)).to_contain_text("篡改")
    await expect(await _verify(page, "c.pdf", make_pdf("other"))).to_contain_text("非本平台")
    await expect(await _verify(page, "d.pdf", b"GIF89a not a pdf")).to_contain_text("不是可读的PDF")
    await shot(page, "certificates-verify")

    # The QR code's link, opened on a phone by anyone.
    await page.goto(urlsplit(verify_url("ZS41-A", 1)).path)
    await expect(page.get_by_text("核验通过")).to_be_visible()
    await shot(page, "certificates-verify-link")

    # A 协议用户 downloads an unpaid certificate.
    await Enterprise.update({Enterprise.is_contract: True}).where(Enterprise.id == ent.id)
    await auth_changed()  # made behind the app's back: its cached users are read again
    await page.goto("/certificates")
    archive = await _download_ticked(page, "ZS41-B")
    assert len(archive.namelist()) == 1 and archive.read(archive.namelist()[0]).startswith(b"%PDF-")
