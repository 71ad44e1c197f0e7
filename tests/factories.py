"""Rows put straight into the database, for tests whose subject is not how they are made.

Each factory fills every column a test does not care about and takes the ones it does as
keywords: ``await make_enterprise(7, contact_phone=MOBILE)``. Times come from the app's
clock. A test about registering, booking or importing goes through the forms instead
(``tests/helpers.py``).
"""

from __future__ import annotations

from itertools import count
from typing import Any

from app.clock import now, today
from app.db import bulk_insert
from app.fields import INSTRUMENT_FIELDS
from app.security.passwords import hash_password
from app.services.bookings import key_hash
from app.tables import (
    AuditLog,
    Booking,
    BookingItem,
    Certificate,
    EmailMessage,
    Enterprise,
    Instrument,
    Order,
    OrderItem,
    SmsCode,
    SmsMessage,
    User,
)
from tests.helpers import BOOKING, uscc

_booking_numbers = count(1)


async def make_enterprise(n: int = 1, **over: Any) -> Enterprise:
    """An approved company, ``测试计量单位{n}`` with the 统一社会信用代码 ``uscc(n)``."""
    values: dict[str, Any] = {
        "name": f"测试计量单位{n}",
        "uscc": uscc(n),
        "address": f"南京市光华路{n}号",
        "contact_name": "王五",
        "contact_phone": f"1380000{n:04d}",
        "status": "approved",
        **over,
    }
    enterprise = Enterprise(**values)
    await enterprise.save()
    return enterprise


async def make_user(enterprise: Enterprise, password: str = "Secret123x", **over: Any) -> User:
    """The company's ``enterprise_admin``, logging in with ``password``."""
    values: dict[str, Any] = {
        "role": "enterprise_admin",
        "enterprise": enterprise.id,
        "username": f"company{enterprise.id}",
        "password_hash": hash_password(password),
        "phone": enterprise.contact_phone,
        **over,
    }
    user = User(**values)
    await user.save()
    return user


def _item(k: int) -> dict[str, Any]:
    return {"name": f"器具{k}", "serial_no": f"XL-{k:03d}", "model": "M-1"}


async def make_booking(
    enterprise: Enterprise,
    items: int | list[dict[str, Any]] = 3,
    status: str = "pending",
    **over: Any,
) -> Booking:
    """A booking of ``enterprise`` with its 器具列表: ``items`` rows (a number, or each row's
    columns), written as the app writes them (each with its item_key, in one go however
    many). Anything but a 草稿 has a 预约单号 and was submitted now."""
    rows = [_item(k) for k in range(1, items + 1)] if isinstance(items, int) else items
    values: dict[str, Any] = {
        **BOOKING,
        "enterprise": enterprise.id,
        "status": status,
        "item_count": sum(int(row.get("quantity", 1)) for row in rows),
        "item_rows": len(rows),
    }
    if status != "draft":
        stamp = now()
        values["booking_no"] = f"YY{stamp:%Y%m%d}{next(_booking_numbers):06d}"
        values["submitted_at"] = stamp
    values.update(over)
    booking = Booking(**values)
    await booking.save()
    defaults = {f.key: f.default for f in INSTRUMENT_FIELDS}
    await bulk_insert(
        BookingItem,
        [
            {
                "booking": booking.id,
                "enterprise": enterprise.id,
                **defaults,
                **row,
                "item_key": key_hash(row),
            }
            for row in rows
        ],
    )
    return booking


async def make_instrument(enterprise: Enterprise, **over: Any) -> Instrument:
    """An instrument of the company's 器具托管 register."""
    values: dict[str, Any] = {
        "enterprise": enterprise.id,
        "name": "压力表",
        "serial_no": "P0001",
        "model": "Y-100",
        **over,
    }
    instrument = Instrument(**values)
    await instrument.save()
    return instrument


async def make_sms_code(phone: str, **over: Any) -> SmsCode:
    """A code already sent to ``phone`` (its hash is no code's: it never matches)."""
    values: dict[str, Any] = {
        "phone": phone,
        "purpose": "register",
        "code_hash": "x",
        "ip": "1.1.1.1",
        "expires_at": now(),
        **over,
    }
    code = SmsCode(**values)
    await code.save()
    return code


async def make_certificate(enterprise: Enterprise, k: int, paid: bool = True) -> Certificate:
    """Certificate ``ZS{k:05d}`` of one instrument at the lab (its order, ``DD{k:05d}``,
    made for it), without a file: enough for the lists that show it."""
    order = Order(order_no=f"DD{k:05d}", enterprise=enterprise.id)
    await order.save()
    item = OrderItem(
        order=order.id,
        enterprise=enterprise.id,
        unique_no=f"WY{k:05d}",
        name=f"器具{k}",
        serial_no=f"XL-{k:03d}",
        model="M-1",
    )
    await item.save()
    certificate = Certificate(
        cert_no=f"ZS{k:05d}",
        item=item.id,
        enterprise=enterprise.id,
        completed_on=today(),
        paid=paid,
    )
    await certificate.save()
    return certificate


async def make_sms_message(phone: str, **over: Any) -> SmsMessage:
    """An SMS in the 短信记录, sent now."""
    values: dict[str, Any] = {
        "phone": phone,
        "kind": "booking_review",
        "text": "【计量客户服务平台】您的预约已通过审核。",
        "status": "sent",
        "sent_at": now(),
        **over,
    }
    message = SmsMessage(**values)
    await message.save()
    return message


async def make_email_message(address: str, **over: Any) -> EmailMessage:
    """An e-mail in the 邮件记录, sent now."""
    values: dict[str, Any] = {
        "address": address,
        "kind": "certificate",
        "subject": "【计量客户服务平台】证书已出具",
        "body": "您送检的器具的证书已出具。",
        "status": "sent",
        "attempts": 1,
        "provider_ref": "outbox",
        "sent_at": now(),
        **over,
    }
    message = EmailMessage(**values)
    await message.save()
    return message


async def make_audit_entry(username: str, **over: Any) -> AuditLog:
    """A line of the 操作日志."""
    values: dict[str, Any] = {
        "username": username,
        "ip": "192.168.100.200",
        "event": "登录",
        "detail": "密码登录",
        **over,
    }
    entry = AuditLog(**values)
    await entry.save()
    return entry
