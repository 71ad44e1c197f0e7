"""检测业务 (#15): 待生成大单的预约, the approved bookings still without a lab order, from an
indexed state kept by triggers instead of NOT IN (every lab order): at 1,000,000 bookings
the list's count and first page read every approved booking and every order.

booking.order_count counts the booking's lab orders (lab_order.booking is not unique and
may be NULL), moved by lab_order INSERT / DELETE / UPDATE OF booking, each change an
UPDATE ... SET n = n ± 1 of one row in the writer's transaction, so concurrent writers wait
for each other on that row and no change is lost. The list is then booking_awaiting_order, a
partial index of the approved bookings with order_count = 0 (a query must write the literal
predicate for the planner to use it: orders.AWAITING_ORDER)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

ID = "2026-11-27T08:10:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "booking order count triggers, backfill, partial index"

INDEX = (
    "CREATE INDEX IF NOT EXISTS booking_awaiting_order ON booking (reviewed_at, id)"
    " WHERE status = 'approved' AND order_count = 0"
)


def _count(row: str, d: str) -> str:
    return f"UPDATE booking SET order_count = order_count {d} 1 WHERE id = {row}.booking"


# PostgreSQL: a move (an order given to another booking) locks both bookings in id order
# before changing either, as migration 08:00:01's counts do.
FUNCTION = """CREATE OR REPLACE FUNCTION booking_order_count() RETURNS trigger AS $$
DECLARE
  gone bigint;
  came bigint;
BEGIN
  IF TG_OP <> 'INSERT' THEN gone := OLD.booking; END IF;
  IF TG_OP <> 'DELETE' THEN came := NEW.booking; END IF;
  IF gone IS NOT NULL AND came IS NOT NULL THEN
    PERFORM 1 FROM booking WHERE id IN (gone, came) ORDER BY id FOR NO KEY UPDATE;
  END IF;
  IF gone IS NOT NULL THEN
    UPDATE booking SET order_count = order_count - 1 WHERE id = gone;
  END IF;
  IF came IS NOT NULL THEN
    UPDATE booking SET order_count = order_count + 1 WHERE id = came;
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="app", description=DESCRIPTION)
    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager


async def create() -> None:
    engine = engine_finder()
    sqlite = isinstance(engine, SQLiteEngine)
    if not sqlite:
        # No write between the counts below and the triggers (held to the migration's end).
        await engine.run_ddl("LOCK TABLE booking, lab_order IN SHARE ROW EXCLUSIVE MODE")
    # The rows already there, counted before the triggers exist (so they do not fire).
    await engine.run_ddl(
        "UPDATE booking SET order_count = c.n"
        " FROM (SELECT booking, COUNT(*) AS n FROM lab_order WHERE booking IS NOT NULL"
        " GROUP BY booking) AS c WHERE c.booking = booking.id"
    )
    if sqlite:
        await engine.run_ddl(
            "CREATE TRIGGER booking_order_count_insert AFTER INSERT ON lab_order"
            f" WHEN NEW.booking IS NOT NULL BEGIN {_count('NEW', '+')}; END"
        )
        await engine.run_ddl(
            "CREATE TRIGGER booking_order_count_delete AFTER DELETE ON lab_order"
            f" WHEN OLD.booking IS NOT NULL BEGIN {_count('OLD', '-')}; END"
        )
        await engine.run_ddl(
            "CREATE TRIGGER booking_order_count_update AFTER UPDATE OF booking ON lab_order"
            " WHEN OLD.booking IS NOT NEW.booking"
            f" BEGIN {_count('OLD', '-')}; {_count('NEW', '+')}; END"
        )
    else:
        await engine.run_ddl(FUNCTION)
        await engine.run_ddl(
            "CREATE TRIGGER booking_order_count_write AFTER INSERT OR DELETE ON lab_order"
            " FOR EACH ROW EXECUTE FUNCTION booking_order_count()"
        )
        await engine.run_ddl(
            "CREATE TRIGGER booking_order_count_update AFTER UPDATE OF booking ON lab_order"
            " FOR EACH ROW WHEN (OLD.booking IS DISTINCT FROM NEW.booking)"
            " EXECUTE FUNCTION booking_order_count()"
        )
    await engine.run_ddl(INDEX)


async def drop() -> None:
    engine = engine_finder()
    if isinstance(engine, SQLiteEngine):
        for name in ("insert", "delete", "update"):
            await engine.run_ddl(f"DROP TRIGGER IF EXISTS booking_order_count_{name}")
    else:
        for name in ("write", "update"):
            await engine.run_ddl(f"DROP TRIGGER IF EXISTS booking_order_count_{name} ON lab_order")
        await engine.run_ddl("DROP FUNCTION IF EXISTS booking_order_count()")
    await engine.run_ddl("DROP INDEX IF EXISTS booking_awaiting_order")
