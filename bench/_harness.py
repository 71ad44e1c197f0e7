"""What the benchmarks share: the processes they start (and stop, Ctrl-C included), a
uvicorn server on a free port, their own PostgreSQL database, the seeded accounts, the
login, CPU read from /proc, and the table they print.

Imported by ``bench/booking.py`` and ``bench/export.py``. export.py's bare child imports it
too, so nothing here imports httpx or the app at module level: the child's memory is
measured.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def database_url(name: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def log(msg: str) -> None:
    print(msg, flush=True)


# ------------------------------------------------------------------------------ processes


def _signal_group(proc: subprocess.Popen[Any], signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)  # the group of the process we started
    except ProcessLookupError:
        pass


class Procs:
    """Every process a benchmark starts (each in its own session), stopped on exit.

    ``stop`` sends SIGINT (uvicorn shuts down gracefully and, re-raised, it lets cProfile
    write), then SIGKILL after ``stop_timeout``. With ``second_interrupt_after`` a second
    SIGINT comes after that many seconds: it makes uvicorn stop without waiting for a
    request still running (a long export).
    """

    def __init__(self, stop_timeout: float = 15, second_interrupt_after: float | None = None):
        self.running: list[subprocess.Popen[Any]] = []
        self.stop_timeout = stop_timeout
        self.second_interrupt_after = second_interrupt_after

    def start(self, cmd: list[str], **kw: Any) -> subprocess.Popen[Any]:
        proc = subprocess.Popen(cmd, start_new_session=True, **kw)
        self.running.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[Any], timeout: float | None = None) -> None:
        timeout = self.stop_timeout if timeout is None else timeout
        if proc.poll() is None:
            _signal_group(proc, signal.SIGINT)
            again = self.second_interrupt_after
            try:
                proc.wait(timeout if again is None else min(again, timeout))
            except subprocess.TimeoutExpired:
                if again is not None:
                    _signal_group(proc, signal.SIGINT)
                    try:
                        proc.wait(timeout)
                    except subprocess.TimeoutExpired:
                        pass
            if proc.poll() is None:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self.running)):
            self.stop(proc, timeout=5)


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_cleanly(
    procs: Procs,
    run: Callable[[Path], int | None],
    *,
    db_name: str,
    keep_db: bool,
    tmp_prefix: str,
    interrupted: int = 130,
) -> int:
    """``run(tmp)`` in a fresh temporary folder; whatever happens (Ctrl-C, SIGTERM, an
    error), the processes are stopped, the database dropped (unless ``keep_db``) and the
    folder removed. Returns ``run``'s exit code, or ``interrupted``."""
    signal.signal(signal.SIGTERM, _sigterm)
    # Ctrl-C stops the run and cleans up even when started in the background (SIG_IGN there).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tmp = Path(tempfile.mkdtemp(prefix=tmp_prefix))
    started = time.monotonic()
    code = 0
    try:
        code = run(tmp) or 0
    except KeyboardInterrupt:
        log("\ninterrupted")
        code = interrupted
    finally:
        procs.stop_all()
        if not keep_db:
            try:
                asyncio.run(drop_database(db_name))
            except Exception as exc:  # noqa: BLE001 - best effort on the way out
                log(f"(could not drop {db_name}: {exc})")
        shutil.rmtree(tmp, ignore_errors=True)
        log(f"total {time.monotonic() - started:.0f} s")
    return code


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_jiffies(pid: int) -> int:
    """User + system CPU of ``pid`` (all its threads) so far, in clock ticks (0 if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return int(parts[11]) + int(parts[12])  # utime, stime (fields 14, 15)
    except (OSError, IndexError, ValueError):
        return 0


# ------------------------------------------------------------------------------ the server


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[Any]
    base: str
    log: Path


def start_uvicorn(
    procs: Procs,
    name: str,
    target: Sequence[str],
    flags: Sequence[str],
    env: dict[str, str],
    tmp: Path,
    prefix: Sequence[str] = (PY,),
    probe: str = "/healthz",
) -> Server:
    """``prefix -m uvicorn target flags --port N`` on a free port, logging to ``tmp/name.log``;
    returns once ``probe`` answers 200 (exits with the log's tail if it never does)."""
    import httpx  # not at the top: see the module docstring

    port = free_port()
    log_path = tmp / f"{name}.log"
    cmd = [*prefix, "-m", "uvicorn", *target, *flags, "--port", str(port)]
    with open(log_path, "wb") as out:
        proc = procs.start(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} server exited:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(base + probe, timeout=2).status_code == 200:
                return Server(name, proc, base, log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{name} server did not start:\n{log_path.read_text()[-3000:]}")


def login(base: str, username: str, password: str, timeout: float) -> tuple[Any, str]:
    """Log in through the login form; returns the httpx client holding the session (the
    caller closes it) and the CSRF token."""
    import httpx  # not at the top: see the module docstring

    client = httpx.Client(base_url=base, follow_redirects=False, timeout=timeout)
    r = client.get("/login")
    r.raise_for_status()
    csrf = client.cookies.get("csrftoken")
    if not csrf:
        raise SystemExit("GET /login set no csrftoken cookie")
    r = client.post(
        "/login",
        data={"username": username, "password": password},
        headers={"X-CSRFToken": csrf},
    )
    if r.status_code != 303 or not client.cookies.get("session"):
        raise SystemExit(f"login failed: {r.status_code} {r.text[:500]}")
    return client, csrf


def app_env(
    database: str, secret_key: str, data_dir: Path, drop: tuple[str, ...] = (), **extra: str
) -> dict[str, str]:
    """The app's environment: this process's, less the SMS provider's and lab API's secrets
    (and any variable starting with one of ``drop``), on the benchmark's own database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIYUN_", "LAB_API", *drop))}
    env.update(
        DATABASE_URL=database,
        SECRET_KEY=secret_key,
        DB_POOL="1",
        DATA_DIR=str(data_dir),
        ADMIN_USERNAME="admin",
        ADMIN_PASSWORD="Bench-Admin-2026!",
        SMS_BACKEND="outbox",
        SECURE_COOKIES="0",
        PICCOLO_CONF="piccolo_conf",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


# ------------------------------------------------------------------------------ database


async def recreate_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def migrate(env: dict[str, str]) -> None:
    r = subprocess.run(
        [PY, "-m", "app.cli", "setup"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if r.returncode != 0:
        raise SystemExit(f"app.cli setup failed:\n{r.stdout}\n{r.stderr}")


ENTERPRISE_COLUMNS = [
    "id", "name", "uscc", "address", "contact_name", "contact_phone", "status",
    "reject_reason", "is_contract", "contract_no", "parent", "created_at", "reviewed_at",
]  # fmt: skip
USER_COLUMNS = [
    "id", "username", "password_hash", "name", "phone", "enterprise", "role",
    "is_active", "created_at",
]  # fmt: skip


async def copy_accounts(
    conn: asyncpg.Connection, enterprises: Iterable[tuple[Any, ...]], users: Iterable[tuple]
) -> None:
    """Enterprises and their users by COPY, rows in ENTERPRISE_COLUMNS / USER_COLUMNS order."""
    await conn.copy_records_to_table("enterprise", records=enterprises, columns=ENTERPRISE_COLUMNS)
    await conn.copy_records_to_table("app_user", records=users, columns=USER_COLUMNS)


async def fix_sequences(conn: asyncpg.Connection, tables: Iterable[str]) -> None:
    """After COPY with explicit ids: the next id of each table follows the largest."""
    for table in tables:
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
        )


# ------------------------------------------------------------------------------ report


def width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def pad(s: str, n: int, right: bool = False) -> str:
    fill = " " * max(0, n - width(s))
    return fill + s if right else s + fill


def print_table(rows: list[list[str]], header: list[str], right: set[int]) -> None:
    widths = [max(width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(pad(h, widths[i], i in right) for i, h in enumerate(header))
    log(line)
    log("-" * width(line))
    for r in rows:
        log("  ".join(pad(c, widths[i], i in right) for i, c in enumerate(r)))
