"""Tests for app.services.certpdf (check, stamp, read back, in limited children) and
app.services.certzip (file names, the zip). Hostile input first."""

from __future__ import annotations

import io
import re
import resource
import time
import zipfile
import zlib
from collections.abc import Awaitable
from datetime import date
from pathlib import Path

import anyio
import pytest
import segno
from pypdf import PdfReader, PdfWriter
from pypdf.generic import NameObject, RectangleObject

from app.services import certpdf
from app.services.certpdf import (
    DEFAULT_RULE,
    FILE_NAME_FIELDS,
    MAX_PDF_BYTES,
    Claim,
    Limits,
    PdfRefused,
    Refusal,
    WorkerPool,
    check_pdf,
    check_pdf_async,
    default_key,
    file_name,
    read_claim,
    read_claim_async,
    sha256_hex,
    stamp,
    stamp_async,
    unique_names,
    write_zip,
)
from app.services.certpdf_worker import overlay_content
from app.settings import get_settings
from tests.helpers import certificate_pdf

URL = "https://jl.example.cn/verify/JL2026-000123?k=9f3a"
KEY = b"k" * 32


def stamped(data: bytes, cert_no: str = "JL2026-000123", key: bytes | None = None) -> bytes:
    return stamp(
        data,
        cert_no=cert_no,
        issuer="某市计量测试研究院",
        key=default_key() if key is None else key,
        verify_url=URL,
    )


def saved(writer: PdfWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def raw_pdf(objects: dict[int, bytes], root: int = 1) -> bytes:
    """A PDF written by hand, with a correct cross-reference table: hostile shapes that no
    PDF library would write."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += b"%d 0 obj\n" % num + objects[num] + b"\nendobj\n"
    size = max(objects) + 1
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for n in range(1, size):
        out += b"%010d 00000 n \n" % offsets[n] if n in offsets else b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, root, xref)
    return bytes(out)


def stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
PAGES = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"


def page(extra: bytes = b"") -> bytes:
    return b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] " + extra + b">>"


def objstm_bomb() -> bytes:
    """The page lives in an object stream claiming 100 million objects (xref stream)."""
    objstm = stream(b"3 0 " + page(), b"/Type /ObjStm /N 100000000 /First 4 ")
    head = b"%PDF-1.7\n"
    body = bytearray(head)
    offsets = {}
    for num, obj in ((1, CATALOG), (2, PAGES), (4, objstm)):
        offsets[num] = len(body)
        body += b"%d 0 obj\n" % num + obj + b"\nendobj\n"
    xref_at = len(body)
    rows = [b"\x00" + (0).to_bytes(4, "big") + b"\xff\xff"]
    rows.append(b"\x01" + offsets[1].to_bytes(4, "big") + b"\x00\x00")
    rows.append(b"\x01" + offsets[2].to_bytes(4, "big") + b"\x00\x00")
    rows.append(b"\x02" + (4).to_bytes(4, "big") + b"\x00\x00")  # obj 3: in stream 4, #0
    rows.append(b"\x01" + offsets[4].to_bytes(4, "big") + b"\x00\x00")
    rows.append(b"\x01" + xref_at.to_bytes(4, "big") + b"\x00\x00")
    data = b"".join(rows)
    body += b"5 0 obj\n" + stream(data, b"/Type /XRef /Size 6 /W [1 4 2] /Root 1 0 R ")
    body += b"\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(body)


def flate_bomb() -> bytes:
    """A 1 MB content stream that inflates to 1 GB of zeros."""
    z = zlib.compressobj(9)
    data = b"".join(z.compress(b"\0" * (1 << 20)) for _ in range(1024)) + z.flush()
    return raw_pdf(
        {
            1: CATALOG,
            2: PAGES,
            3: page(b"/Contents 4 0 R "),
            4: stream(data, b"/Filter /FlateDecode "),
        }
    )


def many_objects(pages: int = 1000, per_page: int = 40) -> bytes:
    """Legal but heavy: 40,000 annotations (~4.6 MB; ~5 s and ~250 MB to parse and clone)."""
    objs = {1: CATALOG}
    first, annots = 3, 3 + pages
    for p in range(pages):
        refs = b" ".join(b"%d 0 R" % (annots + p * per_page + i) for i in range(per_page))
        objs[first + p] = page(b"/Annots [" + refs + b"] ")
    for k in range(pages * per_page):
        objs[annots + k] = b"<< /Type /Annot /Subtype /Text /Rect [0 0 1 1] /Contents (x) >>"
    kids = b" ".join(b"%d 0 R" % (first + p) for p in range(pages))
    objs[2] = b"<< /Type /Pages /Count %d /Kids [%s] >>" % (pages, kids)
    return raw_pdf(objs)


DEPTH = 100_000
BOMBS = {
    "nested arrays": raw_pdf({1: CATALOG, 2: PAGES, 3: page(b"/X " + b"[" * DEPTH + b"]" * DEPTH)}),
    "nested dicts": raw_pdf(
        {1: CATALOG, 2: PAGES, 3: page(b"/X " + b"<</A " * DEPTH + b">>" * DEPTH)}
    ),
    "unclosed arrays": raw_pdf({1: CATALOG, 2: PAGES, 3: page(b"/X " + b"[" * 2_000_000)}),
    "object stream of 10^8 objects": objstm_bomb(),
    "huge /Length": raw_pdf(
        {
            1: CATALOG,
            2: PAGES,
            3: page(b"/Contents 4 0 R "),
            4: b"<< /Length 99999999999 >>\nstream\nBT ET\nendstream",
        }
    ),
    "page tree loop": raw_pdf(
        {1: CATALOG, 2: b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>", 3: page()}
    ),
    "page tree cycle": raw_pdf(
        {
            1: CATALOG,
            2: b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
            4: b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>",
        }
    ),
    "two million kids": raw_pdf(
        {
            1: CATALOG,
            2: b"<< /Type /Pages /Kids [" + b"3 0 R " * 2_000_000 + b"] /Count 2000000 >>",
            3: page(),
        }
    ),
    "deflate bomb": flate_bomb(),
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


# --------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", Refusal.NOT_PDF),
        (b"hello, this is not a PDF", Refusal.NOT_PDF),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, Refusal.NOT_PDF),  # a PNG renamed .pdf
        (b" %PDF-1.7\n", Refusal.NOT_PDF),
        (b"%PDF-1.7\n" + b"0" * (30 * 1024 * 1024), Refusal.TOO_LARGE),
    ],
    ids=["empty", "text", "png", "leading space", "30 MB"],
)
def test_what_is_not_a_pdf_is_refused_before_parsing(data: bytes, reason: Refusal) -> None:
    for call in (check_pdf, stamped, read_claim):
        with pytest.raises(PdfRefused) as caught:
            call(data)
        assert caught.value.reason is reason
        assert caught.value.message == reason.value


def test_messages_are_the_ones_users_see() -> None:
    assert Refusal.NOT_PDF.value == "不是有效的PDF文件"
    assert Refusal.TOO_LARGE.value == "文件超过20MB"
    assert Refusal.ENCRYPTED.value == "PDF已加密，无法处理"
    assert Refusal.LIMITS.value == "PDF文件结构异常，无法处理"
    assert str(PdfRefused.because(Refusal.NO_PAGES)) == Refusal.NO_PAGES.value
    assert MAX_PDF_BYTES == 20 * 1024 * 1024


def test_a_real_pdf_just_over_20_mb_is_refused() -> None:
    data = certificate_pdf()
    padded = data + b"%" + b"x" * (MAX_PDF_BYTES - len(data)) + b"\n%%EOF\n"
    with pytest.raises(PdfRefused) as caught:
        check_pdf(padded)
    assert caught.value.reason is Refusal.TOO_LARGE


@pytest.mark.parametrize("user_password", ["secret", ""])
def test_encrypted_pdf_is_refused(user_password: str) -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(certificate_pdf())))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    data = saved(writer)
    for call in (check_pdf, stamped, read_claim):
        with pytest.raises(PdfRefused) as caught:
            call(data)
        assert caught.value.reason is Refusal.ENCRYPTED
        assert caught.value.message == "PDF已加密，无法处理"


def test_truncated_pdf_is_refused() -> None:
    data = certificate_pdf(pages=3)
    for cut in (len(data) // 2, len(data) - 10):
        with pytest.raises(PdfRefused) as caught:
            check_pdf(data[:cut])
        assert caught.value.reason is Refusal.TRUNCATED


def test_garbage_after_the_header_is_unreadable() -> None:
    with pytest.raises(PdfRefused) as caught:
        check_pdf(b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n")
    assert caught.value.reason is Refusal.UNREADABLE


def test_pdf_without_pages_is_refused() -> None:
    data = raw_pdf({1: CATALOG, 2: b"<< /Type /Pages /Kids [] /Count 0 >>"})
    with pytest.raises(PdfRefused) as caught:
        check_pdf(data)
    assert caught.value.reason is Refusal.NO_PAGES


@pytest.mark.parametrize("name", list(BOMBS))
def test_pdf_bombs_are_refused_quickly_without_growing_this_process(name: str) -> None:
    data = BOMBS[name]
    before = peak_rss_mb()
    for call in (check_pdf, stamped):
        started = time.monotonic()
        with pytest.raises(PdfRefused) as caught:
            call(data)
        assert time.monotonic() - started < 8, call  # ~1 s at most on an idle machine
        assert caught.value.reason in (Refusal.LIMITS, Refusal.UNREADABLE, Refusal.NO_PAGES)
    # the parsing happened elsewhere: this process holds the input and little more
    assert peak_rss_mb() - before < 2 * len(data) / 2**20 + 20
    assert check_pdf(certificate_pdf()) == 1  # the pool is still serving


def test_the_children_run_with_their_limits() -> None:
    pool = WorkerPool(size=1)
    try:
        assert pool.call("page_count", certificate_pdf())[0] == 1
        (pid,) = pool.pids()
        limits = Path(f"/proc/{pid}/limits").read_text()
        assert re.search(r"Max address space\s+536870912\s", limits)
        assert re.search(r"Max cpu time\s+\d+\s", limits)  # not unlimited
    finally:
        pool.shutdown()
    assert pool.pids() == []


def test_a_child_over_its_memory_limit_is_refused_and_replaced() -> None:
    pool = WorkerPool(size=1, limits=Limits(memory_bytes=150 * 1024 * 1024))
    try:
        with pytest.raises(PdfRefused) as caught:
            pool.call("page_count", many_objects())
        assert caught.value.reason is Refusal.LIMITS
        assert pool.call("page_count", certificate_pdf(pages=2))[0] == 2
    finally:
        pool.shutdown()


def test_a_child_over_its_cpu_limit_is_killed_and_replaced() -> None:
    pool = WorkerPool(size=1, timeout=60, limits=Limits(cpu_seconds=1))
    try:
        started = time.monotonic()
        with pytest.raises(PdfRefused) as caught:
            pool.call("page_count", many_objects())  # ~5 s of CPU
        assert caught.value.reason is Refusal.LIMITS
        assert time.monotonic() - started < 10  # SIGXCPU, not the wall clock
        assert pool.call("page_count", certificate_pdf())[0] == 1
    finally:
        pool.shutdown()


def test_a_child_past_the_wall_clock_is_killed_and_replaced() -> None:
    pool = WorkerPool(size=1)
    try:
        pool.call("page_count", certificate_pdf())  # started and warm (a busy host is slow)
        (first,) = pool.pids()
        pool.timeout = 0.5
        started = time.monotonic()
        with pytest.raises(PdfRefused) as caught:
            pool.call("page_count", many_objects())
        assert caught.value.reason is Refusal.LIMITS
        assert time.monotonic() - started < 8  # killed at 0.5 s, not left to its 10 s CPU
        assert pool.pids() == []
        assert not Path(f"/proc/{first}").exists() or "Z" in Path(f"/proc/{first}/stat").read_text()
        pool.timeout = 15.0
        assert pool.call("page_count", certificate_pdf())[0] == 1
        assert pool.pids() != [first]
    finally:
        pool.shutdown()


def test_a_child_that_died_while_idle_is_replaced_without_refusing() -> None:
    pool = WorkerPool(size=1)
    try:
        pool.call("page_count", certificate_pdf())
        (pid,) = pool.pids()
        pool._idle[0].proc.kill()
        pool._idle[0].proc.wait()
        assert pool.call("page_count", certificate_pdf(pages=4))[0] == 4
    finally:
        pool.shutdown()


# --------------------------------------------------------------------------- normal use


def test_normal_pdf_gives_its_page_count() -> None:
    assert check_pdf(certificate_pdf()) == 1
    assert check_pdf(certificate_pdf(pages=7)) == 7


async def test_async_wrappers() -> None:
    data = certificate_pdf(pages=2)
    assert await check_pdf_async(data) == 2
    out = await stamp_async(
        data, cert_no="A-1", issuer="院", key=default_key(), verify_url="https://x.cn/v/A-1"
    )
    assert await read_claim_async(out) == Claim(cert_no="A-1", mac_ok=True)
    with pytest.raises(PdfRefused):
        await check_pdf_async(b"nope")


async def test_concurrent_calls_share_at_most_two_children() -> None:
    async def one(n: int) -> int:
        return await check_pdf_async(certificate_pdf(pages=n))

    results = []
    async with anyio.create_task_group() as tg:
        for n in range(1, 9):
            tg.start_soon(lambda n=n: _append(results, one(n)))
    assert sorted(results) == list(range(1, 9))
    assert 1 <= len(certpdf.pool().pids()) <= 2


async def _append(results: list[int], call: Awaitable[int]) -> None:
    results.append(await call)


def test_stamp_writes_metadata_and_the_verification_code() -> None:
    original = certificate_pdf(pages=3)
    out = stamped(original)
    reader = PdfReader(io.BytesIO(out))
    meta = reader.metadata
    assert meta is not None
    assert meta["/CertNo"] == "JL2026-000123"
    assert meta["/Issuer"] == "某市计量测试研究院"
    assert re.fullmatch(r"[0-9a-f]{64}", meta["/CertMac"])
    assert len(reader.pages) == 3 == check_pdf(out)
    assert URL in reader.pages[0].extract_text()
    assert "page 1" in reader.pages[0].extract_text()  # the certificate's own text stays
    assert URL not in reader.pages[1].extract_text()
    assert read_claim(out) == Claim(cert_no="JL2026-000123", mac_ok=True)
    assert sha256_hex(out) != sha256_hex(original)
    assert sha256_hex(out) == sha256_hex(bytes(out))
    assert re.fullmatch(r"[0-9a-f]{64}", sha256_hex(out))


def test_stamp_keeps_the_size() -> None:
    original = certificate_pdf(pages=2, text="Reading " * 4000)  # a heavy first page
    out = stamped(original)
    assert len(out) < len(original) + 6 * 1024
    first = PdfReader(io.BytesIO(out)).pages[0]
    assert "Reading Reading" in first.extract_text() and URL in first.extract_text()


def test_stamping_twice_keeps_one_claim() -> None:
    out = stamped(stamped(certificate_pdf(), cert_no="OLD-1"), cert_no="NEW-2")
    assert read_claim(out) == Claim(cert_no="NEW-2", mac_ok=True)


def test_altered_stamped_pdf_changes_hash_but_keeps_its_claim() -> None:
    out = stamped(certificate_pdf(pages=2))
    appended = out + b"\n% appended by someone\n"
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(out)))
    writer.pages[1].rotate(90)
    writer.add_blank_page()
    resaved = saved(writer)
    for altered in (appended, resaved):
        assert sha256_hex(altered) != sha256_hex(out)
        assert read_claim(altered) == Claim(cert_no="JL2026-000123", mac_ok=True)


def test_forged_mac_is_not_ok() -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(certificate_pdf())))
    writer.add_metadata({"/CertNo": "JL2026-000123", "/CertMac": "0" * 64})
    assert read_claim(saved(writer)) == Claim(cert_no="JL2026-000123", mac_ok=False)
    # a real MAC copied onto another number
    real = PdfReader(io.BytesIO(stamped(certificate_pdf()))).metadata
    assert real is not None
    writer.add_metadata({"/CertNo": "JL2026-999999", "/CertMac": real["/CertMac"]})
    assert read_claim(saved(writer)) == Claim(cert_no="JL2026-999999", mac_ok=False)
    # stamped with another key
    other = stamped(certificate_pdf(), key=b"another key")
    assert read_claim(other) == Claim(cert_no="JL2026-000123", mac_ok=False)
    assert read_claim(other, key=b"another key") == Claim(cert_no="JL2026-000123", mac_ok=True)


def test_unstamped_pdf_claims_nothing() -> None:
    assert read_claim(certificate_pdf()) is None


def test_default_key_is_derived_from_the_secret_not_the_secret() -> None:
    key = default_key()
    assert len(key) == 32
    assert get_settings().secret_key.encode() not in key
    assert key == default_key()


def test_stamp_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError):
        stamp(certificate_pdf(), cert_no="", issuer="x", key=KEY, verify_url=URL)
    with pytest.raises(ValueError):
        stamp(certificate_pdf(), cert_no="A", issuer="x", key=KEY, verify_url="https://验证.cn/")


def test_qr_drawing_is_the_segno_matrix() -> None:
    content = overlay_content(URL, 595, 842).decode("ascii")
    matrix = segno.make(URL, error="m", micro=False).matrix
    n = len(matrix)
    drawn = [[0] * n for _ in range(n)]
    for x, y, w in re.findall(r"^(\d+) (\d+) (\d+) 1 re$", content, re.M):
        for c in range(int(x), int(x) + int(w)):
            drawn[n - 1 - int(y)][c] = 1
    assert drawn == [list(row) for row in matrix]
    assert "/F1" in content and f"({URL}) Tj" in content


@pytest.mark.parametrize("rotate", [0, 90, 180, 270])
def test_code_and_url_sit_in_the_bottom_right_corner_as_shown(rotate: int) -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(certificate_pdf(pages=2))))
    first = writer.pages[0]
    first[NameObject("/MediaBox")] = RectangleObject([100, 50, 695, 892])  # not at 0, 0
    first.rotate(rotate)
    out = stamped(saved(writer))

    shown = PdfWriter(clone_from=PdfReader(io.BytesIO(out))).pages[0]
    assert shown.rotation == rotate  # the page is left as it was
    # pypdf's own turn of the page to how it is shown, then the URL's position on it
    shown.transfer_rotation_to_content()
    box = shown.mediabox
    found = []

    def visit(text: str, cm: list[float], tm: list[float], font: object, size: float) -> None:
        if URL in text:
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            found.append((x, y, tm[0] * cm[0] + tm[1] * cm[2], tm[0] * cm[1] + tm[1] * cm[3]))

    shown.extract_text(visitor_text=visit)
    assert len(found) == 1
    x, y, dx, dy = found[0]
    assert dx > 0 and abs(dy) < 1e-6  # horizontal, left to right, as the reader sees it
    assert float(box.left) < x < float(box.right)
    assert float(box.bottom) < y < float(box.bottom) + 0.1 * float(box.height)  # at the bottom
    assert x > float(box.left) + 0.3 * float(box.width)  # towards the right


# --------------------------------------------------------------------------- file names


def test_file_name_fields_and_default_rule() -> None:
    assert [k for k, _ in FILE_NAME_FIELDS] == [
        "cert_no", "name", "serial_no", "equipment_no", "model", "client_name",
        "completed_on", "unique_no",
    ]  # fmt: skip
    assert [label for _, label in FILE_NAME_FIELDS] == [
        "证书编号", "器具名称", "出厂编号", "设备编号", "型号规格", "委托单位名称",
        "完工日期", "唯一性号",
    ]  # fmt: skip
    assert DEFAULT_RULE == ["cert_no"]


VALUES = {
    "cert_no": "JL2026-0001",
    "name": "压力表",
    "serial_no": "SN 42",
    "model": "Y-100",
    "completed_on": date(2026, 3, 9),
}


def test_file_name_joins_the_fields_in_the_rule_order() -> None:
    assert file_name(DEFAULT_RULE, VALUES) == "JL2026-0001.pdf"
    assert file_name(["name", "cert_no", "completed_on"], VALUES) == (
        "压力表_JL2026-0001_2026-03-09.pdf"
    )
    # empty and missing fields, unknown keys and repeats are skipped
    assert file_name(["equipment_no", "name", "bogus", "name", "model"], VALUES) == (
        "压力表_Y-100.pdf"
    )


def test_file_name_never_empty() -> None:
    assert file_name(["equipment_no"], VALUES) == "JL2026-0001.pdf"
    assert file_name([], VALUES) == "JL2026-0001.pdf"
    assert file_name(["name"], {"name": " ... ", "cert_no": "C1"}) == "C1.pdf"
    assert file_name(["name"], {"name": "", "cert_no": ""}) == "certificate.pdf"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('a<b>c:d"e/f\\g|h?i*j', "a_b_c_d_e_f_g_h_i_j.pdf"),
        ("tab\there\nnew\x00nul\x7f", "tab_here_new_nul_.pdf"),
        ("CON", "_CON.pdf"),
        ("con", "_con.pdf"),
        ("nul.txt", "_nul.txt.pdf"),
        ("Com1", "_Com1.pdf"),
        ("LPT9.tar.gz", "_LPT9.tar.gz.pdf"),
        ("COM¹", "_COM¹.pdf"),
        ("CONSOLE", "CONSOLE.pdf"),
        ("trailing dots...", "trailing dots.pdf"),
        ("trailing spaces .  ", "trailing spaces.pdf"),
        ("  leading", "leading.pdf"),
        ("温度计🌡️ ok", "温度计🌡️ ok.pdf"),
        ("\u202eevil\u202c", "_evil_.pdf"),  # bidi override would disguise the name
        ("lone \ud800 surrogate", "lone _ surrogate.pdf"),
    ],
)
def test_file_name_is_safe_on_windows(value: str, expected: str) -> None:
    assert file_name(["name"], {"name": value, "cert_no": "X"}) == expected


def test_file_name_is_cut_to_120_characters_by_code_point() -> None:
    long = file_name(["name"], {"name": "长" * 300})
    assert long == "长" * 120 + ".pdf"
    emoji = file_name(["name"], {"name": "😀" * 300})
    assert emoji == "😀" * 120 + ".pdf"
    emoji.encode("utf-8")  # no half surrogate pair anywhere
    # a cut that lands on dots or spaces drops them
    assert file_name(["name"], {"name": "a" * 118 + " ..." + "b" * 10}) == "a" * 118 + ".pdf"


def test_unique_names_case_insensitively() -> None:
    assert unique_names(["a.pdf", "A.pdf", "a.pdf"]) == ["a.pdf", "A (2).pdf", "a (3).pdf"]
    assert unique_names(["x.pdf", "x (2).pdf", "X.PDF"]) == ["x.pdf", "x (2).pdf", "X (3).PDF"]
    assert unique_names(["b.pdf", "c.pdf"]) == ["b.pdf", "c.pdf"]
    names = unique_names(["长" * 120 + ".pdf"] * 3)
    assert len({n.casefold() for n in names}) == 3
    assert all(len(n) <= 124 for n in names)
    assert names[2].endswith(" (3).pdf")


# --------------------------------------------------------------------------- the zip


def test_write_zip_round_trips(tmp_path: Path) -> None:
    files = []
    for i in range(5):
        path = tmp_path / f"in{i}.pdf"
        path.write_bytes(certificate_pdf(pages=i + 1))
        files.append(path)
    names = unique_names(file_name(["name"], {"name": n, "cert_no": "X"}) for n in ["压力表"] * 5)
    target = tmp_path / "out" / "证书.zip"
    target.parent.mkdir()
    done: list[int] = []
    write_zip(zip(names, files, strict=True), target, progress=done.append)
    assert done == [1, 2, 3, 4, 5]
    assert sorted(p.name for p in target.parent.iterdir()) == ["证书.zip"]  # no .part left
    with zipfile.ZipFile(target) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == names
        for name, path in zip(names, files, strict=True):
            assert zf.read(name) == path.read_bytes()


def test_write_zip_failing_half_way_leaves_nothing(tmp_path: Path) -> None:
    good = tmp_path / "good.pdf"
    good.write_bytes(certificate_pdf())
    target = tmp_path / "out.zip"
    done: list[int] = []
    entries = [("a.pdf", good), ("b.pdf", tmp_path / "missing.pdf"), ("c.pdf", good)]
    with pytest.raises(FileNotFoundError):
        write_zip(entries, target, progress=done.append)
    assert done == [1]
    assert not target.exists()
    assert not target.with_suffix(".part").exists()


def test_write_zip_replaces_an_old_zip_only_when_complete(tmp_path: Path) -> None:
    good = tmp_path / "good.pdf"
    good.write_bytes(certificate_pdf())
    target = tmp_path / "out.zip"
    target.write_bytes(b"the previous zip")
    target.with_suffix(".part").write_bytes(b"left by a killed process")
    with pytest.raises(FileNotFoundError):
        write_zip([("a.pdf", good), ("b.pdf", tmp_path / "missing.pdf")], target)
    assert target.read_bytes() == b"the previous zip"
    write_zip([("a.pdf", good)], target)
    with zipfile.ZipFile(target) as zf:
        assert zf.namelist() == ["a.pdf"]
    assert not target.with_suffix(".part").exists()


@pytest.mark.parametrize("names", [["a.pdf", "A.pdf"], ["dir/a.pdf"], ["..\\a.pdf"], [""]])
def test_write_zip_refuses_unsafe_or_duplicate_names(tmp_path: Path, names: list[str]) -> None:
    good = tmp_path / "good.pdf"
    good.write_bytes(certificate_pdf())
    target = tmp_path / "out.zip"
    with pytest.raises(ValueError):
        write_zip([(n, good) for n in names], target)
    assert not target.exists() and not target.with_suffix(".part").exists()


def test_module_api() -> None:
    # what the routes and jobs build on
    assert certpdf.check_pdf is check_pdf and certpdf.write_zip is write_zip
