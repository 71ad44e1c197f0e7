"""The institute's clock: everything is stored in UTC and shown, dated and scheduled in China
time (Asia/Shanghai), whatever the server's own time zone. The only module that reads the
time: every other one asks it.

``CLOCK_AT`` (tests only) starts this process's clock at an ISO instant, from where it runs
on, so the suite can be run at any hour (CI runs the date-sensitive tests at 23:30 and at
00:30 China time).
"""

from __future__ import annotations

import os
import time as _time
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from piccolo.columns.defaults.timestamptz import TimestamptzNow

TZ = ZoneInfo("Asia/Shanghai")


def _offset() -> timedelta:
    at = os.environ.get("CLOCK_AT", "").strip()
    if not at:
        return timedelta(0)
    instant = datetime.fromisoformat(at)
    if instant.tzinfo is None:
        raise ValueError("CLOCK_AT needs a UTC offset, e.g. 2026-11-26T23:30:00+08:00")
    return instant - datetime.now(UTC)


OFFSET = _offset()


def now() -> datetime:
    """The current instant (UTC, aware)."""
    return datetime.now(UTC) + OFFSET


def timestamp() -> float:
    """The current instant as Unix seconds (for signed tokens and session stamps)."""
    return _time.time() + OFFSET.total_seconds()


def wall_now() -> datetime:
    """The real UTC time, never shifted: only for other parties' protocols (API signatures)."""
    return datetime.now(UTC)


def today() -> date:
    """Today in China."""
    return now().astimezone(TZ).date()


def day_start(day: date) -> datetime:
    """Midnight China time of ``day`` (for date filters on UTC timestamps)."""
    return datetime.combine(day, time.min, tzinfo=TZ)


def seconds_until(hour: int, minute: int = 0) -> float:
    """Seconds from now to the next ``hour:minute`` China time."""
    current = now().astimezone(TZ)
    target = current.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= current:
        target += timedelta(days=1)
    return (target - current).total_seconds()


class Now(TimestamptzNow):
    """Column default: the clock's now (so a shifted test clock stamps rows too)."""

    def python(self) -> Any:
        return now()
