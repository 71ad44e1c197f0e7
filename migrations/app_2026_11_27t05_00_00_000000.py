"""The indexes the 首页 dashboard's counts read (#12): an enterprise's instruments at the
lab by 检测进度 (and the 检测进度 list of one status, newest first), an enterprise's
certificates by when they were issued (the per-week chart), failed SMS by time (平台管理's
last 24 h) and orders by age (orders without a certificate past N days)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T05:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "dashboard indexes"

INDEXES = {
    "order_item_status_page": "order_item (enterprise, status, id)",
    "certificate_issued": "certificate (enterprise, created_at)",
    "sms_message_status_time": "sms_message (status, created_at)",
    "lab_order_created": "lab_order (created_at)",
}


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="app", description=DESCRIPTION)
    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager


async def create() -> None:
    engine = engine_finder()
    for name, on in INDEXES.items():
        await engine.run_ddl(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")


async def drop() -> None:
    engine = engine_finder()
    for name in INDEXES:
        await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")
