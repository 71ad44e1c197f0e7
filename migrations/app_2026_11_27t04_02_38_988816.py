from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Integer
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-27T04:02:38:988816"
VERSION = "1.38.0"
DESCRIPTION = "draft list keys and rows"

# Issue #11: a booking keeps its 器具列表's row count (item_rows, beside item_count), and each
# row the hash of what makes it the same instrument (item_key). The next migration fills
# both and indexes (booking, item_key): Piccolo runs a migration's raw steps before its new
# columns exist. The ALTER COLUMNs Piccolo proposes for the timestamp defaults are left out
# (see 2026-11-26T22:46:48).


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="app", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Booking",
        tablename="booking",
        column_name="item_rows",
        db_column_name="item_rows",
        column_class_name="Integer",
        column_class=Integer,
        params={
            "default": 0,
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

    manager.add_column(
        table_class_name="BookingItem",
        tablename="booking_item",
        column_name="item_key",
        db_column_name="item_key",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 32,
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
