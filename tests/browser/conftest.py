"""Browser tests: the app served by uvicorn (plus an arq worker in production mode) and
driven by Debian's Chromium through Playwright, on a desktop and a 390×844 phone."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PRODUCTION, SETTINGS

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "screenshots"
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 3,
        "is_mobile": True,
        "has_touch": True,
    },
}

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"{CHROMIUM} is not installed (apt-get install -y chromium)", allow_module_level=True
    )
try:
    import playwright.async_api  # noqa: F401
except ImportError:  # pragma: no cover
    pytest.skip("playwright is not installed", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int, proc: subprocess.Popen[bytes], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


@pytest.fixture(scope="session")
def server(schema: None) -> Iterator[str]:
    """uvicorn serving the app on the test database (and the arq worker in production)."""
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DB_POOL": "1"}
    log = open(Path(SETTINGS.data_dir) / "server.log", "wb")  # noqa: SIM115
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.asgi:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    ]
    if PRODUCTION:
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "arq", "workers.main.WorkerSettings"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    try:
        _wait_for(port, procs[0])
        yield f"http://127.0.0.1:{port}"
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        await b.close()


@pytest.fixture(params=list(VIEWPORTS))
async def page(request: pytest.FixtureRequest, browser: Any, server: str) -> AsyncIterator[Any]:
    """A fresh browser page at one viewport; fails the test on any CSP violation or JS error."""
    context = await browser.new_context(base_url=server, locale="zh-CN", **VIEWPORTS[request.param])
    pg = await context.new_page()
    pg.viewport_name = request.param
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    yield pg
    await context.close()
    assert not problems, problems


async def shot(page: Any, name: str) -> None:
    """Keep a screenshot of what the user saw (screenshots/, not committed)."""
    SHOTS.mkdir(exist_ok=True)
    # caret="initial": hiding the caret leaves style="" on inputs, which htmx's settle step
    # would copy onto swapped-in inputs: a CSP report the app did not cause.
    await page.screenshot(
        path=str(SHOTS / f"{name}-{page.viewport_name}.png"), full_page=True, caret="initial"
    )


async def wait_for_sms(phone: str, pattern: str = r"验证码为(\d{6})", seconds: float = 15) -> str:
    """Poll the 短信记录 (outbox) until an SMS to ``phone`` matches; returns group 1."""
    import re

    from tests.conftest import outbox

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for msg in await outbox(phone):
            if msg["status"] == "sent" and (m := re.search(pattern, msg["text"])):
                return m.group(1) if m.groups() else m.group(0)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no SMS matching {pattern!r} to {phone}")


async def open_menu_if_phone(page: Any) -> None:
    """On a phone the sidebar is folded behind the 菜单 button."""
    if page.viewport_name == "phone":
        await page.get_by_role("button", name="菜单").click()
