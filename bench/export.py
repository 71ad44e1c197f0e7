"""【导出器具】 of 100,000 register rows: the app end to end against a bare openpyxl export.

    .venv/bin/python bench/export.py            (about 2-3 minutes on the 2-core machine)

What it does, in order:

1. Re-creates its own PostgreSQL database ``jlkf_bench_export`` (127.0.0.1:5432, trust auth,
   via asyncpg on db ``postgres``; ``test*`` and ``jlkf_bench`` are never touched) and
   migrates it with ``python -m app.cli setup``.
2. Seeds with COPY: one approved enterprise, its enterprise_admin ``export_admin`` (Argon2
   hash from ``app.security.passwords.hash_password``) and ``--rows`` (100,000) register rows with
   realistic Chinese text, some dates null and some text starting with ``=`` / ``+`` / ``-``
   / ``@`` (the formula guard's business).
3. (a) The app: ``uvicorn app.asgi:app --workers 1`` (DB_POOL=1, SCHEDULER=0, sessions in the
   database), logs in with httpx and streams ``GET /instruments/export.xlsx`` to a file, while
   a thread samples the VmRSS of the server and of its export child (the app writes the
   file in a child process) every 20 ms: baseline just before, peak during, and what is
   still held afterwards.  Done ``--app-runs`` times (the first run is the figure; later
   ones show whether memory is kept between exports, and run 2 also times ``GET /healthz``
   every 100 ms to show what an export does to the other requests of the single worker,
   against 10 s of the same while idle: p50 / p99 / max and their ratios).
   The file is then checked cell by cell against the database: 100,001 rows, the header
   labels, dates as real dates, formula-looking text as string cells with the quote prefix.
   (b) The bare baseline, each in a fresh subprocess of this script sampled the same way:
   asyncpg fetches the same rows (same query, same order) as tuples and an
   ``openpyxl.Workbook(write_only=True)`` appends the plain values to a file -- once with all
   100,000 rows fetched up front, once fetched in 2,000-row keyset batches like the app
   (the fair comparison for memory).
4. Prints one table (seconds, baseline / peak / growth of RSS, ratios app ÷ bare), the
   /healthz table (idle, during the export, ratio), and flags the app when its peak growth
   beyond a fresh interpreter exceeds ``--flag-factor`` (2) × the batched bare variant.

Every process it starts runs in its own session and is stopped on exit, Ctrl-C included;
everything listens on and connects to 127.0.0.1 only.  ``--keep-db`` leaves the database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from _harness import (
    CLK_TCK,
    PY,
    ROOT,
    Procs,
    Server,
    app_env,
    copy_accounts,
    database_url,
    fix_sequences,
    log,
    migrate,
    print_table,
    proc_jiffies,
    recreate_database,
    run_cleanly,
    start_uvicorn,
)
from _harness import login as form_login

from app.enums import EnterpriseStatus  # noqa: E402

DB_NAME = "jlkf_bench_export"
DATABASE_URL = database_url(DB_NAME)
SECRET_KEY = "bench-export-secret-key-fixed-not-for-production-0123456789"
USERNAME = "export_admin"
PASSWORD = "Export-Pass-2026!"
ENTERPRISE_ID = 1
USER_ID = 100  # the platform admin made by app.cli setup takes id 1
SAMPLE_EVERY = 0.02  # seconds between VmRSS samples
MB = 1024 * 1024

# The register's columns in export order (app.services.instrument_xlsx.REGISTER_COLUMNS);
# the bare child does not import the app, so they are spelled out and checked in the parent.
KEYS = (
    "name", "equipment_no", "serial_no", "model", "measuring_range", "accuracy_class",
    "supply_voltage", "manufacturer", "verification_requirement", "certificate_type",
    "quantity", "remark", "cycle_months", "last_verified_on", "valid_until",
)  # fmt: skip
DATE_KEYS = ("last_verified_on", "valid_until")
INT_KEYS = ("quantity", "cycle_months")
EXPORT_SQL = (
    f"SELECT id, {', '.join(KEYS)} FROM instrument "
    "WHERE enterprise = ANY($1::int[]) AND id > $2 ORDER BY id LIMIT $3"
)


# ------------------------------------------------------------------------------ processes


# Its uvicorn gets a second SIGINT after 3 s: it then stops without finishing an export.
PROCS = Procs(stop_timeout=10, second_interrupt_after=3)


# ------------------------------------------------------------------------------ memory


def rss_bytes(pid: int) -> int:
    """VmRSS of ``pid`` in bytes (0 once the process is gone)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` (all its threads) so far, in seconds."""
    return proc_jiffies(pid) / CLK_TCK


def tree_cpu_seconds(pid: int) -> float:
    """CPU of ``pid`` plus that of its children it has waited for (the app's export child
    exits and is reaped before the response ends), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in parts[11:15]) / CLK_TCK  # utime stime cutime cstime
    except (OSError, IndexError, ValueError):
        return 0.0


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (the app's export child), from /proc."""
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                kids = [int(x) for x in task.read_text().split()]
            except (OSError, ValueError):
                continue
            found += kids
            todo += kids
    return found


def load_note() -> float:
    """The 1-minute load average now (the machine may be shared)."""
    return os.getloadavg()[0]


def baseline_rss(pid: int, seconds: float = 0.4) -> int:
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        samples.append(rss_bytes(pid))
        time.sleep(SAMPLE_EVERY)
    return int(statistics.median(samples))


class RssSampler:
    """Samples VmRSS of one process and of the processes below it every 20 ms from a
    thread; keeps the peak of the sum, and of the processes below alone."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self.children_peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = rss_bytes(self.pid)
            if rss:
                below = sum(rss_bytes(child) for child in descendants(self.pid))
                self.peak = max(self.peak, rss + below)
                self.children_peak = max(self.children_peak, below)
                self.samples += 1
            self._stop.wait(SAMPLE_EVERY)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        rss = rss_bytes(self.pid)  # one last look
        self.peak = max(self.peak, rss)


@dataclass
class Measure:
    label: str
    seconds: float
    cpu: float  # CPU seconds the measured process used
    base: int  # RSS before, bytes
    peak: int  # RSS peak during, bytes
    after: int  # RSS after (0 for a child that has exited)
    rows: int
    note: str = ""
    children_peak: int = 0  # the app's export child (part of peak)

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.base)


# ------------------------------------------------------------------------------ database


def export_env(tmp: Path) -> dict[str, str]:
    return app_env(
        DATABASE_URL,
        SECRET_KEY,
        tmp / "data",
        drop=("REDIS_URL", "DATABASE_URL"),
        SCHEDULER="0",
        TMPDIR=str(tmp),  # openpyxl's write-only temp sheets land here, cleaned with tmp
    )


NAMES = (
    ("数字多用表", "34465A", "DCV 0～1000 V", "6½ 位", "AC 220 V", "是德科技"),
    ("双金属温度计", "WSS-411", "-40～160 ℃", "1.5级", "/", "上海自动化仪表有限公司"),
    ("弹簧管压力表", "Y-100", "0～1.6 MPa", "1.6级", "/", "上海自动化仪表有限公司"),
    ("电子天平", "ME204E", "0～220 g", "I级 e=1 mg", "AC 220 V", "梅特勒-托利多"),
    ("数显游标卡尺", "0-150mm", "0～150 mm", "±0.03 mm", "DC 1.5 V（纽扣电池）", "桂林广陆"),
    ("外径千分尺", "0-25mm", "0～25 mm", "±4 μm", "", "哈尔滨量具刃具集团"),
    ("数字示波器", "TBS1102C", "100 MHz", "±3%", "AC 220 V", "泰克科技"),
    ("钳形电流表", "MS2108A", "AC 0～400 A", "±(2.5%+5)", "DC 9 V", "华谊仪表"),
    ("电磁流量计", "LDG-50", "0.5～50 m³/h", "0.5级", "AC 220 V", "开封仪表厂"),
    ("单相电子式电能表", "DDS666", "5(60) A", "1级", "AC 220 V", "正泰仪器仪表"),
    ("电子秒表", "PC396", "0～10 h", "±0.5 s/d", "DC 1.5 V", "深圳天福"),
    ("不锈钢标准砝码", "M1 1kg", "1 kg", "M1等级", "", "上海第二天平仪器厂"),
    ("自动安平水准仪", "DSZ2", "—", "±1.5 mm/km", "", "苏州一光"),
    ("洛氏硬度计", "HR-150A", "20～88 HRA", "±1.5 HR", "", "莱州华银试验仪器"),
    ("多功能声级计", "AWA5688", "28～133 dB(A)", "2级", "DC 6 V", "杭州爱华仪器"),
    ("pH计", "PHS-3C", "pH 0～14", "0.01级", "AC 220 V", "上海雷磁"),
    ("绝缘电阻表", "ZC25-4", "0～1000 MΩ", "10级", "", "上海第六电表厂"),
    ("接地电阻测试仪", "ZC29B-2", "0～1000 Ω", "3级", "", "上海第六电表厂"),
    ("红外测温仪", "MT4", "-18～275 ℃", "±2 ℃", "DC 9 V", "福禄克"),
    ("预置式扭矩扳手", "NB-60", "10～60 N·m", "±4%", "", "东日技研"),
)  # fmt: skip
REQUIREMENTS = (
    "",
    "",
    "依据 JJG 52-2013《弹性元件式一般压力表、压力真空表和真空表》检定",
    "校准点：0、25%、50%、75%、100% 量程",
    "出具带 CNAS 标识的校准证书",
    "需现场检定，联系人：设备科 李工",
)
REMARKS = (
    "",
    "",
    "",
    "附测试线一副",
    "仪器外壳有轻微划痕，不影响使用",
    "使用部门：质检部 三楼理化实验室",
    "-20 ℃ 以下环境使用，注意防冻",  # starts with "-": formula guard
    "+ 配件盒一只（含说明书）",  # "+": formula guard
    "@仓库管理员 请于月底前送检",  # "@": formula guard
    "=备用器具，勿外借",  # "=": formula guard
)
CERTS = ("检定证书", "检定证书", "校准证书", "检测报告")
SERIAL_PREFIX = ("MY", "SN", "", "A", "CN", "")


def instrument_rows(n: int, enterprise: int, seed: int = 20260511) -> list[tuple[Any, ...]]:
    """``n`` register rows, deterministic; every (serial_no, model, name) is unique."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    start = date(2023, 1, 1)
    rows = []
    for i in range(1, n + 1):
        name, model, rng_text, acc, volt, maker = NAMES[i % len(NAMES)]
        if i % 50 == 0:
            name = f"={name}（备用）"  # a formula-looking name
        prefix = SERIAL_PREFIX[i % len(SERIAL_PREFIX)]
        serial = f"{i:010d}" if prefix == "" else f"{prefix}{rng.randrange(10**4):04d}{i:06d}"
        equipment = f"SB-{2015 + i % 10}-{i:06d}"
        if i % 997 == 0:
            equipment = f'=HYPERLINK("http://example.invalid/{i}","点击")'  # DDE-style
        cycle = rng.choice((12, 12, 12, 6, 24, None))
        last = None if rng.random() < 0.15 else start + timedelta(days=rng.randrange(1095))
        valid = None
        if last is not None and cycle is not None:
            valid = _add_months(last, cycle) - timedelta(days=1)
        elif rng.random() < 0.5:
            valid = start + timedelta(days=rng.randrange(1500))
        rows.append(
            (
                i, enterprise, name, equipment, serial, model, rng_text, acc, volt, maker,
                REQUIREMENTS[i % len(REQUIREMENTS)], CERTS[i % len(CERTS)],
                1 if i % 7 else rng.randrange(2, 11), REMARKS[i % len(REMARKS)], cycle, last,
                valid, now, now,
            )
        )  # fmt: skip
    return rows


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    for day in (d.day, 30, 29, 28):
        try:
            return date(year, month, day)
        except ValueError:
            continue
    raise AssertionError


async def seed(n: int) -> None:
    from app.security.passwords import (
        hash_password,  # here, not at the top: the bare child imports us
    )

    now = datetime.now(UTC)
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await copy_accounts(
            conn,
            [
                (
                    ENTERPRISE_ID, "南京测试仪表有限公司", "91320100MA1XYZ0001",
                    "南京市江宁区天元中路1号", "王五", "13912345678",
                    EnterpriseStatus.APPROVED.value, "", False, "",
                    None,
                    now - timedelta(days=800), now - timedelta(days=799),
                )
            ],
            [
                (
                    USER_ID, USERNAME, hash_password(PASSWORD), "王五", "13912345678",
                    ENTERPRISE_ID, "enterprise_admin", True, now - timedelta(days=800),
                )
            ],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "instrument",
            records=instrument_rows(n, ENTERPRISE_ID),
            columns=["id", "enterprise", *KEYS, "created_at", "updated_at"],
        )
        await fix_sequences(conn, ("enterprise", "app_user", "instrument"))
        await conn.execute("VACUUM ANALYZE enterprise, app_user, instrument")
        count = await conn.fetchval(
            "SELECT count(*) FROM instrument WHERE enterprise = $1", ENTERPRISE_ID
        )
        if count != n:
            raise SystemExit(f"seeded {count} instruments, expected {n}")
    finally:
        await conn.close()


async def db_rows(n: int) -> list[tuple[Any, ...]]:
    """The register as the export should show it, in id order (for the check)."""
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        recs = await conn.fetch(EXPORT_SQL, [ENTERPRISE_ID], 0, n + 1)
        return [tuple(r)[1:] for r in recs]
    finally:
        await conn.close()


# ------------------------------------------------------------------------------ the app


def start_app(env: dict[str, str], tmp: Path) -> Server:
    flags = ["--workers", "1", "--host", "127.0.0.1", "--no-access-log", "--log-level", "warning"]
    return start_uvicorn(PROCS, "app", ["app.asgi:app"], flags, env, tmp)


def server_pid(srv: Server) -> int:
    """The process that serves: with ``--workers 1`` uvicorn serves in the process started."""
    return srv.proc.pid


def login(base: str) -> Any:
    client, _csrf = form_login(base, USERNAME, PASSWORD, timeout=300)
    return client


class Prober:
    """GET /healthz every 100 ms on its own connection: how the export slows other requests."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="healthz-probe", daemon=True)

    def _run(self) -> None:
        import httpx

        with httpx.Client(base_url=self.base, timeout=30) as c:
            while not self._stop.is_set():
                t = time.perf_counter()
                c.get("/healthz")
                self.latencies.append(time.perf_counter() - t)
                self._stop.wait(0.1)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def percentiles(self) -> tuple[float, float, float, int]:
        """p50, p99 and max in ms, and the number of requests."""
        ms = sorted(x * 1000 for x in self.latencies)
        if not ms:
            return 0.0, 0.0, 0.0, 0
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        return statistics.median(ms), p99, ms[-1], len(ms)

    def summary(self) -> str:
        p50, p99, top, n = self.percentiles()
        if not n:
            return "no samples"
        return f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {top:.1f} ms ({n} requests)"


def idle_probe(base: str, seconds: float = 10.0) -> Prober:
    with Prober(base) as p:
        time.sleep(seconds)
    return p


def app_export(
    client: Any, pid: int, out: Path, label: str, rows: int, prober: Prober | None = None
) -> Measure:
    base = baseline_rss(pid)
    first_byte = 0.0
    size = 0
    cpu0 = tree_cpu_seconds(pid)
    with RssSampler(pid) as sampler, prober or contextlib.nullcontext():
        t0 = time.perf_counter()
        with client.stream("GET", "/instruments/export.xlsx") as r:
            if r.status_code != 200:
                r.read()
                raise SystemExit(f"export: HTTP {r.status_code}: {r.text[:800]}")
            if "spreadsheetml" not in r.headers.get("content-type", ""):
                raise SystemExit(f"export: content-type {r.headers.get('content-type')!r}")
            with open(out, "wb") as f:
                for chunk in r.iter_bytes(1024 * 1024):
                    if not first_byte:
                        first_byte = time.perf_counter() - t0
                    f.write(chunk)
                    size += len(chunk)
        seconds = time.perf_counter() - t0
    cpu = tree_cpu_seconds(pid) - cpu0
    time.sleep(0.5)  # let the background unlink and the thread pool settle
    after = baseline_rss(pid, 0.3)
    return Measure(
        label, seconds, cpu, base, sampler.peak, after, rows,
        note=f"{size / MB:.1f} MB file, first byte at {first_byte:.1f} s, "
        f"export child peak {mb(sampler.children_peak)} MB, {sampler.samples} samples"
        + (f"; GET /healthz meanwhile: {prober.summary()}" if prober else ""),
        children_peak=sampler.children_peak,
    )  # fmt: skip


def verify(path: Path, expected: list[tuple[Any, ...]]) -> list[str]:
    """Check the exported file against the database; return the problems found."""
    import openpyxl

    from app.services.instrument_xlsx import REGISTER_COLUMNS, looks_like_formula

    problems: list[str] = []
    if tuple(c.key for c in REGISTER_COLUMNS) != KEYS:
        problems.append(f"REGISTER_COLUMNS changed: {[c.key for c in REGISTER_COLUMNS]}")
        return problems
    labels = [c.label for c in REGISTER_COLUMNS]
    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        ws = wb.worksheets[0]
        n = 0
        mismatches = 0
        dates = guarded = 0
        for n, row in enumerate(ws.iter_rows(), start=1):
            if n == 1:
                header = [c.value for c in row]
                if header != labels:
                    problems.append(f"header {header} != {labels}")
                continue
            if n - 2 >= len(expected):
                continue
            want_row = expected[n - 2]
            cells = list(row) + [None] * (len(KEYS) - len(row))
            for key, cell, want in zip(KEYS, cells, want_row, strict=True):
                got = getattr(cell, "value", None)
                ok = True
                if want is None or want == "":
                    ok = got is None
                elif key in DATE_KEYS:
                    ok = cell.is_date and isinstance(got, datetime) and got.date() == want
                    dates += ok
                elif key in INT_KEYS:
                    ok = got == want and cell.data_type == "n"
                else:
                    ok = got == want and cell.data_type == "s"
                    if ok and looks_like_formula(want):
                        ok = bool(cell.style_array.quotePrefix)
                        guarded += ok
                if not ok:
                    mismatches += 1
                    if mismatches <= 5:
                        problems.append(
                            f"row {n} {key}: got {got!r} ({getattr(cell, 'data_type', None)}),"
                            f" want {want!r}"
                        )
        if n != len(expected) + 1:
            problems.append(f"{n} rows in the sheet, expected {len(expected) + 1}")
        if mismatches > 5:
            problems.append(f"... {mismatches} mismatching cells in all")
        if not dates:
            problems.append("no date cell was a date")
        if not guarded:
            problems.append("no formula-looking text came back as a quoted string cell")
        log(
            f"  verified: {n:,} rows (header + {n - 1:,}), header labels, {dates:,} date cells "
            f"as dates, {guarded:,} '='/'+'/'-'/'@' text cells as data_type 's' + quotePrefix"
        )
    finally:
        wb.close()
    return problems


# ------------------------------------------------------------------------------ the baseline


def bare_child(mode: str, out: str, batch: int, rows: int) -> None:
    """Runs in the subprocess: the bare export, told when to start over stdin/stdout."""
    import openpyxl

    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(asyncpg.connect(DATABASE_URL))
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    t0 = time.perf_counter()
    fetch_s = 0.0

    def batches() -> Any:
        nonlocal fetch_s
        after = 0
        while True:
            t = time.perf_counter()
            recs = loop.run_until_complete(conn.fetch(EXPORT_SQL, [ENTERPRISE_ID], after, batch))
            fetch_s += time.perf_counter() - t
            if not recs:
                return
            after = recs[-1][0]
            yield [tuple(r) for r in recs]

    if mode == "all":
        recs = loop.run_until_complete(conn.fetch(EXPORT_SQL, [ENTERPRISE_ID], 0, rows + 1))
        source: Any = [[tuple(r) for r in recs]]
        del recs
    else:
        source = batches()
    fetch_s += time.perf_counter() - t0
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("器具托管")
    ws.append([k for k in KEYS])
    n = 0
    for chunk in source:
        for r in chunk:
            ws.append(r[1:])
            n += 1
        chunk.clear()  # "all": drop the rows as they are written, like a consumer would
    with open(out, "wb") as f:
        wb.save(f)
    seconds = time.perf_counter() - t0
    loop.run_until_complete(conn.close())
    print(json.dumps({"rows": n, "seconds": seconds, "fetch_s": fetch_s}), flush=True)
    sys.stdin.readline()  # stay alive until the parent has taken its last RSS sample


def bare_export(mode: str, out: Path, batch: int, rows: int, tmp: Path) -> Measure:
    cmd = [PY, str(Path(__file__).resolve()), "--bare-child", mode, "--out", str(out),
           "--batch", str(batch), "--rows", str(rows)]  # fmt: skip
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
    proc = PROCS.start(
        cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdin and proc.stdout
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"bare child ({mode}) did not start")
        base = baseline_rss(proc.pid)
        cpu0 = cpu_seconds(proc.pid)
        with RssSampler(proc.pid) as sampler:
            t0 = time.perf_counter()
            proc.stdin.write("go\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            wall = time.perf_counter() - t0
        cpu = cpu_seconds(proc.pid) - cpu0
        after = rss_bytes(proc.pid)
        proc.stdin.write("bye\n")
        proc.stdin.flush()
        proc.wait(30)
    finally:
        PROCS.stop(proc)
    if not line:
        raise SystemExit(f"bare child ({mode}) failed")
    res = json.loads(line)
    label = (
        "bare: asyncpg all rows + openpyxl write-only"
        if mode == "all"
        else f"bare: asyncpg {batch:,}-row batches + openpyxl write-only"
    )
    return Measure(
        label, res["seconds"], cpu, base, sampler.peak, after, res["rows"],
        note=f"fetch {res['fetch_s']:.1f} s of it, wall {wall:.1f} s, {sampler.samples} samples",
    )  # fmt: skip


# A fresh interpreter with what the app's export child imports, then idle: its RSS is the
# child's own start, not the export's.
CHILD_IMPORTS = (
    "import sys, piccolo_conf, openpyxl, app.services.instrument_export, app.services.instruments;"
    "print('ready', flush=True); sys.stdin.readline()"
)


def export_child_base(env: dict[str, str]) -> int:
    """VmRSS of a fresh interpreter that has imported what the export child imports."""
    proc = PROCS.start(
        [PY, "-c", CHILD_IMPORTS], cwd=ROOT, env=env, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("the export child's imports failed")
        rss = baseline_rss(proc.pid)
        assert proc.stdin is not None
        proc.stdin.write("bye\n")
        proc.stdin.flush()
        proc.wait(10)
        return rss
    finally:
        PROCS.stop(proc)


# ------------------------------------------------------------------------------ report


def mb(n: int) -> str:
    return f"{n / MB:.1f}"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b > 0 else "n/a"


# ------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description="【导出器具】 benchmark (ratios to bare openpyxl)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000, help="bare batched variant's batch")
    parser.add_argument("--app-runs", type=int, default=2, help="exports through the app")
    parser.add_argument("--flag-factor", type=float, default=2.0)
    parser.add_argument("--keep-db", action="store_true", help=f"leave {DB_NAME} for inspection")
    parser.add_argument("--bare-child", choices=("all", "batched"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_child:
        try:
            bare_child(args.bare_child, args.out, args.batch, args.rows)
        except KeyboardInterrupt:  # the parent is stopping us
            sys.exit(130)
        return
    code = run_cleanly(
        PROCS,
        lambda tmp: run(args, tmp),
        db_name=DB_NAME,
        keep_db=args.keep_db,
        tmp_prefix="jlkf-bench-export-",
    )
    sys.exit(code)


def run(args: argparse.Namespace, tmp: Path) -> int:
    env = export_env(tmp)
    t = time.monotonic()
    log(f"[1/5] re-creating {DB_NAME} and migrating ...")
    asyncio.run(recreate_database(DB_NAME))
    migrate(env)
    log(f"[2/5] seeding 1 enterprise, 1 user, {args.rows:,} instruments ...")
    asyncio.run(seed(args.rows))
    expected = asyncio.run(db_rows(args.rows))
    log(f"      done in {time.monotonic() - t:.0f} s")
    loads: list[float] = [load_note()]

    log("[3/5] the app: uvicorn app.asgi:app --workers 1, GET /instruments/export.xlsx ...")
    srv = start_app(env, tmp)
    pid = server_pid(srv)
    client = login(srv.base)
    app_runs: list[Measure] = []
    try:
        # Warm the routes, templates and session code once so the baseline is steady-state.
        r = client.get("/instruments/")
        if r.status_code != 200:
            raise SystemExit(f"GET /instruments/: HTTP {r.status_code}")
        idle = idle_probe(srv.base)
        log(f"      GET /healthz while idle: {idle.summary()}")
        during: Prober | None = None
        for k in range(1, args.app_runs + 1):
            out = tmp / f"app-{k}.xlsx"
            # Run 1 stays unperturbed; run 2 (or the only one) also times other requests.
            probe = Prober(srv.base) if k == min(2, args.app_runs) else None
            during = probe or during
            m = app_export(client, pid, out, f"app run {k}: HTTP end to end", args.rows, probe)
            app_runs.append(m)
            log(
                f"      run {k}: {m.seconds:.1f} s wall, {m.cpu:.1f} s CPU, RSS {mb(m.base)} → "
                f"peak {mb(m.peak)} MB (+{mb(m.growth)}), after {mb(m.after)} MB; {m.note}"
            )
            if k == 1:
                t = time.monotonic()
                problems = verify(out, expected)
                if problems:
                    log("  FILE CHECK FAILED:\n    " + "\n    ".join(problems))
                    return 1
                log(f"      (check took {time.monotonic() - t:.0f} s)")
            out.unlink(missing_ok=True)
            loads.append(load_note())
    finally:
        client.close()
        PROCS.stop(srv.proc)
    leftovers = list((tmp / "data" / "tmp").glob("*.xlsx"))
    if leftovers:
        log(f"      NOTE: {len(leftovers)} export temp file(s) left in DATA_DIR/tmp")
    del expected

    log("[4/5] bare baseline, each in a fresh subprocess ...")
    bare: list[Measure] = []
    for mode in ("all", "batched"):
        m = bare_export(mode, tmp / f"bare-{mode}.xlsx", args.batch, args.rows, tmp)
        bare.append(m)
        log(
            f"      {mode}: {m.seconds:.1f} s wall, {m.cpu:.1f} s CPU, +{mb(m.growth)} MB; {m.note}"
        )
        if m.rows != args.rows:
            log(f"  BARE ROW COUNT WRONG: {m.label}: {m.rows}")
            return 1
        loads.append(load_note())
    bare_all, bare_b = bare

    app = app_runs[0]
    log(f"\n[5/5] 【导出器具】 of {args.rows:,} rows — app vs bare openpyxl (same run)\n")
    header = ["", "wall s", "CPU s", "RSS before MB", "peak MB", "peak growth MB", "held after"]
    table = []
    for m in [*app_runs, bare_all, bare_b]:
        after = f"+{mb(max(0, m.after - m.base))}" if m.label.startswith("app") else "—"
        table.append(
            [m.label, f"{m.seconds:.1f}", f"{m.cpu:.1f}", mb(m.base), mb(m.peak), mb(m.growth),
             after]
        )  # fmt: skip
    for name, b in (("all rows", bare_all), (f"{args.batch:,}-row batches", bare_b)):
        table.append(
            [f"ratio app run 1 ÷ bare ({name})", ratio(app.seconds, b.seconds),
             ratio(app.cpu, b.cpu), "", "", ratio(app.growth, b.growth), ""]
        )  # fmt: skip
    print_table(table, header, right={1, 2, 3, 4, 5, 6})
    healthz_report(idle, during)
    log(
        "\nwall: app = request sent → last byte received (login excluded); bare = 'go' → file "
        "saved.\nCPU: user+system seconds of the measured process only (the uvicorn server / the "
        "bare child;\nPostgreSQL's share is not counted on either side) — the steadier figure "
        "when the machine is busy; the app's includes its export child.\npeak growth = peak "
        "VmRSS during − median VmRSS just before, sampled every 20 ms (the app's: the server "
        "and its export child together).\nThe bare export appends plain values (no styles, no "
        "formula guard, '=' text becomes a formula).\n"
        f"1-minute load average during the run: {min(loads):.1f}–{max(loads):.1f} on "
        f"{os.cpu_count() or 1} cores."
    )
    if max(loads) > (os.cpu_count() or 1) + 1:  # this run itself keeps about one core busy
        log(
            "NOTE: the machine was busy (load average above the core count): wall times are "
            "inflated\nand vary run to run; compare CPU seconds."
        )
    # The export child is a fresh interpreter: what it holds beyond one that has imported
    # the same modules is the export's own.
    child_base = export_child_base(env) if app.children_peak else 0
    if child_base:
        log(f"\nthe export child's interpreter, imports done, before any row: {mb(child_base)} MB")
    held = max(0, app.growth - child_base)
    limit = args.flag_factor * bare_b.growth
    what = "peak RSS growth" + (" beyond a fresh interpreter" if app.children_peak else "")
    if held > limit:
        log(
            f"\nFLAG: the app's {what} ({mb(held)} MB) is more than "
            f"{args.flag_factor:g}× the streaming bare variant's ({mb(bare_b.growth)} MB)."
        )
    else:
        log(
            f"\nOK: the app's {what} ({mb(held)} MB) is within "
            f"{args.flag_factor:g}× the streaming bare variant's ({mb(bare_b.growth)} MB): "
            "the workbook is not held in memory."
        )
    return 0


def healthz_report(idle: Prober, during: Prober | None) -> None:
    """GET /healthz every 100 ms, idle and during an export: what the export does to the
    other requests of the same server process."""
    if during is None:
        return
    i50, i99, imax, n_idle = idle.percentiles()
    d50, d99, dmax, n_during = during.percentiles()
    log("\nGET /healthz on the same server process, every 100 ms on its own connection:\n")
    print_table(
        [
            ["idle", f"{i50:.1f}", f"{i99:.1f}", f"{imax:.1f}", str(n_idle)],
            ["during the export", f"{d50:.1f}", f"{d99:.1f}", f"{dmax:.1f}", str(n_during)],
            ["ratio during ÷ idle", ratio(d50, i50), ratio(d99, i99), ratio(dmax, imax), ""],
        ],
        ["", "p50 ms", "p99 ms", "max ms", "requests"],
        right={1, 2, 3, 4},
    )


if __name__ == "__main__":
    main()
