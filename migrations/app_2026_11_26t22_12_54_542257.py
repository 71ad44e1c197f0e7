"""Booking and SMS statuses are stored in English (app/enums.py), as enterprise statuses
and roles already were: the rows and the columns' defaults change, nothing else."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar
from piccolo.engine import engine_finder

ID = "2026-11-26T22:12:54:542257"
VERSION = "1.38.0"
DESCRIPTION = "status values in English"

# table → (column's SQL as Piccolo created it, {old stored value: new one}, (old, new) default)
CHANGES = {
    "booking": (
        '"status" VARCHAR(10) NOT NULL DEFAULT',
        {"草稿": "draft", "待审核": "pending", "已通过": "approved", "已驳回": "rejected"},
        ("草稿", "draft"),
    ),
    "sms_message": (
        '"status" VARCHAR(20) NOT NULL DEFAULT',
        {"待发送": "queued", "发送中": "sending", "已发送": "sent", "发送失败": "failed"},
        ("待发送", "queued"),
    ),
}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def _set_default_sqlite(table: str, column_sql: str, old: str, new: str) -> None:
    """SQLite has no ALTER COLUMN. Its documented way to change a default is to edit the
    table's CREATE statement in sqlite_schema and bump schema_version (sqlite.org,
    "ALTER TABLE", section 7); the stored rows do not depend on a default."""
    engine = engine_finder()
    version = (await engine.run_ddl("PRAGMA schema_version"))[0]["schema_version"]
    await engine.run_ddl("PRAGMA writable_schema = ON")
    await engine.run_ddl(
        f"UPDATE sqlite_master SET sql = replace(sql, {_quote(f'{column_sql} {_quote(old)}')}, "
        f"{_quote(f'{column_sql} {_quote(new)}')}) WHERE type = 'table' AND name = '{table}'"
    )
    await engine.run_ddl(f"PRAGMA schema_version = {int(version) + 1}")
    await engine.run_ddl("PRAGMA writable_schema = OFF")


async def _change(backwards: bool) -> None:
    engine = engine_finder()
    for table, (column_sql, values, (old_default, new_default)) in CHANGES.items():
        if backwards:
            values = {new: old for old, new in values.items()}
            old_default, new_default = new_default, old_default
        cases = " ".join(f"WHEN {_quote(a)} THEN {_quote(b)}" for a, b in values.items())
        olds = ", ".join(_quote(a) for a in values)
        await engine.run_ddl(
            f"UPDATE {table} SET status = CASE status {cases} END WHERE status IN ({olds})"
        )
        if engine.engine_type == "sqlite":
            await _set_default_sqlite(table, column_sql, old_default, new_default)
        else:
            await engine.run_ddl(
                f"ALTER TABLE {table} ALTER COLUMN status SET DEFAULT {_quote(new_default)}"
            )


class _Manager(MigrationManager):
    async def _run_alter_columns(self, backwards: bool = False) -> None:
        # The raw steps changed the defaults (SQLite cannot run Piccolo's ALTER COLUMN); the
        # alter_column entries only keep Piccolo's schema snapshot in step with app/tables.py.
        return None


async def forwards():
    manager = _Manager(migration_id=ID, app_name="app", description=DESCRIPTION)

    async def forward() -> None:
        await _change(backwards=False)

    async def backward() -> None:
        await _change(backwards=True)

    manager.add_raw(forward)
    manager.add_raw_backwards(backward)
    for table_class_name, tablename in (("Booking", "booking"), ("SmsMessage", "sms_message")):
        old_default, new_default = CHANGES[tablename][2]
        manager.alter_column(
            table_class_name=table_class_name,
            tablename=tablename,
            column_name="status",
            db_column_name="status",
            params={"default": new_default},
            old_params={"default": old_default},
            column_class=Varchar,
            old_column_class=Varchar,
            schema=None,
        )
    return manager
