"""The enterprise scope: the one place that says whose data a user may see (SPEC §2).

A user sees its own enterprise and every subsidiary below it (企业管理), at any depth; this
holds for the main account and its sub-accounts alike. A subsidiary never sees its parent
or its siblings. Every customer-data query filters on ``scope.enterprise_ids``; an id from
a URL or form never widens it, and what lies outside answers :class:`NotFound` (HTTP 404).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from piccolo.table import Table

from app.db import row_locks
from app.security.sessions import CurrentUser
from app.services.errors import NotFound
from app.tables import Enterprise

# What a missing row of each table is called on the 404 page.
NOT_FOUND = {
    "booking": "预约不存在",
    "booking_item": "器具不存在",
    "instrument": "器具不存在",
    "enterprise_licence": "证件不存在",
}


# Deeper than any real group of companies; it only stops a cycle (which the forms cannot
# make: a subsidiary's parent is set once, when it is created) from running forever.
MAX_DEPTH = 20
# The enterprise and everything below it, nearest first: one query on SQLite and PostgreSQL.
TREE_SQL = f"""
WITH RECURSIVE tree(id, name, depth) AS (
    SELECT id, name, 0 FROM enterprise WHERE id = {{}}
    UNION ALL
    SELECT e.id, e.name, tree.depth + 1 FROM enterprise e JOIN tree ON e.parent = tree.id
    WHERE tree.depth < {MAX_DEPTH}
)
SELECT id, name FROM tree ORDER BY depth, id
"""


@dataclass(frozen=True)
class Scope:
    user_id: int
    enterprise_id: int  # the user's own: what it creates belongs to it
    enterprise_ids: tuple[int, ...]
    # (id, 单位名称) of each enterprise in the scope, the user's own first: lists name the
    # unit of each row and filter by it when there is more than one.
    units: tuple[tuple[int, str], ...] = ()

    @property
    def has_units(self) -> bool:
        """More than one enterprise: lists show each row's unit."""
        return len(self.enterprise_ids) > 1

    def unit_name(self, enterprise_id: int) -> str:
        return dict(self.units).get(enterprise_id, "")


async def branch(enterprise_id: int) -> list[int]:
    """The enterprise and every subsidiary below it, at any depth."""
    return [int(r["id"]) for r in await Enterprise.raw(TREE_SQL, enterprise_id)]


async def scope_for(user: CurrentUser) -> Scope:
    """The user's enterprise and all its subsidiaries, at any depth."""
    if user.enterprise_id is None:
        raise NotFound("没有所属单位的账号")
    rows = await Enterprise.raw(TREE_SQL, user.enterprise_id)
    units = tuple(dict.fromkeys((int(r["id"]), r["name"]) for r in rows))
    if not units:  # deleted while logged in
        raise NotFound("单位不存在")
    return Scope(
        user_id=user.id,
        enterprise_id=user.enterprise_id,
        enterprise_ids=tuple(i for i, _ in units),
        units=units,
    )


def narrow(scope: Scope, unit: str | None) -> Scope:
    """The scope of a list filtered to one unit (``?unit=<id>``). A unit outside the scope,
    or no unit, leaves it as it is: a filter never widens what the user sees."""
    if unit and unit.isdigit() and int(unit) in scope.enterprise_ids:
        return replace(scope, enterprise_ids=(int(unit),))
    return scope


async def get_subsidiary(scope: Scope, enterprise_id: int, *, lock: bool = False) -> dict[str, Any]:
    """企业管理: one direct subsidiary of the user's enterprise, or NotFound. (Deeper ones
    are managed by their own parent.)"""
    query = Enterprise.select().where(
        (Enterprise.id == enterprise_id) & (Enterprise.parent == scope.enterprise_id)
    )
    if lock and row_locks():
        query = query.lock_rows()
    row = await query.first()
    if row is None:
        raise NotFound("单位不存在")
    return row


def subsidiaries_of(scope: Scope) -> Any:
    """The condition on Enterprise for the user's direct subsidiaries."""
    return Enterprise.parent == scope.enterprise_id


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
