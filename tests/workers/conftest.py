"""Worker tests: a real arq worker on a real Redis (``REDIS_URL``, else ``TEST_REDIS_URL`` or
db 14 of the local Redis); skipped, with the reason, when that Redis is not reachable.
SMTP servers for the e-mail job: aiosmtpd (accepting, refusing, STARTTLS) and a silent one."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

from app.settings import get_settings
from tests.helpers import SETTINGS, free_port, run_burst_worker

REDIS_URL = SETTINGS.redis_url or os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


def _redis_down() -> bool:
    u = urlparse(REDIS_URL)
    try:
        socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), 1).close()
        return False
    except OSError:
        return True


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The worker tests' Redis; the test is skipped when it is not reachable."""
    if _redis_down():
        pytest.skip(f"Redis at {REDIS_URL} is not reachable")
    return REDIS_URL


@pytest.fixture
async def pool(redis_url: str) -> AsyncIterator[Any]:
    """arq's pool on an empty Redis database, to queue jobs as the app does."""
    p = await create_pool(RedisSettings.from_dsn(redis_url))
    await p.flushdb()
    yield p
    await p.flushdb()
    await p.aclose()


@pytest.fixture
def burst(redis_url: str) -> Callable[..., Awaitable[Worker]]:
    """``await burst(max_tries=3)``: the burst worker over what ``pool`` queued."""
    return partial(run_burst_worker, redis_url)


# --------------------------------------------------------------------------- SMTP (#12)


class Inbox:
    """An aiosmtpd handler: keeps what it accepts; refuses (554) the first ``refuse`` tries
    at DATA (None: every try)."""

    def __init__(self, refuse: int | None = 0) -> None:
        self.refuse = refuse
        self.tries = 0
        self.accepted: list[Any] = []  # aiosmtpd Envelopes
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.tries += 1
        if self.refuse is None or self.tries <= self.refuse:
            return "554 5.7.1 Message rejected by policy"
        self.accepted.append(envelope)
        return f"250 2.0.0 Ok: queued as M{len(self.accepted)}"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        self.logins.append((data.login, data.password))
        return AuthResult(success=(data.login, data.password) == (b"mailer", b"s3cret pass"))


@pytest.fixture
def smtp_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """``smtp_env(port, SMTP_STARTTLS="1", ...)``: EMAIL_BACKEND=smtp to 127.0.0.1:port (no
    STARTTLS, a 2 s timeout unless given), read afresh by get_settings; undone after."""

    def use(port: int, **extra: str) -> None:
        env = {
            "EMAIL_BACKEND": "smtp",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(port),
            "SMTP_FROM": "计量客户服务平台 <noreply@example.com>",
            "SMTP_STARTTLS": "0",
            "SMTP_TIMEOUT": "2",
            **extra,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield use
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., tuple[Inbox, int]]]:
    """``inbox, port = smtp_server(refuse=..., tls=(cert, key))``: a real SMTP server
    (aiosmtpd, in its own thread) on 127.0.0.1; with ``tls`` it requires STARTTLS and
    takes a login (mailer / "s3cret pass")."""
    started: list[Controller] = []

    def start(refuse: int | None = 0, tls: tuple[Path, Path] | None = None) -> tuple[Inbox, int]:
        inbox = Inbox(refuse)
        options: dict[str, Any] = {}
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            options = {
                "tls_context": context,
                "require_starttls": True,
                "authenticator": inbox.authenticate,
            }
        controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), **options)
        controller.start()
        started.append(controller)
        return inbox, controller.port

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture
async def silent_smtp() -> AsyncIterator[tuple[int, list[Any]]]:
    """A server that takes connections and never says a word (no greeting): ``(port,
    connections)``. It runs on the test's loop, as the burst worker does."""
    connections: list[Any] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        await reader.read()  # until the client gives up and hangs up
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], connections
    server.close()
    for writer in connections:
        writer.close()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 made with openssl, and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (apt-get install -y openssl)")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key
