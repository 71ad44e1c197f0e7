"""Jinja filters and globals of every template."""

from __future__ import annotations

import re
from datetime import datetime

from litestar.plugins.jinja import JinjaTemplateEngine

from app import templating
from app.clock import TZ
from app.settings import get_settings
from app.web.cards import card_columns, mark_cells
from app.web.lists import with_page
from app.web.static import static_url


def localtime(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Datetimes are stored in UTC and shown in China time."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(TZ).strftime(fmt)


def mask_code(text: str) -> str:
    """短信记录 hides live verification codes unless it is the outbox they are read from."""
    if get_settings().sms_backend == "outbox":
        return text
    return re.sub(r"验证码为\d{6}", "验证码为******", text)


def configure(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters["localtime"] = localtime
    engine.engine.filters["mask_code"] = mask_code
    engine.engine.filters["mark_cells"] = mark_cells
    engine.engine.globals["card_columns"] = card_columns
    engine.engine.globals["with_page"] = with_page
    engine.engine.globals["static_url"] = static_url
    engine.engine.globals["institute_name"] = get_settings().institute_name
    templating.register(engine.engine)
