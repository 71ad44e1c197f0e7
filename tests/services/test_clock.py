"""The one clock: China dates whatever the host's zone, and a shiftable instant for tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from app import clock
from app.tables import Enterprise
from tests.factories import make_enterprise


def _at(monkeypatch: pytest.MonkeyPatch, instant: datetime) -> None:
    monkeypatch.setattr(clock, "OFFSET", instant - datetime.now(UTC))


def test_today_is_china_today_after_16_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    _at(monkeypatch, datetime(2026, 11, 26, 16, 30, tzinfo=UTC))  # 00:30 in China
    assert clock.today() == date(2026, 11, 27)
    _at(monkeypatch, datetime(2026, 11, 26, 15, 30, tzinfo=UTC))  # 23:30 in China
    assert clock.today() == date(2026, 11, 26)


def test_seconds_until_counts_in_china_time(monkeypatch: pytest.MonkeyPatch) -> None:
    _at(monkeypatch, datetime(2026, 11, 26, 23, 0, tzinfo=UTC))  # 07:00 on the 27th in China
    assert abs(clock.seconds_until(8) - 3600) < 5
    _at(monkeypatch, datetime(2026, 11, 27, 0, 30, tzinfo=UTC))  # 08:30: tomorrow's 08:00
    assert abs(clock.seconds_until(8) - 23.5 * 3600) < 5


def test_clock_at_parses_an_aware_instant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOCK_AT", "2026-11-27T00:30:00+08:00")
    offset = clock._offset()
    shifted = datetime.now(UTC) + offset
    assert abs(shifted - datetime(2026, 11, 26, 16, 30, tzinfo=UTC)) < timedelta(seconds=5)
    monkeypatch.setenv("CLOCK_AT", "2026-11-27T00:30:00")
    with pytest.raises(ValueError, match="UTC offset"):
        clock._offset()


async def test_rows_are_stamped_by_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    instant = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    _at(monkeypatch, instant)
    ent = await make_enterprise(name="甲")
    row = await Enterprise.select(Enterprise.created_at).where(Enterprise.id == ent.id).first()
    assert abs(row["created_at"] - instant) < timedelta(seconds=5)
