"""Per-address limits kept in the database, so every app process counts the same hits."""

from __future__ import annotations

from datetime import timedelta

from app.clock import now
from app.services.errors import Throttled
from app.tables import RateHit


async def hit(bucket: str, key: str, limit: int, window: timedelta) -> None:
    """Count one hit of ``key`` in ``bucket``; Throttled past ``limit`` in ``window``.

    Race-free: the hit is stored first, then ranked among the window's hits by id, so
    parallel requests cannot all slip under the limit.
    """
    row = RateHit(bucket=bucket, key=key[:100])
    await row.save()
    rank = await RateHit.count().where(
        (RateHit.bucket == bucket)
        & (RateHit.key == key[:100])
        & (RateHit.at > now() - window)
        & (RateHit.id <= row.id)
    )
    if rank > limit:
        raise Throttled("操作过于频繁，请稍后再试")


async def purge(older_than: timedelta = timedelta(days=2)) -> None:
    await RateHit.delete().where(RateHit.at < now() - older_than)
