"""The institute's clock: everything is stored in UTC and shown, dated and scheduled in China
time (Asia/Shanghai), whatever the server's own time zone."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")


def today() -> date:
    return datetime.now(TZ).date()


def day_start(day: date) -> datetime:
    """Midnight China time of ``day`` (for date filters on UTC timestamps)."""
    return datetime.combine(day, time.min, tzinfo=TZ)


def seconds_until(hour: int, minute: int = 0) -> float:
    """Seconds from now to the next ``hour:minute`` China time."""
    now = datetime.now(TZ)
    target = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= now:
        target += timedelta(days=1)
    return (target - now).total_seconds()
