"""An automated accessibility audit (axe-core, #13 item 7): every page state of the platform
at 1366×900 and 390×844 — the public pages, a company's pages, 平台管理, an error page, the
dialogs open and the forms showing their errors — has no violation of impact serious or
critical. A failure lists each one: the page state, the rule, its impact and the elements.

axe-core is vendored in tests/browser/vendor/ (see its README) and injected into every page
of the audit's own browser contexts, which bypass the CSP for that (and only they do: the
other browser tests keep the CSP on)."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import openpyxl
import pytest
from playwright.async_api import expect

from app.clock import today
from app.services.certificates import verify_url
from app.tables import Certificate, ContractPhone, Department, Instrument, Order
from tests.browser.helpers import field as labelled
from tests.browser.helpers import log_in, wait_for_sms
from tests.factories import make_booking, make_enterprise, make_user
from tests.helpers import LAB_AUTH, make_admin, make_pdf, uscc

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
WIDTHS: dict[str, dict[str, Any]] = {
    "1366": {"viewport": {"width": 1366, "height": 900}},
    "390": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 3,
        "is_mobile": True,
        "has_touch": True,
    },
}
FAILING_IMPACTS = ("serious", "critical")
# The findings #13 named fail at any impact, and also when axe only asks for a review (an
# aria-label on a div without a role is "needs review" when the div has text).
NAMED_IN_ISSUE = ("scrollable-region-focusable", "empty-table-header", "aria-prohibited-attr")
PASSWORD = "Secret123x"
CUSTOMER = "axe51"
SUB_ACCOUNT = "axe51sub"
PHONE = "13800000051"  # the company's main account and its 子账户 share it: 选择账号

# axe's violations and "needs review" results, reduced to what a message needs.
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations', 'incomplete']});
  const why = (node) => node.failureSummary
    || node.any.concat(node.all, node.none).map(c => c.message).join('; ');
  const brief = (kind) => (v) => ({
    kind, id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map(n => n.target.join(' ')),
    why: v.nodes.length ? why(v.nodes[0]) : '',
  });
  return result.violations.map(brief('violation'))
    .concat(result.incomplete.map(brief('needs review')));
}"""


@dataclass
class Audit:
    """The page states checked at one width, the violations that fail the test and the
    lesser findings (moderate or minor, or for a human to review) printed beside them."""

    width: str
    states: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    async def check(self, page: Any, state: str) -> None:
        """Run axe on what ``page`` shows now (once htmx has settled)."""
        await expect(page.locator(".htmx-request")).to_have_count(0)
        # From the top: nothing under the sticky top bar, whose overlap leaves the colour
        # contrast of what it covers undecided.
        await page.evaluate("window.scrollTo(0, 0)")
        self.states.append(state)
        for v in await page.evaluate(RUN_AXE):
            targets = ", ".join(v["targets"][:8]) + (" …" if len(v["targets"]) > 8 else "")
            why = v["why"].strip().splitlines()[-1].strip() if v["why"].strip() else ""
            line = (
                f"[{self.width}] {state} ({urlsplit(page.url).path}): {v['id']} "
                f"({v['impact']}, {v['kind']}) {v['help']} — {targets}\n      {why}"
            )
            fails = v["id"] in NAMED_IN_ISSUE or (
                v["kind"] == "violation" and v["impact"] in FAILING_IMPACTS
            )
            (self.violations if fails else self.notes).append(line)

    async def visit(self, page: Any, url: str, state: str, status: int = 200) -> None:
        """Open ``url`` (answered with ``status``: the state is the one named) and check it."""
        response = await page.goto(url)
        assert response is not None and response.status == status, (state, url)
        await self.check(page, state)


@asynccontextmanager
async def _context(browser: Any, server: str, width: str) -> AsyncIterator[Any]:
    """A page of the audit's own context: the CSP bypassed, axe in every document."""
    context = await browser.new_context(
        base_url=server, locale="zh-CN", bypass_csp=True, **WIDTHS[width]
    )
    await context.add_init_script(path=str(AXE))
    page = await context.new_page()
    page.on("dialog", lambda d: d.accept())  # hx-confirm's 确定删除…？
    try:
        yield page
    finally:
        await context.close()


async def _submit_unvalidated(page: Any, button: Any) -> None:
    """Press ``button`` with the browser's own validation off: the server's errors show."""
    await page.evaluate("document.querySelectorAll('form').forEach(f => f.noValidate = true)")
    await button.click()


async def _open_dialog(page: Any, button: str, dialog: str, loaded: str | None = None) -> Any:
    await page.get_by_role("button", name=button, exact=True).first.click()
    opened = page.get_by_role("dialog", name=dialog)
    await expect(opened).to_be_visible()
    if loaded:
        await expect(opened.locator(loaded).first).to_be_visible()
    return opened


async def _close_dialog(dialog: Any) -> None:
    await dialog.get_by_role("button", name="关闭").click()
    await expect(dialog).to_be_hidden()


# --------------------------------------------------------------------------- the data


@dataclass
class Seeded:
    booking_approved: int
    booking_rejected: int
    booking_pending: int
    instrument: int
    enterprise: int
    department: int
    sub_account: int
    subsidiary: int
    pending_enterprise: int
    contract: int
    order: int
    cert_path: str  # the QR link of a certificate
    cert_pdf: bytes  # a genuine certificate as downloaded


async def _lab(server: str, method: str, path: str, **kwargs: Any) -> None:
    async with httpx.AsyncClient(base_url=server, headers=LAB_AUTH) as lab:
        r = await lab.request(method, path, **kwargs)
    assert r.status_code == 200, r.text


async def _seed(server: str) -> Seeded:
    """A company with a bit of everything, a pending registration, a 协议客户, the admin."""
    await make_admin()
    ent = await make_enterprise(51, name="无障碍测试单位", contact_phone=PHONE)
    await make_user(ent, PASSWORD, username=CUSTOMER)
    dept = Department(enterprise=ent.id, name="质量部", code="QA", level="一级")
    await dept.save()
    sub_account = await make_user(
        ent, PASSWORD, username=SUB_ACCOUNT, role="sub_account", name="李四", department=dept.id
    )
    sub = await make_enterprise(52, name="无障碍测试子公司", parent=ent.id)
    await make_user(sub, PASSWORD, username="axe52")
    pending = await make_enterprise(53, name="待审核测试单位", status="pending")
    await make_user(pending, PASSWORD, username="axe53")
    contract = await make_enterprise(54, name="协议测试单位", is_contract=True, contract_no="HT-54")
    await ContractPhone(enterprise=contract.id, phone="13900000054").save()

    day = today()
    for k, valid in enumerate(
        (day - timedelta(days=3), day + timedelta(days=10), None, day + timedelta(days=300))
    ):
        await Instrument(
            enterprise=ent.id,
            name=f"压力表{k}",
            serial_no=f"P{k:04d}",
            model="Y-100",
            cycle_months=12,
            valid_until=valid,
        ).save()
    instrument = await Instrument.select(Instrument.id).first()
    approved = await make_booking(ent, 3, "approved")
    rejected = await make_booking(ent, 2, "rejected", reject_reason="出厂编号有误")
    booking_pending = await make_booking(ent, 2, "pending")
    await make_booking(sub, 1, "pending")

    lines = [
        {"unique_no": f"DD51-00{k}", "name": f"温度计{k}", "serial_no": f"T-{k}", "model": "WSS"}
        for k in (1, 2, 3)
    ]
    await _lab(
        server,
        "PUT",
        "/api/v1/orders/DD51",
        json={"booking_no": approved.booking_no, "instruments": lines},
    )
    await _lab(server, "POST", "/api/v1/instruments/DD51-002/status", json={"status": "检测中"})
    for cert_no, unique_no, paid in (("ZS51-A", "DD51-001", True), ("ZS51-B", "DD51-002", False)):
        await _lab(
            server,
            "PUT",
            f"/api/v1/certificates/{cert_no}",
            files={"file": ("c.pdf", make_pdf(cert_no), "application/pdf")},
            data={
                "unique_no": unique_no,
                "completed_on": day.isoformat(),
                "paid": str(paid).lower(),
            },
        )
    cert = await Certificate.select().where(Certificate.cert_no == "ZS51-A").first()
    order = await Order.select(Order.id).first()
    return Seeded(
        booking_approved=approved.id,
        booking_rejected=rejected.id,
        booking_pending=booking_pending.id,
        instrument=instrument["id"],
        enterprise=ent.id,
        department=dept.id,
        sub_account=sub_account.id,
        subsidiary=sub.id,
        pending_enterprise=pending.id,
        contract=contract.id,
        order=order["id"],
        cert_path=urlsplit(verify_url("ZS51-A", cert["version"])).path,
        cert_pdf=b"",
    )


def _not_a_spreadsheet() -> dict[str, Any]:
    return {
        "name": "器具.xlsx",
        "mimeType": "application/octet-stream",
        "buffer": b"not a workbook",
    }


def _bad_rows_xlsx() -> dict[str, Any]:
    """A workbook with a header only the template would not accept."""
    wb = openpyxl.Workbook()
    wb.active.append(["错误的表头"])
    wb.active.append(["x"])
    buffer = io.BytesIO()
    wb.save(buffer)
    return {
        "name": "器具.xlsx",
        "mimeType": "application/octet-stream",
        "buffer": buffer.getvalue(),
    }


# --------------------------------------------------------------------------- the pages


async def _public(audit: Audit, page: Any, seeded: Seeded) -> None:
    await audit.visit(page, "/login", "登录")
    await audit.visit(page, "/login?notice=logout", "登录 · 已安全退出")
    await page.get_by_label("账号").fill(CUSTOMER)
    await labelled(page, "密码").fill("wrong-password-1")
    await page.get_by_role("button", name="登录", exact=True).click()
    await expect(page.get_by_role("alert")).to_be_visible()
    await audit.check(page, "登录 · 密码错误")

    await audit.visit(page, "/login/phone", "手机登录")
    await _submit_unvalidated(page, page.get_by_role("button", name="登录", exact=True))
    await expect(page.locator(".field-error").first).to_be_visible()
    await audit.check(page, "手机登录 · 表单错误")
    await labelled(page, "手机号").fill(PHONE)
    await page.get_by_role("button", name="获取验证码").click()
    await expect(page.locator("#code-status")).to_contain_text("验证码已发送")
    await audit.check(page, "手机登录 · 验证码已发送")
    code = await wait_for_sms(PHONE)
    await labelled(page, "短信验证码").fill(code)
    await page.get_by_role("button", name="登录", exact=True).click()
    await expect(page.get_by_role("heading", name="选择要登录的账号")).to_be_visible()
    await audit.check(page, "手机登录 · 选择账号")
    await page.context.clear_cookies()

    await audit.visit(page, "/register", "客户注册")
    await _submit_unvalidated(page, page.get_by_role("button", name="注册", exact=True))
    await expect(page.locator(".field-error").first).to_be_visible()
    await audit.check(page, "客户注册 · 表单错误")
    await _register(page)
    await audit.check(page, "客户注册 · 已提交待审核")

    await audit.visit(page, "/forgot", "忘记密码")
    await _submit_unvalidated(page, page.get_by_role("button", name="确认", exact=True))
    await expect(page.locator(".field-error").first).to_be_visible()
    await audit.check(page, "忘记密码 · 表单错误")

    await audit.visit(page, "/query/verify", "证书防伪查询（未登录）")
    await page.get_by_label("证书文件").set_input_files(
        files=[{"name": "a.pdf", "mimeType": "application/pdf", "buffer": seeded.cert_pdf}]
    )
    await page.get_by_role("button", name="点击上传").click()
    await expect(page.locator("#verdict")).to_contain_text("核验通过")
    await audit.check(page, "证书防伪查询 · 核验通过")
    await page.get_by_label("证书文件").set_input_files(
        files=[{"name": "b.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 broken"}]
    )
    await page.get_by_role("button", name="点击上传").click()
    await expect(page.locator("#verdict")).to_contain_text("核验未通过")
    await audit.check(page, "证书防伪查询 · 核验未通过")
    await audit.visit(page, seeded.cert_path, "证书二维码核验页")
    await audit.visit(page, "/no-such-page", "404（未登录）", 404)


async def _register(page: Any) -> None:
    """客户注册 filled in full with the code from the SMS: the 待审核 page."""
    phone = "13800000055"
    values = {
        "单位名称": "无障碍注册单位",
        "统一社会信用代码": uscc(55),
        "单位地址": "南京市光华路55号",
        "联系人": "张三",
        "联系人手机": phone,
        "登录账号": "axe55",
        "密码": PASSWORD,
        "确认密码": PASSWORD,
    }
    for label, value in values.items():
        await labelled(page, label).fill(value)
    await page.get_by_role("button", name="获取验证码").click()
    await labelled(page, "短信验证码").fill(await wait_for_sms(phone))
    await page.get_by_label(re.compile("我已阅读并同意免责声明")).check()
    await page.get_by_role("button", name="注册", exact=True).click()
    await expect(page.get_by_text("待审核").first).to_be_visible()


async def _booking_form(audit: Audit, page: Any) -> None:
    await audit.visit(page, "/bookings/new", "预约送检（空）")
    if audit.width == "390":
        await page.get_by_role("button", name="菜单").click()
        await expect(page.get_by_role("navigation", name="主菜单")).to_be_visible()
        await audit.check(page, "菜单展开（手机）")
        await page.get_by_role("button", name="菜单").click()
    await _submit_unvalidated(page, page.get_by_role("button", name="提交", exact=True))
    await expect(page.locator(".field-error").first).to_be_visible()
    await audit.check(page, "预约送检 · 提交的表单错误")

    section = page.locator("#instrument-section")
    await labelled(page, "器具名称").fill("")
    await section.get_by_role("button", name="添加器具").click()
    await expect(section.locator(".field-error").first).to_be_visible()
    await audit.check(page, "预约送检 · 器具信息错误")
    for k in (1, 2):
        await labelled(page, "器具名称").fill(f"温度计{k}")
        await labelled(page, "出厂编号").fill(f"W-{k}")
        await labelled(page, "型号规格").fill("WSS-411")
        await section.get_by_role("button", name="添加器具").click()
        await expect(section.get_by_role("status")).to_contain_text("已添加")
    await audit.check(page, "预约送检 · 有器具")
    await section.get_by_role("button", name="修改 温度计1").click()
    await expect(section.get_by_text("正在修改已选器具")).to_be_visible()
    await audit.check(page, "预约送检 · 修改器具")

    dialog = await _open_dialog(page, "从托管器具选择", "从托管器具选择", "table")
    await audit.check(page, "预约送检 · 从托管器具选择")
    await _close_dialog(dialog)
    dialog = await _open_dialog(page, "从历史预约数据选择", "从历史预约数据选择", "table")
    await audit.check(page, "预约送检 · 从历史预约数据选择")
    await _close_dialog(dialog)
    dialog = await _open_dialog(page, "导入器具", "导入器具")
    await audit.check(page, "预约送检 · 导入器具")
    await dialog.get_by_label("选择文件").set_input_files(files=[_bad_rows_xlsx()])
    await dialog.get_by_role("button", name="点击上传").click()
    await expect(dialog.locator("#import-result")).not_to_be_empty()
    await audit.check(page, "预约送检 · 导入器具的错误")


async def _customer(audit: Audit, page: Any, seeded: Seeded) -> None:
    await log_in(page, CUSTOMER, PASSWORD)
    await expect(page.get_by_role("heading", name="首页", level=1)).to_be_visible()
    await audit.check(page, "首页（企业）")
    cert = await Certificate.select(Certificate.id).where(Certificate.cert_no == "ZS51-A").first()
    seeded.cert_pdf = await (await page.request.get(f"/certificates/{cert['id']}/file")).body()
    await _booking_form(audit, page)

    await audit.visit(page, "/bookings", "预约记录")
    await page.locator("#records").get_by_role("button", name="删除").click()
    await expect(page.locator("#records .notice-error")).to_be_visible()
    await audit.check(page, "预约记录 · 未勾选删除")
    await audit.visit(page, "/bookings?q=没有这样的预约", "预约记录 · 无结果")
    await audit.visit(page, f"/bookings/{seeded.booking_approved}", "预约单（只读）")
    await audit.visit(page, f"/bookings/{seeded.booking_rejected}", "预约单（已驳回）")
    await audit.visit(page, f"/bookings/{seeded.booking_approved}/print", "送检单")
    await audit.visit(page, f"/bookings/{seeded.booking_pending}/labels", "器具标签")

    await audit.visit(page, "/instruments", "器具托管")
    await page.locator("#instrument-list").get_by_role("button", name="删除").click()
    await expect(page.locator("#instrument-list .notice-error")).to_be_visible()
    await audit.check(page, "器具托管 · 未勾选删除")
    dialog = await _open_dialog(page, "导入器具", "导入器具")
    await audit.check(page, "器具托管 · 导入器具")
    await dialog.get_by_label("选择文件").set_input_files(files=[_not_a_spreadsheet()])
    await dialog.get_by_role("button", name="点击上传").click()
    await expect(dialog.locator("#import-result")).not_to_be_empty()
    await audit.check(page, "器具托管 · 导入器具的错误")
    await _close_dialog(dialog)
    await _open_dialog(page, "从历史预约数据选择", "从历史预约数据选择", "table")
    await audit.check(page, "器具托管 · 从历史预约数据选择")
    await audit.visit(page, "/instruments/new", "器具托管 · 新增")
    await _submit_unvalidated(page, page.get_by_role("button", name="确定", exact=True))
    await expect(page.locator(".field-error").first).to_be_visible()
    await audit.check(page, "器具托管 · 新增的表单错误")
    await audit.visit(page, f"/instruments/{seeded.instrument}/edit", "器具托管 · 编辑")
    await page.goto("/instruments")
    await page.get_by_role("checkbox", name="选择 压力表0 P0000").check()
    await page.get_by_role("button", name="一键生成预约送检").click()
    await expect(page.get_by_text("已从器具托管加入1个器具")).to_be_visible()
    await audit.check(page, "一键生成预约送检 · 已加入")

    await audit.visit(page, "/certificates", "电子证书")
    await page.get_by_role("button", name="下载证书", exact=True).click()
    await expect(page.locator("#certificate-list").get_by_role("alert")).to_be_visible()
    await expect(page.locator("#certificate-list")).to_have_count(1)  # not again in #download-area
    await audit.check(page, "电子证书 · 未勾选下载")
    await page.get_by_role("checkbox", name="选择证书 ZS51-A").check()
    await page.get_by_role("button", name="下载证书", exact=True).click()
    await expect(page.get_by_role("link", name="下载证书压缩包")).to_be_visible(timeout=20_000)
    await audit.check(page, "电子证书 · 压缩包已生成")
    job = await page.get_by_role("link", name="下载证书压缩包").get_attribute("href")
    await _open_dialog(page, "自定义文件名", "自定义文件名", "#rule-editor")
    await audit.check(page, "电子证书 · 自定义文件名")
    await audit.visit(page, job.removesuffix("/zip"), "下载证书（无脚本时的页面）")
    await audit.visit(page, "/certificates/rule", "自定义文件名（无脚本时的页面）")

    await audit.visit(page, "/query/progress", "检测进度查询")
    await audit.visit(page, "/query/progress?q=DD51", "检测进度查询 · 结果")
    await audit.visit(page, "/query/progress?q=XX99", "检测进度查询 · 未找到")
    await audit.visit(page, "/query/progress?status=testing", "检测进度 · 检测中（首页的链接）")
    await audit.visit(page, "/query/verify", "证书防伪查询（已登录）")
    await page.get_by_label("证书文件").set_input_files(
        files=[{"name": "a.pdf", "mimeType": "application/pdf", "buffer": seeded.cert_pdf}]
    )
    await page.get_by_role("button", name="点击上传").click()
    await expect(page.locator("#verdict")).to_contain_text("核验通过")
    await audit.check(page, "证书防伪查询（已登录）· 核验通过")

    await audit.visit(page, "/settings/basic", "基础信息")
    for box in await page.locator("main form input:not([type=hidden])").all():
        await box.fill("")
    await _submit_unvalidated(page, page.get_by_role("button", name="保存"))
    await expect(page.locator(".field-error").first).to_be_visible()
    await audit.check(page, "基础信息 · 表单错误")

    await audit.visit(page, "/settings/users", "用户管理")
    await audit.visit(page, f"/settings/users/{seeded.sub_account}/edit", "用户管理 · 编辑")
    await audit.visit(page, "/settings/users/new", "用户管理 · 新增")
    await _submit_unvalidated(page, page.get_by_role("button", name="保存"))
    await expect(page.locator(".field-error").first).to_be_visible()
    await audit.check(page, "用户管理 · 新增的表单错误")
    await audit.visit(page, "/settings/departments", "部门管理")
    await audit.visit(page, "/settings/departments/new", "部门管理 · 新增")
    await _submit_unvalidated(page, page.get_by_role("button", name="保存"))
    await expect(page.locator(".field-error").first).to_be_visible()
    await audit.check(page, "部门管理 · 新增的表单错误")
    await audit.visit(page, f"/settings/departments/{seeded.department}/edit", "部门管理 · 编辑")
    await audit.visit(page, "/settings/enterprises", "企业管理")
    await audit.visit(page, "/settings/enterprises/new", "企业管理 · 新增子公司")
    await _submit_unvalidated(page, page.get_by_role("button", name="保存"))
    await expect(page.locator(".field-error").first).to_be_visible()
    await audit.check(page, "企业管理 · 新增子公司的表单错误")
    await audit.visit(
        page, f"/settings/enterprises/{seeded.subsidiary}/edit", "企业管理 · 编辑子公司"
    )
    await audit.visit(page, "/account/notifications", "通知设置")
    await labelled(page, "邮箱").fill("不是邮箱")
    await page.get_by_role("group", name="证书已出具").get_by_label("邮件").check()
    await _submit_unvalidated(page, page.get_by_role("button", name="保存"))
    await expect(page.locator(".field-error").first).to_be_visible()
    await audit.check(page, "通知设置 · 邮箱错误")
    await audit.visit(page, "/admin/registrations", "403（企业账号打开平台管理）", 403)
    await audit.visit(page, "/bookings/999999", "404（已登录）", 404)


async def _staff(audit: Audit, page: Any, seeded: Seeded) -> None:
    await log_in(page, "admin", "Admin12345x")
    await expect(page.get_by_role("heading", name="首页", level=1)).to_be_visible()
    await audit.check(page, "首页（平台管理员）")
    await audit.visit(page, "/admin/registrations?q=没有这样的单位", "注册审核 · 无结果")
    await audit.visit(page, "/admin/registrations", "注册审核")
    card = page.locator(".review-card").filter(has_text="待审核测试单位")
    await card.get_by_role("button", name="驳回").click()
    await expect(page.locator(".field-error").first).to_be_visible()
    await audit.check(page, "注册审核 · 驳回未填原因")
    await audit.visit(
        page, f"/admin/enterprises/{seeded.pending_enterprise}", "注册审核 · 账号与下属单位"
    )
    await audit.visit(
        page, f"/admin/enterprises/{seeded.enterprise}", "企业（账号、部门、下属单位）"
    )
    await audit.visit(page, "/admin/bookings", "预约审核")
    await audit.visit(page, f"/admin/bookings/{seeded.booking_pending}", "预约审核 · 预约单")
    await page.get_by_role("button", name="驳回").click()
    await expect(page.locator(".field-error").first).to_be_visible()
    await audit.check(page, "预约审核 · 驳回未填原因")
    await audit.visit(
        page, f"/admin/bookings/{seeded.booking_approved}", "预约审核 · 已通过的预约单"
    )
    await audit.visit(page, "/admin/orders", "检测业务")
    await audit.visit(page, "/admin/orders?stale=1", "检测业务 · 超期未出证书（首页的链接）")
    await audit.visit(page, f"/admin/orders/{seeded.order}", "检测业务 · 大单")
    await page.locator("summary").first.click()
    await audit.check(page, "检测业务 · 大单 · 上传证书展开")
    upload = page.locator("details[open] form")
    await _submit_unvalidated(page, upload.get_by_role("button", name="上传"))
    await expect(page.get_by_role("alert")).to_be_visible()
    await audit.check(page, "检测业务 · 大单 · 上传证书的错误")
    await audit.visit(page, "/admin/certificates", "证书管理")
    await audit.visit(page, "/admin/contracts", "协议客户")
    await expect(page).to_have_title("协议客户 - 计量客户服务平台")  # no dialog markup in it
    await _open_dialog(page, "导入", "导入协议客户")
    await audit.check(page, "协议客户 · 导入")
    await audit.visit(page, "/admin/contracts/new", "协议客户 · 新增")
    await _submit_unvalidated(page, page.get_by_role("button", name="保存"))
    await expect(page.locator(".field-error").first).to_be_visible()
    await audit.check(page, "协议客户 · 新增的表单错误")
    await audit.visit(page, f"/admin/contracts/{seeded.contract}/edit", "协议客户 · 编辑")
    await audit.visit(page, "/admin/sms", "短信记录")
    await audit.visit(page, "/admin/sms?status=failed&hours=24", "短信记录 · 近24小时失败")
    await audit.visit(page, "/admin/emails", "邮件记录")
    await audit.visit(page, "/admin/audit", "操作日志")
    await audit.visit(page, "/no-such-page", "404（平台管理员）", 404)


@pytest.mark.parametrize("width", list(WIDTHS))
async def test_no_serious_accessibility_violation(browser: Any, server: str, width: str) -> None:
    seeded = await _seed(server)
    audit = Audit(width)
    async with _context(browser, server, width) as page:
        await _customer(audit, page, seeded)
    async with _context(browser, server, width) as page:
        await _public(audit, page, seeded)
    async with _context(browser, server, width) as page:
        await _staff(audit, page, seeded)
    print(
        f"\n{len(audit.states)} page states audited at {width}px:\n  " + "\n  ".join(audit.states)
    )
    if audit.notes:
        print("Lesser findings and findings for review (not failing):\n" + "\n".join(audit.notes))
    assert not audit.violations, (
        f"{len(audit.violations)} axe findings at {width}px (serious or critical, or named "
        "in #13):\n" + "\n".join(audit.violations)
    )
