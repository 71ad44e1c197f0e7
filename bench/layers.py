"""Where a page's time goes, by layer: a py-spy sampling profile of the app (or the floor)
under wrk, folded by the package each sample's innermost frame belongs to.

    .venv/bin/python bench/layers.py --keep-db-of-booking ... (see bench/README.md)

Used by ``bench/booking.py --layers``: needs py-spy (``pip install --target /tmp/pytools
py-spy``; found on PATH or in /tmp/pytools/bin). Own time per layer (the leaf frame's
package: litestar, piccolo, jinja2 + markupsafe, asyncpg, redis, uvicorn + httptools,
msgspec, the app, the templates, the standard library, C code) and the app's functions with
the time spent under them (inclusive).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

LAYERS = (
    ("templates", ("/app/templates/", "/app/partials/")),
    ("app", ("/app/",)),
    ("gzip", ("/gzip_facade.py", "/compression/middleware.py")),
    ("litestar", ("/litestar/", "/litestar_htmx/")),
    ("piccolo", ("/piccolo/",)),
    ("jinja2+markupsafe", ("/jinja2/", "/markupsafe/")),
    ("asyncpg", ("/asyncpg/",)),
    ("redis", ("/redis/",)),
    ("uvicorn+httptools", ("/uvicorn/", "/httptools/")),
    ("msgspec", ("/msgspec/",)),
    ("floor", ("/floor.py",)),
    ("asyncio", ("/asyncio/",)),
)
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]*)(?::\d+)?\)$")


def py_spy() -> str | None:
    return shutil.which("py-spy") or (
        "/tmp/pytools/bin/py-spy" if Path("/tmp/pytools/bin/py-spy").exists() else None
    )


def layer_of(frame: str) -> str:
    """py-spy names files relative to their sys.path entry (``litestar/app.py``)."""
    m = FRAME.match(frame)
    where = "/" + (m.group("file") if m else frame).lstrip("/")
    func = m.group("func") if m else frame
    for name, marks in LAYERS:
        if any(mark in where or mark in func for mark in marks):
            return name
    top = where.strip("/").split("/", 1)[0].removesuffix(".py")
    if top in sys.stdlib_module_names or "<frozen" in where:
        return "stdlib"
    return "other"


def record(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` for ``seconds`` (CPU samples only) into ``out`` (raw)."""
    spy = py_spy()
    assert spy, "py-spy not found"
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--duration", str(round(seconds)), "--rate", "250",
         "--format", "raw", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def fold(raw: Path) -> tuple[Counter[str], Counter[str], Counter[str], int]:
    """(own samples per layer, inclusive samples per app function, own samples per
    function, all samples)."""
    own: Counter[str] = Counter()
    app: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[layer_of(frames[-1])] += n
        leaf[frames[-1]] += n
        seen = set()
        for f in frames:
            m = FRAME.match(f)
            where = "/" + m.group("file").lstrip("/") if m else ""
            if m and "/app/" in where and layer_of(f) == "app":
                name = f"{m.group('func')} ({where.split('/app/', 1)[1]})"
                if name not in seen:
                    seen.add(name)
                    app[name] += n
    return own, app, leaf, total


def side_by_side(title: str, app: Path, app_ms: float, floor: Path, floor_ms: float) -> list[str]:
    """Own time by layer of the app and its floor, in CPU ms per request (each sample's share
    of the measured server CPU per request)."""
    a, _, _, a_total = fold(app)
    f, _, _, f_total = fold(floor)
    if not a_total or not f_total:
        return [f"{title}: no samples"]
    lines = [f"{title}: CPU ms per request by layer (own time)   app   floor   app-floor"]
    for name in sorted(set(a) | set(f), key=lambda k: -(a[k] / a_total * app_ms)):
        am, fm = a[name] / a_total * app_ms, f[name] / f_total * floor_ms
        lines.append(f"    {name:<44} {am:5.2f}   {fm:5.2f}   {am - fm:+6.2f}")
    lines.append(f"    {'all':<44} {app_ms:5.2f}   {floor_ms:5.2f}   {app_ms - floor_ms:+6.2f}")
    return lines


def report(title: str, raw: Path, top: int = 12) -> list[str]:
    own, app, leaf, total = fold(raw)
    if not total:
        return [f"{title}: no samples"]
    lines = [f"{title}: {total} samples; own time by layer:"]
    lines += [f"    {name:<20} {n / total * 100:5.1f} %" for name, n in own.most_common()]
    lines.append("  app functions, time spent under each (inclusive):")
    lines += [f"    {n / total * 100:5.1f} %  {name}" for name, n in app.most_common(top)]
    lines.append("  functions by own time:")
    lines += [f"    {n / total * 100:5.1f} %  {name}" for name, n in leaf.most_common(top)]
    return lines
