"""The undated parts of 器具托管 and 电子证书 (rows without 有效期至 / 完工日期, read last by
their keyset pages) by a partial index each: at 1,000,000 rows the planner otherwise walked
the primary key backwards, filtering 20,000 rows to find 21 (bench/plans/器具托管-末页.txt)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T05:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "undated keyset indexes"

INDEXES = {
    "instrument_undated": "instrument (enterprise, id) WHERE valid_until IS NULL",
    "certificate_undated": "certificate (enterprise, id) WHERE completed_on IS NULL",
}


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="app", description=DESCRIPTION)

    async def create() -> None:
        for name, on in INDEXES.items():
            await engine_finder().run_ddl(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")

    async def drop() -> None:
        for name in INDEXES:
            await engine_finder().run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
