"""How many rows a list holds, without counting them (issue #15).

Database triggers (migration "list tallies kept by triggers") add a row of +1 or −1 to
``tally`` in the same transaction as every write that changes what a list holds, so the
sum over a key is always the truth, whichever code (or hand-written SQL) made the write.
A list's total is then a sum over a few rows per enterprise and status instead of a count
over all of a customer's history. :func:`fold` (every minute, by the worker's cron or
embedded mode's scheduler) folds each key's rows into one, so the sums stay short.

Totals of a filtered list (a date range, a search) cannot come from a tally:
:func:`bounded_count` counts those up to a limit and says so when it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from piccolo.query import Query
from piccolo.query.methods.select import Sum

from app import compiled
from app.db import write_transaction
from app.settings import get_settings
from app.tables import Tally

BOOKING = "booking"  # 预约记录 (and 预约审核): bookings but untouched drafts
AUDIT = "audit"  # 操作日志, by event (enterprise 0)
SMS = "sms"  # 短信记录 (enterprise 0, status "")
INSTRUMENT = "instrument"  # 器具托管 (status "")
CERTIFICATE = "certificate"  # 电子证书 (status "")
CERT_WEEK = "cert_week"  # certificates issued, by China-time week (status: its Monday)
ITEM_STATUS = "item_status"  # instruments at the lab (order_item), by status
CERT_STATE = "cert_state"  # certificates: paid|unpaid-new|done (downloaded or not)
INSTRUMENT_DUE = "instrument_due"  # 器具托管 rows by 有效期至 (YYYY-MM-DD; "" for none)
# Over every enterprise, as kinds of their own at enterprise 0 (migration 08:30): a sum over
# every customer's row of BOOKING or CERTIFICATE read ~1,000 rows for one number.
EVERY_ENTERPRISE = {"booking": "booking_all", "certificate": "certificate_all"}
# A filtered list counts at most this many rows; more show as "10000+".
COUNT_LIMIT = 10_000


@dataclass(frozen=True)
class Total:
    """A list's total: exact, or at least ``n`` (the count stopped at its limit)."""

    n: int
    exact: bool = True

    def __str__(self) -> str:
        return str(self.n) if self.exact else f"{self.n}+"


class Counting:
    """A total not yet asked for: ``await`` it, or hand several to :func:`together`, which
    asks for them in one statement (the 首页's counts)."""

    def __init__(self, part: compiled.Part | None, bounded: bool) -> None:
        self.part = part  # None: nothing to count (no enterprise)
        self.bounded = bounded

    def of(self, value: Any) -> Total:
        n = int(value or 0)
        if self.bounded and n > COUNT_LIMIT:
            return Total(COUNT_LIMIT, exact=False)
        return Total(n)

    def __await__(self) -> Generator[Any, None, Total]:
        return self._alone().__await__()

    async def _alone(self) -> Total:
        (total,) = await together(self)
        return total


async def together(*countings: Counting) -> list[Total]:
    """The totals of ``countings``, in order, from one statement."""
    parts = [c.part for c in countings if c.part is not None]
    values = iter(await compiled.scalars(parts))
    return [Total(0) if c.part is None else c.of(next(values)) for c in countings]


def total(
    kind: str, enterprise_ids: Iterable[int] | None, status: str | Iterable[str] = ""
) -> Counting:
    """The rows of list ``kind`` of these enterprises (None: every enterprise, or a list
    without enterprises), of one status, of several, or ("") of all."""
    if enterprise_ids is None and kind in EVERY_ENTERPRISE:
        kind, enterprise_ids = EVERY_ENTERPRISE[kind], (0,)
    values: dict[str, Any] = {"kind": kind}
    if enterprise_ids is not None:
        values["ids"] = list(enterprise_ids)
        if not values["ids"]:
            return Counting(None, bounded=False)
    if isinstance(status, str):
        if status:
            values["status"] = status
    else:
        values["statuses"] = list(status)

    def build(p: dict[str, Any]) -> Query:
        where = [Tally.kind == p["kind"]]
        if "ids" in p:
            where.append(Tally.enterprise.is_in(p["ids"]))
        if "status" in p:
            where.append(Tally.status == p["status"])
        if "statuses" in p:
            where.append(Tally.status.is_in(p["statuses"]))
        return Tally.select(Sum(Tally.d).as_alias("n")).where(*where)

    return Counting(compiled.Part(("tally", kind), build, values), bounded=False)


def total_between(
    kind: str, enterprise_ids: Iterable[int], low: str, high: str, *, upto: bool = True
) -> Counting:
    """The rows of list ``kind`` of these enterprises whose status is from ``low`` up to
    ``high`` (``upto`` False: below it): a range of dates kept as YYYY-MM-DD."""
    ids = list(enterprise_ids)
    if not ids:
        return Counting(None, bounded=False)

    def build(p: dict[str, Any]) -> Query:
        below = Tally.status <= p["high"] if upto else Tally.status < p["high"]
        return Tally.select(Sum(Tally.d).as_alias("n")).where(
            Tally.kind == p["kind"],
            Tally.enterprise.is_in(p["ids"]),
            Tally.status >= p["low"],
            below,
        )

    values = {"kind": kind, "ids": ids, "low": low, "high": high}
    return Counting(compiled.Part(("tally-between", kind, upto), build, values), bounded=False)


def bounded_count(
    key: Hashable | None,
    build: Callable[[dict[str, Any]], Query],
    **values: Any,
) -> Counting:
    """How many rows ``build`` (app.compiled's builder of an unordered select of one
    column) gives, counting no further than COUNT_LIMIT."""
    return Counting(compiled.counting_upto(key, build, COUNT_LIMIT, **values), bounded=True)


# Every key with more than one row becomes one row (its sum; none when it is 0). Rows the
# triggers add meanwhile are not in the statement's snapshot and stay as they are; a
# concurrent fold waits on the rows this one deletes and then skips them: sums never change.
FOLD_POSTGRES = """
WITH gone AS (
  DELETE FROM tally WHERE (kind, enterprise, status) IN (
    SELECT kind, enterprise, status FROM tally GROUP BY 1, 2, 3 HAVING COUNT(*) > 1)
  RETURNING kind, enterprise, status, d)
INSERT INTO tally (kind, enterprise, status, d)
SELECT kind, enterprise, status, SUM(d) FROM gone GROUP BY 1, 2, 3 HAVING SUM(d) <> 0
"""
# SQLite: the IMMEDIATE transaction holds the database; the sums are taken, then replaced.
FOLD_SQLITE = [
    "CREATE TEMP TABLE IF NOT EXISTS tally_fold (kind TEXT, enterprise INTEGER, status TEXT,"
    " d INTEGER)",
    "DELETE FROM tally_fold",
    "INSERT INTO tally_fold SELECT kind, enterprise, status, SUM(d) FROM tally"
    " GROUP BY 1, 2, 3 HAVING COUNT(*) > 1",
    "DELETE FROM tally WHERE EXISTS (SELECT 1 FROM tally_fold f WHERE f.kind = tally.kind"
    " AND f.enterprise = tally.enterprise AND f.status = tally.status)",
    "INSERT INTO tally (kind, enterprise, status, d) SELECT kind, enterprise, status, d"
    " FROM tally_fold WHERE d <> 0",
]


async def fold() -> int:
    """Fold the tallies; returns how many rows are left."""
    async with write_transaction():
        if get_settings().is_postgres:
            await Tally.raw(FOLD_POSTGRES)
        else:
            for sql in FOLD_SQLITE:
                await Tally.raw(sql)
    return await Tally.count()
