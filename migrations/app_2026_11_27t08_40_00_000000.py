"""邮件记录 (#15) pages by keyset, newest first, of every e-mail or of one mailbox: the
index it reads for one mailbox (address, id)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T08:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "email log keyset index"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="app", description=DESCRIPTION)
    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager


async def create() -> None:
    await engine_finder().run_ddl(
        "CREATE INDEX IF NOT EXISTS email_message_address_page ON email_message (address, id)"
    )


async def drop() -> None:
    await engine_finder().run_ddl("DROP INDEX IF EXISTS email_message_address_page")
