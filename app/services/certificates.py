"""证书管理 and 电子证书 (SPEC §6, §10, §11): certificates received from the lab, checked and
stamped; the company's list, its zip downloads (a job) and file-name rule; 证书防伪查询.

Files live below DATA_DIR (``certificates/``, ``zips/``), never in the web root; every
read goes through the tenancy scope, and an unpaid certificate is refused to everyone but
a 协议用户.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio

from app import jobs
from app.clock import now
from app.db import any_matches, row_locks, write_transaction
from app.enums import JobStatus, NotifyKind
from app.security.sessions import CurrentUser
from app.services import audit, certpdf, listing, notify, tallies
from app.services.audit import Actor
from app.services.errors import Conflict, FormError, NotFound
from app.services.listing import Cursor, SortKey, Window
from app.services.tenancy import Scope, in_scope
from app.settings import get_settings
from app.tables import (
    Certificate,
    CertificateFile,
    DownloadJob,
    FileNameRule,
    OrderItem,
)

CERT_NO_LENGTH = 50
MAX_DOWNLOAD = 2000  # certificates in one zip
ZIP_TTL = timedelta(hours=24)  # a finished zip is kept this long
PROGRESS_EVERY = 20  # write the job's progress every this many files


# ------------------------------------------------------------------ files


def _data_dir() -> Path:
    return get_settings().data_dir


def _store(folder: str, name: str, data: bytes) -> str:
    """Write ``data`` below DATA_DIR atomically; returns the path relative to DATA_DIR."""
    target = _data_dir() / folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    part.write_bytes(data)
    os.replace(part, target)
    return f"{folder}/{name}"


def link_code(cert_no: str, version: int) -> str:
    """The code in a certificate's verification link: an HMAC of its number and version."""
    key = get_settings().secret_key.encode()
    mac = hmac.new(key, f"verify:{cert_no}:{version}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac[:10]).decode().lower()


def verify_url(cert_no: str, version: int) -> str:
    """The public page the certificate's QR code opens (ASCII: the number is quoted)."""
    code = link_code(cert_no, version)
    return f"{get_settings().public_url}/verify/{quote(cert_no, safe='')}/{code}"


# ------------------------------------------------------------------ receiving (lab / staff)


def _check_cert_no(cert_no: str) -> str:
    cert_no = cert_no.strip()
    ok = cert_no and len(cert_no) <= CERT_NO_LENGTH and cert_no.isprintable()
    if not ok or any(c in cert_no for c in "/\\?#%"):
        raise FormError({"cert_no": f"证书编号无效（至多{CERT_NO_LENGTH}个字符，不含 / \\ ? # %）"})
    return cert_no


async def put_certificate(
    cert_no: str,
    unique_no: str,
    completed_on: date | None,
    paid: bool,
    data: bytes,
    *,
    by: Actor,
) -> tuple[dict[str, Any], bool]:
    """Receive the certificate ``cert_no`` of the instrument ``unique_no``.

    The PDF is checked and stamped; the same file again changes nothing; another file
    replaces it (the old one then verifies as superseded). Returns the certificate and
    whether anything changed.
    """
    cert_no = _check_cert_no(cert_no)
    item = await OrderItem.select().where(OrderItem.unique_no == unique_no.strip()).first()
    if item is None:
        raise NotFound(f"唯一性号 {unique_no} 不存在")
    await _check_pdf(data)
    source = certpdf.sha256_hex(data)
    existing = await Certificate.select().where(Certificate.cert_no == cert_no).first()
    if existing is not None and existing["item"] != item["id"]:
        raise Conflict(f"证书编号 {cert_no} 已属于另一台器具")
    if existing is not None and await _current_source(existing) == source:
        changed = await _set_fields(existing, completed_on, paid)
        return await _get(cert_no), changed
    version = existing["version"] + 1 if existing else 1
    issued = await _issue(data, cert_no, version, source)
    fields = {"completed_on": completed_on, "paid": paid}
    async with write_transaction():
        if existing is None:
            cert = Certificate(
                cert_no=cert_no,
                item=item["id"],
                enterprise=item["enterprise"],
                version=version,
                sha256=issued.sha256,
                **fields,
            )
            await cert.save()
            cert_id = int(cert.id)
        else:
            cert_id = await _supersede(existing, version, issued.sha256, fields)
        await CertificateFile.insert(CertificateFile(certificate=cert_id, **vars(issued)))
    await _notify(item, cert_no, version)
    await audit.record(
        "证书上传",
        by=by,
        detail=f"证书 {cert_no}（唯一性号 {item['unique_no']}，第{version}版）",
    )
    return await _get(cert_no), True


async def _check_pdf(data: bytes) -> None:
    try:
        await certpdf.check_pdf_async(data)
    except certpdf.PdfRefused as e:
        raise FormError({"file": e.message}) from None


async def _current_source(cert: dict[str, Any]) -> str | None:
    """The SHA-256 of the file the lab sent for the certificate's current version."""
    row = (
        await CertificateFile.select(CertificateFile.source_sha256)
        .where(
            (CertificateFile.certificate == cert["id"])
            & (CertificateFile.version == cert["version"])
        )
        .first()
    )
    return row["source_sha256"] if row else None


@dataclass(frozen=True)
class _Issued:
    """A stamped file, stored: the CertificateFile row's values."""

    version: int
    sha256: str
    source_sha256: str
    path: str
    size: int


async def _issue(data: bytes, cert_no: str, version: int, source: str) -> _Issued:
    """Stamp the PDF for ``version`` (its QR code names that version) and store it."""
    try:
        stamped = await certpdf.stamp_async(
            data,
            cert_no=cert_no,
            issuer=get_settings().institute_name,
            key=certpdf.default_key(),
            verify_url=verify_url(cert_no, version),
        )
    except certpdf.PdfRefused as e:
        raise FormError({"file": e.message}) from None
    digest = certpdf.sha256_hex(stamped)
    path = await anyio.to_thread.run_sync(
        _store, "certificates", f"{digest[:2]}/{digest}.pdf", stamped
    )
    return _Issued(version, digest, source, path, len(stamped))


async def _supersede(
    existing: dict[str, Any], version: int, digest: str, fields: dict[str, Any]
) -> int:
    """Inside the write transaction: the certificate moves to ``version``; its earlier
    files are superseded. A concurrent replacement that won is a Conflict."""
    query = Certificate.select(Certificate.version).where(Certificate.id == existing["id"])
    locked = await (query.lock_rows() if row_locks() else query).first()
    if locked["version"] != existing["version"]:
        raise Conflict(f"证书编号 {existing['cert_no']} 正在被另一个请求更新，请重试")
    await CertificateFile.update({CertificateFile.superseded_at: now()}).where(
        (CertificateFile.certificate == existing["id"]) & CertificateFile.superseded_at.is_null()
    )
    await Certificate.update(
        {
            Certificate.version: version,
            Certificate.sha256: digest,
            Certificate.completed_on: fields["completed_on"],
            Certificate.paid: fields["paid"],
            Certificate.downloaded_at: None,
            Certificate.updated_at: now(),
        }
    ).where(Certificate.id == existing["id"])
    return int(existing["id"])


async def _set_fields(cert: dict[str, Any], completed_on: date | None, paid: bool) -> bool:
    if cert["completed_on"] == completed_on and cert["paid"] == paid:
        return False
    await Certificate.update(
        {
            Certificate.completed_on: completed_on,
            Certificate.paid: paid,
            Certificate.updated_at: now(),
        }
    ).where(Certificate.id == cert["id"])
    return True


async def _notify(item: dict[str, Any], cert_no: str, version: int) -> None:
    """证书已出具: to the account that booked the instrument, by the channels it chose (an
    SMS to the booking's 手机, or the enterprise's contact when there is none)."""
    to, phone = await notify.order_recipient(item["order"])
    await notify.send(
        NotifyKind.CERTIFICATE,
        to,
        phone=phone,
        text=f"您送检的器具“{item['name']}”（唯一性号{item['unique_no']}）的证书{cert_no}已出具，"
        "请登录平台在【电子证书】中下载。",
        params={"name": item["name"], "unique_no": item["unique_no"], "cert_no": cert_no},
        key=f"certificate:{cert_no}:{version}",
        about=cert_no,
    )


async def set_payment(cert_no: str, paid: bool, *, by: Actor) -> tuple[dict[str, Any], bool]:
    """缴费状态. The same value again changes nothing."""
    cert = await Certificate.select().where(Certificate.cert_no == cert_no.strip()).first()
    if cert is None:
        raise NotFound(f"证书 {cert_no} 不存在")
    if cert["paid"] == paid:
        return await _get(cert["cert_no"]), False
    await Certificate.update({Certificate.paid: paid, Certificate.updated_at: now()}).where(
        Certificate.id == cert["id"]
    )
    await audit.record(
        "证书管理",
        by=by,
        detail=f"证书 {cert['cert_no']}：{'已缴费' if paid else '未缴费'}",
    )
    return await _get(cert["cert_no"]), True


_COLUMNS = (
    Certificate.id,
    Certificate.cert_no,
    Certificate.completed_on,
    Certificate.paid,
    Certificate.version,
    Certificate.downloaded_at,
    Certificate.enterprise,
    Certificate.item.unique_no,
    Certificate.item.name,
    Certificate.item.serial_no,
    Certificate.item.model,
    Certificate.item.equipment_no,
    Certificate.item.order.order_no,
    Certificate.item.order.booking.client_name,
)


# Joined columns by the names templates and file-name rules use.
_NAMES = {
    "item.unique_no": "unique_no",
    "item.name": "name",
    "item.serial_no": "serial_no",
    "item.model": "model",
    "item.equipment_no": "equipment_no",
    "item.order.order_no": "order_no",
    "item.order.booking.client_name": "client_name",
    "enterprise.name": "enterprise_name",
}


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    return {_NAMES.get(k, k): v for k, v in row.items()}


async def _get(cert_no: str) -> dict[str, Any]:
    row = await Certificate.select(*_COLUMNS).where(Certificate.cert_no == cert_no).first()
    if row is None:
        raise NotFound(f"证书 {cert_no} 不存在")
    return _flat(row)


# ------------------------------------------------------------------ 电子证书 (customers)


@dataclass(frozen=True)
class CertFilters:
    """The list's filters (SPEC §6)."""

    q: str = ""  # 证书编号/器具名称/出厂编号/大单号
    paid: str = ""  # "" / "paid" / "unpaid"
    downloaded: str = ""  # "" / "yes" / "no"
    start: date | None = None  # 完工日期 from
    end: date | None = None  # 完工日期 to


def _where(scope: Scope, f: CertFilters) -> list[Any]:
    where: list[Any] = [in_scope(Certificate, scope)]
    if f.q:
        where.append(
            any_matches(
                [
                    Certificate.cert_no,
                    Certificate.item.name,
                    Certificate.item.serial_no,
                    Certificate.item.order.order_no,
                ],
                f.q,
            )
        )
    if f.paid in ("paid", "unpaid"):
        where.append(Certificate.paid == (f.paid == "paid"))
    if f.downloaded == "yes":
        where.append(Certificate.downloaded_at.is_not_null())
    elif f.downloaded == "no":
        where.append(Certificate.downloaded_at.is_null())
    if f.start:
        where.append(Certificate.completed_on >= f.start)
    if f.end:
        where.append(Certificate.completed_on <= f.end)
    return where


# 电子证书's order: newest 完工日期 first, certificates without one last.
BY_COMPLETION = SortKey(Certificate.completed_on, descending=True, parse=date.fromisoformat)


def _values(scope: Scope, f: CertFilters) -> dict[str, Any]:
    values: dict[str, Any] = {"ids": list(scope.enterprise_ids)}
    if f.start:
        values["start"] = f.start
    if f.end:
        values["end"] = f.end
    return values


def _compiled_where(scope: Scope, f: CertFilters) -> Callable[[dict[str, Any]], list[Any]]:
    def where(p: dict[str, Any]) -> list[Any]:
        if f.q:
            return _where(scope, f)
        shape = replace(f, start=p.get("start"), end=p.get("end"))
        return _where(Scope(scope.user_id, scope.enterprise_id, tuple(p["ids"])), shape)

    return where


def _states(f: CertFilters) -> list[str]:
    """The cert_state tally's statuses (paid|unpaid-new|done) these filters keep, as
    _compiled_where reads the filters."""
    paid = [f.paid] if f.paid in ("paid", "unpaid") else ["paid", "unpaid"]
    ways = {"yes": ["done"], "no": ["new"]}.get(f.downloaded, ["new", "done"])
    return [f"{p}-{d}" for p in paid for d in ways]


def count_certificates(scope: Scope, f: CertFilters) -> tallies.Counting:
    """电子证书's total with these filters (the list's, and the 首页's counts): the tally's,
    or (filtered) counted up to a limit over an indexed condition."""
    values = _values(scope, f)
    if not (f.q or f.paid or f.downloaded or f.start or f.end):
        return tallies.total(tallies.CERTIFICATE, values["ids"])
    if not (f.q or f.start or f.end):  # paid / downloaded only: the tally of those states
        return tallies.total(tallies.CERT_STATE, values["ids"], _states(f))
    key = None if f.q else ("certificates", f.paid, f.downloaded, "count")
    where = _compiled_where(scope, f)
    return tallies.bounded_count(
        key, lambda p: Certificate.select(Certificate.id).where(*where(p)), **values
    )


async def list_certificates(scope: Scope, f: CertFilters, cursor: Cursor, per_page: int) -> Window:
    """电子证书, newest 完工日期 first, a keyset page. Without a search its SQL is compiled
    once per shape (app/compiled.py): 完工日期 from/to are values, the other filters part
    of the shape. The total is the tally's, or (filtered) counted up to a limit."""
    values = _values(scope, f)
    where = _compiled_where(scope, f)
    key = None if f.q else ("certificates", f.paid, f.downloaded)
    total = await count_certificates(scope, f)
    found = await listing.sorted_window(
        key,
        lambda p: Certificate.select(*_COLUMNS).where(*where(p)),
        Certificate,
        BY_COMPLETION,
        cursor,
        per_page,
        total,
        **values,
    )
    found.rows = [_flat(r) for r in found.rows]
    return found


def may_download(user: CurrentUser, cert: dict[str, Any]) -> bool:
    """Paid, or the user is a 协议用户 (SPEC §6)."""
    return bool(cert["paid"]) or user.is_contract


async def certificate_file(scope: Scope, user: CurrentUser, cert_id: int) -> tuple[Path, str]:
    """One certificate's PDF (by URL): in scope and downloadable, or refused."""
    cert = _flat(
        await Certificate.select(*_COLUMNS)
        .where((Certificate.id == cert_id) & in_scope(Certificate, scope))
        .first()
        or {}
    )
    if not cert:
        raise NotFound("证书不存在")
    if not may_download(user, cert):
        raise Conflict(f"证书 {cert['cert_no']} 未缴费，缴费后才能下载")
    path = await _current_path(cert_id)
    await _mark_downloaded([cert_id], user, f"证书 {cert['cert_no']}")
    name = certpdf.file_name(await file_name_rule(scope), cert)
    return path, name


async def _current_path(cert_id: int) -> Path:
    row = (
        await CertificateFile.select(CertificateFile.path)
        .where((CertificateFile.certificate == cert_id) & CertificateFile.superseded_at.is_null())
        .first()
    )
    path = _data_dir() / row["path"] if row else None
    if path is None or not path.exists():
        raise NotFound("证书文件不存在")
    return path


async def _mark_downloaded(ids: list[int], user: CurrentUser, what: str) -> None:
    await Certificate.update({Certificate.downloaded_at: now()}).where(
        Certificate.id.is_in(ids) & Certificate.downloaded_at.is_null()
    )
    await audit.record("证书下载", user=user, detail=what)


# ------------------------------------------------------------------ 自定义文件名


async def file_name_rule(scope: Scope) -> list[str]:
    row = (
        await FileNameRule.select(FileNameRule.fields)
        .where(FileNameRule.enterprise == scope.enterprise_id)
        .first()
    )
    keys = {k for k, _ in certpdf.FILE_NAME_FIELDS}
    rule = [k for k in json.loads(row["fields"]) if k in keys] if row else []
    return rule or list(certpdf.DEFAULT_RULE)


async def save_file_name_rule(
    scope: Scope, rule: list[str], user: CurrentUser, ip: str
) -> list[str]:
    keys = {k for k, _ in certpdf.FILE_NAME_FIELDS}
    clean = list(dict.fromkeys(k for k in rule if k in keys))
    if not clean:
        raise FormError({"rule": "请至少选择一项放入文件名字规则"})
    payload = json.dumps(clean)
    async with write_transaction():
        updated = (
            await FileNameRule.update(
                {FileNameRule.fields: payload, FileNameRule.updated_at: now()}
            )
            .where(FileNameRule.enterprise == scope.enterprise_id)
            .returning(FileNameRule.id)
        )
        if not updated:
            await FileNameRule.insert(FileNameRule(enterprise=scope.enterprise_id, fields=payload))
    labels = dict(certpdf.FILE_NAME_FIELDS)
    await audit.record(
        "证书管理", user=user, ip=ip, detail="文件名字规则：" + "+".join(labels[k] for k in clean)
    )
    return clean


# ------------------------------------------------------------------ 下载证书 (a job)


async def start_download(scope: Scope, user: CurrentUser, ids: list[int]) -> str:
    """【下载证书】 on the ticked rows: queue the packaging job; returns its key."""
    ids = sorted(set(ids))
    if not ids:
        raise FormError({"": "请先勾选要下载的证书"})
    if len(ids) > MAX_DOWNLOAD:
        raise FormError({"": f"一次至多下载{MAX_DOWNLOAD}份证书"})
    rows = await Certificate.select(Certificate.id, Certificate.cert_no, Certificate.paid).where(
        Certificate.id.is_in(ids) & in_scope(Certificate, scope)
    )
    if len(rows) != len(ids):
        raise NotFound("证书不存在")
    unpaid = [r["cert_no"] for r in rows if not may_download(user, r)]
    if unpaid:
        shown = "、".join(unpaid[:5]) + ("等" if len(unpaid) > 5 else "")
        raise FormError({"": f"证书 {shown} 未缴费，缴费后才能下载（请取消勾选）"})
    key = secrets.token_urlsafe(24)
    job = DownloadJob(
        key=key,
        enterprise=scope.enterprise_id,
        user_id=user.id,
        certificate_ids=json.dumps(ids),
        total=len(ids),
    )
    await job.save()
    await jobs.enqueue("package_certificates", int(job.id), job_id=f"zip:{key}")
    return key


async def package(job_id: int) -> str:
    """The packaging job: the zip of the job's certificates, named by the enterprise's rule.

    Idempotent: a finished job is left alone; a rerun (a killed worker) starts the zip
    again, and no half zip is ever offered (it is written aside and renamed when whole).
    """
    job = await DownloadJob.select().where(DownloadJob.id == job_id).first()
    if job is None or job["status"] == JobStatus.DONE:
        return "gone" if job is None else "done"
    await DownloadJob.update({DownloadJob.status: JobStatus.RUNNING, DownloadJob.done: 0}).where(
        DownloadJob.id == job_id
    )
    try:
        entries = await _zip_entries(job)
        target = _data_dir() / "zips" / f"{job['key']}.zip"
        target.parent.mkdir(parents=True, exist_ok=True)
        await anyio.to_thread.run_sync(_write_zip, entries, target, job_id)
    except Exception as exc:
        await DownloadJob.update(
            {DownloadJob.status: JobStatus.FAILED, DownloadJob.error: str(exc)[:500]}
        ).where(DownloadJob.id == job_id)
        raise
    await DownloadJob.update(
        {
            DownloadJob.status: JobStatus.DONE,
            DownloadJob.done: len(entries),
            DownloadJob.path: f"zips/{job['key']}.zip",
            DownloadJob.finished_at: now(),
        }
    ).where(DownloadJob.id == job_id)
    return "done"


async def _zip_entries(job: dict[str, Any]) -> list[tuple[str, Path]]:
    ids = json.loads(job["certificate_ids"])
    scope = Scope(user_id=0, enterprise_id=job["enterprise"], enterprise_ids=(job["enterprise"],))
    rule = await file_name_rule(scope)
    rows = await (
        Certificate.select(*_COLUMNS).where(Certificate.id.is_in(ids)).order_by(Certificate.id)
    )
    files = {
        r["certificate"]: r["path"]
        for r in await CertificateFile.select(
            CertificateFile.certificate, CertificateFile.path
        ).where(CertificateFile.certificate.is_in(ids) & CertificateFile.superseded_at.is_null())
    }
    certs = [_flat(r) for r in rows]
    names = certpdf.unique_names(certpdf.file_name(rule, c) for c in certs)
    return [(name, _data_dir() / files[c["id"]]) for name, c in zip(names, certs, strict=True)]


def _write_zip(entries: list[tuple[str, Path]], target: Path, job_id: int) -> None:
    def progress(done: int) -> None:
        if done % PROGRESS_EVERY == 0:
            anyio.from_thread.run(_progress, job_id, done)

    certpdf.write_zip(entries, target, progress)


async def _progress(job_id: int, done: int) -> None:
    await DownloadJob.update({DownloadJob.done: done}).where(DownloadJob.id == job_id)


async def download_job(scope: Scope, key: str) -> dict[str, Any]:
    """A job of the scope, by its key (404 for anyone else's)."""
    row = (
        await DownloadJob.select()
        .where((DownloadJob.key == key[:40]) & in_scope(DownloadJob, scope))
        .first()
    )
    if row is None:
        raise NotFound("下载任务不存在或已过期")
    row["status"] = JobStatus(row["status"])
    return row


async def zip_file(scope: Scope, user: CurrentUser, key: str) -> Path:
    """The finished zip; the certificates in it now show 已下载."""
    job = await download_job(scope, key)
    if job["status"] != JobStatus.DONE:
        raise NotFound("证书压缩包尚未生成")
    path = _data_dir() / job["path"]
    if not path.exists():
        raise NotFound("证书压缩包已过期，请重新下载")
    await _mark_downloaded(json.loads(job["certificate_ids"]), user, f"{job['total']}份证书")
    return path


async def purge_expired_downloads() -> int:
    """Finished zips older than ZIP_TTL, and their jobs (daily)."""
    old = await DownloadJob.select(DownloadJob.id, DownloadJob.path, DownloadJob.key).where(
        DownloadJob.created_at < now() - ZIP_TTL
    )
    for row in old:
        for path in (row["path"], f"zips/{row['key']}.zip.part"):
            if path:
                (_data_dir() / path).unlink(missing_ok=True)
    if old:
        await DownloadJob.delete().where(DownloadJob.id.is_in([r["id"] for r in old]))
    return len(old)


# ------------------------------------------------------------------ 证书防伪查询


@dataclass(frozen=True)
class Verdict:
    """What 证书防伪查询 says about a file or a link."""

    kind: str  # ok / superseded / altered / unknown / unreadable
    cert: dict[str, Any] | None = None
    superseded_at: Any = None

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


async def _verdict_for_file(row: dict[str, Any]) -> Verdict:
    cert = (
        await Certificate.select(Certificate.cert_no)
        .where(Certificate.id == row["certificate"])
        .first()
    )
    info = await _get(cert["cert_no"])
    info["client_name"] = info.get("client_name") or ""
    if row["superseded_at"] is not None:
        return Verdict("superseded", info, row["superseded_at"])
    return Verdict("ok", info)


async def verify_file(data: bytes) -> Verdict:
    """核验 an uploaded PDF: ours exactly (current or superseded), altered, or not ours."""
    if not data.startswith(b"%PDF-"):
        return Verdict("unreadable")
    digest = certpdf.sha256_hex(data)
    row = (
        await CertificateFile.select(CertificateFile.certificate, CertificateFile.superseded_at)
        .where(CertificateFile.sha256 == digest)
        .first()
    )
    if row is not None:
        return await _verdict_for_file(row)
    try:
        claim = await certpdf.read_claim_async(data)
    except certpdf.PdfRefused:
        return Verdict("unreadable")
    if claim is not None and await Certificate.exists().where(Certificate.cert_no == claim.cert_no):
        return Verdict("altered", {"cert_no": claim.cert_no})
    return Verdict("unknown")


async def verify_link(cert_no: str, code: str) -> Verdict:
    """The page a certificate's QR code opens: the version it names, current or superseded."""
    cert = (
        await Certificate.select(Certificate.id, Certificate.version)
        .where(Certificate.cert_no == cert_no[:CERT_NO_LENGTH])
        .first()
    )
    if cert is None:
        return Verdict("unknown")
    for version in range(cert["version"], 0, -1):
        if hmac.compare_digest(link_code(cert_no, version), code.lower()[:32]):
            row = (
                await CertificateFile.select(
                    CertificateFile.certificate, CertificateFile.superseded_at
                )
                .where(
                    (CertificateFile.certificate == cert["id"])
                    & (CertificateFile.version == version)
                )
                .first()
            )
            if row is not None:
                return await _verdict_for_file(row)
    return Verdict("unknown")


# ------------------------------------------------------------------ 证书管理 (平台管理)


def _admin_where(q: str) -> list[Any]:
    if not q:
        return []
    return [
        any_matches([Certificate.cert_no, Certificate.item.unique_no, Certificate.item.name], q)
    ]


async def admin_list(q: str, cursor: Cursor, per_page: int) -> Window:
    """Every certificate, newest first, a keyset page (证书管理). The total is the
    certificate tally's over every enterprise, or (a search) counted up to a limit."""
    q = q.strip()[:100]
    where = _admin_where(q)

    def filtered(query: Any) -> Any:
        return query.where(*where) if where else query

    if q:
        total = await tallies.bounded_count(
            None, lambda p: filtered(Certificate.select(Certificate.id))
        )
    else:
        total = await tallies.total(tallies.CERTIFICATE, None)
    # A search's LIKE patterns are made from q: its SQL is built as it comes (key None).
    found = await listing.window(
        None if q else "certificates.admin",
        lambda p: filtered(Certificate.select(*_COLUMNS, Certificate.enterprise.name)),
        Certificate.id,
        cursor,
        per_page,
        total,
    )
    found.rows = [_flat(r) for r in found.rows]
    return found


async def for_items(item_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The certificate of each instrument (证书管理 on an order's page)."""
    if not item_ids:
        return {}
    rows = await Certificate.select(
        Certificate.id, Certificate.cert_no, Certificate.item, Certificate.paid, Certificate.version
    ).where(Certificate.item.is_in(item_ids))
    return {r["item"]: r for r in rows}
