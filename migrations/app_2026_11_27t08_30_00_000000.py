"""Tallies over every enterprise (#15): 预约审核's and 平台管理's totals of bookings per
status, and 证书管理's of certificates, summed one row per enterprise: at 1,000 customers
a sum of ~1,000 tally rows a page (0.2–0.4 ms of PostgreSQL at 1,000,000 bookings against
0.05 at 1,000; bench/scale.py). Kept by their own triggers as kinds of enterprise 0
(booking_all by status, certificate_all), inserting a +1 / −1 row per change as the
enterprise tallies do (no shared counter row to lock; the fold sums them)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

ID = "2026-11-27T08:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "tallies over every enterprise"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="app", description=DESCRIPTION)
    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager


def _counted(row: str) -> str:
    """预约记录's rows: a booking unless a draft without instruments (migration 04:00)."""
    return f"({row}.status <> 'draft' OR {row}.item_count > 0)"


def _booking(row: str, d: int) -> str:
    return (
        "INSERT INTO tally (kind, enterprise, status, d)"
        f" SELECT 'booking_all', 0, {row}.status, {d} WHERE {_counted(row)}"
    )


def _certificate(d: int) -> str:
    return f"INSERT INTO tally (kind, enterprise, status, d) VALUES ('certificate_all', 0, '', {d})"


CHANGED = "OLD.status IS DISTINCT FROM NEW.status OR (OLD.item_count > 0) IS DISTINCT FROM (NEW.item_count > 0)"

POSTGRES = [
    f"""CREATE OR REPLACE FUNCTION tally_booking_all() RETURNS trigger AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN {_booking("OLD", -1)}; END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN {_booking("NEW", 1)}; END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
    "CREATE TRIGGER tally_booking_all_write AFTER INSERT OR DELETE ON booking"
    " FOR EACH ROW EXECUTE FUNCTION tally_booking_all()",
    "CREATE TRIGGER tally_booking_all_update AFTER UPDATE OF status, item_count ON booking"
    f" FOR EACH ROW WHEN ({CHANGED}) EXECUTE FUNCTION tally_booking_all()",
    f"""CREATE OR REPLACE FUNCTION tally_certificate_all() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN {_certificate(-1)}; ELSE {_certificate(1)}; END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
    "CREATE TRIGGER tally_certificate_all_write AFTER INSERT OR DELETE ON certificate"
    " FOR EACH ROW EXECUTE FUNCTION tally_certificate_all()",
]

SQLITE = [
    f"CREATE TRIGGER tally_booking_all_insert AFTER INSERT ON booking BEGIN {_booking('NEW', 1)}; END",
    f"CREATE TRIGGER tally_booking_all_delete AFTER DELETE ON booking BEGIN {_booking('OLD', -1)}; END",
    "CREATE TRIGGER tally_booking_all_update AFTER UPDATE OF status, item_count ON booking"
    f" WHEN {CHANGED.replace('IS DISTINCT FROM', 'IS NOT')}"
    f" BEGIN {_booking('OLD', -1)}; {_booking('NEW', 1)}; END",
    f"CREATE TRIGGER tally_certificate_all_insert AFTER INSERT ON certificate BEGIN {_certificate(1)}; END",
    f"CREATE TRIGGER tally_certificate_all_delete AFTER DELETE ON certificate BEGIN {_certificate(-1)}; END",
]


async def create() -> None:
    engine = engine_finder()
    sqlite = isinstance(engine, SQLiteEngine)
    if not sqlite:
        # No write between the sums below and the triggers (held to the migration's end).
        await engine.run_ddl("LOCK TABLE booking, certificate IN SHARE ROW EXCLUSIVE MODE")
    # The rows already there, counted before the triggers exist.
    await engine.run_ddl(
        "INSERT INTO tally (kind, enterprise, status, d)"
        " SELECT 'booking_all', 0, status, COUNT(*) FROM booking"
        f" WHERE {_counted('booking')} GROUP BY status"
    )
    await engine.run_ddl(
        "INSERT INTO tally (kind, enterprise, status, d)"
        " SELECT 'certificate_all', 0, '', COUNT(*) FROM certificate HAVING COUNT(*) > 0"
    )
    for sql in SQLITE if sqlite else POSTGRES:
        await engine.run_ddl(sql)


async def drop() -> None:
    engine = engine_finder()
    if isinstance(engine, SQLiteEngine):
        for name in ("insert", "delete", "update"):
            await engine.run_ddl(f"DROP TRIGGER IF EXISTS tally_booking_all_{name}")
            await engine.run_ddl(f"DROP TRIGGER IF EXISTS tally_certificate_all_{name}")
    else:
        await engine.run_ddl("DROP TRIGGER IF EXISTS tally_booking_all_write ON booking")
        await engine.run_ddl("DROP TRIGGER IF EXISTS tally_booking_all_update ON booking")
        await engine.run_ddl("DROP TRIGGER IF EXISTS tally_certificate_all_write ON certificate")
        await engine.run_ddl("DROP FUNCTION IF EXISTS tally_booking_all()")
        await engine.run_ddl("DROP FUNCTION IF EXISTS tally_certificate_all()")
    await engine.run_ddl("DELETE FROM tally WHERE kind IN ('booking_all', 'certificate_all')")
