"""The 首页's certificate counts (#12): 可下载的新证书 (paid, not yet downloaded) and 未缴费的证书
read an index of the enterprise's certificates by state instead of every certificate of the
enterprise (at 100,000 certificates, 10,000 of them the customer's, each count read 2,050
pages in 5–6 ms; bench/booking.py --big)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T07:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "certificate state index"

INDEXES = {
    "certificate_state": "certificate (enterprise, paid, downloaded_at, id)",
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
