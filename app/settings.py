"""Every environment variable of the platform, with its default and one line on it.

Read once per process through :func:`get_settings`; tests clear the cache after changing
the environment.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


@dataclass(frozen=True)
class Settings:
    # Folder for the SQLite file, uploads and generated files (embedded mode).
    data_dir: Path
    # SQLite (``sqlite:///path``) or PostgreSQL (``postgresql://...``); default a file in data_dir.
    database_url: str
    # Redis for sessions and the arq job queue; empty means in-process jobs, sessions in the DB.
    redis_url: str
    # Signs CSRF tokens and certificate HMACs; generated once into data_dir when unset.
    secret_key: str
    # The platform admin created on first start when no admin exists.
    admin_username: str
    admin_password: str
    # "outbox" (stored only, read in 短信记录) or "aliyun" (Alibaba Cloud SMS).
    sms_backend: str
    host: str
    port: int
    # Bearer tokens of the lab system, comma separated.
    lab_api_tokens: tuple[str, ...]
    # Set cookies Secure with the __Host- prefix (when served over HTTPS).
    secure_cookies: bool
    # Open the PostgreSQL connection pool at start-up (off in tests: the test client's loop).
    db_pool: bool
    # Run the daily jobs in the app process (embedded mode; tests turn it off).
    scheduler: bool
    # The platform's address as the public sees it: verification links on certificates.
    public_url: str = "http://127.0.0.1:8000"
    # 检测进度查询 refreshes itself this often while an instrument is not 已取件.
    progress_poll_seconds: int = 30
    # 平台管理's 首页 counts orders still without a certificate this many days on (#12).
    stale_order_days: int = 14
    # The issuer written into stamped certificates.
    institute_name: str = "计量检定测试院"
    # The arq worker: a job running longer is cancelled, and a job whose worker died is run
    # again by another worker this long (plus arq's 10 s) after it started.
    job_timeout: int = 300
    # A request still running after this many seconds of its own time (not counting its
    # client's upload or download) gets the 503 page; its database connections are dropped.
    # 0: no deadline. See app/deadline.py.
    request_deadline: float = 6.0
    # Aliyun SMS credentials and template codes (only read when SMS_BACKEND=aliyun).
    aliyun_access_key_id: str = ""
    aliyun_access_key_secret: str = ""
    aliyun_sign_name: str = ""
    aliyun_endpoint: str = "https://dysmsapi.aliyuncs.com/"
    aliyun_templates: dict[str, str] = field(default_factory=dict)
    # "outbox" (stored only, read in 邮件记录) or "smtp" (sent through SMTP_HOST).
    email_backend: str = "outbox"
    # The SMTP server (EMAIL_BACKEND=smtp): host, port, login (none when SMTP_USER is empty),
    # the From address, STARTTLS required (on by default: a password never goes in clear),
    # and the seconds one connect or answer may take before the try counts as failed.
    smtp_host: str = "localhost"
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    smtp_starttls: bool = True
    smtp_timeout: float = 30.0

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://"))

    @property
    def sqlite_path(self) -> Path:
        return Path(self.database_url.removeprefix("sqlite:///"))


def _secret_key(data_dir: Path) -> str:
    """SECRET_KEY, or one generated and kept in data_dir so restarts keep sessions valid."""
    key = _env("SECRET_KEY")
    if key:
        return key
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


@lru_cache
def get_settings() -> Settings:
    data_dir = Path(_env("DATA_DIR", str(ROOT / "data"))).resolve()
    database_url = _env("DATABASE_URL") or f"sqlite:///{data_dir / 'app.db'}"
    sms_kinds = (
        "code",
        "registration",
        "booking_review",
        "certificate",
        "due_reminder",
        "item_status",
    )
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=_env("REDIS_URL"),
        secret_key=_secret_key(data_dir),
        admin_username=_env("ADMIN_USERNAME", "admin"),
        admin_password=_env("ADMIN_PASSWORD"),
        sms_backend=_env("SMS_BACKEND", "outbox"),
        host=_env("HOST", "127.0.0.1"),
        port=int(_env("PORT", "8000")),
        lab_api_tokens=tuple(t.strip() for t in _env("LAB_API_TOKENS").split(",") if t.strip()),
        secure_cookies=_env("SECURE_COOKIES", "0") in ("1", "true", "yes"),
        db_pool=_env("DB_POOL", "1") in ("1", "true", "yes"),
        scheduler=_env("SCHEDULER", "1") in ("1", "true", "yes"),
        public_url=_env(
            "PUBLIC_URL", f"http://{_env('HOST', '127.0.0.1')}:{_env('PORT', '8000')}"
        ).rstrip("/"),
        institute_name=_env("INSTITUTE_NAME", "计量检定测试院"),
        progress_poll_seconds=max(1, int(_env("PROGRESS_POLL_SECONDS", "30") or 30)),
        stale_order_days=max(1, int(_env("STALE_ORDER_DAYS", "14") or 14)),
        job_timeout=max(1, int(_env("JOB_TIMEOUT", "300") or 300)),
        request_deadline=max(0.0, float(_env("REQUEST_DEADLINE", "6") or 6)),
        aliyun_access_key_id=_env("ALIYUN_SMS_ACCESS_KEY_ID"),
        aliyun_access_key_secret=_env("ALIYUN_SMS_ACCESS_KEY_SECRET"),
        aliyun_sign_name=_env("ALIYUN_SMS_SIGN_NAME"),
        aliyun_endpoint=_env("ALIYUN_SMS_ENDPOINT", "https://dysmsapi.aliyuncs.com/"),
        aliyun_templates={kind: _env(f"ALIYUN_SMS_TEMPLATE_{kind.upper()}") for kind in sms_kinds},
        email_backend=_env("EMAIL_BACKEND", "outbox"),
        smtp_host=_env("SMTP_HOST", "localhost"),
        smtp_port=int(_env("SMTP_PORT", "587") or 587),
        smtp_user=_env("SMTP_USER"),
        smtp_password=os.environ.get("SMTP_PASSWORD", ""),  # not stripped: may end in a space
        smtp_from=_env("SMTP_FROM"),
        smtp_starttls=_env("SMTP_STARTTLS", "1") in ("1", "true", "yes"),
        smtp_timeout=max(0.1, float(_env("SMTP_TIMEOUT", "30") or 30)),
    )
