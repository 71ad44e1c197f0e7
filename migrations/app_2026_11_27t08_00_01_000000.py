"""平台管理's 首页 (#12): orders older than N days still waiting for a certificate, from an
indexed state kept by triggers instead of asking, order by order, whether an instrument has
no certificate (at 1,000,000 instruments PostgreSQL chose a parallel hash anti-join of all of
order_item and certificate: 330 ms per 首页, bench/plans/平台首页-计数.txt).

certificate.item is not unique, so each instrument counts its certificates
(order_item.certificates, moved by certificate INSERT / DELETE / UPDATE OF item) and each
order counts its instruments that have none (lab_order.waiting, moved when an instrument is
added or deleted, gets its first certificate or loses its last, or moves to another order).
Every change is an UPDATE ... SET n = n ± 1 of one row in the writer's transaction:
concurrent writers wait for each other on that row, so no change is lost. The late orders
are then lab_order_waiting, a partial index of the orders with waiting > 0 (a query must
write the literal ``waiting > 0`` for the planner to use it)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

ID = "2026-11-27T08:00:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "order waiting triggers, backfill, partial index"

INDEX = "CREATE INDEX IF NOT EXISTS lab_order_waiting ON lab_order (created_at, id) WHERE waiting > 0"


def _certificates(row: str, d: str) -> str:
    return f"UPDATE order_item SET certificates = certificates {d} 1 WHERE id = {row}.item"


def _waiting(row: str, d: str) -> str:
    return f'UPDATE lab_order SET waiting = waiting {d} 1 WHERE id = {row}."order"'


def _function(name: str, table: str, column: str, key: str, counts: str) -> str:
    """PostgreSQL: ``table``'s row ``key`` of the old row loses one, the new row's gains one,
    when the row ``counts``. Rows are locked upwards, certificate, then order_item, then
    lab_order, and two rows (a move) both before either is changed, in id order: changing
    the first would lock its own order before the second is reached, and a writer holding
    the second and waiting for that order would deadlock with it. (orders.put_order
    changes its instruments before adding new ones for the same reason.)"""
    return f"""CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$
DECLARE
  gone bigint;
  came bigint;
BEGIN
  IF TG_OP <> 'INSERT' THEN
    IF {counts.format(row="OLD")} THEN gone := OLD.{key}; END IF;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    IF {counts.format(row="NEW")} THEN came := NEW.{key}; END IF;
  END IF;
  IF gone IS NOT NULL AND came IS NOT NULL THEN
    PERFORM 1 FROM {table} WHERE id IN (gone, came) ORDER BY id FOR NO KEY UPDATE;
  END IF;
  IF gone IS NOT NULL THEN
    UPDATE {table} SET {column} = {column} - 1 WHERE id = gone;
  END IF;
  IF came IS NOT NULL THEN
    UPDATE {table} SET {column} = {column} + 1 WHERE id = came;
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
        # No write between the counts below and the triggers (the migration's transaction
        # holds the lock to its end); reads go on.
        await engine.run_ddl(
            "LOCK TABLE lab_order, order_item, certificate IN SHARE ROW EXCLUSIVE MODE"
        )
    # The rows already there, counted before the triggers exist (so they do not fire).
    await engine.run_ddl(
        "UPDATE order_item SET certificates = c.n"
        " FROM (SELECT item, COUNT(*) AS n FROM certificate GROUP BY item) AS c"
        " WHERE c.item = order_item.id"
    )
    await engine.run_ddl(
        "UPDATE lab_order SET waiting = w.n"
        ' FROM (SELECT "order", COUNT(*) AS n FROM order_item WHERE certificates = 0'
        ' GROUP BY "order") AS w WHERE w."order" = lab_order.id'
    )
    if sqlite:
        await engine.run_ddl(
            "CREATE TRIGGER certificate_counts_insert AFTER INSERT ON certificate"
            f" BEGIN {_certificates('NEW', '+')}; END"
        )
        await engine.run_ddl(
            "CREATE TRIGGER certificate_counts_delete AFTER DELETE ON certificate"
            f" BEGIN {_certificates('OLD', '-')}; END"
        )
        await engine.run_ddl(
            "CREATE TRIGGER certificate_counts_update AFTER UPDATE OF item ON certificate"
            " WHEN OLD.item IS NOT NEW.item"
            f" BEGIN {_certificates('OLD', '-')}; {_certificates('NEW', '+')}; END"
        )
        await engine.run_ddl(
            "CREATE TRIGGER order_item_waits_insert AFTER INSERT ON order_item"
            f" WHEN NEW.certificates = 0 BEGIN {_waiting('NEW', '+')}; END"
        )
        await engine.run_ddl(
            "CREATE TRIGGER order_item_waits_delete AFTER DELETE ON order_item"
            f" WHEN OLD.certificates = 0 BEGIN {_waiting('OLD', '-')}; END"
        )
        await engine.run_ddl(
            'CREATE TRIGGER order_item_waits_update AFTER UPDATE OF certificates, "order"'
            " ON order_item WHEN (OLD.certificates = 0) IS NOT (NEW.certificates = 0)"
            ' OR OLD."order" IS NOT NEW."order"'
            f" BEGIN {_waiting('OLD', '-')} AND OLD.certificates = 0;"
            f" {_waiting('NEW', '+')} AND NEW.certificates = 0; END"
        )
    else:
        await engine.run_ddl(_function("certificate_counts", "order_item", "certificates", "item", "TRUE"))
        await engine.run_ddl(
            "CREATE TRIGGER certificate_counts_write AFTER INSERT OR DELETE ON certificate"
            " FOR EACH ROW EXECUTE FUNCTION certificate_counts()"
        )
        await engine.run_ddl(
            "CREATE TRIGGER certificate_counts_update AFTER UPDATE OF item ON certificate"
            " FOR EACH ROW WHEN (OLD.item IS DISTINCT FROM NEW.item)"
            " EXECUTE FUNCTION certificate_counts()"
        )
        await engine.run_ddl(
            _function("order_item_waits", "lab_order", "waiting", '"order"', "{row}.certificates = 0")
        )
        await engine.run_ddl(
            "CREATE TRIGGER order_item_waits_write AFTER INSERT OR DELETE ON order_item"
            " FOR EACH ROW EXECUTE FUNCTION order_item_waits()"
        )
        await engine.run_ddl(
            'CREATE TRIGGER order_item_waits_update AFTER UPDATE OF certificates, "order"'
            " ON order_item FOR EACH ROW WHEN ((OLD.certificates = 0) IS DISTINCT FROM"
            ' (NEW.certificates = 0) OR OLD."order" IS DISTINCT FROM NEW."order")'
            " EXECUTE FUNCTION order_item_waits()"
        )
    await engine.run_ddl(INDEX)


async def drop() -> None:
    engine = engine_finder()
    if isinstance(engine, SQLiteEngine):
        for name in ("insert", "delete", "update"):
            await engine.run_ddl(f"DROP TRIGGER IF EXISTS certificate_counts_{name}")
            await engine.run_ddl(f"DROP TRIGGER IF EXISTS order_item_waits_{name}")
    else:
        for name in ("write", "update"):
            await engine.run_ddl(f"DROP TRIGGER IF EXISTS certificate_counts_{name} ON certificate")
            await engine.run_ddl(f"DROP TRIGGER IF EXISTS order_item_waits_{name} ON order_item")
        await engine.run_ddl("DROP FUNCTION IF EXISTS certificate_counts()")
        await engine.run_ddl("DROP FUNCTION IF EXISTS order_item_waits()")
    await engine.run_ddl("DROP INDEX IF EXISTS lab_order_waiting")
