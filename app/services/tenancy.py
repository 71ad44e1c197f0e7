"""The enterprise scope: the one place that says whose data a user may see (SPEC §2).

Every customer-data query filters on ``scope.enterprise_ids``; an id from a URL or form
never widens it, and what lies outside answers :class:`NotFound` (HTTP 404).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from piccolo.table import Table

from app.db import row_locks
from app.security.sessions import CurrentUser
from app.services.errors import NotFound
from app.tables import Enterprise

# What a missing row of each table is called on the 404 page.
NOT_FOUND = {"booking": "预约不存在", "booking_item": "器具不存在", "instrument": "器具不存在"}


@dataclass(frozen=True)
class Scope:
    user_id: int
    enterprise_id: int
    enterprise_ids: tuple[int, ...]


async def scope_for(user: CurrentUser) -> Scope:
    """The user's enterprise, plus its subsidiaries for an enterprise main account."""
    if user.enterprise_id is None:
        raise NotFound("没有所属单位的账号")
    ids = [user.enterprise_id]
    if user.is_enterprise_admin:
        children = await Enterprise.select(Enterprise.id).where(
            Enterprise.parent == user.enterprise_id
        )
        ids += [c["id"] for c in children]
    return Scope(user_id=user.id, enterprise_id=user.enterprise_id, enterprise_ids=tuple(ids))


def in_scope(table: type[Table], scope: Scope) -> Any:
    """The tenancy condition on a table with an ``enterprise`` column."""
    return table.enterprise.is_in(list(scope.enterprise_ids))  # type: ignore[attr-defined]


async def get_scoped(
    table: type[Table], scope: Scope, row_id: int, *where: Any, lock: bool = False
) -> dict[str, Any]:
    """One row by id inside the scope (and ``where``), or NotFound. ``lock`` (inside a write
    transaction) holds the row until it ends, so its state cannot change meanwhile."""
    query = table.select().where(table.id == row_id, in_scope(table, scope), *where)
    if lock and row_locks():
        query = query.lock_rows()
    row = await query.first()
    if row is None:
        raise NotFound(NOT_FOUND.get(table._meta.tablename, "数据不存在"))
    return row
