"""What the 首页 shows (#12): a customer's latest bookings and the counts of what needs
them, each linking to the list that shows exactly those rows, with a chart of the
certificates issued per week; an admin's work queue.

Every count is a query that does not grow with a customer's history: a tally (kept by
triggers, app/services/tallies.py) where the list has one, otherwise a bounded count over
an indexed condition, the same function the linked list takes its total from, so the
number on the 首页 and the list's rows cannot disagree. The page's counts go to the
database as one statement (tallies.together), not one round trip each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from piccolo.query import Query
from piccolo.query.methods.select import Sum

from app import clock, compiled
from app.enums import BookingStatus, EnterpriseStatus, ItemStatus, SmsStatus
from app.security.sessions import CurrentUser
from app.services import bookings, certificates, instruments, orders, sms, tallies
from app.services.tenancy import Scope, scope_for
from app.services.weekly import chart, chart_weeks
from app.settings import get_settings
from app.tables import Enterprise, Tally

FAILED_SMS_HOURS = 24  # 平台管理: the SMS failures it shows


@dataclass(frozen=True)
class Count:
    """One number of the dashboard and the list that shows its rows."""

    key: str  # stable, for tests and the bench
    label: str
    n: tallies.Total
    href: str


def _href(path: str, **params: str | int) -> str:
    return f"{path}?{urlencode(params)}" if params else path


Tile = tuple[str, str, tallies.Counting, str]  # Count's fields, the count not yet asked


async def _counted(tiles: list[Tile]) -> list[Count]:
    """The tiles with their numbers, all counted in one statement."""
    totals = await tallies.together(*(counting for _, _, counting, _ in tiles))
    return [Count(k, label, n, href) for (k, label, _, href), n in zip(tiles, totals, strict=True)]


async def customer_counts(scope: Scope, contract: bool = False) -> list[Count]:
    """What needs the customer: eight counts, each its list's total, asked for in one
    statement. A 协议用户 (``contract``) downloads unpaid certificates too (SPEC §6): every
    certificate not yet downloaded is one it can download."""
    ids = list(scope.enterprise_ids)
    cert = certificates.CertFilters
    ready = {"downloaded": "no"} if contract else {"paid": "paid", "downloaded": "no"}
    tiles: list[Tile] = [
        (
            "pending",
            "待审核的预约",
            tallies.total(tallies.BOOKING, ids, BookingStatus.PENDING),
            _href("/bookings", status=BookingStatus.PENDING.value),
        ),
        (
            "rejected",
            "已驳回的预约",
            tallies.total(tallies.BOOKING, ids, BookingStatus.REJECTED),
            _href("/bookings", status=BookingStatus.REJECTED.value),
        ),
        (
            "testing",
            "检测中的器具",
            orders.count_items(scope, ItemStatus.TESTING),
            _href("/query/progress", status=ItemStatus.TESTING.value),
        ),
        (
            "ready",
            "待取件的器具",
            orders.count_items(scope, ItemStatus.READY),
            _href("/query/progress", status=ItemStatus.READY.value),
        ),
        (
            "cert_ready",
            "可下载的新证书",
            certificates.count_certificates(scope, cert(**ready)),
            _href("/certificates", **ready),
        ),
        (
            "cert_unpaid",
            "未缴费的证书",
            certificates.count_certificates(scope, cert(paid="unpaid")),
            _href("/certificates", paid="unpaid"),
        ),
        (
            "overdue",
            "已超期的托管器具",
            instruments.count_instruments(scope, state="overdue"),
            _href("/instruments", state="overdue"),
        ),
        (
            "due",
            "即将到期的托管器具",
            instruments.count_instruments(scope, state="due"),
            _href("/instruments", state="due"),
        ),
    ]
    return await _counted(tiles)


def _registrations(p: dict[str, Any]) -> Query:
    return Enterprise.select(Enterprise.id).where(
        (Enterprise.status == p["status"]) & (Enterprise.is_contract == False)  # noqa: E712
    )


async def admin_counts() -> list[Count]:
    """平台管理's work queue: reviews waiting, SMS failures of 24 h, late orders; one
    statement."""
    days = get_settings().stale_order_days
    tiles: list[Tile] = [
        (
            "review_registrations",
            "待审核的注册申请",
            tallies.bounded_count(
                ("home.registrations",), _registrations, status=EnterpriseStatus.PENDING.value
            ),
            "/admin/registrations",
        ),
        (
            "review_bookings",
            "待审核的预约",
            tallies.total(tallies.BOOKING, None, BookingStatus.PENDING),
            _href("/admin/bookings", status=BookingStatus.PENDING.value),
        ),
        (
            "sms_failed",
            "近24小时发送失败的短信",
            sms.count_messages(
                status=SmsStatus.FAILED, since=clock.now() - timedelta(hours=FAILED_SMS_HOURS)
            ),
            _href("/admin/sms", status=SmsStatus.FAILED.value, hours=FAILED_SMS_HOURS),
        ),
        (
            "stale_orders",
            f"超过{days}天仍未出证书的大单",
            orders.count_stale(orders.stale_before(days)),
            _href("/admin/orders", stale=1),
        ),
    ]
    return await _counted(tiles)


async def issued_per_week(scope: Scope, weeks: list[date]) -> list[int]:
    """Certificates of the scope issued in each of ``weeks``: the tally of certificates per
    enterprise and China-time week (kept by triggers), a few rows per week whatever the
    number of certificates."""
    rows = await compiled.select(
        ("home.issued",),
        lambda p: (
            Tally.select(Tally.status, Sum(Tally.d).as_alias("n"))
            .where(
                Tally.kind == p["kind"],
                Tally.enterprise.is_in(p["ids"]),
                Tally.status >= p["first"],
                Tally.status <= p["last"],
            )
            .group_by(Tally.status)
        ),
        kind=tallies.CERT_WEEK,
        ids=list(scope.enterprise_ids),
        first=f"{weeks[0]:%Y-%m-%d}",
        last=f"{weeks[-1]:%Y-%m-%d}",
    )
    issued = {r["status"]: int(r["n"] or 0) for r in rows}
    return [issued.get(f"{w:%Y-%m-%d}", 0) for w in weeks]


async def overview(user: CurrentUser) -> dict[str, Any]:
    data: dict[str, Any] = {"bookings": [], "counts": [], "admin_counts": [], "chart": None}
    if user.enterprise_id is not None:
        scope = await scope_for(user)
        data["bookings"] = await bookings.latest(scope, 5)
        # Several units (subsidiaries): each row says whose it is.
        data["unit_names"] = dict(scope.units) if scope.has_units else {}
        data["counts"] = await customer_counts(scope, contract=user.is_contract)
        weeks = chart_weeks()
        data["chart"] = chart(weeks, await issued_per_week(scope, weeks))
    if user.is_platform_admin:
        data["admin_counts"] = await admin_counts()
    return data
