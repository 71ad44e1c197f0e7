"""系统管理 › 用户管理 and 部门管理 (SPEC §8, manual 6.2–6.3): an enterprise's accounts and
its department tree.

Both work on the caller's own enterprise only, not its subsidiaries (each of those has its
own main account): :func:`own` narrows the scope, and every query goes through it. An id of
another enterprise answers :class:`NotFound`. Changes to an enterprise's departments and
accounts run in a write transaction holding its row (PostgreSQL; SQLite's IMMEDIATE
transaction holds the whole database), so a 部门代码, a parent loop or a department's users
are checked against what is really there when the change is written.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import anyio
import asyncpg
from piccolo.query.functions.aggregate import Count

from app.db import any_matches, row_locks, write_transaction
from app.enums import UserRole
from app.security.passwords import hash_password
from app.security.sessions import CurrentUser, auth_changed, end_user_sessions
from app.services import audit
from app.services.errors import FormError, NotFound
from app.services.tenancy import Scope, get_scoped, in_scope
from app.services.validators import (
    email_address,
    missing_errors,
    mobile_error,
    normalize_phone,
    password_error,
    username_error,
)
from app.tables import Department, Enterprise, User

USERNAME_TAKEN = "该登录账号已被使用，请换一个"
SELF_DELETE = "不能删除当前登录的企业主账户（您自己的账号）"
SELF_DISABLE = "不能停用当前登录的企业主账户（您自己的账号）"
PARENT_LOOP = "不能选择本部门或其下级部门作为父部门"
CODE_TAKEN = "本单位已有该部门代码，请换一个"


def own(scope: Scope) -> Scope:
    """The caller's own enterprise, without its subsidiaries."""
    return replace(scope, enterprise_ids=(scope.enterprise_id,))


def _form_id(text: str) -> int | None:
    """A select's id: empty is none; anything but digits is an id no row has (→ 404)."""
    text = text.strip()
    if not text:
        return None
    return int(text) if text.isdigit() else 0


async def _lock_enterprise(enterprise_id: int) -> None:
    """Inside a write transaction: hold the enterprise's row until it ends (PostgreSQL)."""
    if row_locks():
        await Enterprise.select(Enterprise.id).where(Enterprise.id == enterprise_id).lock_rows()


def _unique_violation(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.IntegrityError):
        return "UNIQUE" in str(exc)
    return isinstance(exc, asyncpg.UniqueViolationError)


# --------------------------------------------------------------------------- 用户管理


@dataclass(frozen=True)
class UserInput:
    """The 用户管理 form: 登录账号*, 用户姓名*, 密码* (on 编辑 empty = unchanged), 手机*, 部门,
    邮箱 (#12: where the notifications the account chose by e-mail go)."""

    username: str
    name: str
    password: str
    phone: str
    department_id: int | None
    email: str = ""

    @classmethod
    def from_form(cls, form: dict[str, str]) -> UserInput:
        return cls(
            username=form.get("username", "").strip(),
            name=form.get("name", "").strip(),
            password=form.get("password", ""),
            phone=normalize_phone(form.get("phone", "").strip()),
            department_id=_form_id(form.get("department", "")),
            email=form.get("email", "").strip(),
        )


def account_columns() -> tuple[Any, ...]:
    """The columns of an account row as 用户管理 and 平台管理's 企业 view list it."""
    return (
        User.id,
        User.username,
        User.name,
        User.phone,
        User.role,
        User.is_active,
        User.created_at,
        User.last_login_at,
        User.department.name.as_alias("department_name"),
    )


async def list_users(
    scope: Scope, q: str = "", page: int = 1, per_page: int = 20
) -> tuple[list[dict[str, Any]], int]:
    """The enterprise's accounts, searched by 登录账号 / 用户姓名 / 手机, oldest first."""
    where = [in_scope(User, own(scope))]
    if q:
        where.append(any_matches([User.username, User.name, User.phone], q))
    total = await User.count().where(*where)
    pages = max(1, -(-total // per_page))
    rows = (
        await User.select(*account_columns())
        .where(*where)
        .order_by(User.id)
        .limit(per_page)
        .offset((min(page, pages) - 1) * per_page)
    )
    for r in rows:
        r["is_sub_account"] = r["role"] == UserRole.SUB_ACCOUNT
        r["role_label"] = (UserRole.parse(r["role"]) or UserRole.SUB_ACCOUNT).label
    return rows, total


async def get_user(scope: Scope, user_id: int) -> dict[str, Any]:
    """One account of the enterprise (never its password hash), or NotFound."""
    try:
        row = await get_scoped(User, own(scope), user_id)
    except NotFound:
        raise NotFound("用户不存在") from None
    row.pop("password_hash", None)
    return row


async def _check_department(scope: Scope, department_id: int | None) -> None:
    """A department chosen in a form must be the enterprise's own (else 404)."""
    if department_id is not None:
        await get_department(scope, department_id)


def _user_errors(data: UserInput, new: bool) -> dict[str, str]:
    values = {"username": data.username, "name": data.name, "phone": data.phone}
    labels = {"username": "登录账号", "name": "用户姓名", "phone": "手机"}
    if new:  # on 编辑 an empty 密码 leaves it unchanged
        values["password"], labels["password"] = data.password, "密码"
    errors = missing_errors(values, labels)
    if data.username and (err := username_error(data.username)):
        errors["username"] = err
    if len(data.name) > 50:
        errors["name"] = "用户姓名不能超过50个字"
    if data.phone and (err := mobile_error(data.phone)):
        errors["phone"] = err
    if data.password and (err := password_error(data.password, data.username)):
        errors["password"] = err
    if err := email_address(data.email)[1]:
        errors["email"] = err
    return errors


async def save_user(
    scope: Scope, data: UserInput, by: CurrentUser, ip: str, user_id: int | None = None
) -> int:
    """【新增】 a sub-account, or 【编辑】 an account of the enterprise. Returns its id.

    登录账号 is unique across the platform. A new password ends the account's sessions
    (but not the caller's own: changing one's password here keeps one logged in).
    """
    new = user_id is None
    if not new:
        await get_user(scope, user_id)
    await _check_department(scope, data.department_id)
    errors = _user_errors(data, new)
    if "username" not in errors:
        taken = await User.select(User.id).where(User.username == data.username).first()
        if taken and taken["id"] != user_id:
            errors["username"] = USERNAME_TAKEN
    if errors:
        raise FormError(errors)
    # Argon2 is CPU work: off the event loop, and before the transaction holds anything.
    new_hash = await anyio.to_thread.run_sync(hash_password, data.password) if data.password else ""
    email = email_address(data.email)[0]
    values: dict[Any, Any] = {
        User.username: data.username,
        User.name: data.name,
        User.phone: data.phone,
        User.department: data.department_id,
        User.email: email,
    }
    if new_hash:  # on 编辑, only when a new 密码 was typed
        values[User.password_hash] = new_hash
    try:
        async with write_transaction():
            await _lock_enterprise(scope.enterprise_id)
            if data.department_id is not None and not await Department.exists().where(
                Department.id == data.department_id
            ):
                raise FormError({"department": "该部门已被删除，请重新选择"})
            if new:
                user = User(
                    enterprise=scope.enterprise_id,
                    role=UserRole.SUB_ACCOUNT,
                    username=data.username,
                    name=data.name,
                    phone=data.phone,
                    department=data.department_id,
                    email=email,
                    password_hash=new_hash,
                )
                await user.save()
                user_id = int(user.id)
            else:
                await User.update(values).where(User.id == user_id)
    except Exception as exc:
        # Two requests took the same 登录账号 at once: the unique index refused the second.
        if _unique_violation(exc):
            raise FormError({"username": USERNAME_TAKEN}) from None
        raise
    assert user_id is not None
    if new_hash and not new and user_id != by.id:
        await end_user_sessions(user_id)
    elif not new:
        await auth_changed()  # 登录账号 / 姓名 show at once in every process
    what = "新增子账户" if new else "编辑用户" + ("（修改密码）" if new_hash else "")
    await audit.record("用户管理", user=by, ip=ip, detail=f"{what}：{data.username}（{data.name}）")
    return user_id


async def delete_users(scope: Scope, ids: Iterable[int], by: CurrentUser, ip: str) -> int:
    """【删除】 the ticked sub-accounts, all or none. Their sessions end; what they made
    stays with the enterprise (a booking's 创建人 becomes empty)."""
    ids = sorted(set(ids))
    if not ids:
        raise FormError({"": "请先勾选要删除的用户"})
    async with write_transaction():
        await _lock_enterprise(scope.enterprise_id)
        rows = await User.select(User.id, User.username, User.name, User.role).where(
            User.id.is_in(ids), in_scope(User, own(scope))
        )
        if len(rows) != len(ids):
            raise NotFound("用户不存在")
        if by.id in ids:
            raise FormError({"": SELF_DELETE})
        for r in rows:
            if r["role"] != UserRole.SUB_ACCOUNT:
                raise FormError({"": f"「{r['username']}」是企业主账户，不能删除"})
        await User.delete().where(User.id.is_in(ids))
    for user_id in ids:
        await end_user_sessions(user_id)
    names = "、".join(f"{r['username']}（{r['name']}）" for r in rows)
    await audit.record("用户管理", user=by, ip=ip, detail=f"删除用户：{names}")
    return len(ids)


async def set_active(
    scope: Scope, user_id: int, active: bool, by: CurrentUser, ip: str
) -> dict[str, Any]:
    """启用 / 停用 a sub-account. 停用 ends its sessions at once; it cannot log in until
    启用 again. Returns the account."""
    row = await get_user(scope, user_id)
    action = "启用" if active else "停用"
    if user_id == by.id and not active:
        raise FormError({"": SELF_DISABLE})
    if row["role"] != UserRole.SUB_ACCOUNT:
        raise FormError({"": f"「{row['username']}」是企业主账户，不能{action}"})
    await User.update({User.is_active: active}).where(User.id == user_id)
    if not active:
        await end_user_sessions(user_id)
    await audit.record(
        "用户管理",
        user=by,
        ip=ip,
        detail=f"{action}子账户：{row['username']}（{row['name']}）",
    )
    return row


# --------------------------------------------------------------------------- 部门管理


@dataclass(frozen=True)
class DepartmentInput:
    """The 部门管理 form: 部门名称*, 父部门名称, 部门级别, 部门代码."""

    name: str
    parent_id: int | None
    level: str
    code: str

    @classmethod
    def from_form(cls, form: dict[str, str]) -> DepartmentInput:
        return cls(
            name=form.get("name", "").strip(),
            parent_id=_form_id(form.get("parent", "")),
            level=form.get("level", "").strip(),
            code=form.get("code", "").strip(),
        )


async def get_department(scope: Scope, department_id: int) -> dict[str, Any]:
    try:
        return await get_scoped(Department, own(scope), department_id)
    except NotFound:
        raise NotFound("部门不存在") from None


async def _departments(enterprise_id: int) -> list[dict[str, Any]]:
    return await (
        Department.select(
            Department.id, Department.name, Department.parent, Department.level, Department.code
        )
        .where(Department.enterprise == enterprise_id)
        .order_by(Department.id)
    )


async def department_tree(scope: Scope) -> list[dict[str, Any]]:
    """The departments as a tree: the roots, each with ``children`` (in the order they
    were added), ``depth`` and ``users`` (how many accounts it has)."""
    rows = await _departments(scope.enterprise_id)
    counts = {
        r["department"]: r["count"]
        for r in await User.select(User.department, Count())
        .where(in_scope(User, own(scope)), User.department.is_not_null())
        .group_by(User.department)
    }
    by_id = {r["id"]: {**r, "children": [], "users": counts.get(r["id"], 0)} for r in rows}
    roots = []
    for node in by_id.values():
        parent = by_id.get(node["parent"])
        # A parent outside the enterprise cannot be saved; should one appear, show a root.
        (parent["children"] if parent else roots).append(node)

    def place(nodes: list[dict[str, Any]], depth: int) -> None:
        for n in nodes:
            n["depth"] = depth
            place(n["children"], depth + 1)

    place(roots, 0)
    return roots


def flatten(tree: list[dict[str, Any]], skip: int | None = None) -> list[dict[str, Any]]:
    """The tree in display order, depth first, without ``skip`` and its descendants."""
    out: list[dict[str, Any]] = []
    for node in tree:
        if node["id"] == skip:
            continue
        out.append(node)
        out.extend(flatten(node["children"], skip))
    return out


async def department_options(scope: Scope, skip: int | None = None) -> list[dict[str, Any]]:
    """The choices of a 部门 / 父部门名称 select, indented by depth (never ``skip`` or
    its descendants: a department cannot be its own ancestor)."""
    return [
        {"id": n["id"], "label": "　" * n["depth"] + ("└ " if n["depth"] else "") + n["name"]}
        for n in flatten(await department_tree(scope), skip)
    ]


def _department_errors(data: DepartmentInput) -> dict[str, str]:
    errors = missing_errors({"name": data.name}, {"name": "部门名称"})
    for key, label, limit in (
        ("name", "部门名称", 100),
        ("level", "部门级别", 20),
        ("code", "部门代码", 50),
    ):
        if len(getattr(data, key)) > limit:
            errors[key] = f"{label}不能超过{limit}个字"
    return errors


def _makes_loop(parents: dict[int, int | None], department_id: int, parent_id: int) -> bool:
    """Whether ``parent_id`` is ``department_id`` itself or one of its descendants."""
    seen: set[int] = set()
    node: int | None = parent_id
    while node is not None and node not in seen:
        if node == department_id:
            return True
        seen.add(node)
        node = parents.get(node)
    return False


async def save_department(
    scope: Scope,
    data: DepartmentInput,
    by: CurrentUser,
    ip: str,
    department_id: int | None = None,
) -> int:
    """【新增】 / 【编辑】 a department. Nothing is saved on any error. Returns its id."""
    if department_id is not None:
        await get_department(scope, department_id)
    if data.parent_id is not None:
        await get_department(scope, data.parent_id)
    errors = _department_errors(data)
    async with write_transaction():
        await _lock_enterprise(scope.enterprise_id)
        rows = await _departments(scope.enterprise_id)
        parents = {r["id"]: r["parent"] for r in rows}
        if data.parent_id is not None and data.parent_id not in parents:
            errors["parent"] = "该部门已被删除，请重新选择"
        elif (
            department_id is not None
            and data.parent_id is not None
            and _makes_loop(parents, department_id, data.parent_id)
        ):
            errors["parent"] = PARENT_LOOP
        if data.code and any(r["code"] == data.code and r["id"] != department_id for r in rows):
            errors["code"] = CODE_TAKEN
        if errors:
            raise FormError(errors)
        values = {
            Department.name: data.name,
            Department.parent: data.parent_id,
            Department.level: data.level,
            Department.code: data.code,
        }
        if department_id is None:
            row = Department(
                enterprise=scope.enterprise_id,
                name=data.name,
                parent=data.parent_id,
                level=data.level,
                code=data.code,
            )
            await row.save()
            new_id = int(row.id)
        else:
            await Department.update(values).where(Department.id == department_id)
            new_id = department_id
    what = "新增部门" if department_id is None else "编辑部门"
    code = f"（{data.code}）" if data.code else ""
    await audit.record("部门管理", user=by, ip=ip, detail=f"{what}：{data.name}{code}")
    return new_id


async def delete_departments(scope: Scope, ids: Iterable[int], by: CurrentUser, ip: str) -> int:
    """【删除】 the ticked departments, all or none. One with sub-departments (that are not
    ticked too) or with users is refused, and the message names it and says why."""
    ids = sorted(set(ids))
    if not ids:
        raise FormError({"": "请先勾选要删除的部门"})
    async with write_transaction():
        await _lock_enterprise(scope.enterprise_id)
        rows = await Department.select(Department.id, Department.name).where(
            Department.id.is_in(ids), in_scope(Department, own(scope))
        )
        if len(rows) != len(ids):
            raise NotFound("部门不存在")
        names = {r["id"]: r["name"] for r in rows}
        reasons = []
        children = await Department.select(Department.parent).where(
            Department.parent.is_in(ids), Department.id.not_in(ids)
        )
        for parent in sorted({c["parent"] for c in children}):
            reasons.append(f"「{names[parent]}」下还有下级部门，请先删除或移走下级部门")
        members = await (
            User.select(User.department, Count())
            .where(User.department.is_in(ids))
            .group_by(User.department)
        )
        for m in sorted(members, key=lambda m: m["department"]):
            reasons.append(
                f"「{names[m['department']]}」下还有{m['count']}个用户，请先将用户调整到其他部门"
            )
        if reasons:
            raise FormError({"": "不能删除：" + "；".join(reasons)})
        await Department.delete().where(Department.id.is_in(ids))
    await audit.record(
        "部门管理", user=by, ip=ip, detail="删除部门：" + "、".join(names[i] for i in ids)
    )
    return len(ids)
