"""【导出器具】 in a process of its own.

openpyxl holds the GIL for the whole export (about 1 s of CPU per 10,000 rows): run in a
thread of the app process it stalls every other request of that process (the outside test
saw /healthz p99 in the hundreds of ms during a 100,000-row export). So the export runs in
a child, ``python -m app.services.instrument_export`` (a fresh interpreter, not a fork of
the app, whose threads and event loop a fork would copy mid-use): it reads what to export
(JSON) on its stdin, fetches the rows itself in keyset batches on a database connection of
its own, writes the ``.xlsx`` to the path it was given and answers the row count (JSON) on
its stdout. The app process only waits for it, without blocking its event loop.

At most MAX_EXPORTS children per app process; the next export waits EXPORT_WAIT seconds
for a turn, then gets a 503 (``ImportBusy``'s page: 服务器正忙). A child running past
EXPORT_TIMEOUT, or whose request was abandoned, is killed; the partial file is the
caller's to remove. The child runs at a lower CPU priority (nice 10) than the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import anyio
import asyncpg
from anyio.from_thread import run as run_from_thread
from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine

from app import deadline
from app.db import on_acquire
from app.services import instruments
from app.services.instrument_xlsx import REGISTER_COLUMNS, ImportBusy, write_export
from app.services.tenancy import Scope
from app.settings import get_settings

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
MAX_EXPORTS = 2
EXPORT_WAIT = 20.0
EXPORT_TIMEOUT = 600.0
BUSY = "导出的请求较多，服务器正忙，请稍后再试"

# One semaphore per event loop (the test client runs the app on a loop of its own).
_slots: dict[int, anyio.Semaphore] = {}
# The database away, in the child (as app/web/errors.py's SERVICE_ERRORS, less Redis): its
# answer makes the parent's 503 page. A lost file of our own is not a service away.
DATABASE_AWAY = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    TimeoutError,
)
OWN_FILE_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


class ExportUnavailable(ConnectionError):
    """The child could not reach the database: the app's 503 page (系统服务暂时不可用)."""


async def export_file(path: Path, scope: Scope, q: str, state: str) -> int:
    """Write the register rows of ``scope`` that match ``q`` and ``state`` to ``path`` as
    an ``.xlsx``, in a child process; return how many rows it holds."""
    slots = _slots.setdefault(id(asyncio.get_running_loop()), anyio.Semaphore(MAX_EXPORTS))
    # The wait for a turn and the child have limits of their own (EXPORT_WAIT,
    # EXPORT_TIMEOUT) and hold none of the request's database connections: they do not
    # count against its deadline (app/deadline.py), which 100,000 rows would pass.
    with deadline.paused():
        try:
            with anyio.fail_after(EXPORT_WAIT):
                await slots.acquire()
        except TimeoutError:
            raise ImportBusy(BUSY) from None
        try:
            request = {"scope": asdict(scope), "q": q, "state": state, "path": str(path)}
            return await _run_child(request)
        finally:
            slots.release()


async def _run_child(request: dict[str, Any]) -> int:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", __name__,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,  # "-m" puts the working directory first on sys.path: this checkout
        start_new_session=True,  # a Ctrl-C meant for the server is the server's to pass on
    )  # fmt: skip
    try:
        async with asyncio.timeout(EXPORT_TIMEOUT):
            out, err = await proc.communicate(json.dumps(request).encode())
    except BaseException:  # over time, or the request abandoned (cancelled)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with anyio.CancelScope(shield=True):
            await proc.wait()
        raise
    try:  # the answer is the last line (a library may have printed before it)
        answer = json.loads((out.decode(errors="replace").strip().splitlines() or ["{}"])[-1])
    except ValueError:
        answer = {}
    if proc.returncode == 0 and "rows" in answer:
        return int(answer["rows"])
    detail = err.decode(errors="replace")[-2000:]
    if answer.get("error") == "unavailable":
        raise ExportUnavailable(answer.get("detail", "database unavailable"))
    log.error("export child failed (exit %s): %s", proc.returncode, detail)
    raise RuntimeError(f"export child failed with exit code {proc.returncode}")


# --------------------------------------------------------------------------- the child


def _batches(scope: Scope, q: str, state: str) -> Any:
    """Rows for the writing thread, fetched batch by batch on the child's event loop."""
    after = 0
    while True:
        batch = run_from_thread(_batch, scope, q, state, after)
        if not batch:
            return
        yield from batch
        after = batch[-1]["id"]


async def _batch(scope: Scope, q: str, state: str, after: int) -> list[dict[str, Any]]:
    """One batch, within a request's deadline: a database that stops answering (a network
    partition) fails the export then, not when the network heals (app/deadline.py). The
    parent's request does not count the child's time, so the child keeps its own."""
    seconds = get_settings().request_deadline
    if seconds <= 0:
        return await instruments.export_batch(scope, q, state, after)
    async with deadline.within(seconds, "an export batch"):
        return await instruments.export_batch(scope, q, state, after)


async def _export(request: dict[str, Any]) -> int:
    raw = request["scope"]
    scope = Scope(
        user_id=raw["user_id"],
        enterprise_id=raw["enterprise_id"],
        enterprise_ids=tuple(raw["enterprise_ids"]),
        units=tuple((int(i), str(n)) for i, n in raw.get("units", ())),
    )
    engine = engine_finder()
    if isinstance(engine, PostgresEngine):  # one connection for all the batches
        await engine.start_connection_pool(min_size=1, max_size=1, setup=on_acquire)
    try:
        with open(request["path"], "wb") as out:
            return await anyio.to_thread.run_sync(
                write_export, _batches(scope, request["q"], request["state"]),
                REGISTER_COLUMNS, out,
            )  # fmt: skip
    finally:
        if isinstance(engine, PostgresEngine) and engine.pool is not None:
            await engine.close_connection_pool()


def main() -> None:
    # Below the app's requests for the CPU: on a small machine the export gives way to them.
    os.nice(10)
    try:
        rows = asyncio.run(_export(json.loads(sys.stdin.buffer.read())))
    except Exception as exc:
        if not isinstance(exc, DATABASE_AWAY) or isinstance(exc, OWN_FILE_ERRORS):
            raise
        print(json.dumps({"error": "unavailable", "detail": repr(exc)[:500]}))
        sys.exit(2)
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
