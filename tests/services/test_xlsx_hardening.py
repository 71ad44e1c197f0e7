"""Crafted spreadsheets that used to cost seconds of CPU and hundreds of MB: refused from
the container's own numbers before openpyxl loads a part; reading stops one row past the
limit; imports queue for a slot."""

from __future__ import annotations

import io
import zipfile

import anyio
import pytest

from app.fields import INSTRUMENT_FIELDS
from app.services import instrument_xlsx
from app.services.instrument_xlsx import (
    MSG_ZIP_BOMB,
    ImportBusy,
    ImportRefused,
    read_instruments,
    read_upload,
)
from tests.helpers import fill_template


def _replace(data: bytes, name: str, body: bytes) -> bytes:
    """The package with part ``name`` replaced (or added)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            if info.filename != name:
                archive.writestr(info.filename, source.read(info))
        archive.writestr(name, body)
    return out.getvalue()


def _refused(data: bytes) -> list[str]:
    with pytest.raises(ImportRefused) as caught:
        read_instruments(data, INSTRUMENT_FIELDS)
    return [e.message for e in caught.value.errors]


def _styles(n: int) -> bytes:
    xfs = b'<xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>' * n
    return (
        b'<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="http://schemas.openxmlformats.org'
        b'/spreadsheetml/2006/main"><cellXfs count="%d">%s</cellXfs></styleSheet>' % (n, xfs)
    )


def test_many_styles_are_refused_before_parsing() -> None:
    base = fill_template([{"name": "万用表", "serial_no": "1"}])
    # 30,000 <xf> entries: 1.6 MB unpacked, a few KB packed, within the old size checks.
    data = _replace(base, "xl/styles.xml", _styles(30_000))
    assert len(data) < 200_000
    assert _refused(data) == [MSG_ZIP_BOMB]


def test_a_tag_cut_by_the_chunking_counts_once() -> None:
    # Exactly the limit, with entries straddling the 1 MB read boundaries: accepted.
    base = fill_template([{"name": "万用表", "serial_no": "1"}])
    limit = instrument_xlsx.PART_LIMITS["xl/styles.xml"][2]
    data = _replace(base, "xl/styles.xml", _styles(limit))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        instrument_xlsx._check_parts(archive, archive.infolist())
    with zipfile.ZipFile(io.BytesIO(_replace(base, "xl/styles.xml", _styles(limit + 1)))) as z:
        with pytest.raises(ImportRefused):
            instrument_xlsx._check_parts(z, z.infolist())


def test_millions_of_shared_strings_are_refused() -> None:
    base = fill_template([{"name": "万用表", "serial_no": "1"}])
    strings = b"<si><t>a</t></si>" * 300_000
    body = (
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">%s</sst>' % strings
    )
    assert _refused(_replace(base, "xl/sharedStrings.xml", body)) == [MSG_ZIP_BOMB]


def test_reading_stops_one_row_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    data = fill_template([{"name": f"表{i}", "serial_no": str(i)} for i in range(50)])
    seen: list[int] = []
    real = instrument_xlsx._make_parser

    def counting(column: object) -> object:
        parse = real(column)

        def wrapped(value: object) -> object:
            if getattr(column, "key", "") == "name":
                seen.append(1)
            return parse(value)

        return wrapped

    monkeypatch.setattr(instrument_xlsx, "_make_parser", counting)
    with pytest.raises(ImportRefused) as caught:
        read_instruments(data, INSTRUMENT_FIELDS, max_rows=10)
    assert "每次最多导入 10 行" in caught.value.errors[0].message
    assert len(seen) == 10  # rows 12–50 were never parsed


async def test_imports_wait_for_a_slot_then_are_told_to_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(instrument_xlsx, "MAX_CONCURRENT_IMPORTS", 1)
    monkeypatch.setattr(instrument_xlsx, "IMPORT_WAIT_SECONDS", 0.2)
    monkeypatch.setattr(instrument_xlsx, "_import_slots", {})
    started = anyio.Event()
    release = anyio.Event()

    def slow(data: bytes, columns: object, **options: object) -> list:
        anyio.from_thread.run_sync(started.set)
        anyio.from_thread.run(release.wait)
        return []

    monkeypatch.setattr(instrument_xlsx, "read_instruments", slow)
    async with anyio.create_task_group() as tg:
        tg.start_soon(read_upload, b"x", INSTRUMENT_FIELDS)
        await started.wait()
        with pytest.raises(ImportBusy):
            await read_upload(b"y", INSTRUMENT_FIELDS)
        release.set()
    assert await read_upload(b"z", INSTRUMENT_FIELDS) == []
