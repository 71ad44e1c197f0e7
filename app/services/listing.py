"""Keyset pages of lists that grow without bound (issue #15): newest first by id.

A page is found by where it starts (the id of a row next to it), never by an OFFSET: the
database reads the page's rows and one more through an index, however long the list, so
page 1 and the page of the oldest rows cost the same at 1,000 or 1,000,000 rows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
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
    (``newer``: towards the list's start; ``older``: towards its end). ``total`` None: the
    list shows none (finding it would mean reading the whole list)."""

    rows: list[dict[str, Any]]
    newer: bool
    older: bool
    total: Total | None
    sort: SortKey | None = None  # a sorted list's order: its cursors carry the value too
    # A page of :func:`walked_window` that stopped looking before it was full, and where
    # 上一页 / 下一页 start when not at the first / last row shown.
    stopped: bool = False
    newer_cut: int | None = None
    older_cut: int | None = None

    def at(self, row: dict[str, Any]) -> str | None:
        """A cursor's ``at`` for ``row`` (sorted lists): its value, None when it has none."""
        if self.sort is None:
            return None
        value = row[self.sort.column._meta.name]
        return None if value is None else str(value)


def _direction(cursor: Cursor) -> tuple[int | None, bool]:
    """Where a page is read from and which way: (cut, ascending)."""
    if cursor.after is not None:  # 下一页: older rows, read downwards from ``after``
        return cursor.after, False
    if cursor.before is not None:  # 上一页: newer rows, read upwards from ``before``
        return cursor.before, True
    return None, cursor.last  # the newest rows, or (末页) the oldest, read upwards


def _sides(cut: int | None, ascending: bool, more: bool) -> tuple[bool, bool]:
    """(newer, older): past the page the way it was read there is ``more``; the side it
    was read from (a cursor's) has rows; a list's end has none."""
    if cut is None:
        return (more, False) if ascending else (False, more)
    return (more, True) if ascending else (True, more)


async def window(
    key: Hashable | None,
    build: Callable[[dict[str, Any]], Query],
    id_column: Any,
    cursor: Cursor,
    per_page: int,
    total: Total | None,
    **values: Any,
) -> Window:
    """The page ``cursor`` names of ``build(placeholders)`` (an app.compiled builder of a
    filtered select with ``id_column`` among its columns, unordered, no limit).

    A cursor past the end (its rows deleted meanwhile) gives the first or the last page."""
    cut, ascending = _direction(cursor)
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
    newer, older = _sides(cut, ascending, more)
    return Window(rows, newer=newer, older=older, total=total)


@dataclass(frozen=True)
class Walked:
    """What a walk read: the rows it kept (in id order the way it went), and, when it
    stopped at its limit before the list's end, the id of the last row it looked at."""

    rows: list[dict[str, Any]]
    reach: int | None


# ``walk(cut, ascending, limit, look)``: of the first ``look`` rows past id ``cut`` (None:
# from the list's start, or from its end when ascending), in id order that way, the first
# ``limit`` that pass the list's filter.
Walk = Callable[[int | None, bool, int, int], Awaitable[Walked]]


async def walked_window(
    walk: Walk, cursor: Cursor, per_page: int, look: int, total: Total | None = None
) -> Window:
    """:func:`window` for a list whose rows are a filter no index answers (a search, "the
    newest row of each instrument") over a list an index reads in id order: a page looks
    at no more than ``look`` rows past its cursor, so it costs the same wherever it is and
    however few rows pass. A page that stopped looking before it was full says so
    (``older_cut`` / ``newer_cut``: 下一页 / 上一页 go on from the last row looked at); it
    may then show fewer rows than a page holds, or none.

    ``total`` None is the total when one page shows the whole list (no page either side)."""
    cut, ascending = _direction(cursor)
    walked = await walk(cut, ascending, per_page + 1, look)
    rows = walked.rows
    more = len(rows) > per_page
    rows = rows[:per_page]
    stopped = walked.reach if not more else None  # more rows may lie past where it stopped
    if ascending:
        rows.reverse()
    if not rows and stopped is None and cut is not None:  # past the end: that end
        fallback = Cursor(last=cursor.after is not None)
        return await walked_window(walk, fallback, per_page, look, total)
    newer, older = _sides(cut, ascending, more or stopped is not None)
    found = Window(rows, newer=newer, older=older, total=total, stopped=stopped is not None)
    if stopped is not None:
        if ascending:
            found.newer_cut = stopped
        else:
            found.older_cut = stopped
    if cut is not None and not rows:  # nothing shown: the way back includes the cursor's row
        if ascending:
            found.older_cut = cut + 1
        else:
            found.newer_cut = cut - 1
    if total is None and not (newer or older):
        found.total = Total(len(rows))
    return found


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
