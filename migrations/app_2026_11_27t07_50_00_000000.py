"""Tallies for the rest of the 首页's counts (#12, #15), kept by triggers as the lists'
are: lab instruments per enterprise and status (检测中, 待取件), certificates per enterprise
and state (paid or not, downloaded or not), and 器具托管 rows per enterprise and 有效期至
(a date, '' for none: 已超期 and 即将到期 are sums over a range of dates). Those counts read
up to 10,001 rows each before (6 ms of PostgreSQL per 首页 at 1,000,000 rows, where the
customer holds 100,000 of each; bench/scale.py)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

ID = "2026-11-27T07:50:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "item, certificate state and due date tallies"

# kind, table, the status of a row ({row}: OLD / NEW / the table) on PostgreSQL and
# SQLite, the columns it follows.
CERT_STATE = (
    "(CASE WHEN {row}.paid THEN 'paid' ELSE 'unpaid' END"
    " || CASE WHEN {row}.downloaded_at IS NULL THEN '-new' ELSE '-done' END)"
)
KINDS = [
    ("item_status", "order_item", "{row}.status", "{row}.status", ["status"]),
    ("cert_state", "certificate", CERT_STATE, CERT_STATE, ["paid", "downloaded_at"]),
    (
        "instrument_due",
        "instrument",
        "COALESCE(to_char({row}.valid_until, 'YYYY-MM-DD'), '')",
        "COALESCE({row}.valid_until, '')",
        ["valid_until"],
    ),
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="app", description=DESCRIPTION)
    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager


def _delta(kind: str, status: str, row: str, d: int) -> str:
    return (
        "INSERT INTO tally (kind, enterprise, status, d)"
        f" VALUES ('{kind}', {row}.enterprise, {status.format(row=row)}, {d})"
    )


async def create() -> None:
    engine = engine_finder()
    sqlite = isinstance(engine, SQLiteEngine)
    for kind, table, pg_status, sqlite_status, columns in KINDS:
        status = sqlite_status if sqlite else pg_status
        follows = ", ".join(["enterprise", *columns])
        if sqlite:
            changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in ["enterprise", *columns])
            await engine.run_ddl(
                f"CREATE TRIGGER tally_{kind}_insert AFTER INSERT ON {table}"
                f" BEGIN {_delta(kind, status, 'NEW', 1)}; END"
            )
            await engine.run_ddl(
                f"CREATE TRIGGER tally_{kind}_delete AFTER DELETE ON {table}"
                f" BEGIN {_delta(kind, status, 'OLD', -1)}; END"
            )
            await engine.run_ddl(
                f"CREATE TRIGGER tally_{kind}_update AFTER UPDATE OF {follows} ON {table}"
                f" WHEN {changed} BEGIN {_delta(kind, status, 'OLD', -1)};"
                f" {_delta(kind, status, 'NEW', 1)}; END"
            )
        else:
            changed = " OR ".join(
                f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in ["enterprise", *columns]
            )
            await engine.run_ddl(
                f"""CREATE OR REPLACE FUNCTION tally_{kind}() RETURNS trigger AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN {_delta(kind, status, "OLD", -1)}; END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN {_delta(kind, status, "NEW", 1)}; END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql"""
            )
            await engine.run_ddl(
                f"CREATE TRIGGER tally_{kind}_write AFTER INSERT OR DELETE ON {table}"
                f" FOR EACH ROW EXECUTE FUNCTION tally_{kind}()"
            )
            await engine.run_ddl(
                f"CREATE TRIGGER tally_{kind}_update AFTER UPDATE OF {follows} ON {table}"
                f" FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION tally_{kind}()"
            )
        now = status.format(row=table)
        await engine.run_ddl(  # the rows already there
            "INSERT INTO tally (kind, enterprise, status, d)"
            f" SELECT '{kind}', enterprise, {now}, COUNT(*) FROM {table}"
            f" GROUP BY enterprise, {now}"
        )


async def drop() -> None:
    engine = engine_finder()
    for kind, table, *_ in KINDS:
        if isinstance(engine, SQLiteEngine):
            for name in ("insert", "delete", "update"):
                await engine.run_ddl(f"DROP TRIGGER IF EXISTS tally_{kind}_{name}")
        else:
            await engine.run_ddl(f"DROP TRIGGER IF EXISTS tally_{kind}_write ON {table}")
            await engine.run_ddl(f"DROP TRIGGER IF EXISTS tally_{kind}_update ON {table}")
            await engine.run_ddl(f"DROP FUNCTION IF EXISTS tally_{kind}()")
        await engine.run_ddl(f"DELETE FROM tally WHERE kind = '{kind}'")
