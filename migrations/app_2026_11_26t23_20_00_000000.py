"""One draft per user: a partial unique index (parallel 【预约送检】 opens made several)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-26T23:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "one draft per user"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="app", description=DESCRIPTION)

    async def one_draft_per_user() -> None:
        engine = engine_finder()
        # Older duplicate drafts were unreachable (the newest one is opened): they keep
        # their rows but no longer belong to the user.
        await engine.run_ddl(
            "UPDATE booking SET created_by = NULL WHERE status = 'draft' AND created_by IS NOT NULL"
            " AND id NOT IN (SELECT MAX(id) FROM booking WHERE status = 'draft'"
            " AND created_by IS NOT NULL GROUP BY created_by)"
        )
        await engine.run_ddl(
            "CREATE UNIQUE INDEX IF NOT EXISTS booking_one_draft_per_user"
            " ON booking (created_by) WHERE status = 'draft'"
        )

    async def back() -> None:
        await engine_finder().run_ddl("DROP INDEX IF EXISTS booking_one_draft_per_user")

    manager.add_raw(one_draft_per_user)
    manager.add_raw_backwards(back)
    return manager
