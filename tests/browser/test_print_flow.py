"""打印送检单 and the instrument labels (#12 item 2) in Chromium, on a desktop (1366×900) and
a phone (390×844): opened from 预约记录, printed to PDF as A4, the QR codes checked.

The QR check: no decoder is installed; the test draws the code of the expected text with
segno (what the server uses) and compares the ``<path>`` the page shows. The same text
gives the same modules and any other text other ones, so equal paths mean the page encodes
exactly the 预约单号 (and each label exactly ``<预约单号>-<序号>``).
"""

from __future__ import annotations

import io
import unicodedata
from typing import Any

from playwright.async_api import expect
from pypdf import PdfReader

from app.tables import Booking
from tests.browser.helpers import SHOTS, log_in, open_page, shot
from tests.factories import make_booking, make_enterprise, make_user
from tests.helpers import qr_payload_path

USERNAME = "printer"
PASSWORD = "Secret123x"
DESKTOP = {"width": 1366, "height": 900}
# window.print() replaced before the page loads: the test sees that 打印 called it.
PRINT_SPY = (
    "window.print = () => { document.documentElement.dataset.printed ="
    " String(Number(document.documentElement.dataset.printed || 0) + 1); };"
)


def _row(k: int) -> dict[str, Any]:
    """An instrument row as people fill them: long names, ranges and requirements."""
    return {
        "name": f"数字温度计{k}" if k % 3 else f"精密数字压力校验仪{k}",
        "equipment_no": f"SB-2026-{k:03d}",
        "serial_no": f"T2026{k:05d}",
        "model": "WSS-411" if k % 2 else "ConST211-100",
        "measuring_range": "(-50~150)℃" if k % 2 else "(0~60)MPa",
        "accuracy_class": "0.1级",
        "manufacturer": "上海自动化仪表有限公司",
        "certificate_type": "校准证书" if k % 2 else "检定证书",
        "quantity": 1 + k % 3,
        "verification_requirement": "依据 JJF 1171-2007 校准" if k % 4 == 1 else "",
        "remark": "附传感器一支" if k % 5 == 2 else "",
    }


async def _booking(rows: int) -> Booking:
    company = await make_enterprise(21, name="南京测试仪表有限公司")
    await make_user(company, username=USERNAME)
    return await make_booking(company, [_row(k) for k in range(1, rows + 1)])


def _pages(pdf: bytes) -> list[Any]:
    return list(PdfReader(io.BytesIO(pdf)).pages)


def _text(pdf_page: Any) -> str:
    """A PDF page's text; NFKC, as the CJK font maps some characters to their Kangxi
    radical look-alikes (⾃ for 自)."""
    return unicodedata.normalize("NFKC", pdf_page.extract_text())


async def _sized(page: Any) -> None:
    if page.viewport_name == "desktop":
        await page.set_viewport_size(DESKTOP)
    await page.add_init_script(PRINT_SPY)


async def test_print_sheet_opened_from_the_records(page: Any) -> None:
    await _sized(page)
    booking = await _booking(10)
    number = str(booking.booking_no)
    await log_in(page, USERNAME, PASSWORD)
    await open_page(page, "预约管理", "预约记录")
    await shot(page, "print-records")
    await page.get_by_role("link", name=f"打印送检单 {number}").click()
    await expect(page.get_by_role("heading", name="送检单", level=1)).to_be_visible()
    await expect(page.get_by_role("navigation", name="主菜单")).to_have_count(0)
    await expect(page.locator(".sheet-no")).to_have_text(f"预约单号：{number}")
    await expect(page.locator("tr.item-row")).to_have_count(10)
    # The QR code encodes exactly the 预约单号.
    qr = page.locator(".sheet-qr svg.qr")
    await expect(qr).to_be_visible()
    assert await qr.locator("path").get_attribute("d") == qr_payload_path(number)
    await page.get_by_role("button", name="打印").click()
    await expect(page.locator("html")).to_have_attribute("data-printed", "1")
    await shot(page, "print-sheet")
    pdf = await page.pdf(format="A4")
    (SHOTS / f"print-sheet-{page.viewport_name}.pdf").write_bytes(pdf)
    pages = _pages(pdf)
    assert len(pages) == 1
    text = _text(pages[0])
    assert number in text and "打印" not in text.split("打印时间")[0]  # no toolbar on paper
    assert abs(float(pages[0].mediabox.width) - 595.3) < 1  # A4: 210 mm in points


async def test_a_long_list_repeats_its_header_on_each_page(page: Any) -> None:
    await _sized(page)
    booking = await _booking(45)
    await log_in(page, USERNAME, PASSWORD)
    await page.goto(f"/bookings/{booking.id}/print")
    pdf = await page.pdf(format="A4")
    (SHOTS / f"print-sheet-long-{page.viewport_name}.pdf").write_bytes(pdf)
    pages = _pages(pdf)
    assert len(pages) >= 2
    seen = 0
    for p in pages:
        text = _text(p)
        # The header, on every page, naming the booking; and where the page stands.
        assert "器具名称" in text and "出厂编号" in text and str(booking.booking_no) in text
        assert f"共 {len(pages)} " in text  # 第 n 页，共 m 页
        seen += sum(f"T2026{k:05d}" in text for k in range(1, 46))
    assert seen == 45  # every row once: none cut in two, none lost


async def test_labels_one_per_instrument(page: Any) -> None:
    await _sized(page)
    booking = await _booking(10)
    number = str(booking.booking_no)
    await log_in(page, USERNAME, PASSWORD)
    await open_page(page, "预约管理", "预约记录")
    await page.get_by_role("link", name=f"打印标签 {number}").click()
    await expect(page.get_by_role("heading", name=f"器具标签 {number}")).to_be_visible()
    labels = page.locator(".label")
    await expect(labels).to_have_count(10)
    third = labels.nth(2)
    await expect(third.locator(".label-code")).to_have_text(f"{number}-3")
    await expect(third).to_contain_text("精密数字压力校验仪3")
    await expect(third).to_contain_text("T202600003")
    assert await third.locator("svg.qr path").get_attribute("d") == qr_payload_path(f"{number}-3")
    await shot(page, "print-labels")
    pdf = await page.pdf(format="A4")
    (SHOTS / f"print-labels-{page.viewport_name}.pdf").write_bytes(pdf)
    assert len(_pages(pdf)) == 1
    # The toolbar leads to the 送检单 and back to the booking.
    await page.get_by_role("link", name="送检单").click()
    await expect(page.get_by_role("heading", name="送检单", level=1)).to_be_visible()
    await page.get_by_role("link", name="返回").click()
    await expect(page.get_by_role("heading", name="预约送检")).to_be_visible()
    await expect(page.get_by_role("link", name="打印标签")).to_be_visible()
    await shot(page, "print-booking-page")
