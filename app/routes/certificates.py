"""电子证书 (manual ch. 4): the list, 【下载证书】 as a packaging job with a progress bar,
one certificate's PDF, and 【自定义文件名】."""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import File, Redirect, Template
from litestar_htmx import ClientRedirect

from app.enums import JobStatus
from app.security.guards import customer_required
from app.services import certificates
from app.services.certpdf import FILE_NAME_FIELDS
from app.services.errors import Conflict, FormError
from app.web.errors import field_errors, message, on_error
from app.web.lists import cursor, here, keyset_pager, list_query
from app.web.pages import go, page, page_or_part
from app.web.requests import client_ip, current_scope, current_user, ticked
from app.web.units import unit_filter

PER_PAGE = 20
# How often the page asks how far the packaging has got.
JOB_POLL_SECONDS = 1


def _date(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _filters(request: Request) -> certificates.CertFilters:
    qp = list_query(request)
    return certificates.CertFilters(
        q=qp.get("q", "").strip()[:100],
        paid=qp.get("paid", "") if qp.get("paid") in ("paid", "unpaid") else "",
        downloaded=qp.get("downloaded", "") if qp.get("downloaded") in ("yes", "no") else "",
        start=_date(qp.get("start", "")),
        end=_date(qp.get("end", "")),
    )


async def _list(request: Request, **extra: Any) -> Template:
    f = _filters(request)
    user = current_user(request)
    scope, units = unit_filter(request, await current_scope(request))
    found = await certificates.list_certificates(scope, f, cursor(list_query(request)), PER_PAGE)
    for r in found.rows:
        r["may_download"] = certificates.may_download(user, r)
    return page_or_part(
        request,
        "certificates/index.html",
        "certificates/_list.html",
        **units,
        rows=found.rows,
        filters=f,
        pager=keyset_pager(request, found),
        here=here(request),
        **{"error": "", "job": None, **extra},
    )


async def _download_refused(request: Request, exc: FormError | Conflict) -> Template:
    response = await _list(request, error=message(exc))
    if request.htmx:
        # The form swaps a job into #download-area; a refusal is the list with its message,
        # which replaces the list (inside the download area it would show the list twice).
        response.headers["HX-Retarget"] = "#certificate-list"
        response.headers["HX-Reswap"] = "outerHTML"
    return response


def _job_context(job: dict[str, Any]) -> dict[str, Any]:
    return {"job": job, "poll_seconds": JOB_POLL_SECONDS, "JobStatus": JobStatus}


async def _rule_page(request: Request, rule: list[str], **extra: Any) -> Template:
    labels = dict(FILE_NAME_FIELDS)
    template = "certificates/_rule.html" if request.htmx else "certificates/rule.html"
    context = {"saved": False, "errors": {}, **extra}
    return page(
        template,
        request,
        rule=[(k, labels[k]) for k in rule],
        available=[(k, label) for k, label in FILE_NAME_FIELDS if k not in rule],
        **context,
    )


def _edit_rule(rule: list[str], picked: list[str], action: str) -> list[str]:
    """The editor's buttons: → adds the ticked names, ↑/↓ move one, × removes one."""
    keys = dict(FILE_NAME_FIELDS)
    rule = [k for k in dict.fromkeys(rule) if k in keys]
    verb, _, key = action.partition(":")
    if verb == "add":
        rule += [k for k in picked if k in keys and k not in rule]
    elif key in rule:
        i = rule.index(key)
        if verb == "up" and i > 0:
            rule[i - 1], rule[i] = rule[i], rule[i - 1]
        elif verb == "down" and i < len(rule) - 1:
            rule[i + 1], rule[i] = rule[i], rule[i + 1]
        elif verb == "remove":
            rule.pop(i)
    return rule


async def _rule_from_form(request: Request) -> tuple[list[str], str]:
    form = await request.form()
    rule = [v for v in form.getall("rule", []) if isinstance(v, str)]
    picked = [v for v in form.getall("pick", []) if isinstance(v, str)]
    action = str(form.get("action", ""))
    return _edit_rule(rule, picked, action), action


async def _rule_refused(request: Request, exc: FormError | Conflict) -> Template:
    rule, _ = await _rule_from_form(request)
    return await _rule_page(request, rule, errors=field_errors(exc))


class CertificateController(Controller):
    path = "/certificates"
    guards = [customer_required]

    @get("/")
    async def index(self, request: Request) -> Template:
        """电子证书; an htmx filter change gets only the list."""
        return await _list(request)

    @post("/download", status_code=200, opt=on_error(_download_refused))
    async def download(self, request: Request) -> Template | Redirect | ClientRedirect:
        """【下载证书】 on the ticked rows: a packaging job; the page shows its progress."""
        key = await certificates.start_download(
            await current_scope(request), current_user(request), await ticked(request, "ids")
        )
        if not request.htmx:
            return go(request, f"/certificates/jobs/{key}")
        job = await certificates.download_job(await current_scope(request), key)
        return page("certificates/_job.html", request, **_job_context(job))

    @get("/jobs/{key:str}")
    async def job(self, request: Request, key: FromPath[str]) -> Template:
        """How far the packaging has got (polled by htmx; a page of its own without JS)."""
        job = await certificates.download_job(await current_scope(request), key)
        template = "certificates/_job.html" if request.htmx else "certificates/job.html"
        return page(template, request, **_job_context(job))

    @get("/jobs/{key:str}/zip")
    async def zip(self, request: Request, key: FromPath[str]) -> File:
        """The finished zip; its certificates now show 已下载."""
        path = await certificates.zip_file(await current_scope(request), current_user(request), key)
        return File(path=path, filename="电子证书.zip", media_type="application/zip")

    @get("/{cert_id:int}/file")
    async def file(self, request: Request, cert_id: FromPath[int]) -> File:
        """One certificate's PDF (paid, or a 协议用户)."""
        path, name = await certificates.certificate_file(
            await current_scope(request), current_user(request), cert_id
        )
        return File(path=path, filename=name, media_type="application/pdf")

    @get("/rule")
    async def rule(self, request: Request) -> Template:
        """【自定义文件名】."""
        return await _rule_page(
            request, await certificates.file_name_rule(await current_scope(request))
        )

    @post("/rule", status_code=200, opt=on_error(_rule_refused))
    async def edit_rule(self, request: Request) -> Template:
        """The editor's buttons; 【保存】 stores the rule."""
        rule, action = await _rule_from_form(request)
        if action != "save":
            return await _rule_page(request, rule)
        saved = await certificates.save_file_name_rule(
            await current_scope(request), rule, current_user(request), client_ip(request)
        )
        return await _rule_page(request, saved, saved=True)
