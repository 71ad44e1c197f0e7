"""Notifications people choose (#12): every message of a :class:`NotifyKind` goes out
through :func:`send`, which reads the receiving account's choices (通知设置).

Each message has one receiving account:

- 注册审核结果 and 器具即将到期: the enterprise's main account (its 企业管理员, or for a
  协议客户 its first 协议用户);
- 预约审核结果, 证书已出具 and 检测状态变化: the account that submitted the booking (the
  main account when that account was deleted).

The account chooses per kind: 短信, 邮件, both or neither. Without a choice it gets what it
got before the choice existed: an SMS, and nothing for 检测状态变化 (which had no message).
The SMS goes to the phone that message has always gone to (the booking's 手机, the
enterprise's contact), the e-mail to the account's 邮箱. The 验证码 is not routed here: it
always goes by SMS (``accounts.send_code``).

One event is notified once: its key is the SMS's dedupe key, and the e-mail's with
``email:`` in front; once either exists, the event is not sent again (a daily reminder
does not follow an account that switched from SMS to e-mail with a second copy).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.db import write_transaction
from app.enums import Channel, NotifyKind, UserRole
from app.security.sessions import CurrentUser
from app.services import audit, mail, sms
from app.services.errors import FormError
from app.services.validators import email_address
from app.settings import get_settings
from app.tables import Booking, EmailMessage, NotifyChoice, Order, SmsMessage, User

Channels = frozenset[Channel]
SMS_ONLY: Channels = frozenset({Channel.SMS})
NONE: Channels = frozenset()
# What an account gets before it chooses: what was sent before choices existed.
DEFAULTS: dict[NotifyKind, Channels] = {
    NotifyKind.REGISTRATION: SMS_ONLY,
    NotifyKind.BOOKING_REVIEW: SMS_ONLY,
    NotifyKind.CERTIFICATE: SMS_ONLY,
    NotifyKind.DUE_REMINDER: SMS_ONLY,
    NotifyKind.ITEM_STATUS: NONE,
}
# Who receives what (see the module's note).
ENTERPRISE_KINDS = (NotifyKind.REGISTRATION, NotifyKind.DUE_REMINDER)
BOOKING_KINDS = (NotifyKind.BOOKING_REVIEW, NotifyKind.CERTIFICATE, NotifyKind.ITEM_STATUS)
MAIN_ROLES = (UserRole.ENTERPRISE_ADMIN, UserRole.CONTRACT_USER)
NEED_ADDRESS = "选择了邮件通知，请先填写邮箱"
EMAIL_KEY = "email:"


def parse_choices(text: str) -> dict[NotifyKind, Channels]:
    """Stored choices (JSON); anything unreadable counts as no choice (the default)."""
    try:
        raw = json.loads(text or "{}")
    except ValueError:
        return {}
    if not isinstance(raw, dict):
        return {}
    choices: dict[NotifyKind, Channels] = {}
    for key, values in raw.items():
        kind = NotifyKind.parse(key)
        if kind is not None and isinstance(values, list):
            choices[kind] = frozenset(c for v in values if (c := Channel.parse(v)) is not None)
    return choices


@dataclass(frozen=True)
class Recipient:
    """The account a message goes to: its 邮箱 and its choices (None: no account)."""

    account_id: int | None
    email: str = ""
    choices: Mapping[NotifyKind, Channels] = field(default_factory=dict)

    def channels(self, kind: NotifyKind) -> Channels:
        return self.choices.get(kind, DEFAULTS[kind])


async def recipients(user_ids: Iterable[int]) -> dict[int, Recipient]:
    """The accounts ``user_ids`` with their 邮箱 and choices (two queries)."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    chosen = {
        r["user"]: parse_choices(r["choices"])
        for r in await NotifyChoice.select(NotifyChoice.user, NotifyChoice.choices).where(
            NotifyChoice.user.is_in(ids)
        )
    }
    return {
        r["id"]: Recipient(r["id"], r["email"], chosen.get(r["id"], {}))
        for r in await User.select(User.id, User.email).where(User.id.is_in(ids))
    }


async def main_account_ids(enterprise_ids: Iterable[int]) -> dict[int, int]:
    """Each enterprise's main account: its 企业管理员, else its first 协议用户."""
    ids = sorted(set(enterprise_ids))
    if not ids:
        return {}
    rows = (
        await User.select(User.id, User.enterprise, User.role)
        .where(User.enterprise.is_in(ids) & User.role.is_in(list(MAIN_ROLES)))
        .order_by(User.id)
    )
    main: dict[int, int] = {}
    # An 企业管理员 first, then the oldest 协议用户.
    for r in sorted(rows, key=lambda r: (r["role"] != UserRole.ENTERPRISE_ADMIN, r["id"])):
        main.setdefault(r["enterprise"], r["id"])
    return main


async def main_accounts(enterprise_ids: Iterable[int]) -> dict[int, Recipient]:
    """Each enterprise's main account as a Recipient (enterprises without one: none)."""
    main = await main_account_ids(enterprise_ids)
    found = await recipients(main.values())
    return {ent: found[user] for ent, user in main.items() if user in found}


async def booking_recipient(booking_id: int | None, enterprise_id: int) -> Recipient:
    """The account that submitted the booking; its enterprise's main account when that
    account is gone (or there is no booking); no account at all: the defaults."""
    user_id = None
    if booking_id is not None:
        row = await Booking.select(Booking.created_by).where(Booking.id == booking_id).first()
        user_id = row["created_by"] if row else None
    if user_id is None:
        user_id = (await main_account_ids([enterprise_id])).get(enterprise_id)
    if user_id is None:
        return Recipient(None)
    return (await recipients([user_id])).get(user_id, Recipient(None))


async def order_recipient(order_id: int) -> tuple[Recipient, str]:
    """Who hears of an order's instruments (证书已出具, 检测状态变化), and the phone for an
    SMS: the booking's submitter and 手机; the enterprise's main account and contact phone
    when the order has no booking."""
    row = (
        await Order.select(
            Order.booking,
            Order.enterprise,
            Order.booking.mobile.as_alias("mobile"),
            Order.enterprise.contact_phone.as_alias("contact_phone"),
        )
        .where(Order.id == order_id)
        .first()
    )
    if row is None:
        return Recipient(None), ""
    to = await booking_recipient(row["booking"], row["enterprise"])
    return to, row["mobile"] or row["contact_phone"] or ""


def email_body(text: str) -> str:
    settings = get_settings()
    return (
        f"{text}\n\n"
        f"{settings.public_url}/login\n"
        f"此邮件由计量客户服务平台（{settings.institute_name}）自动发送，请勿直接回复。"
        "如不想再收到此类邮件，请登录平台在【通知设置】中修改。\n"
    )


async def send(
    kind: NotifyKind,
    to: Recipient,
    *,
    phone: str,
    text: str,
    params: dict[str, str],
    key: str,
    about: str = "",
) -> Channels:
    """Send one message of ``kind`` to ``to`` by the channels it chose: the SMS to
    ``phone`` (``params`` for providers with templates), the e-mail to its 邮箱, subject
    the kind's name (and ``about``). ``key`` names the event: it is sent once.

    E-mail chosen but the 邮箱 emptied since (用户管理 may): an SMS rather than nothing.
    Returns the channels that queued a message now.
    """
    channels = to.channels(kind)
    if Channel.EMAIL in channels and not to.email:
        channels = (channels - {Channel.EMAIL}) | SMS_ONLY
    if not channels or await _notified(key):
        return NONE
    queued: set[Channel] = set()
    if Channel.SMS in channels and phone:
        if await sms.queue(phone, kind, text, params, dedupe_key=key):
            queued.add(Channel.SMS)
    if Channel.EMAIL in channels:
        subject = f"{sms.SIGN}{kind.label}" + (f"：{about}" if about else "")
        if await mail.queue(to.email, kind, subject, email_body(text), EMAIL_KEY + key):
            queued.add(Channel.EMAIL)
    return frozenset(queued)


async def _notified(key: str) -> bool:
    """Whether the event ``key`` went out already, by either channel."""
    return bool(
        await SmsMessage.exists().where(SmsMessage.dedupe_key == key)
        or await EmailMessage.exists().where(EmailMessage.dedupe_key == EMAIL_KEY + key)
    )


# --------------------------------------------------------------------------- 通知设置


async def kinds_for(user: CurrentUser) -> tuple[NotifyKind, ...]:
    """The kinds ``user`` receives, so 通知设置 offers those only. 注册审核结果 is never one:
    it goes out before its account can log in."""
    if user.enterprise_id is None:
        return ()
    main = (await main_account_ids([user.enterprise_id])).get(user.enterprise_id)
    offered = {*BOOKING_KINDS, *((NotifyKind.DUE_REMINDER,) if main == user.id else ())}
    return tuple(k for k in NotifyKind if k in offered)


async def settings_of(user: CurrentUser) -> dict[str, Any]:
    """通知设置 as the form shows it: ``email`` and ``{kind}.{channel}`` = "1" when ticked."""
    me = (await recipients([user.id])).get(user.id, Recipient(user.id))
    values: dict[str, Any] = {"email": me.email}
    for kind in NotifyKind:
        for channel in me.channels(kind):
            values[f"{kind}.{channel}"] = "1"
    return values


@dataclass(frozen=True)
class NotifyInput:
    """The 通知设置 form: 邮箱 and, per kind offered, the channels ticked."""

    email: str
    choices: dict[NotifyKind, Channels]

    @classmethod
    def from_form(cls, form: Mapping[str, str], kinds: Iterable[NotifyKind]) -> NotifyInput:
        return cls(
            email=form.get("email", "").strip(),
            choices={
                kind: frozenset(c for c in Channel if form.get(f"{kind}.{c}")) for kind in kinds
            },
        )


async def save_settings(user: CurrentUser, data: NotifyInput, ip: str) -> None:
    """Save the account's own 邮箱 and choices, all or nothing. A bad 邮箱, or e-mail
    ticked without one, is refused beside the field."""
    address, error = email_address(data.email)
    if error is None and not address and any(Channel.EMAIL in c for c in data.choices.values()):
        error = NEED_ADDRESS
    if error:
        raise FormError({"email": error})
    mine = NotifyChoice.user == user.id
    row = await NotifyChoice.select(NotifyChoice.choices).where(mine).first()
    # Kinds not on the form (another role's) keep what was stored.
    stored = parse_choices(row["choices"]) if row else {}
    merged = {**stored, **data.choices}
    text = json.dumps(
        {str(k): sorted(str(c) for c in merged[k]) for k in NotifyKind if k in merged},
        ensure_ascii=False,
    )
    async with write_transaction():
        await User.update({User.email: address}).where(User.id == user.id)
        # An upsert: two saves at once must not trip over the one row per account.
        await NotifyChoice.insert(NotifyChoice(user=user.id, choices=text)).on_conflict(
            target=NotifyChoice.user,
            action="DO UPDATE",
            values=[NotifyChoice.choices, NotifyChoice.updated_at],
        )
    summary = "；".join(
        f"{k.label}：{'、'.join(c.label for c in Channel if c in data.choices[k]) or '不通知'}"
        for k in data.choices
    )
    await audit.record("通知设置", user=user, ip=ip, detail=f"邮箱：{address or '无'}；{summary}")
