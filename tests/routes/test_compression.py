"""Compressed answers (app/web/compression.py): pages, fragments, JSON and static text go
gzip to a client that accepts it; downloads (xlsx, zip, PDF) go as they are, whole and
readable; static files are kept a year under URLs that carry their content's hash."""

from __future__ import annotations

import io
import re
import zipfile

import openpyxl
from litestar.testing import AsyncTestClient

from app.tables import Certificate
from app.web.static import STATIC_DIR
from tests.helpers import (
    approved_booking,
    company_user,
    lab_certificate,
    lab_order,
    post,
    run_jobs,
)

GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


def gzipped(r: object) -> bool:
    headers = r.headers  # type: ignore[attr-defined]
    return (
        headers.get("content-encoding") == "gzip"
        and "accept-encoding" in headers.get("vary", "").lower()
    )


async def test_pages_fragments_and_json_are_gzipped(client: AsyncTestClient) -> None:
    await company_user(client)
    r = await client.get("/bookings", headers=GZIP)
    assert r.status_code == 200 and gzipped(r) and "预约记录" in r.text
    # One URL answers the page and the fragment: caches key on both.
    assert "hx-request" in r.headers["vary"].lower()
    r = await client.get("/bookings/new", headers={**GZIP, "HX-Request": "true"})
    assert r.status_code == 200 and gzipped(r)
    r = await client.get("/schema/openapi.json", headers=GZIP)
    assert r.status_code == 200 and gzipped(r) and r.json()["info"]["title"]
    # A client that asks for none gets none.
    r = await client.get("/bookings", headers=IDENTITY)
    assert r.status_code == 200 and "content-encoding" not in r.headers and "预约记录" in r.text
    assert int(r.headers["content-length"]) == len(r.content)


async def test_downloads_are_sent_as_they_are(client: AsyncTestClient) -> None:
    await company_user(client)
    booking = await approved_booking(client)
    unique = await lab_order(client, booking["booking_no"], "DD100")
    assert (await lab_certificate(client, "ZS-100", unique[0], paid=True)).status_code == 200
    cert = await Certificate.select(Certificate.id).where(Certificate.cert_no == "ZS-100").first()

    def whole(r: object) -> bytes:
        headers = r.headers  # type: ignore[attr-defined]
        content: bytes = r.content  # type: ignore[attr-defined]
        assert r.status_code == 200  # type: ignore[attr-defined]
        assert "content-encoding" not in headers, headers
        if "content-length" in headers:
            assert int(headers["content-length"]) == len(content)
        return content

    pdf = whole(await client.get(f"/certificates/{cert['id']}/file", headers=GZIP))
    assert pdf.startswith(b"%PDF")
    for url in ("/instruments/export.xlsx", "/bookings/template.xlsx"):
        data = whole(await client.get(url, headers=GZIP))
        assert openpyxl.load_workbook(io.BytesIO(data)).sheetnames

    r = await post(client, "/certificates/download", {"ids": [str(cert["id"])]}, htmx=True)
    key = re.search(r"/certificates/jobs/([\w-]+)", r.text).group(1)  # type: ignore[union-attr]
    await run_jobs(client)
    data = whole(await client.get(f"/certificates/jobs/{key}/zip", headers=GZIP))
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    assert archive.read(archive.namelist()[0]).startswith(b"%PDF")


async def test_static_files_are_long_cached_under_hashed_names(client: AsyncTestClient) -> None:
    page = (await client.get("/login", headers=GZIP)).text
    urls = re.findall(r'(?:href|src)="(/static/[^"?]+\?v=[0-9a-f]{12})"', page)
    assert any("app.css" in u for u in urls) and any("htmx" in u for u in urls), urls
    for url in urls:
        r = await client.get(url, headers=GZIP)
        assert r.status_code == 200
        cache = r.headers["cache-control"]
        assert "max-age=31536000" in cache and "immutable" in cache
        name = url.removeprefix("/static/").split("?")[0]
        assert r.content == (STATIC_DIR / name).read_bytes()  # whole once decoded
        if name.endswith((".css", ".js")):
            assert gzipped(r), (url, r.headers)
