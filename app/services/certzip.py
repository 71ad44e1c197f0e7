"""The certificate download (SPEC §6 【下载证书】, 【自定义文件名】): file names by the
user's rule, safe on Windows and unique, and the zip written file by file.

Pure functions; no tables. ``certpdf`` re-exports everything here.
"""

from __future__ import annotations

import os
import shutil
import unicodedata
import zipfile
from collections.abc import Callable, Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_RULE",
    "FILE_NAME_FIELDS",
    "MAX_NAME_CHARS",
    "ZIP_COMPRESSION",
    "file_name",
    "unique_names",
    "write_zip",
]

# (key, label) in the order 【自定义文件名】 lists them as 可选名称.
FILE_NAME_FIELDS: tuple[tuple[str, str], ...] = (
    ("cert_no", "证书编号"),
    ("name", "器具名称"),
    ("serial_no", "出厂编号"),
    ("equipment_no", "设备编号"),
    ("model", "型号规格"),
    ("client_name", "委托单位名称"),
    ("completed_on", "完工日期"),
    ("unique_no", "唯一性号"),
)
DEFAULT_RULE: list[str] = ["cert_no"]
MAX_NAME_CHARS = 120  # before ".pdf"; leaves room for the folder the zip is unpacked in
FALLBACK_NAME = "certificate"

_KNOWN = frozenset(key for key, _ in FILE_NAME_FIELDS)
_FORBIDDEN = frozenset('<>:"/\\|?*')
# Windows refuses these as a file's name, whatever follows the first dot ("nul.txt").
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"{p}{d}" for p in ("COM", "LPT") for d in "0123456789\u00b9\u00b2\u00b3"]
)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _clean(text: str) -> str:
    """NFC, with every character Windows or a zip tool would choke on turned into "_":
    the reserved ``<>:"/\\|?*``, control characters, lone surrogates, and the other
    invisible format characters (bidi overrides could disguise a name)."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        category = unicodedata.category(ch)
        if ch in _FORBIDDEN or category in ("Cc", "Cs") or (category == "Cf" and ch != "\u200d"):
            out.append("_")
        elif category.startswith("Z"):  # any space or line separator: a plain space
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def _is_reserved(stem: str) -> bool:
    return stem.split(".", 1)[0].rstrip(" ").upper() in _RESERVED


def _fit(base: str, limit: int = MAX_NAME_CHARS) -> str:
    """``base`` cut to ``limit`` characters, with no trailing dots or spaces, and not a
    reserved device name. Python strings hold code points, so a cut never splits one."""
    base = base.strip(" ")[:limit].rstrip(". ")
    if base and _is_reserved(base):
        base = ("_" + base)[:limit].rstrip(". ")
    return base


def file_name(rule: list[str], values: dict[str, Any]) -> str:
    """The zip entry name for one certificate: the fields named by ``rule`` joined with
    "_", plus ".pdf".

    Unknown keys in ``rule`` and empty values are skipped; dates are written
    ``YYYY-MM-DD``. The result is safe as a Windows file name (see :func:`_clean` and
    :func:`_fit`) and at most ``MAX_NAME_CHARS`` characters before ".pdf"; when nothing
    is left the certificate number is used, then ``certificate``.
    """
    seen: set[str] = set()
    parts = []
    for key in rule:
        if key in _KNOWN and key not in seen:
            seen.add(key)
            part = _clean(_text(values.get(key))).strip(" ")
            if part:
                parts.append(part)
    base = _fit("_".join(parts))
    if not base:
        base = _fit(_clean(_text(values.get("cert_no"))))
    return (base or FALLBACK_NAME) + ".pdf"


def unique_names(names: Iterable[str]) -> list[str]:
    """The names in order, with " (2)", " (3)", ... before the extension where a name was
    already taken, compared case-insensitively (as Windows and macOS do)."""
    taken: set[str] = set()
    out = []
    for name in names:
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        ext = dot + ext
        candidate = name
        n = 1
        while unicodedata.normalize("NFC", candidate).casefold() in taken:
            n += 1
            suffix = f" ({n})"
            candidate = _fit(stem, MAX_NAME_CHARS - len(suffix)) + suffix + ext
        taken.add(unicodedata.normalize("NFC", candidate).casefold())
        out.append(candidate)
    return out


# PDFs are compressed already: deflating them again gains ~1 % at several times the CPU
# (bench/certificates.py measures both), so entries are stored as they are.
ZIP_COMPRESSION = zipfile.ZIP_STORED
_CHUNK = 1024 * 1024


def write_zip(
    entries: Iterable[tuple[str, Path]],
    target: Path,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write the files ``(name in the zip, path)`` into the zip ``target``.

    Each file is copied in 1 MB chunks, so memory stays flat however many and however
    big. The zip is written to ``target.with_suffix(".part")`` and renamed to ``target``
    only when complete (after fsync): a killed process never leaves a partial zip under
    the final name. On an error the ``.part`` file is removed and the error re-raised.
    ``progress(n)`` is called after each file with the number written so far.

    Names must be unique (case-insensitively; see :func:`unique_names`) and plain file
    names: a duplicate, an empty name or one with a path separator raises ValueError.
    """
    target = Path(target)
    part = target.with_suffix(".part")
    seen: set[str] = set()
    try:
        with zipfile.ZipFile(part, "w", compression=ZIP_COMPRESSION, allowZip64=True) as zf:
            for done, (name, path) in enumerate(entries, start=1):
                folded = unicodedata.normalize("NFC", name).casefold()
                if not name or "/" in name or "\\" in name or name in (".", ".."):
                    raise ValueError(f"not a plain file name: {name!r}")
                if folded in seen:
                    raise ValueError(f"duplicate name in the zip: {name!r}")
                seen.add(folded)
                info = zipfile.ZipInfo.from_file(path, arcname=name, strict_timestamps=False)
                info.compress_type = ZIP_COMPRESSION
                with open(path, "rb") as src, zf.open(info, "w") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
                if progress is not None:
                    progress(done)
        with open(part, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
