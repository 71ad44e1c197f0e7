"""Statuses and roles: the values stored in the database, each with its Chinese label.

This module imports nothing from the rest of the app, so tables, services, routes,
templates and workers can all use it. Stored values are English; Chinese is for display
(``label``), and ``tone`` is the colour of the status's badge (the ``badge`` filter).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self


class _Labelled(StrEnum):
    """A StrEnum whose members are written ``NAME = value, label[, tone]``."""

    label: str
    tone: str  # muted / pending / ok / rejected: the badge-<tone> class of app.css

    def __new__(cls, value: str, label: str, tone: str = "muted") -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        member.tone = tone
        return member

    @classmethod
    def parse(cls, text: str | None) -> Self | None:
        """The member whose value or Chinese label is ``text``; None for anything else
        (an empty filter, 全部, a typo). Labels are accepted so that links and bookmarks
        made while the label was the stored value keep working."""
        for member in cls:
            if text in (member.value, member.label):
                return member
        return None


class BookingStatus(_Labelled):
    """预约送检: a draft while the form is filled, then submitted and reviewed."""

    DRAFT = "draft", "草稿", "muted"
    PENDING = "pending", "待审核", "pending"
    APPROVED = "approved", "已通过", "ok"
    REJECTED = "rejected", "已驳回", "rejected"

    @classmethod
    def submitted(cls) -> tuple[BookingStatus, ...]:
        """What a submitted booking can be (the review page's and the API's filter)."""
        return (cls.PENDING, cls.APPROVED, cls.REJECTED)

    @classmethod
    def editable(cls) -> tuple[BookingStatus, ...]:
        """While the customer may still change the booking."""
        return (cls.DRAFT, cls.PENDING, cls.REJECTED)


class EnterpriseStatus(_Labelled):
    """注册审核 of a registered enterprise; a 协议客户 is approved when it is added, a
    subsidiary (企业管理) when its parent saves it. Only an approved one's accounts log in:
    a parent 停用 (disables) a subsidiary it may not delete."""

    PENDING = "pending", "待审核", "pending"
    APPROVED = "approved", "已通过", "ok"
    REJECTED = "rejected", "已驳回", "rejected"
    DISABLED = "disabled", "已停用", "muted"


class SmsStatus(_Labelled):
    """短信记录 and 邮件记录: queued, claimed by a worker (sending), then sent or failed (and
    retried)."""

    QUEUED = "queued", "待发送", "pending"
    SENDING = "sending", "发送中", "pending"
    SENT = "sent", "已发送", "ok"
    FAILED = "failed", "发送失败", "rejected"


class NotifyKind(_Labelled):
    """通知设置: the messages an account chooses channels for, in the order the page lists
    them. The 验证码 is not one: it always goes by SMS. The values are the SMS kinds that
    短信记录 stores (``item_status`` is new with the choice)."""

    REGISTRATION = "registration", "注册审核结果"
    BOOKING_REVIEW = "booking_review", "预约审核结果"
    CERTIFICATE = "certificate", "证书已出具"
    DUE_REMINDER = "due_reminder", "器具即将到期"
    ITEM_STATUS = "item_status", "检测状态变化"


class Channel(_Labelled):
    """How a notification goes out."""

    SMS = "sms", "短信"
    EMAIL = "email", "邮件"


class UserRole(_Labelled):
    """What a login account may do; only a platform admin has no enterprise."""

    PLATFORM_ADMIN = "platform_admin", "平台管理员"
    ENTERPRISE_ADMIN = "enterprise_admin", "企业管理员"
    SUB_ACCOUNT = "sub_account", "子账户"
    CONTRACT_USER = "contract_user", "协议用户"


class ItemStatus(_Labelled):
    """检测进度 of an instrument at the lab: received, tested, ready, collected."""

    AWAITING = "awaiting", "待收样", "muted"
    TESTING = "testing", "检测中", "pending"
    READY = "ready", "待取件", "ok"
    COLLECTED = "collected", "已取件", "muted"


class JobStatus(_Labelled):
    """A 下载证书 packaging job."""

    QUEUED = "queued", "排队中", "pending"
    RUNNING = "running", "打包中", "pending"
    DONE = "done", "已完成", "ok"
    FAILED = "failed", "失败", "rejected"
