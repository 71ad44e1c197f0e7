"""Keyset pages of lists that grow without bound (issue #15): newest first by id.

A page is found by where it starts (the id of a row next to it), never by an OFFSET: the
database reads the page's rows and one more through an index, however long the list, so
page 1 and the page of the oldest rows cost the same at 1,000 or 1,000,000 rows.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from piccolo.query import Query

from app import compiled
from app.services.tallies import Total


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: the newest rows (nothing set), the rows older than ``after``
    (下一页), the rows newer than ``before`` (上一页), or the oldest rows (``last``: 末页)."""

    after: int | None = None
    before: int | None = None
    last: bool = False


@dataclass
class Window:
    """One page of a list, newest first, and whether there are rows on either side."""

    rows: list[dict[str, Any]]
    newer: bool
    older: bool
    total: Total

    @property
    def first_id(self) -> int | None:
        return self.rows[0]["id"] if self.rows else None

    @property
    def last_id(self) -> int | None:
        return self.rows[-1]["id"] if self.rows else None


async def window(
    key: Hashable | None,
    build: Callable[[dict[str, Any]], Query],
    id_column: Any,
    cursor: Cursor,
    per_page: int,
    total: Total,
    **values: Any,
) -> Window:
    """The page ``cursor`` names of ``build(placeholders)`` (an app.compiled builder of a
    filtered select with ``id_column`` among its columns, unordered, no limit).

    A cursor past the end (its rows deleted meanwhile) gives the first or the last page."""
    if cursor.after is not None:  # 下一页: older rows, read downwards from ``after``
        cut, ascending = cursor.after, False
    elif cursor.before is not None:  # 上一页: newer rows, read upwards from ``before``
        cut, ascending = cursor.before, True
    else:  # the newest rows, or (末页) the oldest, read upwards
        cut, ascending = None, cursor.last
    args = dict(values)
    if cut is not None:
        args["cut"] = cut

    def page(p: dict[str, Any]) -> Query:
        query = build(p)
        if "cut" in p:
            query = query.where(id_column > p["cut"] if ascending else id_column < p["cut"])
        return query.order_by(id_column, ascending=ascending).limit(per_page + 1)

    shape = None if key is None else (key, "window", ascending, per_page)
    rows = await compiled.select(shape, page, **args)
    more = len(rows) > per_page  # one row past the page: there is more that way
    rows = rows[:per_page]
    if ascending:
        rows.reverse()
    if not rows and cut is not None:  # past the end (rows deleted meanwhile): that end
        fallback = Cursor(last=cursor.after is not None)
        return await window(key, build, id_column, fallback, per_page, total, **values)
    if cut is None:
        newer, older = (more, False) if ascending else (False, more)
    else:  # the side we came from has rows
        newer, older = (more, True) if ascending else (True, more)
    return Window(rows, newer=newer, older=older, total=total)
