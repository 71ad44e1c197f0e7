"""Every request's deadline (#8): a service that stops answering fails the request with the
503 page (系统服务暂时不可用) after REQUEST_DEADLINE seconds, instead of hanging.

A service that goes down fails a request at once (refused, reset). One that stops answering
(a network partition: packets dropped, connections left open) does not: a query already
sent waits for the network to heal. Cancelling it does not help either: asyncpg's cancel
request travels over the same dead network, and the connection then waits for that cancel
(up to its command_timeout) before it can be used or released.

So when a request's deadline passes, the database connections it holds are terminated
(closed at once, nothing sent; app/db.py tells the deadline of each one the request takes).
The query waiting on one fails at once, so its transaction can never commit (PostgreSQL
rolls it back when it sees the connection gone); the connection never returns to the pool,
whose next acquire opens a new one: the app recovers by itself when the network heals. A
request still running GRACE seconds later (waiting on something else: a connection being
opened, a turn in the pool) is cancelled. Either way its answer is the 503 page.

The deadline counts the app's own time: not the time the client takes to send its body or
to take the answer (a slow upload or download is no service away), nor work with limits of
its own that holds no database connection, marked with :func:`paused` (an import's parse and
its wait for a turn, a PDF's check in its child, the export's child, whose every batch keeps
a deadline of its own: :func:`within`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("app")

# After the deadline, how long a request may take to end by itself (its connections
# terminated, it fails at once) before it is cancelled.
GRACE = 1.0


class DeadlinePassed(TimeoutError):
    """The request ran past its deadline (a TimeoutError: app/web/errors.py's 503 page)."""


class Deadline:
    """One request's deadline: a timer that stops while the request waits on its client or
    on :func:`paused` work, and the database connections to terminate when it fires."""

    def __init__(self, seconds: float, what: str = "") -> None:
        self.what = what  # for the log: the method and path
        self.left = seconds
        self.expired = False
        self.task = asyncio.current_task()
        self._loop = asyncio.get_running_loop()
        self._connections: list[Any] = []
        self._timer: asyncio.TimerHandle | None = None
        self._since = 0.0
        self._pauses = 0
        self._backstop: asyncio.Timeout | None = None

    def start(self, backstop: asyncio.Timeout) -> None:
        self._backstop = backstop
        self._run()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def hold(self, connection: Any) -> None:
        """``connection`` (anything with ``terminate()``) is this request's until it ends."""
        if asyncio.current_task() is self.task:  # not a job task started from the request
            self._connections.append(connection)

    @contextmanager
    def paused(self) -> Iterator[None]:
        if self.expired or asyncio.current_task() is not self.task:
            yield
            return
        self._pauses += 1
        if self._pauses == 1:
            self.stop()
            self.left -= self._loop.time() - self._since
        try:
            yield
        finally:
            self._pauses -= 1
            if self._pauses == 0 and not self.expired:
                self._run()

    def _run(self) -> None:
        self._since = self._loop.time()
        self._timer = self._loop.call_later(max(self.left, 0.0), self._expire)

    def _expire(self) -> None:
        self._timer = None
        self.expired = True
        dropped = 0
        for connection in self._connections:
            try:
                if not connection.is_closed():
                    connection.terminate()
                    dropped += 1
            except Exception:  # noqa: BLE001  a pool connection already released (detached)
                continue
        self._connections.clear()
        log.warning("deadline passed on %s: %d connection(s) terminated", self.what, dropped)
        if self._backstop is not None:
            self._backstop.reschedule(self._loop.time() + GRACE)


_current: ContextVar[Deadline | None] = ContextVar("request_deadline", default=None)


def hold(connection: Any) -> None:
    """The current request (if any) holds ``connection``: terminated if its deadline passes."""
    deadline = _current.get()
    if deadline is not None:
        deadline.hold(connection)


@contextmanager
def paused() -> Iterator[None]:
    """The current request's deadline stops for the block: work bounded by limits of its own
    (a wait for a turn, a child process with its own timeout) that holds no database
    connection. Outside a request it does nothing."""
    deadline = _current.get()
    if deadline is None:
        yield
        return
    with deadline.paused():
        yield


@asynccontextmanager
async def within(seconds: float, what: str = "") -> AsyncIterator[Deadline]:
    """Run the block under a deadline of ``seconds``: when it passes, the connections taken
    in the block are terminated, and a block still running GRACE seconds later is
    cancelled (:class:`DeadlinePassed`)."""
    deadline = Deadline(seconds, what)
    token = _current.set(deadline)
    try:
        async with asyncio.timeout(None) as backstop:
            deadline.start(backstop)
            yield deadline
    except TimeoutError:
        if not backstop.expired():
            raise
        raise DeadlinePassed(f"{what} past its deadline of {seconds:g} s") from None
    finally:
        deadline.stop()
        _current.reset(token)


class DeadlineMiddleware:
    """Every request within its deadline; the outermost middleware, so that the deadline
    covers the session lookup too. A request cancelled after GRACE raises
    :class:`DeadlinePassed`, which the app's exception handler answers with the 503 page."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        # The path escaped (repr): a %0A in it starts no log line of its own.
        async with within(self.seconds, f"{scope['method']} {scope['path']!r}") as deadline:

            async def from_client() -> Message:
                with deadline.paused():
                    return await receive()

            async def to_client(message: Message) -> None:
                with deadline.paused():
                    await send(message)

            await self.app(scope, from_client, to_client)  # type: ignore[arg-type]
