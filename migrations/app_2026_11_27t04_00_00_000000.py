"""Tallies: how many rows each list holds, per enterprise and status, kept in step with
every write by triggers (the list pages read the sums instead of counting: issue #15).

A trigger inserts a +1 / −1 row per change (no shared counter row to lock); folding the
rows into one per key is app/services/tallies.py's job. 预约记录 counts a booking unless it
is a draft without instruments (an untouched draft is not a record yet). Also the indexes
预约记录's keyset pages read: an enterprise's bookings newest first, of all statuses or one.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

ID = "2026-11-27T04:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "list tallies kept by triggers"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="app", description=DESCRIPTION)
    manager.add_raw(create_triggers)
    manager.add_raw_backwards(drop_triggers)
    return manager


# The booking rows 预约记录 shows, as a condition on OLD or NEW.
def _counted(row: str) -> str:
    return f"({row}.status <> 'draft' OR {row}.item_count > 0)"


def _delta(row: str, d: int) -> str:
    return (
        "INSERT INTO tally (kind, enterprise, status, d)"
        f" SELECT 'booking', {row}.enterprise, {row}.status, {d} WHERE {_counted(row)}"
    )


CHANGED = (
    "OLD.status IS DISTINCT FROM NEW.status OR OLD.enterprise IS DISTINCT FROM NEW.enterprise"
    " OR (OLD.item_count > 0) IS DISTINCT FROM (NEW.item_count > 0)"
)

POSTGRES = [
    f"""CREATE OR REPLACE FUNCTION tally_booking() RETURNS trigger AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN {_delta("OLD", -1)}; END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN {_delta("NEW", 1)}; END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
    "CREATE TRIGGER tally_booking_write AFTER INSERT OR DELETE ON booking"
    " FOR EACH ROW EXECUTE FUNCTION tally_booking()",
    "CREATE TRIGGER tally_booking_update AFTER UPDATE OF status, item_count, enterprise"
    f" ON booking FOR EACH ROW WHEN ({CHANGED}) EXECUTE FUNCTION tally_booking()",
]

SQLITE = [
    f"CREATE TRIGGER tally_booking_insert AFTER INSERT ON booking BEGIN {_delta('NEW', 1)}; END",
    f"CREATE TRIGGER tally_booking_delete AFTER DELETE ON booking BEGIN {_delta('OLD', -1)}; END",
    "CREATE TRIGGER tally_booking_update AFTER UPDATE OF status, item_count, enterprise"
    f" ON booking WHEN {CHANGED.replace('IS DISTINCT FROM', 'IS NOT')}"
    f" BEGIN {_delta('OLD', -1)}; {_delta('NEW', 1)}; END",
]


async def create_triggers() -> None:
    engine = engine_finder()
    await engine.run_ddl("CREATE INDEX tally_key ON tally (kind, enterprise, status, d)")
    await engine.run_ddl("CREATE INDEX booking_page ON booking (enterprise, id)")
    await engine.run_ddl("CREATE INDEX booking_status_page ON booking (enterprise, status, id)")
    for sql in SQLITE if isinstance(engine, SQLiteEngine) else POSTGRES:
        await engine.run_ddl(sql)
    # The bookings already there.
    await engine.run_ddl(
        "INSERT INTO tally (kind, enterprise, status, d)"
        " SELECT 'booking', enterprise, status, COUNT(*) FROM booking"
        f" WHERE {_counted('booking')} GROUP BY enterprise, status"
    )


async def drop_triggers() -> None:
    engine = engine_finder()
    for index in ("tally_key", "booking_page", "booking_status_page"):
        await engine.run_ddl(f"DROP INDEX IF EXISTS {index}")
    if isinstance(engine, SQLiteEngine):
        for name in ("insert", "delete", "update"):
            await engine.run_ddl(f"DROP TRIGGER IF EXISTS tally_booking_{name}")
    else:
        await engine.run_ddl("DROP TRIGGER IF EXISTS tally_booking_write ON booking")
        await engine.run_ddl("DROP TRIGGER IF EXISTS tally_booking_update ON booking")
        await engine.run_ddl("DROP FUNCTION IF EXISTS tally_booking()")
