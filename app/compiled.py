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
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine
from piccolo.query import Query
from piccolo.table import Table

from app.db import fetch

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


class Compiled(NamedTuple):
    table: type[Table]
    template: str  # for Piccolo's raw (SQLite): "{}" where each value goes
    sql: str  # the SQL with the engine's own placeholders ($1 on PostgreSQL)
    slots: list[Slot]


_shapes: dict[Hashable, Compiled] = {}


def _placeholders(values: Mapping[str, Any]) -> dict[str, Any]:
    """A Param for each value, a list of them for each list value."""
    out: dict[str, Any] = {}
    for name, v in values.items():
        many = isinstance(v, list | tuple)
        out[name] = [Param(name, i) for i in range(len(v))] if many else Param(name)
    return out


def _compile(
    build: Callable[[dict[str, Any]], Query], values: Mapping[str, Any], outer: str
) -> Compiled:
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
    return Compiled(query.table, template, sql, slots)


def _shape(key: Hashable | None, values: Mapping[str, Any], outer: str) -> Hashable:
    return (
        key,
        outer,
        tuple((n, len(v) if isinstance(v, list | tuple) else None) for n, v in values.items()),
    )


def _shape_of(
    key: Hashable | None,
    build: Callable[[dict[str, Any]], Query],
    values: Mapping[str, Any],
    outer: str,
) -> Compiled:
    shape = _shape(key, values, outer)
    compiled = _shapes.get(shape) if key is not None else None
    if compiled is None:
        compiled = _compile(build, values, outer)
        if key is not None:
            if len(_shapes) >= MAX_SHAPES:
                _shapes.clear()
            _shapes[shape] = compiled
    return compiled


def _args(slots: list[Slot], values: Mapping[str, Any]) -> list[Any]:
    args = []
    for name, extra in slots:
        if name is None:
            args.append(extra)  # a constant the builder gave
        else:
            args.append(values[name] if extra is None else values[name][extra])
    return args


async def _send(compiled: Compiled, args: list[Any]) -> list[dict[str, Any]]:
    engine = compiled.table._meta.db
    if isinstance(engine, PostgresEngine):
        return await fetch(engine, compiled.sql, args)
    return await compiled.table.raw(compiled.template, *args)  # type: ignore[no-any-return]


async def _run(
    key: Hashable | None,
    build: Callable[[dict[str, Any]], Query],
    values: Mapping[str, Any],
    outer: str = "{query}",
) -> list[dict[str, Any]]:
    compiled = _shape_of(key, build, values, outer)
    return await _send(compiled, _args(compiled.slots, values))


@dataclass(frozen=True)
class Part:
    """A query of one row and one column (a count, a sum) not yet sent: :func:`scalars`
    sends several of them as one statement."""

    key: Hashable | None
    build: Callable[[dict[str, Any]], Query]
    values: Mapping[str, Any]
    outer: str = "{query}"


_together: dict[Hashable, Compiled] = {}


async def scalars(parts: Sequence[Part]) -> list[Any]:
    """The value of each part, in order, from one statement ``SELECT (part 1), (part 2), ...``
    (one round trip instead of one per part: the 首页's counts)."""
    if not parts:
        return []
    shapes = [_shape_of(p.key, p.build, p.values, p.outer) for p in parts]
    args = [a for p, c in zip(parts, shapes, strict=True) for a in _args(c.slots, p.values)]
    if len(parts) == 1:
        rows = await _send(shapes[0], args)
        return [next(iter(rows[0].values())) if rows else None]
    cacheable = all(p.key is not None for p in parts)
    together_key = tuple(_shape(p.key, p.values, p.outer) for p in parts)
    compiled = _together.get(together_key) if cacheable else None
    if compiled is None:
        template = "SELECT " + ", ".join(f"({c.template}) AS v{i}" for i, c in enumerate(shapes))
        engine = engine_finder()
        assert engine is not None
        marks = (
            f"${i}" if engine.engine_type == "postgres" else "?" for i in range(1, 1 + len(args))
        )
        sql = template.format(*marks)
        slots = [slot for c in shapes for slot in c.slots]
        compiled = Compiled(shapes[0].table, template, sql, slots)
        if cacheable:
            if len(_together) >= MAX_SHAPES:
                _together.clear()
            _together[together_key] = compiled
    rows = await _send(compiled, args)
    return [rows[0][f"v{i}"] for i in range(len(parts))]


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


def counting_upto(
    key: Hashable | None, build: Callable[[dict[str, Any]], Query], limit: int, **values: Any
) -> Part:
    """How many rows ``build(placeholders)`` (a Piccolo select, unordered) gives, counting
    no further than ``limit + 1``. ``key`` None: compiled for this call only (a query whose
    values Piccolo changes, such as a search's LIKE patterns, built with them as they are)."""
    outer = f"SELECT COUNT(*) AS count FROM ({{query}} LIMIT {int(limit) + 1}) AS counted"
    return Part(key, build, values, outer)


async def count_upto(
    key: Hashable | None, build: Callable[[dict[str, Any]], Query], limit: int, **values: Any
) -> int:
    """:func:`counting_upto`, sent at once."""
    (n,) = await scalars([counting_upto(key, build, limit, **values)])
    return int(n or 0)
