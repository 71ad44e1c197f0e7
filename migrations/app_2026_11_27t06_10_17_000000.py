"""The history picker's keyset pages (#15): every booked instrument gets its item_key, and
two indexes: an enterprise's booked instruments newest first (enterprise, id), and the same
instrument's later rows (enterprise, item_key, id), so a page walks one index and asks the
other, once per row, whether a later booking has the same instrument. Both carry the
booking, which tells a draft's rows (left out) from the others without reading the rows:
the walk is an index-only scan, which PostgreSQL prefers to walking the primary key and
filtering (at 1,600,000 rows it did, reading 1,500,000 rows of other customers to find the
2,000 of a customer whose bookings are all recent).

Migration 2026-11-27T04:02:39 filled item_key only for the rows of bookings that could
still change; 【从历史预约数据选择】 now tells instruments apart by it in every booking, so the
rest (approved bookings' rows from before it) are filled here, with the hash as
app/services/bookings.py item_key() and key_hash() say on the day of this migration (copied:
a migration must not change when the app's code does).
"""

import hashlib
import unicodedata

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

ID = "2026-11-27T06:10:17:000000"
VERSION = "1.38.0"
DESCRIPTION = "history picker keys and indexes"

NO_SERIAL = frozenset({"无", "无编号", "没有", "n/a", "na", "none"})
BATCH = 200  # rows per UPDATE: 3 parameters each, under SQLite's limit
INDEXES = {
    "booking_item_history": "booking_item (enterprise, id, booking)",
    "booking_item_instrument": "booking_item (enterprise, item_key, id, booking)",
}


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
        last = 0
        while True:  # by id, a batch at a time: no list of every row in memory
            rows = await engine.run_querystring(
                QueryString(
                    "SELECT id, name, serial_no, model FROM booking_item"
                    " WHERE item_key = '' AND id > {} ORDER BY id LIMIT {}",
                    last,
                    BATCH,
                )
            )
            if not rows:
                break
            last = rows[-1]["id"]
            cases = " ".join("WHEN {} THEN {}" for _ in rows)
            args = []
            for r in rows:
                args += [r["id"], _key_hash(r["name"], r["serial_no"], r["model"])]
            ids = ", ".join("{}" for _ in rows)
            args += [r["id"] for r in rows]
            await engine.run_querystring(
                QueryString(
                    f"UPDATE booking_item SET item_key = CASE id {cases} END WHERE id IN ({ids})",
                    *args,
                )
            )
        for name, on in INDEXES.items():
            await engine.run_ddl(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")

    async def back() -> None:
        for name in INDEXES:
            await engine_finder().run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(fill)
    manager.add_raw_backwards(back)
    return manager
