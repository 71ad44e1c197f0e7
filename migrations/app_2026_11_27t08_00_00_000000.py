from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Integer
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-27T08:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "order waiting and item certificate counts"

# 平台管理's 首页 (#12): orders still waiting for a certificate. order_item.certificates
# (how many certificates the instrument has) and lab_order.waiting (how many of its
# instruments have none). The next migration fills both, adds the triggers that keep them
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
        table_class_name="Order",
        tablename="lab_order",
        column_name="waiting",
        db_column_name="waiting",
        column_class_name="Integer",
        column_class=Integer,
        params=dict(PARAMS),
        schema=None,
    )

    manager.add_column(
        table_class_name="OrderItem",
        tablename="order_item",
        column_name="certificates",
        db_column_name="certificates",
        column_class_name="Integer",
        column_class=Integer,
        params=dict(PARAMS),
        schema=None,
    )

    return manager
