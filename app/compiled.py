"""Hot queries compiled once per shape: the lists' reads, and 【添加器具】's writes (#11).

Piccolo builds and compiles a query's SQL on every run: for a list page's count and select
that is most of the CPU the request costs beyond the database itself (bench/booking.py
--layers). :func:`select` and :func:`count` compile a query once per *shape* (the ``key``
the caller gives, and the length of each list value), with placeholders where the values
go, and from then on only put the values in and run the SQL (``Table.raw``: the same
engine, pool and transaction as any query).

The builder gets a :class:`Param` (a ``str``) or a list of them for each value and must
pass them to Piccolo as they are: a placeholder that Piccolo would turn into another value
(escaped, wrapped in ``%``, cut) is refused when the shape is compiled. Anything not a
placeholder stays in the SQL as the builder gave it (LIMIT and OFFSET numbers: the key
must include them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from piccolo.engine import engine_finder
from piccolo.query import Query
from piccolo.table import Table

MARK = "\x00param:"
# How many compiled shapes are kept (pages of a list each make one).
MAX_SHAPES = 512
PLACEHOLDERS = {"postgres": re.compile(r"\$\d+"), "sqlite": re.compile(r"\?")}


class Param(str):
    """The placeholder of value ``name`` (item ``index`` of a list value)."""

    name: str
    index: int | None

    def __new__(cls, name: str, index: int | None = None) -> Param:
        # The % lets Piccolo's LIKE accept it; the NUL marks it as ours.
        p = super().__new__(cls, f"{MARK}{name}:{index}%")
        p.name = name
        p.index = index
        return p


# Each SQL argument: (value name, list index or None), or (None, a constant).
Slot = tuple[str | None, Any]
_shapes: dict[Hashable, tuple[type[Table], str, list[Slot]]] = {}


def _placeholders(values: Mapping[str, Any]) -> dict[str, Any]:
    """A Param for each value, a list of them for each list value."""
    out: dict[str, Any] = {}
    for name, v in values.items():
        many = isinstance(v, list | tuple)
        out[name] = [Param(name, i) for i in range(len(v))] if many else Param(name)
    return out


def _compile(
    build: Callable[[dict[str, Any]], Query], values: Mapping[str, Any], outer: str
) -> Any:
    query = build(_placeholders(values))
    engine = engine_finder()
    assert engine is not None
    sql, args = query.querystrings[0].compile_string(engine_type=engine.engine_type)
    sql = outer.replace("{query}", sql)
    slots: list[Slot] = []
    for arg in args:
        if isinstance(arg, Param):
            slots.append((arg.name, arg.index))
        elif isinstance(arg, str) and MARK in arg:
            raise ValueError(f"a placeholder was changed before it reached the SQL: {arg!r}")
        else:
            slots.append((None, arg))
    template = PLACEHOLDERS[engine.engine_type].sub("{}", sql.replace("{", "{{").replace("}", "}}"))
    return query.table, template, slots


async def _run(
    key: Hashable | None,
    build: Callable[[dict[str, Any]], Query],
    values: Mapping[str, Any],
    outer: str = "{query}",
) -> list[dict[str, Any]]:
    shape = (
        key,
        outer,
        tuple((n, len(v) if isinstance(v, list | tuple) else None) for n, v in values.items()),
    )
    compiled = _shapes.get(shape) if key is not None else None
    if compiled is None:
        compiled = _compile(build, values, outer)
        if key is not None:
            if len(_shapes) >= MAX_SHAPES:
                _shapes.clear()
            _shapes[shape] = compiled
    table, template, slots = compiled
    args = []
    for name, extra in slots:
        if name is None:
            args.append(extra)  # a constant the builder gave
        else:
            args.append(values[name] if extra is None else values[name][extra])
    return await table.raw(template, *args)  # type: ignore[no-any-return]


async def select(
    key: Hashable | None, build: Callable[[dict[str, Any]], Query], **values: Any
) -> list[dict[str, Any]]:
    """The rows of ``build(placeholders)`` (a Piccolo select) run with ``values``; ``key``
    None: compiled for this call only (see :func:`count_upto`)."""
    return await _run(key, build, values)


async def count(key: Hashable, build: Callable[[dict[str, Any]], Query], **values: Any) -> int:
    """The number ``build(placeholders)`` (a Piccolo count) gives with ``values``."""
    rows = await _run(key, build, values)
    return int(rows[0]["count"]) if rows else 0


async def count_upto(
    key: Hashable | None, build: Callable[[dict[str, Any]], Query], limit: int, **values: Any
) -> int:
    """How many rows ``build(placeholders)`` (a Piccolo select, unordered) gives, counting
    no further than ``limit + 1``. ``key`` None: compiled for this call only (a query whose
    values Piccolo changes, such as a search's LIKE patterns, built with them as they are)."""
    outer = f"SELECT COUNT(*) AS count FROM ({{query}} LIMIT {int(limit) + 1}) AS counted"
    rows = await _run(key, build, values, outer)
    return int(rows[0]["count"]) if rows else 0
