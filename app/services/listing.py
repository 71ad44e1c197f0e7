"""Keyset pages of lists that grow without bound (issue #15): newest first by id.

A page is found by where it starts (the id of a row next to it), never by an OFFSET: the
database reads the page's rows and one more through an index, however long the list, so
page 1 and the page of the oldest rows cost the same at 1,000 or 1,000,000 rows.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from piccolo.columns.combination import WhereRaw
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
    at: str | None = None  # a sorted list's (SortKey) value at the cursor's row


@dataclass
class Window:
    """One page of a list, in the list's order, and whether there are rows on either side
    (``newer``: towards the list's start; ``older``: towards its end)."""

    rows: list[dict[str, Any]]
    newer: bool
    older: bool
    total: Total
    sort: SortKey | None = None  # a sorted list's order: its cursors carry the value too

    def at(self, row: dict[str, Any]) -> str | None:
        """A cursor's ``at`` for ``row`` (sorted lists): its value, None when it has none."""
        if self.sort is None:
            return None
        value = row[self.sort.column._meta.name]
        return None if value is None else str(value)


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


@dataclass(frozen=True)
class SortKey:
    """A list ordered by a nullable ``column`` (then by id, the same way), rows without a
    value last, both ways and on both databases. ``parse`` reads a cursor's ``at`` (a
    string from the URL) back into a value of the column, raising ValueError if it isn't."""

    column: Any
    descending: bool
    parse: Callable[[str], Any]


async def sorted_window(
    key: Hashable | None,
    build: Callable[[dict[str, Any]], Query],
    table: Any,
    sort: SortKey,
    cursor: Cursor,
    per_page: int,
    total: Total,
    **values: Any,
) -> Window:
    """:func:`window` for a list ordered by ``sort``: the rows with a value (by value and
    id, a row comparison an index on (…, column, id) answers), then those without (by id).

    The cursor is a row's id and (``at``) its value, None when it has none. Reading on from
    it goes through the rest of its part and on into the next; each part is one indexed
    query, and the second is only sent when the first did not fill the page."""
    at: Any = None
    if cursor.at is not None:
        try:
            at = sort.parse(cursor.at)
        except ValueError:
            return await sorted_window(key, build, table, sort, Cursor(), per_page, total, **values)
    cut = cursor.after if cursor.after is not None else cursor.before
    forward = cursor.before is None and not cursor.last  # reading the list's own way
    parts = ["value", "null"] if forward else ["null", "value"]
    if cut is not None:  # start in the cursor's part
        parts = parts[parts.index("value" if at is not None else "null") :]
    col = f'"{table._meta.tablename}"."{sort.column._meta.db_column_name}"'
    id_col = f'"{table._meta.tablename}"."id"'
    down = sort.descending == forward  # reading towards smaller values
    rows: list[dict[str, Any]] = []
    for part in parts:
        args = dict(values)
        cut_here = cut is not None and part == parts[0]
        if cut_here:
            args["cut"] = cut
            if part == "value":
                args["at"] = at

        wanted = per_page + 1 - len(rows)

        def page(p: dict[str, Any], part: str = part, wanted: int = wanted) -> Query:
            query = build(p)
            if part == "value":
                query = query.where(sort.column.is_not_null())
                if "at" in p:
                    query = query.where(
                        WhereRaw(
                            f"({col}, {id_col}) {'<' if down else '>'} ({{}}, {{}})",
                            p["at"],
                            p["cut"],
                        )  # fmt: skip
                    )
                query = query.order_by(sort.column, ascending=not down)
            else:
                query = query.where(sort.column.is_null())
                if "cut" in p:
                    query = query.where(WhereRaw(f"{id_col} {'<' if down else '>'} {{}}", p["cut"]))
            return query.order_by(table.id, ascending=not down).limit(wanted)

        shape = None if key is None else (key, "sorted", part, down, cut_here, wanted)
        rows += await compiled.select(shape, page, **args)
        if len(rows) > per_page:
            break
    more = len(rows) > per_page
    rows = rows[:per_page]
    if not forward:
        rows.reverse()
    if not rows and cut is not None:  # past the end (rows deleted meanwhile): that end
        fallback = Cursor(last=cursor.after is not None)
        return await sorted_window(key, build, table, sort, fallback, per_page, total, **values)
    if cut is None:
        newer, older = (False, more) if forward else (more, False)
    else:
        newer, older = (True, more) if forward else (more, True)
    return Window(rows, newer=newer, older=older, total=total, sort=sort)
