"""The database engine for DATABASE_URL: SQLite in embedded mode, PostgreSQL in production."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from piccolo.columns.combination import Where
from piccolo.columns.operators.comparison import ComparisonOperator
from piccolo.engine import engine_finder
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.table import Table

from app import deadline
from app.settings import get_settings


class _Engine(PostgresEngine):
    """Piccolo's PostgreSQL engine, telling the request's deadline (app/deadline.py) of each
    connection it opens outside the pool (no pool, ``batch()``): if the deadline passes, the
    connection is terminated rather than waited on."""

    async def get_new_connection(self) -> asyncpg.Connection:
        connection = await super().get_new_connection()
        deadline.hold(connection)
        return connection

    async def check_version(self) -> None:
        """Not done: Piccolo opens a connection at every engine's creation only to log the
        server's version (it wants 10 or later; we run 15). Every export child paid for it,
        and with a database that does not answer it waited out the connect timeout before
        its own work began."""


def make_engine() -> Engine:
    settings = get_settings()
    if settings.is_postgres:
        # A database that is away fails a request in seconds (a 503), never hangs it: the
        # connect timeout, and the request's deadline for a database that stops answering.
        config: dict[str, Any] = {
            "dsn": settings.database_url,
            "timeout": 5,
            "command_timeout": 30,
            # A connection the deadline dropped during a partition may never be heard of
            # by the server (an idle one sends nothing): its open transaction would keep
            # its row locks until TCP gives up, hours later. None of ours waits for long
            # on anything else, so the server ends one left idle for a minute.
            "server_settings": {"idle_in_transaction_session_timeout": "60000"},
        }
        return _Engine(config=config)
    path = settings.sqlite_path
    path.parent.mkdir(parents=True, exist_ok=True)
    # A busy timeout lets concurrent writers wait instead of failing with "database is locked".
    return SQLiteEngine(path=str(path), timeout=30)


class _NoResetConnection(asyncpg.Connection):  # type: ignore[misc]
    """Piccolo releases the pool connection after every query, and asyncpg then runs
    ``RESET ALL; UNLISTEN *; ...`` each time. The app keeps no session state on a
    connection (asyncpg still rolls back an open transaction), so skip it."""

    def get_reset_query(self) -> str:
        return ""


async def on_acquire(connection: Any) -> None:
    """A pool's ``setup``, run in the acquiring task: the current deadline's request holds
    the connection (the pool's proxy, which stops working once released)."""
    deadline.hold(connection)


async def fetch(engine: PostgresEngine, sql: str, args: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows of ``sql`` (``$1`` placeholders) as dicts, on the connection Piccolo itself would
    use (the current transaction's, else one from the pool, else a new one): what
    ``Table.raw`` does, without parsing and compiling the SQL again (app/compiled.py)."""
    tx = engine.current_transaction.get()
    if tx is not None:
        rows = await tx.connection.fetch(sql, *args)
    elif engine.pool is not None:
        async with engine.pool.acquire() as connection:
            rows = await connection.fetch(sql, *args)
    else:
        connection = await engine.get_new_connection()
        try:
            rows = await connection.fetch(sql, *args)
        finally:
            await connection.close()
    return [dict(r) for r in rows]


async def start_pool() -> None:
    """Open the PostgreSQL pool (production); SQLite has none."""

    engine = engine_finder()
    if isinstance(engine, PostgresEngine) and get_settings().db_pool:
        await engine.start_connection_pool(
            max_size=10,
            min_size=0,
            connection_class=_NoResetConnection,
            timeout=5,
            setup=on_acquire,
        )


async def close_pool() -> None:

    engine = engine_finder()
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        await engine.close_connection_pool()


async def bulk_insert(table: type[Table], rows: list[dict[str, Any]]) -> None:
    """Insert many rows in one go: COPY on PostgreSQL, executemany on SQLite.

    Piccolo's insert binds every value as a parameter, and asyncpg allows 32,767 of them:
    a 5,000-row import would fail. Every row must have the same keys (column names).
    """
    if not rows:
        return
    columns = list(rows[0])
    records = [tuple(row[c] for c in columns) for row in rows]
    name = table._meta.tablename
    engine = table._meta.db
    async with write_transaction() as tx:
        if isinstance(engine, PostgresEngine):
            await tx.connection.copy_records_to_table(name, records=records, columns=columns)
        else:
            marks = ", ".join("?" for _ in columns)
            await tx.connection.executemany(
                f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})", records
            )


def write_transaction() -> Any:
    """A transaction that writes. On SQLite it is IMMEDIATE: it takes the write lock at BEGIN,
    so a second writer waits (busy timeout) instead of failing when it upgrades a read."""

    engine = engine_finder()
    if isinstance(engine, SQLiteEngine):
        return engine.transaction(transaction_type=TransactionType.immediate)
    return engine.transaction()


def row_locks() -> bool:
    """Whether SELECT ... FOR UPDATE exists (PostgreSQL). SQLite's IMMEDIATE transaction
    already holds the whole database."""
    return get_settings().is_postgres


# A search longer than this is cut: no column holds more, and SQLite refuses a very long
# LIKE pattern ("LIKE or GLOB pattern too complex").
MAX_SEARCH = 100


# LIKE's own wildcards and its escape character, as typed in a search: characters.
LIKE_ESCAPE = "\\"
_LIKE_SPECIAL = str.maketrans({c: LIKE_ESCAPE + c for c in ("\\", "%", "_")})


def contains_pattern(text: str) -> str:
    """The LIKE pattern of "contains ``text``" (cut to MAX_SEARCH), with ``%``, ``_`` and
    the escape character typed in meaning themselves; for ``LIKE … ESCAPE '\\'``."""
    return f"%{text[:MAX_SEARCH].translate(_LIKE_SPECIAL)}%"


class _LikeEscaped(ComparisonOperator):
    template = "{name} LIKE {value} ESCAPE '\\'"


class _ILikeEscaped(ComparisonOperator):
    template = "{name} ILIKE {value} ESCAPE '\\'"


def matches(column: Any, text: str) -> Any:
    """``column`` contains ``text`` as typed (a ``%`` or ``_`` in it is a character, not a
    wildcard: "50%" finds "50%", not "500"), ignoring case on both databases (SQLite's LIKE
    already does for ASCII; PostgreSQL needs ILIKE). SQLite's LIKE has no escape character
    unless given one, so the condition says ESCAPE itself (Piccolo's like cannot)."""
    operator = _ILikeEscaped if get_settings().is_postgres else _LikeEscaped
    return Where(column=column, value=contains_pattern(text), operator=operator)


def any_matches(columns: list[Any], text: str) -> Any:
    """Any of ``columns`` contains ``text``."""
    condition = matches(columns[0], text)
    for column in columns[1:]:
        condition = condition | matches(column, text)
    return condition


def like_sql(column: str) -> str:
    """Raw SQL: ``column`` matches the pattern that fills its ``{}`` (a
    :func:`contains_pattern`), ignoring case, as :func:`matches`."""
    op = "ILIKE" if get_settings().is_postgres else "LIKE"
    return f"{column} {op} {{}} ESCAPE '\\'"
