"""检测进度 (#15): each instrument carries its order's 大单号 (order_item.order_no), so that
both of its searches (by 唯一性号, by 大单号) read one table by one prefix index and sort
without a join. With the join, PostgreSQL planned each search again at every size above a
few thousand rows (its generic plan would read the customer's whole index), and planning
the join cost more than the search: 0.1–0.19 ms a query at 100,000 and 1,000,000 rows
against 0.03 at 1,000 (bench/scale.py; the page's CPU 1.39× that at 1,000).

A trigger fills it from the order on every insert and move of an instrument (PostgreSQL:
BEFORE, in the row itself; SQLite: AFTER, by an UPDATE of the row) and follows a 大单号
that changes. Index order_item_number_prefix (order_no varchar_pattern_ops) on PostgreSQL,
order_item_number on SQLite (its BINARY comparison)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

ID = "2026-11-27T08:20:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "order item's order number: backfill, triggers, prefix index"

NUMBER = """COALESCE((SELECT o.order_no FROM lab_order o WHERE o.id = NEW."order"), '')"""

FUNCTION = f"""CREATE OR REPLACE FUNCTION order_item_order_no() RETURNS trigger AS $$
BEGIN
  NEW.order_no := {NUMBER};
  RETURN NEW;
END $$ LANGUAGE plpgsql"""

FOLLOW = 'UPDATE order_item SET order_no = NEW.order_no WHERE "order" = NEW.id'


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="app", description=DESCRIPTION)
    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager


async def create() -> None:
    engine = engine_finder()
    sqlite = isinstance(engine, SQLiteEngine)
    if not sqlite:
        # No write between the backfill and the triggers (held to the migration's end).
        await engine.run_ddl("LOCK TABLE lab_order, order_item IN SHARE ROW EXCLUSIVE MODE")
    await engine.run_ddl(
        'UPDATE order_item SET order_no = o.order_no FROM lab_order o WHERE o.id = order_item."order"'
    )
    if sqlite:
        fill = f"UPDATE order_item SET order_no = {NUMBER} WHERE id = NEW.id"
        await engine.run_ddl(
            f"CREATE TRIGGER order_item_order_no_insert AFTER INSERT ON order_item BEGIN {fill}; END"
        )
        await engine.run_ddl(
            'CREATE TRIGGER order_item_order_no_update AFTER UPDATE OF "order" ON order_item'
            f" BEGIN {fill}; END"
        )
        await engine.run_ddl(
            "CREATE TRIGGER lab_order_number_follows AFTER UPDATE OF order_no ON lab_order"
            f" WHEN OLD.order_no IS NOT NEW.order_no BEGIN {FOLLOW}; END"
        )
        await engine.run_ddl("CREATE INDEX IF NOT EXISTS order_item_number ON order_item (order_no)")
    else:
        await engine.run_ddl(FUNCTION)
        await engine.run_ddl(
            'CREATE TRIGGER order_item_order_no BEFORE INSERT OR UPDATE OF "order" ON order_item'
            " FOR EACH ROW EXECUTE FUNCTION order_item_order_no()"
        )
        await engine.run_ddl(
            "CREATE OR REPLACE FUNCTION lab_order_number_follows() RETURNS trigger AS $$"
            f" BEGIN {FOLLOW}; RETURN NULL; END $$ LANGUAGE plpgsql"
        )
        await engine.run_ddl(
            "CREATE TRIGGER lab_order_number_follows AFTER UPDATE OF order_no ON lab_order"
            " FOR EACH ROW WHEN (OLD.order_no IS DISTINCT FROM NEW.order_no)"
            " EXECUTE FUNCTION lab_order_number_follows()"
        )
        await engine.run_ddl(
            "CREATE INDEX IF NOT EXISTS order_item_number_prefix"
            " ON order_item (order_no varchar_pattern_ops)"
        )


async def drop() -> None:
    engine = engine_finder()
    if isinstance(engine, SQLiteEngine):
        for name in ("order_item_order_no_insert", "order_item_order_no_update", "lab_order_number_follows"):
            await engine.run_ddl(f"DROP TRIGGER IF EXISTS {name}")
        await engine.run_ddl("DROP INDEX IF EXISTS order_item_number")
    else:
        await engine.run_ddl("DROP TRIGGER IF EXISTS order_item_order_no ON order_item")
        await engine.run_ddl("DROP TRIGGER IF EXISTS lab_order_number_follows ON lab_order")
        await engine.run_ddl("DROP FUNCTION IF EXISTS order_item_order_no()")
        await engine.run_ddl("DROP FUNCTION IF EXISTS lab_order_number_follows()")
        await engine.run_ddl("DROP INDEX IF EXISTS order_item_number_prefix")
