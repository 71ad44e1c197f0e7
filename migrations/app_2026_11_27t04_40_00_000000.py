"""Tallies of 器具托管 and 电子证书 (issue #15: an enterprise's rows, kept by triggers as
预约记录's are), and the indexes their keyset pages read: an enterprise's rows by the
list's sort column and id (有效期至, 完工日期), scanned either way. The earlier
certificate_page index (完工日期 DESC NULLS LAST) is replaced: a page without 完工日期
rows is read as its own part, so a plain index serves both directions on both databases."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

ID = "2026-11-27T04:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "register and certificate tallies"

# kind, table: every row of the enterprise counts (status "")
LISTS = [("instrument", "instrument"), ("certificate", "certificate")]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="app", description=DESCRIPTION)
    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager


def _delta(kind: str, row: str, d: int) -> str:
    return (
        "INSERT INTO tally (kind, enterprise, status, d)"
        f" VALUES ('{kind}', {row}.enterprise, '', {d})"
    )


async def create() -> None:
    engine = engine_finder()
    sqlite = isinstance(engine, SQLiteEngine)
    for kind, table in LISTS:
        if sqlite:
            await engine.run_ddl(
                f"CREATE TRIGGER tally_{kind}_insert AFTER INSERT ON {table}"
                f" BEGIN {_delta(kind, 'NEW', 1)}; END"
            )
            await engine.run_ddl(
                f"CREATE TRIGGER tally_{kind}_delete AFTER DELETE ON {table}"
                f" BEGIN {_delta(kind, 'OLD', -1)}; END"
            )
            await engine.run_ddl(
                f"CREATE TRIGGER tally_{kind}_update AFTER UPDATE OF enterprise ON {table}"
                " WHEN OLD.enterprise IS NOT NEW.enterprise"
                f" BEGIN {_delta(kind, 'OLD', -1)}; {_delta(kind, 'NEW', 1)}; END"
            )
        else:
            await engine.run_ddl(
                f"""CREATE OR REPLACE FUNCTION tally_{kind}() RETURNS trigger AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN {_delta(kind, "OLD", -1)}; END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN {_delta(kind, "NEW", 1)}; END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql"""
            )
            await engine.run_ddl(
                f"CREATE TRIGGER tally_{kind}_write AFTER INSERT OR DELETE ON {table}"
                f" FOR EACH ROW EXECUTE FUNCTION tally_{kind}()"
            )
            await engine.run_ddl(
                f"CREATE TRIGGER tally_{kind}_update AFTER UPDATE OF enterprise ON {table}"
                " FOR EACH ROW WHEN (OLD.enterprise IS DISTINCT FROM NEW.enterprise)"
                f" EXECUTE FUNCTION tally_{kind}()"
            )
        await engine.run_ddl(  # the rows already there
            "INSERT INTO tally (kind, enterprise, status, d)"
            f" SELECT '{kind}', enterprise, '', COUNT(*) FROM {table} GROUP BY enterprise"
        )
    await engine.run_ddl("DROP INDEX IF EXISTS certificate_page")
    await engine.run_ddl(
        "CREATE INDEX certificate_keyset ON certificate (enterprise, completed_on, id)"
    )
    await engine.run_ddl(
        "CREATE INDEX instrument_keyset ON instrument (enterprise, valid_until, id)"
    )


async def drop() -> None:
    engine = engine_finder()
    sqlite = isinstance(engine, SQLiteEngine)
    for index in ("certificate_keyset", "instrument_keyset"):
        await engine.run_ddl(f"DROP INDEX IF EXISTS {index}")
    nulls = "" if sqlite else " NULLS LAST"
    await engine.run_ddl(
        "CREATE INDEX IF NOT EXISTS certificate_page"
        f" ON certificate (enterprise, completed_on DESC{nulls}, id DESC)"
    )
    for kind, table in LISTS:
        if sqlite:
            for name in ("insert", "delete", "update"):
                await engine.run_ddl(f"DROP TRIGGER IF EXISTS tally_{kind}_{name}")
        else:
            await engine.run_ddl(f"DROP TRIGGER IF EXISTS tally_{kind}_write ON {table}")
            await engine.run_ddl(f"DROP TRIGGER IF EXISTS tally_{kind}_update ON {table}")
            await engine.run_ddl(f"DROP FUNCTION IF EXISTS tally_{kind}()")
