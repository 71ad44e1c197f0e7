"""平台管理: 注册审核 and 协议客户."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Self

from app.clock import now
from app.db import any_matches, write_transaction
from app.enums import EnterpriseStatus, NotifyKind, UserRole
from app.fields import CONTRACT_FIELDS
from app.security.sessions import CurrentUser, auth_changed, end_user_sessions
from app.services import audit, notify
from app.services.errors import FormError, NotFound
from app.services.forms import stripped_fields
from app.services.instrument_xlsx import ImportError_, ImportRefused, read_upload
from app.services.org import account_columns
from app.services.validators import (
    missing_errors,
    mobile_error,
    normalize_phone,
    review_reason_error,
    uscc_error,
)
from app.tables import ContractPhone, Enterprise, User

STATUS_LABELS = {s.value: s.label for s in EnterpriseStatus}


async def _newest_page(where: list[Any], page: int, per_page: int) -> list[dict[str, Any]]:
    """One page of the enterprises matching ``where``, newest first."""
    return (
        await Enterprise.select()
        .where(*where)
        .order_by(Enterprise.id, ascending=False)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )


async def registrations(
    status: str = EnterpriseStatus.PENDING, keyword: str = "", page: int = 1, per_page: int = 20
) -> tuple[list[dict[str, Any]], int]:
    """Enterprises that registered themselves, for 注册审核, newest first: not 协议客户
    (平台管理 adds those) nor subsidiaries (a parent creates those in 企业管理)."""
    where = [Enterprise.is_contract == False, Enterprise.parent.is_null()]  # noqa: E712
    if status in STATUS_LABELS:
        where.append(Enterprise.status == status)
    if keyword:
        where.append(any_matches([Enterprise.name, Enterprise.uscc], keyword))
    rows = await _newest_page(where, page, per_page)
    if rows:
        users = await User.select(User.enterprise, User.username).where(
            User.enterprise.is_in([r["id"] for r in rows])
            & (User.role == UserRole.ENTERPRISE_ADMIN)
        )
        names = {u["enterprise"]: u["username"] for u in users}
        for r in rows:
            r["username"] = names.get(r["id"], "")
    return rows, await Enterprise.count().where(*where)


async def review_registration(
    enterprise_id: int, approved: bool, reason: str, by: CurrentUser, ip: str
) -> None:
    """通过 / 驳回 a registration; the contact is told by SMS."""
    reason = reason.strip()
    if err := review_reason_error(approved, reason):
        raise FormError({"reason": err})
    ent = await _enterprise(enterprise_id, contract=False)
    if ent["status"] != EnterpriseStatus.PENDING:
        raise FormError({"": f"该注册申请已{STATUS_LABELS[ent['status']]}，无需重复审核"})
    status = EnterpriseStatus.APPROVED if approved else EnterpriseStatus.REJECTED
    reviewed_at = now()
    changed = (
        await Enterprise.update(
            {
                Enterprise.status: status,
                Enterprise.reject_reason: "" if approved else reason,
                Enterprise.reviewed_at: reviewed_at,
            }
        )
        .where((Enterprise.id == enterprise_id) & (Enterprise.status == EnterpriseStatus.PENDING))
        .returning(Enterprise.id)
    )
    if not changed:  # someone else reviewed it a moment ago
        raise FormError({"": "该注册申请已被审核"})
    await auth_changed()
    await _tell_applicant({**ent, "reviewed_at": reviewed_at}, approved, reason)
    await audit.record(
        "注册审核",
        user=by,
        ip=ip,
        detail=f"{'通过' if approved else '驳回'}：{ent['name']}（{ent['uscc']}）"
        + (f"，原因：{reason}" if reason else ""),
    )


async def _tell_applicant(ent: dict[str, Any], approved: bool, reason: str) -> None:
    """注册审核结果 to the applicant (by SMS unless it chose otherwise); an approval names
    the account to log in with."""
    if approved:
        admin = (
            await User.select(User.username)
            .where((User.enterprise == ent["id"]) & (User.role == UserRole.ENTERPRISE_ADMIN))
            .first()
        )
        text = (
            f"您的单位“{ent['name']}”注册申请已审核通过，"
            f"请使用登录账号 {admin['username'] if admin else ''} 登录客户服务平台。"
        )
    else:
        text = f"您的单位“{ent['name']}”注册申请未通过审核，原因：{reason}。"
    to = (await notify.main_accounts([ent["id"]])).get(ent["id"], notify.Recipient(None))
    await notify.send(
        NotifyKind.REGISTRATION,
        to,
        phone=ent["contact_phone"],
        text=text,
        params={"name": ent["name"], "result": "通过" if approved else "驳回", "reason": reason},
        key=f"registration:{ent['id']}:{ent['reviewed_at'].isoformat()}",
        about="通过" if approved else "未通过",
    )


@dataclass(frozen=True, slots=True)
class ContractCustomer:
    """A 协议客户 as submitted: every field stripped, nothing checked yet."""

    name: str
    uscc: str
    contract_no: str
    phones: str  # 联系人手机 as typed: several, separated by commas

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> Self:
        return cls(**stripped_fields(form, cls))


def _parse_phones(raw: str) -> list[str]:
    parts = [normalize_phone(p) for p in raw.replace("，", ",").replace(";", ",").split(",")]
    seen: list[str] = []
    for p in parts:
        if p and p not in seen:
            seen.append(p)
    return seen


async def contract_customers(
    keyword: str = "", page: int = 1, per_page: int = 20
) -> tuple[list[dict[str, Any]], int]:
    where = [Enterprise.is_contract == True]  # noqa: E712
    if keyword:
        where.append(
            any_matches([Enterprise.name, Enterprise.uscc, Enterprise.contract_no], keyword)
        )
    rows = await _newest_page(where, page, per_page)
    if rows:
        phones = (
            await ContractPhone.select()
            .where(ContractPhone.enterprise.is_in([r["id"] for r in rows]))
            .order_by(ContractPhone.id)
        )
        for r in rows:
            r["phones"] = "，".join(p["phone"] for p in phones if p["enterprise"] == r["id"])
    return rows, await Enterprise.count().where(*where)


async def _enterprise(enterprise_id: int, *, contract: bool) -> dict[str, Any]:
    """A 协议客户 (``contract``) or a registered enterprise; NotFound if it is the other."""
    ent = (
        await Enterprise.select()
        .where((Enterprise.id == enterprise_id) & (Enterprise.is_contract == contract))
        .first()
    )
    if ent is None:
        raise NotFound("协议客户不存在" if contract else "注册申请不存在")
    return ent


async def contract_customer(enterprise_id: int) -> dict[str, Any]:
    ent = await _enterprise(enterprise_id, contract=True)
    phones = (
        await ContractPhone.select(ContractPhone.phone)
        .where(ContractPhone.enterprise == enterprise_id)
        .order_by(ContractPhone.id)
    )
    ent["phones"] = "，".join(p["phone"] for p in phones)
    return ent


async def save_contract_customer(
    customer: ContractCustomer, by: CurrentUser, ip: str, enterprise_id: int | None = None
) -> int:
    """Add (``enterprise_id`` None) or edit a 协议客户 (单位名称, 统一社会信用代码, 合同编号,
    联系人手机)."""
    new = enterprise_id is None
    f = replace(customer, uscc=customer.uscc.upper())
    phones = _parse_phones(f.phones)
    errors = _contract_errors(f, phones)
    if enterprise_id is not None:
        await contract_customer(enterprise_id)  # 404 when not a contract customer
    await _contract_conflicts(f, phones, enterprise_id, errors)
    if errors:
        raise FormError(errors)
    enterprise_id, dropped = await _write_contract_customer(f, phones, enterprise_id)
    for user_id in dropped:
        await end_user_sessions(user_id)
    await auth_changed()  # 单位名称 as its accounts show it
    await audit.record(
        "协议客户",
        user=by,
        ip=ip,
        detail=f"{'新增' if new else '保存'}：{f.name}（{f.uscc}）",
    )
    return enterprise_id


def _contract_errors(f: ContractCustomer, phones: list[str]) -> dict[str, str]:
    """The checks of the 协议客户 form that need no database, by field."""
    # 联系人手机 counts as missing when it holds no number, only commas.
    errors = missing_errors(
        {**asdict(f), "phones": phones},
        {
            "name": "单位名称",
            "uscc": "统一社会信用代码",
            "contract_no": "合同编号",
            "phones": "联系人手机",
        },
    )
    if f.uscc and (err := uscc_error(f.uscc)):
        errors["uscc"] = err
    for p in phones:
        if err := mobile_error(p):
            errors["phones"] = f"{p}：{err}（多个手机号用逗号分隔）"
            break
    if len(phones) > 10:
        errors["phones"] = "最多10个联系人手机"
    return errors


async def _contract_conflicts(
    f: ContractCustomer, phones: list[str], enterprise_id: int | None, errors: dict[str, str]
) -> None:
    """Add to ``errors`` a USCC or phone that belongs to another enterprise."""
    if "uscc" not in errors:
        other = await Enterprise.select(Enterprise.id).where(Enterprise.uscc == f.uscc).first()
        if other and other["id"] != enterprise_id:
            errors["uscc"] = "该统一社会信用代码已存在"
    if "phones" not in errors and phones:
        taken = await ContractPhone.select(ContractPhone.phone, ContractPhone.enterprise).where(
            ContractPhone.phone.is_in(phones)
        )
        clash = [t["phone"] for t in taken if t["enterprise"] != enterprise_id]
        if clash:
            errors["phones"] = f"手机号 {'，'.join(clash)} 已属于其他协议客户"


async def _write_contract_customer(
    f: ContractCustomer, phones: list[str], enterprise_id: int | None
) -> tuple[int, list[int]]:
    """Save the enterprise and its phones in one transaction. Returns its id and the users
    whose phone was taken off the contract (they lose their account at once)."""
    async with write_transaction():
        if enterprise_id is None:
            ent = Enterprise(
                name=f.name,
                uscc=f.uscc,
                contract_no=f.contract_no,
                contact_phone=phones[0],
                is_contract=True,
                status=EnterpriseStatus.APPROVED,
                reviewed_at=now(),
            )
            await ent.save()
            enterprise_id = int(ent.id)
        else:
            await Enterprise.update(
                {
                    Enterprise.name: f.name,
                    Enterprise.uscc: f.uscc,
                    Enterprise.contract_no: f.contract_no,
                    Enterprise.contact_phone: phones[0],
                }
            ).where(Enterprise.id == enterprise_id)
            await ContractPhone.delete().where(ContractPhone.enterprise == enterprise_id)
        await ContractPhone.insert(
            *[ContractPhone(enterprise=enterprise_id, phone=p) for p in phones]
        )
        dropped = (
            await User.update({User.is_active: False})
            .where(
                (User.enterprise == enterprise_id)
                & (User.role == UserRole.CONTRACT_USER)
                & User.phone.not_in(phones)
            )
            .returning(User.id)
        )
    return enterprise_id, [row["id"] for row in dropped]


async def import_contract_customers(data: bytes, by: CurrentUser, ip: str) -> tuple[int, int]:
    """协议客户 from a spreadsheet: an existing 协议客户 (same 统一社会信用代码) is updated,
    the others added. All rows or none: every error is reported by row and column."""
    rows = await read_upload(data, CONTRACT_FIELDS, with_rows=True)
    labels = {f.key: f.label for f in CONTRACT_FIELDS}
    plans: list[tuple[ContractCustomer, list[str], int | None]] = []
    problems: list[ImportError_] = []
    first_row: dict[str, int] = {}
    for row in rows:
        f = ContractCustomer(**{k: str(row[k] or "") for k in labels})
        f = replace(f, uscc=f.uscc.upper())
        phones = _parse_phones(f.phones)
        errors = _contract_errors(f, phones)
        enterprise_id = None
        if "uscc" not in errors:
            if f.uscc in first_row:
                errors["uscc"] = f"与第{first_row[f.uscc]}行重复"
            first_row.setdefault(f.uscc, row["row"])
            existing = (
                await Enterprise.select(Enterprise.id)
                .where(
                    (Enterprise.uscc == f.uscc) & (Enterprise.is_contract == True)  # noqa: E712
                )
                .first()
            )
            enterprise_id = existing["id"] if existing else None
        await _contract_conflicts(f, phones, enterprise_id, errors)
        for key, message in errors.items():
            label = labels.get(key, "")
            problems.append(
                ImportError_(row["row"], label, f"第{row['row']}行「{label}」：{message}")
            )
        plans.append((f, phones, enterprise_id))
    if problems:
        raise ImportRefused(problems)
    dropped: list[int] = []
    async with write_transaction():
        for f, phones, enterprise_id in plans:
            _, gone = await _write_contract_customer(f, phones, enterprise_id)
            dropped += gone
    for user_id in dropped:
        await end_user_sessions(user_id)
    await auth_changed()
    added = sum(1 for _, _, ent in plans if ent is None)
    updated = len(plans) - added
    await audit.record("协议客户", user=by, ip=ip, detail=f"导入：新增{added}个，更新{updated}个")
    return added, updated


async def enterprise_overview(enterprise_id: int) -> dict[str, Any]:
    """平台管理's read-only view of an enterprise: its data, its accounts (with their
    departments) and the subsidiaries directly below it."""
    ent = await Enterprise.select().where(Enterprise.id == enterprise_id).first()
    if ent is None:
        raise NotFound("单位不存在")
    users = (
        await User.select(*account_columns())
        .where(User.enterprise == enterprise_id)
        .order_by(User.id)
    )
    children = (
        await Enterprise.select(Enterprise.id, Enterprise.name, Enterprise.uscc, Enterprise.status)
        .where(Enterprise.parent == enterprise_id)
        .order_by(Enterprise.id)
    )
    parent = None
    if ent["parent"]:
        parent = (
            await Enterprise.select(Enterprise.id, Enterprise.name)
            .where(Enterprise.id == ent["parent"])
            .first()
        )
    return {"enterprise": ent, "users": users, "children": children, "parent": parent}
