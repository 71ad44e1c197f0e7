from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-27T08:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "order item's order number"

# 检测进度 (#15): each instrument's 大单号 beside its 唯一性号. The next migration fills it,
# adds the triggers that keep it and its prefix index: Piccolo runs a migration's raw steps
# before its new columns exist.


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="app", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="OrderItem",
        tablename="order_item",
        column_name="order_no",
        db_column_name="order_no",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 50,
            "default": "",
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
