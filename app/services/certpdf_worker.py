"""What runs inside the limited process that parses outside PDFs (see ``certpdf``).

pypdf has had many denial-of-service fixes (infinite loops, memory blow-ups, deep
recursion), and an uploaded certificate is hostile until parsed. So pypdf only ever sees
an outside PDF here, in a child process with an address-space limit and a CPU-time limit;
the parent adds a wall-clock timeout and kills the child when it runs over.

The child is ``python -m app.services.certpdf_worker`` (a fresh interpreter, not a fork
of the app, whose threads and event loop a fork would copy mid-use), speaking a small
length-prefixed protocol on its stdin and stdout. This module imports only the standard
library, pypdf and segno, so the child starts in about 0.3 s and holds no app state.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import resource
import select
import struct
import sys
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import segno
from pypdf import PageObject, PdfReader, PdfWriter
from pypdf.errors import LimitReachedError
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    RectangleObject,
)

logger = logging.getLogger(__name__)


class Refusal(StrEnum):
    """Why a PDF is refused; the value is the message shown to the user."""

    NOT_PDF = "不是有效的PDF文件"
    TOO_LARGE = "文件超过20MB"
    TRUNCATED = "PDF文件不完整，可能上传中断"
    ENCRYPTED = "PDF已加密，无法处理"
    UNREADABLE = "PDF文件已损坏，无法读取"
    NO_PAGES = "PDF文件没有页面"
    LIMITS = "PDF文件结构异常，无法处理"


class Refused(Exception):
    """Raised inside the child; travels to the parent as a reply, not as a pickle."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason.value)
        self.reason = reason


# --------------------------------------------------------------------------- operations


def mac_hex(cert_no: str, key: bytes) -> str:
    """HMAC-SHA256 of the certificate number, as written into /CertMac."""
    return hmac.new(key, cert_no.encode("utf-8"), hashlib.sha256).hexdigest()


def _open(data: bytes) -> PdfReader:
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        raise Refused(Refusal.ENCRYPTED)
    return reader


def _first_page_checked(reader: PdfReader) -> tuple[int, PageObject]:
    count = len(reader.pages)
    if count < 1:
        raise Refused(Refusal.NO_PAGES)
    page = reader.pages[0]
    # What stamping touches: the page's box and its content (decoding it here catches a
    # decompression bomb at the check, not later at the stamp).
    _ = page.cropbox
    page.get_contents()
    return count, page


def page_count(data: bytes) -> int:
    """Pages of the PDF, after the checks stamping relies on: a file that passes here
    can be stamped (the clone resolves every object the stamped copy will hold)."""
    reader = _open(data)
    count, _ = _first_page_checked(reader)
    PdfWriter(clone_from=reader)
    return count


# Helvetica's advance widths (per 1000 em) for ASCII 32..126, from the standard AFM.
_HELVETICA_WIDTHS = (
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722,
    722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722,
    667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556,
    556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500,
    500, 334, 260, 334, 584,
)  # fmt: skip

QR_SIDE_PT = 56.0  # the QR symbol itself (about 2 cm), plus its quiet zone around it
QR_QUIET_MODULES = 2  # white margin in modules; the white box keeps the page's ink off it
MARGIN_PT = 12.0  # from the visible page edge
URL_FONT_PT = 5.0
URL_MIN_FONT_PT = 3.0


def text_width(text: str, size: float) -> float:
    """Width of printable-ASCII ``text`` in Helvetica at ``size`` points."""
    return sum(_HELVETICA_WIDTHS[ord(c) - 32] for c in text) * size / 1000


def _pdf_string(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("ascii") + b")"


def _num(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".")


def _visual_to_user(box: RectangleObject, rotate: int) -> tuple[float, float, list[float]]:
    """The page as the reader sees it (width, height) and the ``cm`` matrix taking those
    visual coordinates (origin bottom left, after /Rotate) to the page's user space."""
    x0, y0, x1, y1 = (float(v) for v in (box.left, box.bottom, box.right, box.top))
    w, h = x1 - x0, y1 - y0
    if rotate == 90:  # shown turned clockwise: user +y points right, user +x points down
        return h, w, [0, 1, -1, 0, x1, y0]
    if rotate == 180:
        return w, h, [-1, 0, 0, -1, x1, y1]
    if rotate == 270:
        return h, w, [0, -1, 1, 0, x0, y1]
    return w, h, [1, 0, 0, 1, x0, y0]


def overlay_content(verify_url: str, width: float, height: float) -> bytes:
    """Content stream (in visual coordinates) drawing the QR code of ``verify_url`` in the
    bottom-right corner on a white box, and the URL in small Helvetica to its left."""
    qr = segno.make(verify_url, error="m", micro=False)
    matrix = qr.matrix  # rows of 0/1, top row first, no quiet zone
    n = len(matrix)
    total = n + 2 * QR_QUIET_MODULES
    side = min(QR_SIDE_PT, width / 4, height / 4)  # tiny pages still get the code
    module = side / total
    left = width - MARGIN_PT - side
    bottom = MARGIN_PT
    ops = [
        "q",
        "1 g",
        f"{_num(left)} {_num(bottom)} {_num(side)} {_num(side)} re f",
        # module coordinates from here: one unit a module, origin at the symbol's corner
        f"{_num(module)} 0 0 {_num(module)} {_num(left + QR_QUIET_MODULES * module)} "
        f"{_num(bottom + QR_QUIET_MODULES * module)} cm",
        "0 g",
    ]
    for r, row in enumerate(matrix):
        y = n - 1 - r
        c = 0
        while c < n:  # one rectangle per run of dark modules
            if row[c]:
                start = c
                while c < n and row[c]:
                    c += 1
                ops.append(f"{start} {y} {c - start} 1 re")
            else:
                c += 1
    ops += ["f", "Q"]

    size = URL_FONT_PT
    room = max(left - MARGIN_PT - 4, 0)
    if text_width(verify_url, size) > room:
        size = max(URL_MIN_FONT_PT, size * room / text_width(verify_url, size))
    x = max(MARGIN_PT, left - 4 - text_width(verify_url, size))
    ops += [
        "q",
        "0 g",
        "BT",
        f"/F1 {_num(size)} Tf",
        f"{_num(x)} {_num(bottom)} Td",
    ]
    body = ("\n".join(ops) + "\n").encode("ascii")
    return body + _pdf_string(verify_url) + b" Tj\nET\nQ\n"


def _overlay_page(page: PageObject, verify_url: str) -> PageObject:
    rotate = int(page.rotation) % 360
    width, height, cm = _visual_to_user(page.cropbox, rotate)
    content = (" ".join(_num(v) for v in cm) + " cm\n").encode("ascii")
    content = b"q\n" + content + overlay_content(verify_url, width, height) + b"Q\n"
    box = page.mediabox
    overlay = PageObject.create_blank_page(width=float(box.width), height=float(box.height))
    overlay[NameObject("/MediaBox")] = RectangleObject(list(box))
    stream = DecodedStreamObject()
    stream.set_data(content)
    overlay[NameObject("/Contents")] = stream
    helvetica = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    overlay[NameObject("/Resources")] = DictionaryObject(
        {
            NameObject("/Font"): DictionaryObject({NameObject("/F1"): helvetica}),
            NameObject("/ProcSet"): ArrayObject([NameObject("/PDF"), NameObject("/Text")]),
        }
    )
    return overlay


def stamp(data: bytes, cert_no: str, issuer: str, key: bytes, verify_url: str) -> bytes:
    """The PDF with /CertNo, /Issuer, /CertMac in its metadata and the QR code of
    ``verify_url`` (and the URL) drawn on the first page."""
    reader = _open(data)
    _first_page_checked(reader)
    writer = PdfWriter(clone_from=reader)
    first = writer.pages[0]
    first.merge_page(_overlay_page(first, verify_url))
    # merge_page leaves the page's (original + overlay) content decoded: deflate it again,
    # or a drawing-heavy first page would come back several times its size
    first.compress_content_streams()
    writer.add_metadata({"/CertNo": cert_no, "/Issuer": issuer, "/CertMac": mac_hex(cert_no, key)})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def claim(data: bytes, key: bytes) -> tuple[str, bool] | None:
    """(cert_no, whether /CertMac matches) from the metadata, or None without /CertNo."""
    reader = _open(data)
    info = reader.metadata
    if info is None:
        return None
    cert_no = info.get("/CertNo")
    if not isinstance(cert_no, str) or not cert_no:
        return None
    mac = info.get("/CertMac")
    ok = isinstance(mac, str) and hmac.compare_digest(str(mac), mac_hex(str(cert_no), key))
    return str(cert_no), ok


def _op_page_count(data: bytes, args: dict[str, Any]) -> tuple[Any, bytes]:
    return page_count(data), b""


def _op_stamp(data: bytes, args: dict[str, Any]) -> tuple[Any, bytes]:
    key = bytes.fromhex(args["key"])
    return None, stamp(data, args["cert_no"], args["issuer"], key, args["verify_url"])


def _op_claim(data: bytes, args: dict[str, Any]) -> tuple[Any, bytes]:
    return claim(data, bytes.fromhex(args["key"])), b""


# operation -> fn(pdf bytes, JSON arguments) -> (JSON value, bytes)
OPERATIONS: dict[str, Callable[[bytes, dict[str, Any]], tuple[Any, bytes]]] = {
    "page_count": _op_page_count,
    "stamp": _op_stamp,
    "claim": _op_claim,
}


# --------------------------------------------------------------------------- the wire
# A message is a JSON header and a byte payload, each behind its length:
#   u32 header length, header (UTF-8 JSON), u64 payload length, payload.
# No pickle: the parent reads what a child that parsed hostile data sends back.

MAX_HEADER = 64 * 1024
MAX_PAYLOAD = 256 * 1024 * 1024


class WireError(Exception):
    """The other end closed, ran out of time, or sent something malformed."""


def write_message(fd: int, header: dict[str, Any], payload: bytes = b"") -> None:
    head = json.dumps(header, ensure_ascii=True).encode("ascii")
    view = memoryview(
        b"".join([struct.pack(">I", len(head)), head, struct.pack(">Q", len(payload))])
    )
    for chunk in (view, memoryview(payload)):
        while chunk:
            try:
                n = os.write(fd, chunk)
            except OSError as exc:  # BrokenPipeError: the other end is gone
                raise WireError(str(exc)) from exc
            chunk = chunk[n:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise WireError("timed out")
        try:
            chunk = os.read(fd, min(n - len(buf), 1024 * 1024))
        except OSError as exc:
            raise WireError(str(exc)) from exc
        if not chunk:
            raise WireError("closed")
        buf += chunk
    return bytes(buf)


def read_message(fd: int, deadline: float | None = None) -> tuple[dict[str, Any], bytes]:
    """One message from ``fd``; ``deadline`` is a ``time.monotonic()`` value."""
    (size,) = struct.unpack(">I", _read_exact(fd, 4, deadline))
    if size > MAX_HEADER:
        raise WireError("header too long")
    try:
        header = json.loads(_read_exact(fd, size, deadline))
    except ValueError as exc:
        raise WireError("bad header") from exc
    if not isinstance(header, dict):
        raise WireError("bad header")
    (length,) = struct.unpack(">Q", _read_exact(fd, 8, deadline))
    if length > MAX_PAYLOAD:
        raise WireError("payload too long")
    return header, _read_exact(fd, length, deadline)


# --------------------------------------------------------------------------- the loop


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _limit_cpu(seconds: float) -> None:
    # RLIMIT_CPU counts the process's whole life and the worker is reused: before each
    # call the soft limit moves to "used so far + budget". The hard limit stays where it
    # was, so it can be moved again; the code here is ours, only the data is hostile.
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(_cpu_used() + seconds) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _limit_memory(limit: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _peak_address_space() -> int | None:
    """This process's peak virtual size in bytes (Linux), or None where unknown."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmPeak:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _ran_out(exc: BaseException, memory_bytes: int) -> bool:
    """Whether a failure came from the limits, even when pypdf's recovery code caught the
    MemoryError and raised something else in its place."""
    seen: BaseException | None = exc
    for _ in range(50):
        if seen is None:
            break
        if isinstance(seen, MemoryError | RecursionError | LimitReachedError):
            return True
        seen = seen.__cause__ or seen.__context__
    peak = _peak_address_space()
    return peak is not None and peak >= 0.9 * memory_bytes


def _answer(
    operation: str, data: bytes, args: dict[str, Any], memory_bytes: int
) -> tuple[dict[str, Any], bytes]:
    try:
        value, payload = OPERATIONS[operation](data, args)
        return {"status": "ok", "value": value}, payload
    except Refused as exc:
        return {"status": "refused", "reason": exc.reason.name}, b""
    except Exception as exc:  # noqa: BLE001 - pypdf fails on bad input in every way
        if _ran_out(exc, memory_bytes):
            logger.warning("PDF refused at a limit: %s: %s", type(exc).__name__, exc)
            # after these the process's state is not to be trusted: the parent replaces it
            return {"status": "refused", "reason": Refusal.LIMITS.name, "recycle": True}, b""
        logger.info("PDF refused as unreadable: %s: %s", type(exc).__name__, exc)
        return {"status": "refused", "reason": Refusal.UNREADABLE.name}, b""


def serve(requests: int, replies: int, memory_bytes: int, cpu_seconds: float) -> None:
    """Answer requests on the file descriptors until the parent closes them.

    A request's header is ``{"op": name, "args": {...}}``, its payload the PDF; a reply's
    header ``{"status": "ok", "value": ...}`` (payload: the stamped PDF) or
    ``{"status": "refused", "reason": Refusal name}``, either with ``"recycle": true`` when
    this process should be replaced (it ran into a limit, or grew past half of its
    address space, which Python seldom gives back). Exceeding the CPU limit kills the
    process (SIGXCPU): the parent sees the pipe close.
    """
    _limit_memory(memory_bytes)
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed input warns a lot
    while True:
        try:
            request, data = read_message(requests)
        except WireError:
            return
        _limit_cpu(cpu_seconds)
        args = request.get("args") or {}
        header, payload = _answer(str(request.get("op")), data, args, memory_bytes)
        del data, request, args
        peak = _peak_address_space()
        if peak is not None and peak > memory_bytes // 2:
            header["recycle"] = True
        try:
            write_message(replies, header, payload)
        except WireError:
            return
        if header.get("recycle"):
            return


def main() -> None:
    """``python -m app.services.certpdf_worker MEMORY_BYTES CPU_SECONDS``: serve on stdin
    and stdout. stdout is kept for the replies and fd 1 pointed at stderr, so nothing
    printed by a library can corrupt a reply."""
    memory_bytes, cpu_seconds = int(sys.argv[1]), float(sys.argv[2])
    replies = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(0, replies, memory_bytes, cpu_seconds)


if __name__ == "__main__":
    main()


__all__ = ["Refusal", "WireError", "mac_hex", "read_message", "serve", "write_message"]
