"""Certificate PDFs: check, stamp and read back (SPEC §6, §11). No tables, no routes.

* :func:`check_pdf` -- page count of an uploaded PDF, or :class:`PdfRefused` with the
  message for the user.
* :func:`stamp` -- the PDF with /CertNo, /Issuer and /CertMac (HMAC-SHA256 of the
  certificate number) in its metadata and a QR code of the verification URL, with the
  URL in small type, in the bottom-right corner of the first page.
* :func:`read_claim` -- the certificate number a PDF claims and whether its MAC holds.
* :func:`sha256_hex` -- the hash stored beside the stamped file (it cannot live inside it).

The three PDF functions block; ``check_pdf_async``, ``stamp_async`` and
``read_claim_async`` run them on a worker thread (anyio) for handlers and jobs.

pypdf never parses an outside PDF in this process: each call goes to a small pool of
child processes (``certpdf_worker``) that run with an address-space limit (512 MB) and a
CPU-time limit (10 s a call); a call that runs past the wall-clock timeout (15 s) has its
child killed. Whatever goes wrong in there -- a crash, a kill, a MemoryError, a
RecursionError -- comes back as ``PdfRefused("PDF文件结构异常，无法处理")``, and the child is
replaced. A child is reused for many calls (starting one costs ~0.3 s, a call ~1 ms
beyond pypdf's own work); ``pool().warm_up()`` starts one ahead of the first upload.

The zip side (file names, ``write_zip``) lives in ``certzip`` and is re-exported here.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from app import deadline
from app.services import certpdf_worker
from app.services.certpdf_worker import (
    Refusal,
    WireError,
    mac_hex,
    read_message,
    write_message,
)
from app.services.certzip import (
    DEFAULT_RULE,
    FILE_NAME_FIELDS,
    file_name,
    unique_names,
    write_zip,
)
from app.settings import get_settings

__all__ = [
    "DEFAULT_RULE",
    "FILE_NAME_FIELDS",
    "MAX_PDF_BYTES",
    "Claim",
    "Limits",
    "PdfRefused",
    "Refusal",
    "WorkerPool",
    "check_pdf",
    "check_pdf_async",
    "default_key",
    "file_name",
    "mac_hex",
    "read_claim",
    "read_claim_async",
    "sha256_hex",
    "stamp",
    "stamp_async",
    "unique_names",
    "write_zip",
]

MAX_PDF_BYTES = 20 * 1024 * 1024
WALL_SECONDS_PER_CALL = 15.0
POOL_SIZE = 2
CALLS_PER_WORKER = 500  # then the child is replaced: no slow leak outlives it


class PdfRefused(Exception):
    """The PDF cannot be accepted; ``message`` is for the user, ``reason`` for code."""

    def __init__(self, message: str, reason: Refusal | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason

    @classmethod
    def because(cls, reason: Refusal) -> PdfRefused:
        return cls(reason.value, reason)


@dataclass(frozen=True, slots=True)
class Claim:
    """What a PDF's metadata claims: its certificate number, and whether /CertMac is the
    HMAC we would have written for that number (False: forged or another key)."""

    cert_no: str
    mac_ok: bool


# --------------------------------------------------------------------------- the pool


ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Limits:
    """What one child may use: address space (bytes), and CPU seconds per call."""

    memory_bytes: int = 512 * 1024 * 1024  # pypdf needs a few times a 20 MB file
    cpu_seconds: float = 10.0


class _Child:
    """One ``python -m app.services.certpdf_worker`` and its pipes."""

    def __init__(self, limits: Limits) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                certpdf_worker.__name__,
                str(limits.memory_bytes),
                str(limits.cpu_seconds),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,  # "-m" puts the working directory first on sys.path: this checkout
            bufsize=0,
            # Its own session: a Ctrl-C meant for the server does not kill a call half way;
            # the child exits when its stdin closes, with the parent.
            start_new_session=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.requests = self.proc.stdin.fileno()
        self.replies = self.proc.stdout.fileno()
        self.calls = 0

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, operation: str, args: dict[str, Any], data: bytes) -> None:
        write_message(self.requests, {"op": operation, "args": args}, data)

    def receive(self, timeout: float) -> tuple[dict[str, Any], bytes]:
        return read_message(self.replies, time.monotonic() + timeout)

    def stop(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()  # an idle child exits on EOF
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class WorkerPool:
    """Up to ``size`` limited children, reused across calls; thread-safe.

    A call takes an idle child (or starts one), sends it the request and waits at most
    ``timeout`` seconds. A child that dies, overruns or asks to be recycled is stopped and
    the next call starts a fresh one.
    """

    def __init__(
        self,
        size: int = POOL_SIZE,
        timeout: float = WALL_SECONDS_PER_CALL,
        limits: Limits | None = None,
        calls_per_worker: int = CALLS_PER_WORKER,
    ) -> None:
        self.timeout = timeout
        self.limits = limits or Limits()
        self.calls_per_worker = calls_per_worker
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[_Child] = []
        self._closed = False

    def call(self, operation: str, data: bytes, **args: Any) -> tuple[Any, bytes]:
        """Run ``certpdf_worker.OPERATIONS[operation](data, args)`` in a child; returns its
        (JSON value, bytes) or raises :class:`PdfRefused`."""
        with self._slots:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the PDF worker pool is shut down")
                child = self._idle.pop() if self._idle else None
            if child is not None and not child.alive():
                child.stop()
                child = None
            child = child or _Child(self.limits)
            try:
                try:
                    child.send(operation, args, data)
                except WireError:
                    # It died before reading this request (the child reads a request
                    # whole before it parses it): not this file's fault, one fresh try.
                    child.stop()
                    child = _Child(self.limits)
                    child.send(operation, args, data)
                header, payload = child.receive(self.timeout)
            except WireError:  # killed by its limits, crashed, or out of time
                child.stop()
                raise PdfRefused.because(Refusal.LIMITS) from None
            except BaseException:
                child.stop()
                raise
            child.calls += 1
            if header.get("recycle") or child.calls >= self.calls_per_worker:
                child.stop()
            else:
                with self._lock:
                    if self._closed:
                        child.stop()
                    else:
                        self._idle.append(child)
        if header.get("status") == "ok":
            return header.get("value"), payload
        reason = header.get("reason")
        raise PdfRefused.because(
            Refusal[reason] if reason in Refusal.__members__ else Refusal.UNREADABLE
        )

    def warm_up(self) -> None:
        """Start one child now (e.g. in the app's lifespan), so the first upload does not
        wait for an interpreter to start."""
        with self._lock:
            if not self._idle and not self._closed:
                self._idle.append(_Child(self.limits))

    def pids(self) -> list[int]:
        """Process ids of the idle children (for diagnostics and tests)."""
        with self._lock:
            return [child.proc.pid for child in self._idle]

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for child in idle:
            child.stop()


_pool: WorkerPool | None = None
_pool_lock = threading.Lock()


def pool() -> WorkerPool:
    """The process-wide pool, created on first use and shut down at exit."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = WorkerPool()
            atexit.register(_pool.shutdown)
        return _pool


# --------------------------------------------------------------------------- the API


def sha256_hex(data: bytes) -> str:
    """SHA-256 of the bytes, lower-case hex."""
    return hashlib.sha256(data).hexdigest()


def default_key() -> bytes:
    """The certificate MAC key: derived from SECRET_KEY, not SECRET_KEY itself, so a MAC
    printed into a certificate can never serve as a CSRF token or any other signature
    made with the same secret."""
    secret = get_settings().secret_key.encode("utf-8")
    return hmac.new(secret, b"jlkf certificate mac v1", hashlib.sha256).digest()


def _precheck(data: bytes, *, complete: bool) -> None:
    """What is decided without parsing: type, size, and (for uploads) an end marker."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("PDF data must be bytes")
    if len(data) > MAX_PDF_BYTES:
        raise PdfRefused.because(Refusal.TOO_LARGE)
    if not bytes(data[:5]) == b"%PDF-":
        raise PdfRefused.because(Refusal.NOT_PDF)
    # A PDF ends with %%EOF (writers may add a little after it). Without one the upload
    # was cut off; pypdf would often "repair" it and report the pages it still found.
    if complete and b"%%EOF" not in bytes(data[-1024:]):
        raise PdfRefused.because(Refusal.TRUNCATED)


def check_pdf(data: bytes) -> int:
    """The number of pages of an uploaded PDF.

    Raises :class:`PdfRefused` when it is empty or not a PDF, over 20 MB, cut off,
    encrypted, unreadable, has no pages, or breaks the parser's limits.
    """
    _precheck(data, complete=True)
    value, _ = pool().call("page_count", bytes(data))
    return int(value)


def stamp(data: bytes, *, cert_no: str, issuer: str, key: bytes, verify_url: str) -> bytes:
    """The PDF stamped for authenticity (see the module docstring); pass
    ``key=default_key()`` so that :func:`read_claim` can verify it.

    ``verify_url`` must be printable ASCII (it is drawn in Helvetica); ``cert_no`` must not
    be empty. Raises :class:`PdfRefused` as :func:`check_pdf` does.
    """
    if not cert_no:
        raise ValueError("cert_no must not be empty")
    if not verify_url or not all(" " <= c <= "~" for c in verify_url):
        raise ValueError("verify_url must be printable ASCII")
    _precheck(data, complete=True)
    _, stamped = pool().call(
        "stamp", bytes(data), cert_no=cert_no, issuer=issuer, key=key.hex(), verify_url=verify_url
    )
    return stamped


def read_claim(data: bytes, *, key: bytes | None = None) -> Claim | None:
    """The claim in a PDF's metadata, or None when it names no certificate.

    ``key`` defaults to :func:`default_key`. The file may have been altered (bytes added,
    pages changed): that is for the caller to tell from its hash; this only reads what the
    file says. Raises :class:`PdfRefused` for what is not a readable PDF.
    """
    _precheck(data, complete=False)
    found, _ = pool().call("claim", bytes(data), key=(default_key() if key is None else key).hex())
    if found is None:
        return None
    cert_no, mac_ok = found
    return Claim(cert_no=str(cert_no), mac_ok=mac_ok is True)


T = TypeVar("T")


async def _off_loop(fn: Callable[[], T]) -> T:
    # Not against the request's deadline (app/deadline.py): each call has its own limits
    # (WALL_SECONDS_PER_CALL, the child's CPU limit) and holds no database connection.
    with deadline.paused():
        return await anyio.to_thread.run_sync(fn)


async def check_pdf_async(data: bytes) -> int:
    """:func:`check_pdf` on a worker thread."""
    return await _off_loop(partial(check_pdf, data))


async def stamp_async(
    data: bytes, *, cert_no: str, issuer: str, key: bytes, verify_url: str
) -> bytes:
    """:func:`stamp` on a worker thread."""
    return await _off_loop(
        partial(stamp, data, cert_no=cert_no, issuer=issuer, key=key, verify_url=verify_url)
    )


async def read_claim_async(data: bytes, *, key: bytes | None = None) -> Claim | None:
    """:func:`read_claim` on a worker thread."""
    return await _off_loop(partial(read_claim, data, key=key))
