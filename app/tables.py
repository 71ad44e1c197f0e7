"""Piccolo tables of the platform.

Columns are planned up front: SQLite cannot ALTER a column, so later issues add tables
rather than change these.
"""

from __future__ import annotations

from piccolo.columns import (
    Boolean,
    ForeignKey,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Enterprise(Table):
    """A customer company (送检单位).

    Registered ones wait for review; 协议客户 are added by admins, approved at once.
    """

    name = Varchar(length=200)
    uscc = Varchar(length=18, unique=True)  # 统一社会信用代码
    address = Varchar(length=300, default="")
    contact_name = Varchar(length=50, default="")
    contact_phone = Varchar(length=20, default="")
    # pending (待审核) / approved (已通过) / rejected (已驳回)
    status = Varchar(length=20, default="pending", index=True)
    reject_reason = Text(default="")
    is_contract = Boolean(default=False)  # 协议客户
    contract_no = Varchar(length=100, default="")
    parent = ForeignKey("self", null=True, default=None)  # 企业管理: subsidiaries
    created_at = Timestamptz(default=TimestamptzNow())
    reviewed_at = Timestamptz(null=True, default=None)


class ContractPhone(Table):
    """A contract contact phone of a 协议客户: it logs in by SMS code, no registration."""

    enterprise = ForeignKey(Enterprise)
    phone = Varchar(length=20, unique=True)


class User(Table, tablename="app_user"):
    """A login account. ``enterprise`` is empty only for platform admins."""

    username = Varchar(length=50, unique=True)
    password_hash = Varchar(length=200, default="")
    name = Varchar(length=50, default="")
    phone = Varchar(length=20, default="", index=True)
    enterprise = ForeignKey(Enterprise, null=True, default=None)
    # platform_admin / enterprise_admin / sub_account / contract_user
    role = Varchar(length=20)
    is_active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())
    last_login_at = Timestamptz(null=True, default=None)


class SmsCode(Table):
    """An SMS verification code, stored only as a hash, bound to phone and purpose."""

    phone = Varchar(length=20, index=True)
    purpose = Varchar(length=20)  # register / login / reset
    code_hash = Varchar(length=64)
    ip = Varchar(length=64, index=True)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    expires_at = Timestamptz()
    attempts = Integer(default=0)
    used = Boolean(default=False)


class SmsMessage(Table):
    """Every SMS the platform sends (短信记录); in outbox mode this is where they are read."""

    phone = Varchar(length=20, index=True)
    kind = Varchar(length=30)  # code / registration / booking_review / certificate / due_reminder
    text = Text()
    params = Text(default="{}")  # JSON template parameters for providers with templates
    status = Varchar(length=20, default="待发送")  # 待发送 / 已发送 / 发送失败
    error = Text(default="")
    provider_ref = Varchar(length=100, default="")
    dedupe_key = Varchar(length=200, null=True, default=None, unique=True)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    sent_at = Timestamptz(null=True, default=None)


class LoginAttempt(Table):
    """Password login attempts, for throttling (5 failures in 15 minutes)."""

    username = Varchar(length=50, index=True)
    ip = Varchar(length=64, index=True)
    success = Boolean(default=False)
    at = Timestamptz(default=TimestamptzNow(), index=True)


class AuditLog(Table):
    """操作日志: append-only record of security-relevant events."""

    at = Timestamptz(default=TimestamptzNow(), index=True)
    user_id = Integer(null=True, default=None)
    username = Varchar(length=50, default="", index=True)
    ip = Varchar(length=64, default="")
    event = Varchar(length=50, index=True)
    result = Varchar(length=20, default="成功")
    detail = Text(default="")


class WebSession(Table):
    """Server-side sessions in embedded mode (Redis holds them in production)."""

    key_hash = Varchar(length=64, unique=True)
    user_id = Integer(null=True, default=None, index=True)
    data = Text(default="{}")
    created_at = Timestamptz(default=TimestamptzNow())
    last_seen = Timestamptz(default=TimestamptzNow())
