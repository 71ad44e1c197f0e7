"""操作日志: append-only audit records, and the admin's search over them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from app.clock import day_start
from app.db import any_matches
from app.security.sessions import CurrentUser
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
    page: int = 1,
    per_page: int = 20,
) -> tuple[list[dict], int]:
    """Newest first; keyword matches the user name, address or detail."""
    where = []
    if keyword:
        where.append(any_matches([AuditLog.username, AuditLog.detail, AuditLog.ip], keyword))
    if event:
        where.append(AuditLog.event == event)
    if start:
        where.append(AuditLog.at >= day_start(start))
    if end:
        where.append(AuditLog.at < day_start(end + timedelta(days=1)))
    query = AuditLog.select().order_by(AuditLog.id, ascending=False)
    count = AuditLog.count()
    if where:
        query = query.where(*where)
        count = count.where(*where)
    rows = await query.limit(per_page).offset((page - 1) * per_page)
    return rows, await count
