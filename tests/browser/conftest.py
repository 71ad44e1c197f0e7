"""Browser tests: the app served by uvicorn (plus an arq worker in production mode) and
driven by Debian's Chromium through Playwright, on a desktop and a 390×844 phone."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import PRODUCTION, SETTINGS, free_port, wait_for_port

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
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
    from playwright.async_api import async_playwright
except ImportError:  # pragma: no cover
    pytest.skip("playwright is not installed", allow_module_level=True)


# Package scope: the server and its arq worker stop after the last browser test. A worker
# left running for the whole session took the jobs of later tests (tests/workers'
# kill -9 test saw its SMS sent by this worker's outbox instead of its own workers).
@pytest.fixture(scope="package")
def server(schema: None) -> Iterator[str]:
    """uvicorn serving the app on the test database (and the arq worker in production)."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DB_POOL": "1",
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PROGRESS_POLL_SECONDS": "2",  # 检测进度查询 refreshes itself within a test's patience
    }
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
        wait_for_port(port, procs[0])
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


@pytest.fixture(scope="package")
async def browser() -> AsyncIterator[Any]:
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
