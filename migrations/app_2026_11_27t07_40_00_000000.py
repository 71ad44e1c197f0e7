"""The 首页's chart (#12) from a tally: certificates issued per enterprise and China-time
week (Monday's date in ``status``), kept by triggers as the lists' tallies are. The chart
read every certificate of the last 12 weeks instead (at 1,000,000 certificates the
measured customer's 88,000 rows: a second of CPU per 首页, bench/scale.py). Also the
prefix indexes 检测进度查询 needs: LIKE 'DD2026%' uses a plain index only under the C
collation (the server's is C.UTF-8), so it read every instrument of the customer."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

ID = "2026-11-27T07:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "certificate week tally, progress prefix indexes"

KIND = "cert_week"
# Monday (China time, UTC+8 all year) of the week of a certificate's created_at.
WEEK_POSTGRES = (
    "to_char(date_trunc('week', {row}.created_at AT TIME ZONE 'Asia/Shanghai'), 'YYYY-MM-DD')"
)
WEEK_SQLITE = "date({row}.created_at, '+8 hours', '-6 days', 'weekday 1')"
PREFIX = {
    "order_item_unique_prefix": "order_item (unique_no varchar_pattern_ops)",
    "lab_order_number_prefix": "lab_order (order_no varchar_pattern_ops)",
}


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="app", description=DESCRIPTION)
    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager


def _delta(week: str, row: str, d: int) -> str:
    return (
        "INSERT INTO tally (kind, enterprise, status, d)"
        f" VALUES ('{KIND}', {row}.enterprise, {week.format(row=row)}, {d})"
    )


async def create() -> None:
    engine = engine_finder()
    if isinstance(engine, SQLiteEngine):
        week = WEEK_SQLITE
        await engine.run_ddl(
            f"CREATE TRIGGER tally_{KIND}_insert AFTER INSERT ON certificate"
            f" BEGIN {_delta(week, 'NEW', 1)}; END"
        )
        await engine.run_ddl(
            f"CREATE TRIGGER tally_{KIND}_delete AFTER DELETE ON certificate"
            f" BEGIN {_delta(week, 'OLD', -1)}; END"
        )
        await engine.run_ddl(
            f"CREATE TRIGGER tally_{KIND}_update AFTER UPDATE OF enterprise, created_at"
            " ON certificate WHEN OLD.enterprise IS NOT NEW.enterprise"
            " OR OLD.created_at IS NOT NEW.created_at"
            f" BEGIN {_delta(week, 'OLD', -1)}; {_delta(week, 'NEW', 1)}; END"
        )
    else:
        week = WEEK_POSTGRES
        await engine.run_ddl(
            f"""CREATE OR REPLACE FUNCTION tally_{KIND}() RETURNS trigger AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN {_delta(week, "OLD", -1)}; END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN {_delta(week, "NEW", 1)}; END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql"""
        )
        await engine.run_ddl(
            f"CREATE TRIGGER tally_{KIND}_write AFTER INSERT OR DELETE ON certificate"
            f" FOR EACH ROW EXECUTE FUNCTION tally_{KIND}()"
        )
        await engine.run_ddl(
            f"CREATE TRIGGER tally_{KIND}_update AFTER UPDATE OF enterprise, created_at"
            " ON certificate FOR EACH ROW WHEN (OLD.enterprise IS DISTINCT FROM NEW.enterprise"
            " OR OLD.created_at IS DISTINCT FROM NEW.created_at)"
            f" EXECUTE FUNCTION tally_{KIND}()"
        )
        for name, on in PREFIX.items():
            await engine.run_ddl(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")
    c = week.format(row="certificate")
    await engine.run_ddl(  # the rows already there
        "INSERT INTO tally (kind, enterprise, status, d)"
        f" SELECT '{KIND}', enterprise, {c}, COUNT(*) FROM certificate GROUP BY enterprise, {c}"
    )


async def drop() -> None:
    engine = engine_finder()
    if isinstance(engine, SQLiteEngine):
        for name in ("insert", "delete", "update"):
            await engine.run_ddl(f"DROP TRIGGER IF EXISTS tally_{KIND}_{name}")
    else:
        await engine.run_ddl(f"DROP TRIGGER IF EXISTS tally_{KIND}_write ON certificate")
        await engine.run_ddl(f"DROP TRIGGER IF EXISTS tally_{KIND}_update ON certificate")
        await engine.run_ddl(f"DROP FUNCTION IF EXISTS tally_{KIND}()")
        for name in PREFIX:
            await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")
    await engine.run_ddl(f"DELETE FROM tally WHERE kind = '{KIND}'")
