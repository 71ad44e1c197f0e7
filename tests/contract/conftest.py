"""Contract tests of the lab system's API: the app served by uvicorn on a free port (as the
lab system sees it), on the suite's database, with data the API's examples name.

Every test still starts from empty tables (``clean_db``); ``lab_data`` then seeds a
pending booking, an approved one with its order, and a certificate.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.tables import Booking
from tests.factories import make_booking, make_enterprise
from tests.helpers import SETTINGS, free_port, make_pdf, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "lab-token-1"
# The numbers the OpenAPI schema's examples use (app/routes/api.py): the examples phase
# and the curl examples in docs/lab-api.md then meet real rows, not only 404s.
PENDING_NO = "YY20261126000001"
APPROVED_NO = "YY20261126000002"
ORDER_NO = "DD001"
UNIQUE_NOS = ("DD001-001", "DD001-002")
CERT_NO = "ZS-001"


@pytest.fixture(scope="session")
def api_server(schema: None) -> Iterator[str]:
    """uvicorn serving the app on the test database; its log is in DATA_DIR/api-server.log."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DB_POOL": "1"}
    env["PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    log = open(Path(SETTINGS.data_dir) / "api-server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.asgi:app", "--host", "127.0.0.1"]
        + ["--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@dataclass(frozen=True)
class LabData:
    base_url: str
    token: str = TOKEN


@pytest.fixture
async def lab_data(api_server: str) -> LabData:
    """Rows for the API to find: ``PENDING_NO`` (待审核), ``APPROVED_NO`` (已通过) with the
    order ``ORDER_NO`` of ``UNIQUE_NOS``, ``CERT_NO`` for the first, and four more pending
    bookings for the stateful phase to review."""
    enterprise = await make_enterprise(1)
    await make_booking(enterprise, 2, status="pending", booking_no=PENDING_NO)
    await make_booking(enterprise, 2, status="pending", booking_no=APPROVED_NO)
    for n in range(3, 7):
        await make_booking(enterprise, 1, status="pending", booking_no=f"YY20261126{n:06d}")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=api_server, headers=headers, timeout=30) as c:
        r = await c.post(f"/api/v1/bookings/{APPROVED_NO}/review", json={"approved": True})
        assert r.status_code == 200, r.text
        lines = [
            {"unique_no": u, "name": "数字温度计", "serial_no": f"T-{k}"}
            for k, u in enumerate(UNIQUE_NOS, 1)
        ]
        r = await c.put(
            f"/api/v1/orders/{ORDER_NO}", json={"booking_no": APPROVED_NO, "instruments": lines}
        )
        assert r.status_code == 200, r.text
        r = await c.put(
            f"/api/v1/certificates/{CERT_NO}",
            files={"file": ("c.pdf", make_pdf(CERT_NO), "application/pdf")},
            data={"unique_no": UNIQUE_NOS[0], "completed_on": "2026-11-20", "paid": "false"},
        )
        assert r.status_code == 200, r.text
    assert await Booking.count() == 6
    return LabData(api_server)
