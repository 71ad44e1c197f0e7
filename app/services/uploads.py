"""Uploaded files kept between 【点击上传】 and 【确定】 (器具托管's import, manual ch. 5).

【点击上传】 reads the file and shows what 【确定】 will do; 【确定】 imports that same file,
so the server keeps it meanwhile (the browser sends only a token, and a page without
JavaScript works the same). Kept under ``DATA_DIR/uploads`` as ``<owner>.<token>.xlsx``:

- bounded: one file per owner (a new upload replaces the one before), no file larger than
  the import's own limit (the caller keeps only a file it has read), at most
  :data:`MAX_KEPT` files in all (the oldest go first);
- expiring: :data:`TTL` seconds after the upload the file is refused and swept away;
- single use: :func:`take` moves the file aside before reading it, an atomic rename, so two
  【确定】 at once (a double click, two tabs, two workers) import it once.

``DATA_DIR`` is shared by every process of the app (as for certificates), so the worker
that answers 【确定】 need not be the one that kept the file.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import anyio

from app.clock import wall_now
from app.settings import get_settings

TTL = 30 * 60  # seconds an upload waits for its 【确定】
MAX_KEPT = 200  # files kept at once, all owners together
SUFFIX = ".xlsx"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")
_OWNER = re.compile(r"[a-z0-9-]{1,60}")


def _folder() -> Path:
    folder = get_settings().data_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _age(path: Path) -> float:
    """Seconds since the file was kept (mtime is real time: the wall clock, never shifted)."""
    return wall_now().timestamp() - path.stat().st_mtime


def _sweep(folder: Path, owner: str) -> None:
    """Forget the owner's earlier uploads and every expired one; keep at most MAX_KEPT - 1."""
    kept: list[tuple[float, Path]] = []
    for path in folder.iterdir():
        try:
            if path.name.startswith(owner + ".") or _age(path) > TTL:
                path.unlink(missing_ok=True)
            else:
                kept.append((path.stat().st_mtime, path))
        except FileNotFoundError:  # another request swept or took it meanwhile
            continue
    kept.sort()
    for _, path in kept[: max(0, len(kept) - (MAX_KEPT - 1))]:
        path.unlink(missing_ok=True)


def _keep(owner: str, data: bytes) -> str:
    folder = _folder()
    _sweep(folder, owner)
    token = secrets.token_urlsafe(16)  # 22 characters
    partial = folder / f".{owner}.{token}.part"
    partial.write_bytes(data)
    partial.rename(folder / f"{owner}.{token}{SUFFIX}")  # never seen half-written
    return token


def _take(owner: str, token: str) -> bytes | None:
    if not _TOKEN.fullmatch(token):
        return None
    folder = _folder()
    taken = folder / f".{owner}.{token}.taken-{secrets.token_hex(4)}"
    try:
        os.rename(folder / f"{owner}.{token}{SUFFIX}", taken)
    except FileNotFoundError:  # never kept, replaced, expired and swept, or taken already
        return None
    try:
        if _age(taken) > TTL:
            return None
        return taken.read_bytes()
    finally:
        taken.unlink(missing_ok=True)


async def keep(owner: str, data: bytes) -> str:
    """Keep ``data`` for ``owner`` (e.g. ``instruments-<user id>``); returns its token."""
    if not _OWNER.fullmatch(owner):
        raise ValueError(f"bad owner {owner!r}")
    return await anyio.to_thread.run_sync(_keep, owner, data)


async def take(owner: str, token: str) -> bytes | None:
    """The file ``owner`` kept under ``token``, once; None when there is none (any other
    owner's token, a replaced, expired or already taken upload, a malformed token)."""
    if not _OWNER.fullmatch(owner):
        raise ValueError(f"bad owner {owner!r}")
    return await anyio.to_thread.run_sync(_take, owner, token)
