from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Integer
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-27T08:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "booking order count"

# 检测业务 (#15): approved bookings still without a lab order. booking.order_count (how many
# lab orders the booking has); the next migration fills it, adds the triggers that keep it
# and the partial index: Piccolo runs a migration's raw steps before its new columns exist.

PARAMS = {
    "default": 0,
    "null": False,
    "primary_key": False,
    "unique": False,
    "index": False,
    "index_method": IndexMethod.btree,
    "choices": None,
    "db_column_name": None,
    "secret": False,
}


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="app", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Booking",
        tablename="booking",
        column_name="order_count",
        db_column_name="order_count",
        column_class_name="Integer",
        column_class=Integer,
        params=dict(PARAMS),
        schema=None,
    )

    return manager
