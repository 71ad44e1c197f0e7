"""Tallies of 操作日志 (by event) and 短信记录 (issue #15), kept by triggers as 预约记录's are,
the indexes 预约审核's keyset pages read (submitted bookings of one status, newest first),
短信记录 of one phone and 操作日志 of one event, newest first."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

ID = "2026-11-27T04:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "audit and sms tallies"

# kind, table, the status a row counts under
LISTS = [("audit", "audit_log", "event"), ("sms", "sms_message", "''")]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="app", description=DESCRIPTION)
    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager


def _delta(kind: str, status: str, row: str, d: int) -> str:
    status = status if status.startswith("'") else f"{row}.{status}"
    return f"INSERT INTO tally (kind, enterprise, status, d) VALUES ('{kind}', 0, {status}, {d})"


async def create() -> None:
    engine = engine_finder()
    sqlite = isinstance(engine, SQLiteEngine)
    for kind, table, status in LISTS:
        if sqlite:
            await engine.run_ddl(
                f"CREATE TRIGGER tally_{kind}_insert AFTER INSERT ON {table}"
                f" BEGIN {_delta(kind, status, 'NEW', 1)}; END"
            )
            await engine.run_ddl(
                f"CREATE TRIGGER tally_{kind}_delete AFTER DELETE ON {table}"
                f" BEGIN {_delta(kind, status, 'OLD', -1)}; END"
            )
        else:
            await engine.run_ddl(
                f"""CREATE OR REPLACE FUNCTION tally_{kind}() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN {_delta(kind, status, "OLD", -1)}; END IF;
  IF TG_OP = 'INSERT' THEN {_delta(kind, status, "NEW", 1)}; END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql"""
            )
            await engine.run_ddl(
                f"CREATE TRIGGER tally_{kind}_write AFTER INSERT OR DELETE ON {table}"
                f" FOR EACH ROW EXECUTE FUNCTION tally_{kind}()"
            )
        group = "" if status == "''" else f" GROUP BY {status}"  # the rows already there
        await engine.run_ddl(
            "INSERT INTO tally (kind, enterprise, status, d)"
            f" SELECT '{kind}', 0, {status}, COUNT(*) FROM {table}{group} HAVING COUNT(*) > 0"
        )
    await engine.run_ddl("CREATE INDEX booking_review_page ON booking (status, id)")
    await engine.run_ddl("CREATE INDEX sms_message_phone_page ON sms_message (phone, id)")
    await engine.run_ddl("CREATE INDEX audit_log_event_page ON audit_log (event, id)")


async def drop() -> None:
    engine = engine_finder()
    for index in ("booking_review_page", "sms_message_phone_page", "audit_log_event_page"):
        await engine.run_ddl(f"DROP INDEX IF EXISTS {index}")
    for kind, table, _ in LISTS:
        if isinstance(engine, SQLiteEngine):
            for name in ("insert", "delete"):
                await engine.run_ddl(f"DROP TRIGGER IF EXISTS tally_{kind}_{name}")
        else:
            await engine.run_ddl(f"DROP TRIGGER IF EXISTS tally_{kind}_write ON {table}")
            await engine.run_ddl(f"DROP FUNCTION IF EXISTS tally_{kind}()")
