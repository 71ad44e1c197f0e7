"""What the 首页 shows (#12): a customer's latest bookings and the counts of what needs
them, each linking to the list that shows exactly those rows, with a chart of the
certificates issued per week; an admin's work queue.

Every count is one query that does not grow with a customer's history: a tally (kept by
triggers, app/services/tallies.py) where the list has one, otherwise a bounded count over
an indexed condition, the same function the linked list takes its total from, so the
number on the 首页 and the list's rows cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from app import clock
from app.enums import BookingStatus, EnterpriseStatus, ItemStatus, SmsStatus
from app.security.sessions import CurrentUser
from app.services import bookings, certificates, instruments, orders, sms, tallies
from app.services.tenancy import Scope, scope_for
from app.settings import get_settings
from app.tables import Certificate, Enterprise

CHART_WEEKS = 12
FAILED_SMS_HOURS = 24  # 平台管理: the SMS failures it shows
# The chart's drawing box (SVG user units; the CSS scales it to the card's width).
CHART_W, CHART_H, CHART_TOP, CHART_BOTTOM = 360, 150, 16, 22


@dataclass(frozen=True)
class Count:
    """One number of the dashboard and the list that shows its rows."""

    key: str  # stable, for tests and the bench
    label: str
    n: tallies.Total
    href: str


def _href(path: str, **params: str | int) -> str:
    return f"{path}?{urlencode(params)}" if params else path


async def _customer_counts(scope: Scope) -> list[Count]:
    ids = list(scope.enterprise_ids)
    cert = certificates.CertFilters
    return [
        Count(
            "pending",
            "待审核的预约",
            await tallies.total(tallies.BOOKING, ids, BookingStatus.PENDING),
            _href("/bookings", status=BookingStatus.PENDING.value),
        ),
        Count(
            "rejected",
            "已驳回的预约",
            await tallies.total(tallies.BOOKING, ids, BookingStatus.REJECTED),
            _href("/bookings", status=BookingStatus.REJECTED.value),
        ),
        Count(
            "testing",
            "检测中的器具",
            await orders.count_items(scope, ItemStatus.TESTING),
            _href("/query/progress", status=ItemStatus.TESTING.value),
        ),
        Count(
            "ready",
            "待取件的器具",
            await orders.count_items(scope, ItemStatus.READY),
            _href("/query/progress", status=ItemStatus.READY.value),
        ),
        Count(
            "cert_ready",
            "可下载的新证书",
            await certificates.count_certificates(scope, cert(paid="paid", downloaded="no")),
            _href("/certificates", paid="paid", downloaded="no"),
        ),
        Count(
            "cert_unpaid",
            "未缴费的证书",
            await certificates.count_certificates(scope, cert(paid="unpaid")),
            _href("/certificates", paid="unpaid"),
        ),
        Count(
            "overdue",
            "已超期的托管器具",
            await instruments.count_instruments(scope, state="overdue"),
            _href("/instruments", state="overdue"),
        ),
        Count(
            "due",
            "即将到期的托管器具",
            await instruments.count_instruments(scope, state="due"),
            _href("/instruments", state="due"),
        ),
    ]


async def _admin_counts() -> list[Count]:
    days = get_settings().stale_order_days
    registrations = await Enterprise.count().where(
        (Enterprise.status == EnterpriseStatus.PENDING) & (Enterprise.is_contract == False)  # noqa: E712
    )
    return [
        Count(
            "review_registrations",
            "待审核的注册申请",
            tallies.Total(registrations),
            "/admin/registrations",
        ),
        Count(
            "review_bookings",
            "待审核的预约",
            await tallies.total(tallies.BOOKING, None, BookingStatus.PENDING),
            _href("/admin/bookings", status=BookingStatus.PENDING.value),
        ),
        Count(
            "sms_failed",
            "近24小时发送失败的短信",
            await sms.count_messages(
                status=SmsStatus.FAILED, since=clock.now() - timedelta(hours=FAILED_SMS_HOURS)
            ),
            _href("/admin/sms", status=SmsStatus.FAILED.value, hours=FAILED_SMS_HOURS),
        ),
        Count(
            "stale_orders",
            f"超过{days}天仍未出证书的大单",
            await orders.count_stale(orders.stale_before(days)),
            _href("/admin/orders", stale=1),
        ),
    ]


# ------------------------------------------------------------------ the chart


def chart_weeks(today: date | None = None) -> list[date]:
    """The Mondays (China time) of the last CHART_WEEKS weeks, this week last."""
    day = today or clock.today()
    monday = day - timedelta(days=day.weekday())
    return [monday - timedelta(weeks=k) for k in range(CHART_WEEKS - 1, -1, -1)]


def week_counts(stamps: Iterable[datetime], weeks: list[date]) -> list[int]:
    """How many of ``stamps`` (aware instants) fall in each China-time week of ``weeks``."""
    counts = [0] * len(weeks)
    first = weeks[0]
    for stamp in stamps:
        day = stamp.astimezone(clock.TZ).date()
        k = (day - first).days // 7
        if 0 <= k < len(weeks):
            counts[k] += 1
    return counts


async def issued_per_week(scope: Scope, weeks: list[date]) -> list[int]:
    """Certificates of the scope issued in each of ``weeks``: one query over the index
    certificate (enterprise, created_at), reading only those weeks' rows."""
    rows = await Certificate.select(Certificate.created_at).where(
        Certificate.enterprise.is_in(list(scope.enterprise_ids)),
        Certificate.created_at >= clock.day_start(weeks[0]),
    )
    return week_counts((r["created_at"] for r in rows), weeks)


def chart(weeks: list[date], counts: list[int]) -> dict[str, Any]:
    """The bars of the SVG (template home.html): positions in the drawing box."""
    top = max(counts) if any(counts) else 1
    plot = CHART_H - CHART_TOP - CHART_BOTTOM
    step = CHART_W / len(weeks)
    bars = []
    for k, (week, n) in enumerate(zip(weeks, counts, strict=True)):
        height = round(plot * n / top, 1)
        bars.append(
            {
                "week": week,
                "label": f"{week:%m-%d}",
                "n": n,
                "x": round(k * step + step * 0.2, 1),
                "w": round(step * 0.6, 1),
                "y": round(CHART_TOP + plot - height, 1),
                "h": height,
                "cx": round(k * step + step / 2, 1),
            }
        )
    return {
        "bars": bars,
        "width": CHART_W,
        "height": CHART_H,
        "base": CHART_H - CHART_BOTTOM,
        "label_y": CHART_H - 6,
        "total": sum(counts),
        "first": weeks[0],
        "last": weeks[-1] + timedelta(days=6),
    }


async def overview(user: CurrentUser) -> dict[str, Any]:
    data: dict[str, Any] = {"bookings": [], "counts": [], "admin_counts": [], "chart": None}
    if user.enterprise_id is not None:
        scope = await scope_for(user)
        data["bookings"] = await bookings.latest(scope, 5)
        # Several units (subsidiaries): each row says whose it is.
        data["unit_names"] = dict(scope.units) if scope.has_units else {}
        data["counts"] = await _customer_counts(scope)
        weeks = chart_weeks()
        data["chart"] = chart(weeks, await issued_per_week(scope, weeks))
    if user.is_platform_admin:
        data["admin_counts"] = await _admin_counts()
    return data
