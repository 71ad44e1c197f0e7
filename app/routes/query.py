"""查询服务 (manual ch. 2): 检测进度查询 and 证书防伪查询; the verification page a
certificate's QR code opens (public, no account needed)."""

from __future__ import annotations

from datetime import timedelta

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath
from litestar.response import Template

from app.enums import ItemStatus
from app.security.guards import customer_required
from app.services import certificates, orders, throttle
from app.services.certpdf import MAX_PDF_BYTES
from app.settings import get_settings
from app.web.lists import cursor, keyset_pager
from app.web.pages import page, page_or_part
from app.web.requests import client_ip, current_scope

PER_PAGE = 20


def _listed_status(raw: str) -> ItemStatus | None:
    """The ?status= of 检测进度 (检测中 or 待取件 only), else None."""
    return next((s for s in orders.LISTED_STATUSES if s.value == raw), None)


class ProgressController(Controller):
    path = "/query/progress"
    guards = [customer_required]

    @get("/")
    async def progress(self, request: Request) -> Template:
        """检测进度查询: results as the user types (htmx); the whole page without JS."""
        qp = request.query_params
        q = qp.get("q", "")[:100]
        scope = await current_scope(request)
        status = _listed_status(qp.get("status", ""))
        if status is not None and not q.strip():
            # The 首页's 检测中/待取件 (#12): every instrument of that status, paged.
            found = await orders.items_of_status(scope, status, cursor(qp), PER_PAGE)
            return page(
                "query/progress.html",
                request,
                q="",
                rows=found.rows,
                status=status,
                pager=keyset_pager(request, found),
                poll=False,
                poll_seconds=get_settings().progress_poll_seconds,
            )
        rows = await orders.progress(scope, q)
        return page_or_part(
            request,
            "query/progress.html",
            "query/_progress.html",
            q=q,
            rows=rows,
            status=None,
            poll=bool(rows) and not orders.all_collected(rows),
            poll_seconds=get_settings().progress_poll_seconds,
        )


async def _verdict_page(
    request: Request, verdict: certificates.Verdict | None, **extra: object
) -> Template:
    public = request.scope.get("user") is None
    template = "query/verify_public.html" if public else "query/verify.html"
    if request.htmx and verdict is not None:
        template = "query/_verdict.html"
    return page(template, request, verdict=verdict, **extra)


class VerifyController(Controller):
    """证书防伪查询: logged in (查询服务) or not (from the login page)."""

    path = "/query/verify"

    @get("/")
    async def form(self, request: Request) -> Template:
        return await _verdict_page(request, None)

    @post("/", status_code=200)
    async def check(self, request: Request) -> Template:
        """【点击上传】 a certificate PDF: 核验通过, or which failure."""
        await throttle.hit("verify", client_ip(request), 30, timedelta(hours=1))
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await _verdict_page(request, None, error="请选择要核验的证书文件（PDF）")
        data = await upload.read(MAX_PDF_BYTES + 1)
        if len(data) > MAX_PDF_BYTES:
            return await _verdict_page(request, None, error="文件超过20MB，不是本平台出具的证书")
        return await _verdict_page(request, await certificates.verify_file(data))


class VerifyLinkController(Controller):
    """The QR code's page: ``/verify/{cert_no}/{code}``, public."""

    path = "/verify"

    @get("/{cert_no:str}/{code:str}")
    async def show(self, request: Request, cert_no: FromPath[str], code: FromPath[str]) -> Template:
        await throttle.hit("verify-link", client_ip(request), 120, timedelta(hours=1))
        verdict = await certificates.verify_link(cert_no, code)
        return page("query/verify_link.html", request, verdict=verdict)
