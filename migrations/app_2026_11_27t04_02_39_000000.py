"""Issue #11: fill booking.item_rows and booking_item.item_key; index (booking, item_key) for
the duplicate check and (booking, id) for the 器具列表's pages (in entry order).

item_key is the hash of what makes two rows of a 器具列表 the same instrument, written as
app/services/bookings.py item_key() and key_hash() say on the day of this migration (copied
here: a migration must not change when the app's code does). Only the rows of bookings that
can still change (草稿, 待审核, 已驳回) are read: the duplicate checks only look there.
"""

import hashlib
import unicodedata

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

ID = "2026-11-27T04:02:39:000000"
VERSION = "1.38.0"
DESCRIPTION = "fill draft list keys and rows"

NO_SERIAL = frozenset({"无", "无编号", "没有", "n/a", "na", "none"})
EDITABLE = ("draft", "pending", "rejected")
BATCH = 200  # rows per UPDATE: 3 parameters each, under SQLite's limit


def _same(value):
    return "".join(unicodedata.normalize("NFKC", str(value or "")).casefold().split())


def _key_hash(name, serial_no, model):
    serial = _same(serial_no)
    if serial in NO_SERIAL or not any(ch.isalnum() for ch in serial):
        key = (_same(name), "", _same(model))
    else:
        key = ("", serial, _same(model))
    return hashlib.blake2b("\t".join(key).encode(), digest_size=16).hexdigest()


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="app", description=DESCRIPTION)

    async def fill() -> None:
        engine = engine_finder()
        await engine.run_ddl(
            "UPDATE booking SET item_rows = "
            "(SELECT COUNT(*) FROM booking_item WHERE booking_item.booking = booking.id)"
        )
        statuses = ", ".join(f"'{s}'" for s in EDITABLE)
        rows = await engine.run_ddl(
            "SELECT i.id, i.name, i.serial_no, i.model FROM booking_item i"
            f" JOIN booking b ON b.id = i.booking WHERE b.status IN ({statuses})"
        )
        for start in range(0, len(rows), BATCH):
            batch = rows[start : start + BATCH]
            cases = " ".join("WHEN {} THEN {}" for _ in batch)
            args = []
            for r in batch:
                args += [r["id"], _key_hash(r["name"], r["serial_no"], r["model"])]
            ids = ", ".join("{}" for _ in batch)
            args += [r["id"] for r in batch]
            await engine.run_querystring(
                QueryString(
                    f"UPDATE booking_item SET item_key = CASE id {cases} END WHERE id IN ({ids})",
                    *args,
                )
            )
        await engine.run_ddl(
            "CREATE INDEX IF NOT EXISTS booking_item_key ON booking_item (booking, item_key)"
        )
        await engine.run_ddl(
            "CREATE INDEX IF NOT EXISTS booking_item_page ON booking_item (booking, id)"
        )

    async def back() -> None:
        await engine_finder().run_ddl("DROP INDEX IF EXISTS booking_item_key")
        await engine_finder().run_ddl("DROP INDEX IF EXISTS booking_item_page")

    manager.add_raw(fill)
    manager.add_raw_backwards(back)
    return manager
