"""操作日志: append-only audit records, and the admin's search over them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from app.clock import day_start
from app.db import any_matches
from app.security.sessions import CurrentUser
from app.services import listing, tallies
from app.services.listing import Cursor, Window
from app.tables import AuditLog


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it, as the 操作日志 records it: a signed-in user, or the lab system (a name
    and an address, no account)."""

    name: str
    ip: str
    user: CurrentUser | None = None

    @classmethod
    def of(cls, user: CurrentUser, ip: str) -> Actor:
        return cls(user.username, ip, user)


EVENTS = (
    "登录",
    "手机号登录",
    "退出",
    "客户注册",
    "重置密码",
    "注册审核",
    "协议客户",
    "预约审核",
    "检测业务",
    "证书管理",
    "证书下载",
    "证书上传",
    "用户管理",
    "部门管理",
    "企业管理",
    "基础信息",
    "提交预约",
    "删除预约",
    "器具托管",
    "通知设置",
)


async def record(
    event: str,
    result: str = "成功",
    *,
    user: CurrentUser | None = None,
    user_id: int | None = None,
    username: str = "",
    ip: str = "",
    detail: str = "",
    by: Actor | None = None,
) -> None:
    if by is not None:
        user, username, ip = by.user, by.name, by.ip
    await AuditLog.insert(
        AuditLog(
            event=event,
            result=result,
            user_id=user.id if user else user_id,
            username=(user.username if user else username)[:50],
            ip=ip[:64],
            detail=detail[:2000],
        )
    )


async def search(
    keyword: str = "",
    event: str = "",
    start: date | None = None,
    end: date | None = None,
    cursor: Cursor = Cursor(),
    per_page: int = 20,
) -> Window:
    """Newest first, a keyset page; keyword matches the user name, address or detail."""
    values: dict[str, Any] = {}
    if event:
        values["event"] = event
    if start:
        values["start"] = day_start(start)
    if end:
        values["end"] = day_start(end + timedelta(days=1))

    def where(p: dict[str, Any]) -> list[Any]:
        found: list[Any] = []
        if keyword:
            found.append(any_matches([AuditLog.username, AuditLog.detail, AuditLog.ip], keyword))
        if "event" in p:
            found.append(AuditLog.event == p["event"])
        if "start" in p:
            found.append(AuditLog.at >= p["start"])
        if "end" in p:
            found.append(AuditLog.at < p["end"])
        return found

    def filtered(query: Any, p: dict[str, Any]) -> Any:
        conditions = where(p)
        return query.where(*conditions) if conditions else query

    # A search's LIKE patterns are made from the keyword: built as it comes (key None).
    key = None if keyword else "audit"
    if keyword or start or end:
        total = await tallies.bounded_count(
            key and "audit.count", lambda p: filtered(AuditLog.select(AuditLog.id), p), **values
        )
    else:
        total = await tallies.total(tallies.AUDIT, None, event)
    return await listing.window(
        key,
        lambda p: filtered(AuditLog.select(), p),
        AuditLog.id,
        cursor,
        per_page,
        total,
        **values,
    )
