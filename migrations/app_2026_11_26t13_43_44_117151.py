from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-26T13:43:44:117151"
VERSION = "1.38.0"
DESCRIPTION = "instrument identity index"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="app", description=DESCRIPTION)

    async def create() -> None:
        # One row per instrument of an enterprise: an import updates it instead of adding.
        await engine_finder().run_ddl(
            "CREATE UNIQUE INDEX IF NOT EXISTS instrument_identity "
            "ON instrument (enterprise, serial_no, model, name)"
        )

    async def drop() -> None:
        await engine_finder().run_ddl("DROP INDEX IF EXISTS instrument_identity")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
