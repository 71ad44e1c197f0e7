"""Accounts (SPEC §3): SMS codes, registration, the three logins, password reset.

Every function returns the created/found object or raises :class:`FormError` holding the
message per field, so the handler can re-render the form with the user's other input.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Self

import anyio

from app.clock import now
from app.db import write_transaction
from app.enums import EnterpriseStatus, UserRole
from app.security.passwords import DUMMY_HASH, hash_password, verify_password
from app.security.sessions import disabled_above, end_user_sessions
from app.services import audit, sms, throttle
from app.services.enterprises import insert_with_main_account
from app.services.errors import FormError
from app.services.forms import stripped_fields
from app.services.validators import (
    missing_errors,
    mobile_error,
    normalize_phone,
    password_error,
    uscc_error,
    username_error,
)
from app.settings import get_settings
from app.tables import ContractPhone, Enterprise, LoginAttempt, SmsCode, User

CODE_TTL = timedelta(minutes=5)
CODE_MAX_TRIES = 5
# Per phone: 1 a minute, 5 an hour, 10 a day; per source address: 30 an hour (SPEC §3).
PHONE_LIMITS = ((timedelta(minutes=1), 1), (timedelta(hours=1), 5), (timedelta(days=1), 10))
IP_LIMIT = (timedelta(hours=1), 30)
LOGIN_WINDOW = timedelta(minutes=15)
# 客户注册 submissions per source address.
REGISTER_LIMIT = (timedelta(hours=1), 30)
LOGIN_MAX_FAILURES = 5

PURPOSES = {"register": "注册", "login": "登录", "reset": "重置密码"}

BAD_LOGIN = "用户名或密码错误"
LOCKED = "登录失败次数过多，账号已锁定15分钟，请稍后再试"


def _code_hash(phone: str, purpose: str, code: str) -> str:
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"{phone}:{purpose}:{code}".encode(), hashlib.sha256).hexdigest()


async def _has_account(phone: str) -> bool:
    if await User.exists().where((User.phone == phone) & (User.is_active == True)):  # noqa: E712
        return True
    return await ContractPhone.exists().where(ContractPhone.phone == phone)


async def request_code(phone: str, purpose: str, ip: str) -> int:
    """Issue a code for ``phone`` and ``purpose``; returns the seconds until the next one.

    The answer is the same whether or not the phone has an account; the SMS is only sent
    when it has one (or when registering), so nobody can spam a stranger's phone.
    """
    phone = normalize_phone(phone)
    if purpose not in PURPOSES:
        raise FormError({"": "无效的验证码用途"})
    if err := mobile_error(phone):
        raise FormError({"phone": err})
    t = now()
    code = f"{secrets.randbelow(10**6):06d}"
    # Insert first, then count the codes up to and including this one: parallel requests
    # cannot all slip under a limit, as they could when counting before inserting.
    mine = (
        await SmsCode.insert(
            SmsCode(
                phone=phone,
                purpose=purpose,
                code_hash=_code_hash(phone, purpose, code),
                ip=ip[:64],
                created_at=t,
                expires_at=t + CODE_TTL,
            )
        ).returning(SmsCode.id)
    )[0]["id"]
    if error := await _limit_error(phone, ip, t, mine):
        await SmsCode.delete().where(SmsCode.id == mine)
        raise FormError({"phone": error})
    if purpose == "register" or await _has_account(phone):
        await sms.queue(
            phone,
            "code",
            f"您正在{PURPOSES[purpose]}，验证码为{code}，5分钟内有效。如非本人操作，请忽略本短信。",
            {"code": code},
        )
    return 60


async def _limit_error(phone: str, ip: str, t: datetime, mine: int) -> str | None:
    """Why code ``mine`` (just inserted at ``t``) is over a limit of its phone or address."""
    for window, limit in PHONE_LIMITS:
        recent = (
            await SmsCode.select(SmsCode.created_at)
            .where(
                (SmsCode.phone == phone) & (SmsCode.created_at > t - window) & (SmsCode.id <= mine)
            )
            .order_by(SmsCode.created_at)
        )
        if len(recent) > limit:
            wait = int((recent[0]["created_at"] + window - t).total_seconds()) + 1
            return _wait_message(window, wait)
    window, limit = IP_LIMIT
    from_ip = await SmsCode.count().where(
        (SmsCode.ip == ip[:64]) & (SmsCode.created_at > t - window) & (SmsCode.id <= mine)
    )
    if from_ip > limit:
        return "当前网络获取验证码过于频繁，请1小时后再试"
    return None


def _wait_message(window: timedelta, wait: int) -> str:
    if window <= timedelta(minutes=1):
        return f"验证码发送过于频繁，请{wait}秒后再试"
    if window <= timedelta(hours=1):
        return "该手机号1小时内获取验证码已达5次，请稍后再试"
    return "该手机号今日获取验证码已达10次，请明天再试"


async def check_code(phone: str, purpose: str, code: str, *, spend: bool = True) -> str | None:
    """Consume a code. None when it is right; else the message for the 短信验证码 field.

    ``spend=False`` only checks it: a wrong guess still costs a try, a right one costs
    nothing and leaves the code usable (a form checks the code before anything else, and
    spends it when it saves)."""
    code = code.strip()
    if not code:
        return "请输入短信验证码"
    row = (
        await SmsCode.select()
        .where((SmsCode.phone == phone) & (SmsCode.purpose == purpose))
        .order_by(SmsCode.id, ascending=False)
        .first()
    )
    if row is None:
        return "请先获取短信验证码"
    if row["used"]:
        return "验证码已使用，请重新获取"
    if row["expires_at"] < now():
        return "验证码已过期，请重新获取"
    # Take the try before comparing, in one statement: parallel guesses cannot exceed 5.
    taken = (
        await SmsCode.update({SmsCode.attempts: SmsCode.attempts + 1})
        .where(
            (SmsCode.id == row["id"])
            & (SmsCode.attempts < CODE_MAX_TRIES)
            & (SmsCode.used == False)  # noqa: E712
        )
        .returning(SmsCode.attempts)
    )
    if not taken:
        return "验证码错误次数过多，请重新获取"
    if not hmac.compare_digest(row["code_hash"], _code_hash(phone, purpose, code)):
        left = CODE_MAX_TRIES - taken[0]["attempts"]
        return f"验证码错误，还可尝试{left}次" if left else "验证码错误次数过多，请重新获取"
    if not spend:
        await SmsCode.update({SmsCode.attempts: SmsCode.attempts - 1}).where(
            SmsCode.id == row["id"]
        )
        return None
    # Single use even under concurrent submits: only one UPDATE flips it.
    claimed = (
        await SmsCode.update({SmsCode.used: True})
        .where(
            (SmsCode.id == row["id"]) & (SmsCode.used == False)  # noqa: E712
        )
        .returning(SmsCode.id)
    )
    return None if claimed else "验证码已使用，请重新获取"


@dataclass(frozen=True, slots=True)
class Registration:
    """客户注册 as submitted: every field stripped, nothing checked yet."""

    name: str
    uscc: str
    address: str
    contact_name: str
    contact_phone: str
    code: str
    username: str
    password: str
    password2: str
    agree: bool  # the 免责声明 box was ticked

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> Self:
        ticked = (form.get("agree") or "").strip() in ("1", "on", "true")
        return cls(**{**stripped_fields(form, cls), "agree": ticked})


async def register(application: Registration, ip: str) -> int:
    """客户注册: creates the enterprise (待审核) and its main account. Returns the user id."""
    f = replace(
        application,
        uscc=application.uscc.upper(),
        contact_phone=normalize_phone(application.contact_phone),
    )
    await throttle.hit("register", ip, REGISTER_LIMIT[1], REGISTER_LIMIT[0])
    errors = _registration_errors(f)
    if errors:
        raise FormError(errors)
    # The code first: whether a USCC or an account exists is only said to the owner of a
    # phone. It is spent only once everything else is right (a typo elsewhere costs nothing).
    if err := await check_code(f.contact_phone, "register", f.code, spend=False):
        raise FormError({"code": err})
    rejected = await _replaceable_application(f, errors)
    if errors:
        raise FormError(errors)
    if err := await check_code(f.contact_phone, "register", f.code):
        raise FormError({"code": err})
    user_id = await _create_applicant(f, rejected)
    await audit.record(
        "客户注册",
        username=f.username,
        user_id=user_id,
        ip=ip,
        detail=f"{f.name}（{f.uscc}）",
    )
    return user_id


def _registration_errors(f: Registration) -> dict[str, str]:
    """The checks of the registration form that need no database, by field."""
    errors = missing_errors(
        asdict(f),
        {
            "name": "单位名称",
            "uscc": "统一社会信用代码",
            "address": "单位地址",
            "contact_name": "联系人",
            "contact_phone": "联系人手机",
            "code": "短信验证码",
            "username": "登录账号",
            "password": "密码",
            "password2": "确认密码",
        },
    )
    for key, value, limit in (
        ("name", f.name, 200),
        ("address", f.address, 300),
        ("contact_name", f.contact_name, 50),
    ):
        if len(value) > limit:
            errors[key] = f"不能超过{limit}个字"
    if f.uscc and (err := uscc_error(f.uscc)):
        errors["uscc"] = err
    if f.contact_phone and (err := mobile_error(f.contact_phone)):
        errors["contact_phone"] = err
    if f.username and (err := username_error(f.username)):
        errors["username"] = err
    if f.password and (err := password_error(f.password, f.username)):
        errors["password"] = err
    if f.password2 and f.password != f.password2:
        errors["password2"] = "两次输入的密码不一致"
    if not f.agree:
        errors["agree"] = "请阅读并勾选免责声明"
    return errors


async def _replaceable_application(f: Registration, errors: dict[str, str]) -> int | None:
    """A rejected application may be made again: it is replaced (it never had any data).
    Returns its enterprise id; adds to ``errors`` when the USCC or username is taken."""
    earlier = (
        await Enterprise.select(Enterprise.id, Enterprise.status)
        .where(Enterprise.uscc == f.uscc)
        .first()
    )
    rejected = earlier["id"] if earlier and earlier["status"] == EnterpriseStatus.REJECTED else None
    if "uscc" not in errors and earlier and rejected is None:
        errors["uscc"] = "该统一社会信用代码已注册，如忘记账号请联系平台管理员"
    taken = await User.select(User.enterprise).where(User.username == f.username).first()
    if "username" not in errors and taken and (rejected is None or taken["enterprise"] != rejected):
        errors["username"] = "该登录账号已被使用"
    return rejected


async def _create_applicant(f: Registration, rejected: int | None) -> int:
    """The enterprise (待审核) and its main account, in place of a rejected application."""
    password_hash = await anyio.to_thread.run_sync(hash_password, f.password)
    async with write_transaction():
        if rejected is not None:
            await User.delete().where(User.enterprise == rejected)
            await Enterprise.delete().where(
                (Enterprise.id == rejected) & (Enterprise.status == EnterpriseStatus.REJECTED)
            )
        _, user_id = await insert_with_main_account(
            f, password_hash, status=EnterpriseStatus.PENDING
        )
    return user_id


AWAITING_REVIEW = "账号正在等待管理员审核（待审核），审核通过后会短信通知您，届时即可登录"


class AwaitingReview(FormError):
    """The right account and password, but the registration is still 待审核: the login
    page says so as information (nothing is wrong), not as an error."""


async def _login_state(user_row: dict[str, Any]) -> str | None:
    """Why a user with the right credentials still may not log in, or None."""
    if not user_row["is_active"]:
        return "账号已停用，请联系管理员"
    ent_id = user_row["enterprise"]
    if ent_id is None:
        return None
    ent = (
        await Enterprise.select(Enterprise.status, Enterprise.reject_reason, Enterprise.parent)
        .where(Enterprise.id == ent_id)
        .first()
    )
    if ent is None:
        return "账号已停用，请联系管理员"
    if ent["status"] == EnterpriseStatus.PENDING:
        return AWAITING_REVIEW
    if ent["status"] == EnterpriseStatus.REJECTED:
        return f"注册申请未通过审核：{ent['reject_reason'] or '请联系平台管理员'}"
    if ent["status"] == EnterpriseStatus.DISABLED or await disabled_above(ent["parent"]):
        return "单位已停用，请联系上级单位"
    return None


async def _failures(username: str, ip: str, upto: int) -> int:
    """Failed tries in the last 15 minutes up to attempt ``upto``, by the account (since its
    last success) or from the address, whichever is more."""
    since = now() - LOGIN_WINDOW
    last_ok = (
        await LoginAttempt.select(LoginAttempt.at)
        .where(
            (LoginAttempt.username == username)
            & (LoginAttempt.success == True)  # noqa: E712
            & (LoginAttempt.at > since)
        )
        .order_by(LoginAttempt.at, ascending=False)
        .first()
    )
    user_since = max(since, last_ok["at"]) if last_ok else since
    failed = (LoginAttempt.success == False) & (LoginAttempt.id <= upto)  # noqa: E712
    by_user = await LoginAttempt.count().where(
        (LoginAttempt.username == username) & failed & (LoginAttempt.at > user_since)
    )
    by_ip = await LoginAttempt.count().where(
        (LoginAttempt.ip == ip) & failed & (LoginAttempt.at > since)
    )
    return max(by_user, by_ip)


async def login_password(username: str, password: str, ip: str) -> int:
    """账号 + 密码 login. Returns the user id; raises FormError with one message for both.

    5 failures in 15 minutes hold the account and the source address for 15 minutes. The
    try is recorded as a failure before the password is checked and counted with the ones
    before it, so parallel guesses cannot slip past the limit.
    """
    username = username.strip()
    if not username or not password:
        raise FormError({"": "请输入账号和密码"})
    username, ip = username[:50], ip[:64]
    attempt = (
        await LoginAttempt.insert(LoginAttempt(username=username, ip=ip, success=False)).returning(
            LoginAttempt.id
        )
    )[0]["id"]
    if await _failures(username, ip, attempt) > LOGIN_MAX_FAILURES:
        # Held: this try is not counted, so waiting 15 minutes is enough.
        await LoginAttempt.delete().where(LoginAttempt.id == attempt)
        await audit.record("登录", "失败", username=username, ip=ip, detail="已锁定")
        raise FormError({"": LOCKED})
    row = (
        await User.select(User.id, User.password_hash, User.is_active, User.enterprise)
        .where(User.username == username)
        .first()
    )
    # Argon2 is CPU work: off the event loop. An unknown name is checked against a dummy
    # hash, so both cases take the same time.
    ok = await anyio.to_thread.run_sync(
        verify_password, row["password_hash"] if row else DUMMY_HASH, password
    )
    ok = ok and row is not None
    if not ok or row is None:
        await audit.record("登录", "失败", username=username, ip=ip, detail="用户名或密码错误")
        if await _failures(username, ip, attempt) >= LOGIN_MAX_FAILURES:
            raise FormError({"": LOCKED})
        raise FormError({"": BAD_LOGIN})
    await LoginAttempt.update({LoginAttempt.success: True}).where(LoginAttempt.id == attempt)
    if reason := await _login_state(row):
        await audit.record(
            "登录", "失败", username=username, user_id=row["id"], ip=ip, detail=reason
        )
        raise (AwaitingReview if reason == AWAITING_REVIEW else FormError)({"": reason})
    await User.update({User.last_login_at: now()}).where(User.id == row["id"])
    await audit.record("登录", username=username, user_id=row["id"], ip=ip)
    return int(row["id"])


async def _active_by_phone(phone: str) -> list[dict[str, Any]]:
    return (
        await User.select(
            User.id,
            User.username,
            User.name,
            User.is_active,
            User.enterprise,
            User.role,
            User.enterprise.name,
        )
        .where((User.phone == phone) & (User.is_active == True))  # noqa: E712
        .order_by(User.id)
    )


async def phone_accounts(phone: str) -> list[dict[str, Any]]:
    """Every active account with this phone (creating a 协议用户 account on first use)."""
    rows = await _active_by_phone(phone)
    contract = (
        await ContractPhone.select(ContractPhone.enterprise)
        .where(ContractPhone.phone == phone)
        .first()
    )
    if contract and not any(r["enterprise"] == contract["enterprise"] for r in rows):
        # The contract phone's account: created at its first login, or enabled again when
        # the admin lists the phone once more.
        ent_id = contract["enterprise"]
        earlier = (
            await User.select(User.id)
            .where(
                (User.phone == phone)
                & (User.enterprise == ent_id)
                & (User.role == UserRole.CONTRACT_USER)
            )
            .first()
        )
        if earlier:
            await User.update({User.is_active: True}).where(User.id == earlier["id"])
        else:
            ent = await Enterprise.select(Enterprise.name).where(Enterprise.id == ent_id).first()
            await User.insert(
                User(
                    username=await _free_username(f"xy{phone}"),
                    name=ent["name"] if ent else "",
                    phone=phone,
                    enterprise=ent_id,
                    role=UserRole.CONTRACT_USER,
                )
            )
        rows = await _active_by_phone(phone)
    return rows


async def _free_username(base: str) -> str:
    name, n = base, 1
    while await User.exists().where(User.username == name):
        n += 1
        name = f"{base}_{n}"
    return name


async def login_phone(phone: str, code: str, ip: str) -> list[dict[str, Any]]:
    """使用手机号登录: checks the code; returns the accounts this phone may log in as."""
    phone = normalize_phone(phone)
    errors: dict[str, str] = {}
    if err := mobile_error(phone):
        errors["phone"] = err
    if not code.strip():
        errors["code"] = "请输入短信验证码"
    if errors:
        raise FormError(errors)
    if err := await check_code(phone, "login", code):
        await audit.record("手机号登录", "失败", username=phone, ip=ip, detail=err)
        raise FormError({"code": err})
    accounts = []
    for row in await phone_accounts(phone):
        if await _login_state(row) is None:
            accounts.append(row)
    if not accounts:
        await audit.record("手机号登录", "失败", username=phone, ip=ip, detail="无可用账号")
        raise FormError({"phone": "该手机号没有可登录的账号（或账号尚在审核中），请先注册"})
    return accounts


async def finish_phone_login(user_id: int, ip: str) -> None:
    await User.update({User.last_login_at: now()}).where(User.id == user_id)
    row = await User.select(User.username).where(User.id == user_id).first()
    await audit.record(
        "手机号登录", user_id=user_id, username=row["username"] if row else "", ip=ip
    )


@dataclass(frozen=True, slots=True)
class PasswordReset:
    """忘记密码 as submitted: every field stripped, nothing checked yet."""

    username: str
    phone: str
    password: str
    password2: str
    code: str

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> Self:
        return cls(**stripped_fields(form, cls))


async def reset_password(reset: PasswordReset, ip: str) -> int:
    """忘记密码: the phone must be the account's own. Ends the user's sessions."""
    f = replace(reset, phone=normalize_phone(reset.phone))
    errors = missing_errors(
        asdict(f),
        {
            "username": "用户名",
            "phone": "手机号",
            "password": "新密码",
            "password2": "确认密码",
            "code": "短信验证码",
        },
    )
    if f.phone and (err := mobile_error(f.phone)):
        errors["phone"] = err
    if f.password and (err := password_error(f.password, f.username)):
        errors["password"] = err
    if f.password2 and f.password != f.password2:
        errors["password2"] = "两次输入的密码不一致"
    if errors:
        raise FormError(errors)
    # The code first: only the phone's owner learns whether it belongs to the username.
    if err := await check_code(f.phone, "reset", f.code):
        raise FormError({"code": err})
    user = await User.select(User.id, User.phone).where(User.username == f.username).first()
    if user is None or user["phone"] != f.phone:
        await audit.record(
            "重置密码", "失败", username=f.username, ip=ip, detail="用户名与手机号不匹配"
        )
        raise FormError({"phone": "用户名与手机号不匹配，请重新获取验证码后再试"})
    new_hash = await anyio.to_thread.run_sync(hash_password, f.password)
    await User.update({User.password_hash: new_hash}).where(User.id == user["id"])
    await end_user_sessions(user["id"])
    await audit.record("重置密码", username=f.username, user_id=user["id"], ip=ip)
    return int(user["id"])


async def ensure_admin(username: str, password: str) -> tuple[bool, str]:
    """Create the platform admin when none exists. Returns (created, password used)."""
    if await User.exists().where(User.role == UserRole.PLATFORM_ADMIN):
        return False, ""
    password = password or secrets.token_urlsafe(12)
    await User.insert(
        User(
            username=username,
            password_hash=hash_password(password),
            name="平台管理员",
            role=UserRole.PLATFORM_ADMIN,
        )
    )
    return True, password


async def purge_old_records() -> None:
    """Throttling records are needed for a day at most (the daily code cap)."""
    await LoginAttempt.delete().where(LoginAttempt.at < now() - timedelta(days=2))
    await SmsCode.delete().where(SmsCode.created_at < now() - timedelta(days=2))
