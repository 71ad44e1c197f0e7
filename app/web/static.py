"""Static files: URLs that carry the content's hash, so browsers may keep them for a year."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from litestar import Request
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# Safe to keep for a year: a changed file gets another URL (static_url).
CACHE = CacheControlHeader(public=True, max_age=365 * 24 * 3600, immutable=True)


@cache
def static_url(name: str) -> str:
    """``/static/name?v=<hash of its content>`` (read once per process)."""
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
    return f"/static/{name}?v={digest}"


def refuse_odd_paths(request: Request) -> None:
    """before_request of the static files: a NUL or control character in the path is a 404
    (the file system would raise on it)."""
    if any(ord(c) < 32 for c in request.url.path):
        raise NotFoundException()
