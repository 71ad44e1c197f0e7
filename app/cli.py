"""Set-up commands: ``python -m app.cli setup`` migrates and creates the admin.

Used by ``make run`` (and by the arq worker's deployment) so a fresh machine needs nothing else.
"""

from __future__ import annotations

import asyncio
import os
import sys

from piccolo.apps.migrations.commands.forwards import run_forwards

from app.db import make_engine
from app.services.accounts import ensure_admin
from app.settings import ROOT, get_settings


async def migrate() -> None:
    """Apply every Piccolo migration not yet applied."""
    os.environ.setdefault("PICCOLO_CONF", "piccolo_conf")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    result = await run_forwards("all")
    if not result.success:
        raise SystemExit(f"migrations failed: {result.message}")
    engine = make_engine()
    if not get_settings().is_postgres:
        # WAL lets readers go on while one request writes (a persistent setting of the file).
        await engine.run_ddl("PRAGMA journal_mode=WAL")


async def bootstrap() -> None:
    settings = get_settings()
    created, password = await ensure_admin(settings.admin_username, settings.admin_password)
    url = f"http://{settings.host}:{settings.port}/login"
    if created:
        print(f"已创建平台管理员：账号 {settings.admin_username}，密码 {password}", flush=True)
        if not settings.admin_password:
            print("（未设置 ADMIN_PASSWORD，以上密码为随机生成，请妥善保存）", flush=True)
    else:
        print("平台管理员已存在（账号见 ADMIN_USERNAME，默认 admin）", flush=True)
    print(f"请打开 {url} 登录", flush=True)


async def setup() -> None:
    await migrate()
    await bootstrap()


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "setup"
    commands = {"setup": setup, "migrate": migrate, "bootstrap": bootstrap}
    if command not in commands:
        raise SystemExit(f"usage: python -m app.cli [{'|'.join(commands)}]")
    asyncio.run(commands[command]())


if __name__ == "__main__":
    main()
