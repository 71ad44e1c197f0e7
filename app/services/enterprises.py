"""企业管理 (SPEC §8, manual 6.4): an enterprise main account's subsidiaries.

Saving a new subsidiary creates the enterprise (approved, below the user's enterprise) and
its main account in one transaction. A subsidiary that has bookings, certificates, lab
orders or subsidiaries of its own is not deleted (the list says why); it can be 停用
(disabled) instead, and its accounts then no longer log in. 证件 are checked by content,
kept below DATA_DIR (outside the web root) and served only within the tenancy tree and to
platform admins. Every change goes into 操作日志.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import anyio
import asyncpg

from app.clock import now
from app.db import write_transaction
from app.enums import BookingStatus, EnterpriseStatus, UserRole
from app.security.passwords import hash_password
from app.security.sessions import CurrentUser, end_user_sessions
from app.services import audit, regions
from app.services.errors import FormError, NotFound
from app.services.tenancy import (
    Scope,
    branch,
    get_scoped,
    get_subsidiary,
    scope_for,
    subsidiaries_of,
)
from app.services.validators import (
    missing_errors,
    mobile_error,
    normalize_phone,
    password_error,
    uscc_error,
    username_error,
)
from app.settings import get_settings
from app.tables import Booking, Certificate, Enterprise, EnterpriseLicence, Order, User

EVENT = "企业管理"
MAX_LICENCE_BYTES = 10 * 1024 * 1024
# What a 证件 may be, told by its first bytes: (media type, file extension).
LICENCE_KINDS = {
    "pdf": ("application/pdf", "pdf"),
    "jpeg": ("image/jpeg", "jpg"),
    "png": ("image/png", "png"),
}
# The enterprise's own columns that 编辑 may change.
DETAIL_KEYS = ("uscc", "name", "region_code", "address", "contact_name", "phone", "contact_phone")
PHONE_RE = re.compile(r"^[0-9+()\- ]{5,30}$")
LIMITS = {"name": 200, "address": 300, "contact_name": 50}
# The form's labels, as in the manual; 行政区域 is three selects, stored as region_code.
LABELS = {
    "uscc": "社会统一信用代码",
    "name": "单位名称",
    "region_code": "行政区域",
    "address": "单位地址",
    "username": "登录账号",
    "contact_name": "联系人",
    "password": "登录密码",
    "phone": "单位电话",
    "contact_phone": "联系人手机",
    "licence": "证件",
}


@dataclass(frozen=True)
class SubsidiaryInput:
    """The form of 【新增】 / 【编辑】, stripped. On 编辑 the 登录账号 is not changed and an
    empty 登录密码 keeps the password."""

    uscc: str = ""
    name: str = ""
    region_code: str = ""
    address: str = ""
    username: str = ""
    contact_name: str = ""
    password: str = ""
    phone: str = ""
    contact_phone: str = ""

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> SubsidiaryInput:
        values = {f.name: (form.get(f.name) or "").strip() for f in fields(cls)}
        values["password"] = form.get("password") or ""  # as typed: spaces count
        values["uscc"] = values["uscc"].upper()
        values["contact_phone"] = normalize_phone(values["contact_phone"])
        return cls(**values)


@dataclass(frozen=True)
class Licence:
    """An uploaded 证件: its name as sent and at most MAX_LICENCE_BYTES + 1 of its bytes."""

    filename: str
    data: bytes


def licence_kind(data: bytes) -> tuple[str, str]:
    """(media type, extension) of a 证件 by its content, or FormError on the 证件 field."""
    if not data:
        raise FormError({"licence": "证件文件是空的，请重新选择"})
    if len(data) > MAX_LICENCE_BYTES:
        raise FormError({"licence": "证件文件不能超过10MB"})
    if data.startswith(b"%PDF-"):
        return LICENCE_KINDS["pdf"]
    if data.startswith(b"\xff\xd8\xff"):
        return LICENCE_KINDS["jpeg"]
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        return LICENCE_KINDS["png"]
    if data.startswith((b"GIF87a", b"GIF89a")):
        raise FormError({"licence": "不支持 GIF 图片，证件请上传 PDF、JPEG 或 PNG 文件"})
    raise FormError(
        {"licence": "文件内容不是 PDF、JPEG 或 PNG（只改扩展名无效），请重新选择证件文件"}
    )


def _errors(f: SubsidiaryInput, *, new: bool) -> dict[str, str]:
    """The checks that need no database, by field."""
    required = {k: v for k, v in LABELS.items() if k not in ("phone", "licence")}
    if not new:
        required = {k: v for k, v in required.items() if k not in ("username", "password")}
    errors = missing_errors(vars(f), required)
    if not regions.is_district(f.region_code):  # none chosen, or not down to the district
        errors["region_code"] = "请选择行政区域（省、市、区县）"
    for key, limit in LIMITS.items():
        if len(getattr(f, key)) > limit:
            errors[key] = f"不能超过{limit}个字"
    if f.uscc and (err := uscc_error(f.uscc)):
        errors["uscc"] = err
    if f.contact_phone and (err := mobile_error(f.contact_phone)):
        errors["contact_phone"] = err
    if f.phone and not PHONE_RE.match(f.phone):
        errors["phone"] = "请输入正确的电话号码（数字、-、括号，5-30位）"
    if new and f.username and (err := username_error(f.username)):
        errors["username"] = err
    if f.password and (err := password_error(f.password, f.username)):
        errors["password"] = err
    return errors


async def _taken(f: SubsidiaryInput, errors: dict[str, str], *, enterprise_id: int | None) -> None:
    """USCC and 登录账号 are unique across the platform: adds the messages to ``errors``."""
    if "uscc" not in errors and f.uscc:
        other = await Enterprise.select(Enterprise.id).where(Enterprise.uscc == f.uscc).first()
        if other is not None and other["id"] != enterprise_id:
            errors["uscc"] = "该社会统一信用代码已在平台注册"
    if enterprise_id is None and "username" not in errors and f.username:
        if await User.exists().where(User.username == f.username):
            errors["username"] = "该登录账号已被使用"


def _unique_violation(exc: Exception) -> bool:
    return isinstance(exc, sqlite3.IntegrityError | asyncpg.UniqueViolationError)


def _check_licence(licence: Licence | None, errors: dict[str, str]) -> tuple[str, str] | None:
    if licence is None:
        return None
    try:
        return licence_kind(licence.data)
    except FormError as e:
        errors.update(e.errors)
        return None


async def _store(enterprise_id: int, licence: Licence, kind: tuple[str, str]) -> dict[str, Any]:
    """Write the file below DATA_DIR (an unguessable name); the row to insert for it."""
    media_type, ext = kind
    rel = f"licences/{enterprise_id}/{secrets.token_hex(16)}.{ext}"
    target = get_settings().data_dir / rel

    def write() -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(licence.data)

    await anyio.to_thread.run_sync(write)
    name = Path(licence.filename.replace("\\", "/")).name[:200] or f"证件.{ext}"
    return {
        "enterprise": enterprise_id,
        "filename": name,
        "media_type": media_type,
        "size": len(licence.data),
        "sha256": hashlib.sha256(licence.data).hexdigest(),
        "path": rel,
        "uploaded_at": now(),
    }


def _unlink(paths: Iterable[str]) -> None:
    for rel in paths:
        (get_settings().data_dir / rel).unlink(missing_ok=True)


class _Applicant(Protocol):
    """The 单位 and 主账号 fields that 客户注册 and 企业管理's 【新增】 share."""

    @property
    def name(self) -> str: ...
    @property
    def uscc(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def contact_name(self) -> str: ...
    @property
    def contact_phone(self) -> str: ...
    @property
    def username(self) -> str: ...


async def insert_with_main_account(
    f: _Applicant, password_hash: str, **columns: Any
) -> tuple[int, int]:
    """The enterprise made of ``f``'s 单位 fields and ``columns``, and its main account
    (企业管理员, named after the 联系人), inside the caller's transaction. Returns
    (enterprise id, user id)."""
    enterprise = Enterprise(
        name=f.name,
        uscc=f.uscc,
        address=f.address,
        contact_name=f.contact_name,
        contact_phone=f.contact_phone,
        **columns,
    )
    await enterprise.save()
    user = User(
        username=f.username,
        password_hash=password_hash,
        name=f.contact_name,
        phone=f.contact_phone,
        enterprise=enterprise.id,
        role=UserRole.ENTERPRISE_ADMIN,
    )
    await user.save()
    return int(enterprise.id), int(user.id)


async def create(
    scope: Scope, f: SubsidiaryInput, licence: Licence | None, by: CurrentUser, ip: str
) -> int:
    """【保存】 of 【新增】: the subsidiary (已通过, below the user's enterprise), its main
    account and its 证件, all or nothing. Returns the new enterprise's id."""
    errors = _errors(f, new=True)
    kind = _check_licence(licence, errors)
    await _taken(f, errors, enterprise_id=None)
    if errors:
        raise FormError(errors)
    password_hash = await anyio.to_thread.run_sync(hash_password, f.password)
    stored: list[str] = []
    try:
        async with write_transaction():
            # Checked again inside the transaction: a parallel save may have taken them.
            await _taken(f, errors, enterprise_id=None)
            if errors:
                raise FormError(errors)
            enterprise_id, _ = await insert_with_main_account(
                f,
                password_hash,
                phone=f.phone,
                region_code=f.region_code,
                status=EnterpriseStatus.APPROVED,
                parent=scope.enterprise_id,
                reviewed_at=now(),
            )
            if licence is not None and kind is not None:
                row = await _store(enterprise_id, licence, kind)
                stored.append(row["path"])
                await EnterpriseLicence.insert(EnterpriseLicence(**row))
    except Exception as exc:
        _unlink(stored)
        if _unique_violation(exc):  # PostgreSQL: the parallel save committed first
            await _taken(f, errors, enterprise_id=None)
            raise FormError(errors or {"": "保存失败，请重试"}) from exc
        raise
    await audit.record(
        EVENT,
        user=by,
        ip=ip,
        detail=f"新增子公司：{f.name}（{f.uscc}），主账号 {f.username}"
        + ("，已上传证件" if stored else ""),
    )
    return enterprise_id


async def update(
    scope: Scope,
    enterprise_id: int,
    f: SubsidiaryInput,
    licence: Licence | None,
    by: CurrentUser,
    ip: str,
) -> None:
    """【保存】 of 【编辑】: the details; a new 登录密码 (ends the main account's sessions);
    a new 证件 replaces the old one."""
    current = await get_subsidiary(scope, enterprise_id)
    errors = _errors(f, new=False)
    kind = _check_licence(licence, errors)
    await _taken(f, errors, enterprise_id=enterprise_id)
    if errors:
        raise FormError(errors)
    main = await _main_account(enterprise_id)
    password_hash = None
    if f.password:
        password_hash = await anyio.to_thread.run_sync(hash_password, f.password)
    stored: list[str] = []
    old: list[str] = []
    try:
        async with write_transaction():
            await get_subsidiary(scope, enterprise_id, lock=True)
            await Enterprise.update(
                {
                    Enterprise.name: f.name,
                    Enterprise.uscc: f.uscc,
                    Enterprise.address: f.address,
                    Enterprise.contact_name: f.contact_name,
                    Enterprise.contact_phone: f.contact_phone,
                    Enterprise.phone: f.phone,
                    Enterprise.region_code: f.region_code,
                }
            ).where(Enterprise.id == enterprise_id)
            if main is not None and password_hash is not None:
                await User.update({User.password_hash: password_hash}).where(User.id == main["id"])
            if licence is not None and kind is not None:
                row = await _store(enterprise_id, licence, kind)
                stored.append(row["path"])
                old = await _replace_licence(enterprise_id, row)
    except Exception as exc:
        _unlink(stored)
        if _unique_violation(exc):
            await _taken(f, errors, enterprise_id=enterprise_id)
            raise FormError(errors or {"": "保存失败，请重试"}) from exc
        raise
    _unlink(old)
    if main is not None and password_hash is not None:
        await end_user_sessions(main["id"])
    changes = _changes(current, f, password=password_hash is not None, licence=bool(stored))
    await audit.record(
        EVENT,
        user=by,
        ip=ip,
        detail=f"编辑子公司：{f.name}（{f.uscc}）"
        + (f"，修改了{'、'.join(changes)}" if changes else "，未修改"),
    )


async def _replace_licence(enterprise_id: int, row: dict[str, Any]) -> list[str]:
    """Inside the write transaction: the new 证件's row in place of the old ones; returns the
    old files' paths (deleted once the transaction has committed)."""
    old = [
        r["path"]
        for r in await EnterpriseLicence.select(EnterpriseLicence.path).where(
            EnterpriseLicence.enterprise == enterprise_id
        )
    ]
    await EnterpriseLicence.delete().where(EnterpriseLicence.enterprise == enterprise_id)
    await EnterpriseLicence.insert(EnterpriseLicence(**row))
    return old


_EDITABLE = ("uscc", "name", "region_code", "address", "contact_name", "phone", "contact_phone")


def _changes(
    current: dict[str, Any], f: SubsidiaryInput, *, password: bool, licence: bool
) -> list[str]:
    """The labels of what an 编辑 changed, for the 操作日志."""
    changes = [LABELS[k] for k in _EDITABLE if current[k] != getattr(f, k)]
    if password:
        changes.append("登录密码")
    if licence:
        changes.append("证件")
    return changes


async def _main_account(enterprise_id: int) -> dict[str, Any] | None:
    return (
        await User.select(User.id, User.username)
        .where((User.enterprise == enterprise_id) & (User.role == UserRole.ENTERPRISE_ADMIN))
        .order_by(User.id)
        .first()
    )


async def list_subsidiaries(
    scope: Scope, page: int = 1, per_page: int = 20
) -> tuple[list[dict[str, Any]], int]:
    """企业管理's list: the user's direct subsidiaries, newest first, with the main
    account's 登录账号, the 行政区域 in words and the 证件."""
    where = subsidiaries_of(scope)
    total = await Enterprise.count().where(where)
    pages = max(1, math.ceil(total / per_page))
    rows = (
        await Enterprise.select()
        .where(where)
        .order_by(Enterprise.id, ascending=False)
        .limit(per_page)
        .offset((min(page, pages) - 1) * per_page)
    )
    ids = [r["id"] for r in rows]
    usernames: dict[int, str] = {}
    licences: dict[int, dict[str, Any]] = {}
    if ids:
        for u in (
            await User.select(User.enterprise, User.username)
            .where(User.enterprise.is_in(ids) & (User.role == UserRole.ENTERPRISE_ADMIN))
            .order_by(User.id, ascending=False)
        ):
            usernames[u["enterprise"]] = u["username"]
        for lic in await EnterpriseLicence.select(
            EnterpriseLicence.id, EnterpriseLicence.enterprise, EnterpriseLicence.filename
        ).where(EnterpriseLicence.enterprise.is_in(ids)):
            licences[lic["enterprise"]] = lic
    for r in rows:
        r["username"] = usernames.get(r["id"], "")
        r["region"] = regions.label(r["region_code"])
        r["licence"] = licences.get(r["id"])
    return rows, total


async def get(scope: Scope, enterprise_id: int) -> dict[str, Any]:
    """One direct subsidiary as the 编辑 form shows it."""
    row = await get_subsidiary(scope, enterprise_id)
    main = await _main_account(enterprise_id)
    row["username"] = main["username"] if main else ""
    row["licence"] = (
        await EnterpriseLicence.select(EnterpriseLicence.id, EnterpriseLicence.filename)
        .where(EnterpriseLicence.enterprise == enterprise_id)
        .first()
    )
    return row


async def _why_kept(enterprise_id: int) -> list[str]:
    """What keeps a subsidiary from being deleted: its history, or units below it."""
    reasons = []
    if await Booking.exists().where(
        (Booking.enterprise == enterprise_id) & (Booking.status != BookingStatus.DRAFT)
    ):
        reasons.append("有预约记录")
    if await Certificate.exists().where(Certificate.enterprise == enterprise_id):
        reasons.append("有电子证书")
    elif await Order.exists().where(Order.enterprise == enterprise_id):
        reasons.append("有检测业务")
    if await Enterprise.exists().where(Enterprise.parent == enterprise_id):
        reasons.append("有下级单位")
    return reasons


def _ticked(ids: Iterable[int], what: str) -> list[int]:
    ids = sorted(set(ids))
    if not ids:
        raise FormError({"": f"请先勾选要{what}的单位"})
    return ids


async def _ticked_rows(scope: Scope, ids: list[int]) -> list[dict[str, Any]]:
    """The ticked subsidiaries; one that is not the user's direct subsidiary: NotFound."""
    rows = await Enterprise.select(Enterprise.id, Enterprise.name, Enterprise.uscc).where(
        Enterprise.id.is_in(ids) & subsidiaries_of(scope)
    )
    if len(rows) != len(ids):
        raise NotFound("单位不存在")
    return rows


async def delete(
    scope: Scope, ids: Iterable[int], by: CurrentUser, ip: str
) -> tuple[int, list[str]]:
    """【删除】 the ticked subsidiaries that have no history; returns (deleted, what was kept
    and why). Their accounts, 器具托管, 基础信息 and 证件 go with them."""
    ids = _ticked(ids, "删除")
    kept: list[str] = []
    gone: list[dict[str, Any]] = []
    async with write_transaction():
        for row in await _ticked_rows(scope, ids):
            if reasons := await _why_kept(row["id"]):
                kept.append(f"{row['name']}：{'、'.join(reasons)}，不能删除，可以停用")
            else:
                gone.append(row)
        gone_ids = [r["id"] for r in gone]
        users, files = [], []
        if gone_ids:
            users = [
                u["id"] for u in await User.select(User.id).where(User.enterprise.is_in(gone_ids))
            ]
            files = [
                r["path"]
                for r in await EnterpriseLicence.select(EnterpriseLicence.path).where(
                    EnterpriseLicence.enterprise.is_in(gone_ids)
                )
            ]
            # The foreign keys cascade: accounts, drafts, 器具托管, 基础信息, 证件 rows.
            await Enterprise.delete().where(Enterprise.id.is_in(gone_ids))
    _unlink(files)
    for user_id in users:
        await end_user_sessions(user_id)
    for row in gone:
        await audit.record(
            EVENT, user=by, ip=ip, detail=f"删除子公司：{row['name']}（{row['uscc']}）"
        )
    return len(gone), kept


async def set_disabled(
    scope: Scope, ids: Iterable[int], disabled: bool, by: CurrentUser, ip: str
) -> int:
    """【停用】 / 【启用】 the ticked subsidiaries. The accounts of a disabled one, and of
    every unit below it, are logged out and cannot log in; the data stays, and the parent
    still sees it."""
    ids = _ticked(ids, "停用" if disabled else "启用")
    rows = await _ticked_rows(scope, ids)
    status = EnterpriseStatus.DISABLED if disabled else EnterpriseStatus.APPROVED
    await Enterprise.update({Enterprise.status: status}).where(
        Enterprise.id.is_in(ids) & subsidiaries_of(scope)
    )
    if disabled and rows:  # the branch below each unit stops with it
        below = [e for row in rows for e in await branch(row["id"])]
        for u in await User.select(User.id).where(User.enterprise.is_in(below)):
            await end_user_sessions(u["id"])
    for row in rows:
        await audit.record(
            EVENT,
            user=by,
            ip=ip,
            detail=f"{'停用' if disabled else '启用'}子公司：{row['name']}（{row['uscc']}）",
        )
    return len(rows)


async def licence_file(user: CurrentUser, licence_id: int) -> tuple[Path, str, str]:
    """A 证件's file, its name and media type: for platform admins, and for accounts of its
    enterprise or of any enterprise above it (the tenancy tree); NotFound for anyone else."""
    if user.is_platform_admin:
        row = await EnterpriseLicence.select().where(EnterpriseLicence.id == licence_id).first()
        if row is None:
            raise NotFound("证件不存在")
    else:
        row = await get_scoped(EnterpriseLicence, await scope_for(user), licence_id)
    path = get_settings().data_dir / row["path"]
    if not path.is_file():
        raise NotFound("证件文件不存在")
    return path, row["filename"], row["media_type"]
