"""One Redis client per event loop (the test client runs the app on a loop of its own)."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from app.settings import get_settings

_clients: dict[int, Redis] = {}


def get_redis() -> Redis:
    loop_id = id(asyncio.get_running_loop())
    client = _clients.get(loop_id)
    if client is None:
        # Redis away: a request fails in seconds (a 503), and the client reconnects by itself.
        client = Redis.from_url(
            get_settings().redis_url,
            socket_connect_timeout=3,
            socket_timeout=5,
            health_check_interval=30,
        )
        _clients[loop_id] = client
    return client


async def close_redis() -> None:
    client = _clients.pop(id(asyncio.get_running_loop()), None)
    if client is not None:
        await client.aclose()
