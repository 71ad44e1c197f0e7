"""Fallback load generator of bench/booking.py, used only when wrk is not installed.

    python bench/loadgen.py URL --duration 10 --connections 20 [--method POST]
        [--header 'Name: value' ...] [--body-file FILE]

N asyncio tasks, each on its own keep-alive httpx connection, send requests back to back
for a fixed time; prints the same ``BENCH_JSON {...}`` line as bench/report.lua. Python is
far slower than wrk: against a fast server the figures are the load generator's limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx


async def run(args: argparse.Namespace) -> dict[str, float]:
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    body = open(args.body_file, "rb").read() if args.body_file else None  # noqa: SIM115
    latencies: list[float] = []
    errors = {"connect": 0, "read": 0, "status": 0}
    nbytes = 0
    stop = time.perf_counter() + args.duration

    async def worker() -> None:
        nonlocal nbytes
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                try:
                    r = await client.request(args.method, args.url, headers=headers, content=body)
                except httpx.ConnectError:
                    errors["connect"] += 1
                    continue
                except httpx.HTTPError:
                    errors["read"] += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                nbytes += len(r.content)
                if r.status_code >= 400:
                    errors["status"] += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.connections)))
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> int:
        if not latencies:
            return 0
        return int(latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1e6)

    return {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        "bytes": nbytes,
        "mean_us": sum(latencies) / len(latencies) * 1e6 if latencies else 0,
        "p50_us": pct(50),
        "p90_us": pct(90),
        "p99_us": pct(99),
        "max_us": int(latencies[-1] * 1e6) if latencies else 0,
        "err_connect": errors["connect"],
        "err_read": errors["read"],
        "err_write": 0,
        "err_status": errors["status"],
        "err_timeout": 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--body-file", default="")
    args = parser.parse_args()
    print("BENCH_JSON " + json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
