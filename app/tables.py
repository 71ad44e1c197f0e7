"""Piccolo tables of the platform.

Columns are planned up front: SQLite cannot ALTER a column, so later issues add tables
rather than change these.
"""

from __future__ import annotations

from piccolo.columns import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import Column, OnDelete
from piccolo.table import Table

from app.clock import Now
from app.enums import BookingStatus, EnterpriseStatus, ItemStatus, JobStatus, SmsStatus
from app.fields import INSTRUMENT_FIELDS, REGISTER_FIELDS, Field


class Enterprise(Table):
    """A customer company (送检单位).

    Registered ones wait for review; 协议客户 are added by admins, approved at once.
    """

    name = Varchar(length=200)
    uscc = Varchar(length=18, unique=True)  # 统一社会信用代码
    address = Varchar(length=300, default="")
    contact_name = Varchar(length=50, default="")
    contact_phone = Varchar(length=20, default="")
    status = Varchar(length=20, default=EnterpriseStatus.PENDING.value, index=True)
    reject_reason = Text(default="")
    is_contract = Boolean(default=False)  # 协议客户
    contract_no = Varchar(length=100, default="")
    # 企业管理: subsidiaries (indexed: the tenancy tree is walked down from a parent)
    parent = ForeignKey("self", null=True, default=None, index=True)
    region_code = Varchar(length=6, default="")  # 行政区域: the district's GB/T 2260 code
    phone = Varchar(length=30, default="")  # 单位电话
    created_at = Timestamptz(default=Now())
    reviewed_at = Timestamptz(null=True, default=None)


class EnterpriseLicence(Table):
    """企业管理 › 证件 (营业执照 and the like): the file lies below DATA_DIR, outside the web
    root, and is served only to the enterprise, the enterprises above it and admins."""

    enterprise = ForeignKey(Enterprise, index=True)
    filename = Varchar(length=200, default="")  # as uploaded, for the download's name
    media_type = Varchar(length=50)  # from the content: application/pdf, image/jpeg, image/png
    size = Integer(default=0)
    sha256 = Varchar(length=64, default="")
    path = Varchar(length=300)  # below DATA_DIR
    uploaded_at = Timestamptz(default=Now())


class ContractPhone(Table):
    """A contract contact phone of a 协议客户: it logs in by SMS code, no registration."""

    enterprise = ForeignKey(Enterprise)
    phone = Varchar(length=20, unique=True)


class Department(Table):
    """部门管理: an enterprise's departments, a tree through ``parent``.

    部门代码 is unique within the enterprise (checked by the service, under a lock on the
    enterprise's row). Deleting a parent or a department with users is refused by the
    service; SET NULL only keeps an enterprise's own deletion from being blocked.
    """

    enterprise = ForeignKey(Enterprise, index=True)
    name = Varchar(length=100)  # 部门名称
    parent = ForeignKey("self", null=True, default=None, on_delete=OnDelete.set_null)
    level = Varchar(length=20, default="")  # 部门级别
    code = Varchar(length=50, default="")  # 部门代码
    created_at = Timestamptz(default=Now())


class User(Table, tablename="app_user"):
    """A login account. ``enterprise`` is empty only for platform admins."""

    username = Varchar(length=50, unique=True)
    password_hash = Varchar(length=200, default="")
    name = Varchar(length=50, default="")
    phone = Varchar(length=20, default="", index=True)
    enterprise = ForeignKey(Enterprise, null=True, default=None)
    role = Varchar(length=20)  # a UserRole
    is_active = Boolean(default=True)
    created_at = Timestamptz(default=Now())
    # 用户管理's 部门 (added later, hence nullable).
    department = ForeignKey(
        Department, null=True, default=None, index=True, on_delete=OnDelete.set_null
    )
    last_login_at = Timestamptz(null=True, default=None)
    # 邮箱 (#12): where the notifications the account chose by e-mail go; empty: none.
    email = Varchar(length=254, default="")


class SmsCode(Table):
    """An SMS verification code, stored only as a hash, bound to phone and purpose."""

    phone = Varchar(length=20, index=True)
    purpose = Varchar(length=20)  # register / login / reset
    code_hash = Varchar(length=64)
    ip = Varchar(length=64, index=True)
    created_at = Timestamptz(default=Now(), index=True)
    expires_at = Timestamptz()
    attempts = Integer(default=0)
    used = Boolean(default=False)


class SmsMessage(Table):
    """Every SMS the platform sends (短信记录); in outbox mode this is where they are read."""

    phone = Varchar(length=20, index=True)
    kind = Varchar(length=30)  # code / registration / booking_review / certificate / due_reminder
    text = Text()
    params = Text(default="{}")  # JSON template parameters for providers with templates
    status = Varchar(length=20, default=SmsStatus.QUEUED.value)
    error = Text(default="")
    provider_ref = Varchar(length=100, default="")
    dedupe_key = Varchar(length=200, null=True, default=None, unique=True)
    created_at = Timestamptz(default=Now(), index=True)
    sent_at = Timestamptz(null=True, default=None)


class EmailMessage(Table):
    """Every e-mail the platform sends (邮件记录), as SmsMessage is for SMS; in outbox mode
    this is where they are read. ``status`` takes SmsStatus's values (the same four states)."""

    address = Varchar(length=254, index=True)
    kind = Varchar(length=30)  # a NotifyKind
    subject = Varchar(length=200)
    body = Text()
    status = Varchar(length=20, default=SmsStatus.QUEUED.value)
    error = Text(default="")  # the last try's error, kept after a later success too
    attempts = Integer(default=0)  # tries that reached the backend
    provider_ref = Varchar(length=200, default="")  # "outbox", or the SMTP server's answer
    dedupe_key = Varchar(length=200, null=True, default=None, unique=True)
    created_at = Timestamptz(default=Now(), index=True)
    sent_at = Timestamptz(null=True, default=None)


class NotifyChoice(Table):
    """通知设置: an account's channels per message kind. No row: the default (SMS only)."""

    user = ForeignKey(User, unique=True)  # deleting the account deletes its choices
    choices = Text(default="{}")  # JSON {NotifyKind: [Channel, ...]}; a kind missing: default
    updated_at = Timestamptz(default=Now())


class LoginAttempt(Table):
    """Password login attempts, for throttling (5 failures in 15 minutes)."""

    username = Varchar(length=50, index=True)
    ip = Varchar(length=64, index=True)
    success = Boolean(default=False)
    at = Timestamptz(default=Now(), index=True)


class AuditLog(Table):
    """操作日志: append-only record of security-relevant events."""

    at = Timestamptz(default=Now(), index=True)
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
    created_at = Timestamptz(default=Now())
    last_seen = Timestamptz(default=Now())


class BasicInfo(Table):
    """基础信息: an enterprise's defaults for every new booking (系统管理)."""

    enterprise = ForeignKey(Enterprise, unique=True)
    client_name = Varchar(length=200, default="")  # 委托单位名称
    cert_name = Varchar(length=200, default="")  # 证书单位名称
    client_address = Varchar(length=300, default="")  # 委托单位地址
    cert_address = Varchar(length=300, default="")  # 证书单位地址
    contact_name = Varchar(length=50, default="")  # 委托单位联系人
    contact_mobile = Varchar(length=20, default="")  # 委托单位联系人手机
    contact_phone = Varchar(length=30, default="")  # 委托单位电话
    updated_at = Timestamptz(default=Now())


class Booking(Table):
    """预约送检: a booking, from a draft (kept while the form is filled) to review."""

    enterprise = ForeignKey(Enterprise, index=True)
    # Deleting a sub-account must not delete the bookings it made.
    created_by = ForeignKey(User, null=True, default=None, index=True, on_delete=OnDelete.set_null)
    booking_no = Varchar(length=30, null=True, default=None, unique=True)  # 预约单号
    status = Varchar(length=10, default=BookingStatus.DRAFT.value, index=True)
    client_name = Varchar(length=200, default="")  # 委托单位名称
    client_address = Varchar(length=300, default="")  # 委托单位地址
    contact_name = Varchar(length=50, default="")  # 联系人
    phone = Varchar(length=30, default="")  # 电话
    cert_name = Varchar(length=200, default="")  # 证书单位名称
    cert_address = Varchar(length=300, default="")  # 证书单位地址
    mobile = Varchar(length=20, default="")  # 手机 (receives the review SMS)
    expected_date = Varchar(length=10, default="")  # 预计送检日期, ISO date (kept as typed)
    sender = Varchar(length=50, default="")  # 送检人
    item_count = Integer(default=0)  # 器具数量: the sum of the rows' quantities
    # The 器具列表's rows (its pager and 共 N 行), kept with item_count (issue #11).
    item_rows = Integer(default=0)
    reject_reason = Text(default="")
    created_at = Timestamptz(default=Now())
    submitted_at = Timestamptz(null=True, default=None)
    reviewed_at = Timestamptz(null=True, default=None)
    # Its lab orders, kept by triggers (migration 08:10:01; never written by the app): index
    # booking (reviewed_at) WHERE approved and order_count = 0 lists 待生成大单的预约.
    order_count = Integer(default=0)


def _column(field: Field) -> Column:
    """The column of an instrument field: VARCHAR of its max length, INTEGER or DATE."""
    if field.kind == "int":
        return Integer(default=field.default, null=field.default is None, index=field.index)
    if field.kind == "date":
        return Date(default=None, null=True, index=field.index)
    return Varchar(length=field.max_length, default=field.default, index=field.index)


def _columns(name: str, fields: tuple[Field, ...]) -> type:
    """A mixin holding the columns of ``fields`` (Piccolo copies a mixin's columns into each
    table that inherits them)."""
    return type(name, (), {f.key: _column(f) for f in fields})


# 器具名称, 设备编号, 出厂编号 ... 备注: see app/fields.py.
InstrumentColumns = _columns("InstrumentColumns", INSTRUMENT_FIELDS)
# The same, and 检定周期（月）, 上次检定日期, 有效期至.
RegisterColumns = _columns("RegisterColumns", REGISTER_FIELDS)


class BookingItem(InstrumentColumns, Table):
    """One instrument row of a booking's 器具列表."""

    booking = ForeignKey(Booking, index=True)
    enterprise = ForeignKey(Enterprise, index=True)  # the tenancy scope, without a join
    # What makes two rows the same instrument (services/bookings.item_key), hashed: with
    # the index on (booking, item_key) 【添加器具】 finds a duplicate without reading the
    # whole list (issue #11). Filled for the rows of bookings that can still change.
    item_key = Varchar(length=32, default="")


class Instrument(RegisterColumns, Table):
    """器具托管: an instrument in the enterprise's register, with its due date.

    (enterprise, serial_no, model, name) is unique: an import updates instead of duplicating.
    """

    enterprise = ForeignKey(Enterprise, index=True)
    created_at = Timestamptz(default=Now())
    updated_at = Timestamptz(default=Now())


# ---------------------------------------------------------------- 检测业务 and 证书管理


class Order(Table, tablename="lab_order"):
    """检测业务: the lab's order (大单) made from an approved booking."""

    order_no = Varchar(length=50, unique=True)  # 大单号
    booking = ForeignKey(Booking, null=True, default=None, on_delete=OnDelete.set_null)
    enterprise = ForeignKey(Enterprise, index=True)
    created_at = Timestamptz(default=Now())
    # Its instruments without a certificate yet, kept by triggers (migration 08:00:01; never
    # written by the app): index lab_order (created_at) WHERE waiting > 0 finds late orders.
    waiting = Integer(default=0)


class OrderItem(Table):
    """An instrument at the lab, known by its 唯一性号, with its 检测进度."""

    order = ForeignKey(Order, index=True)
    enterprise = ForeignKey(Enterprise, index=True)  # the tenancy scope, without a join
    unique_no = Varchar(length=50, unique=True)  # 唯一性号
    # Its order's 大单号, kept by triggers (migration 08:20:01; never written by the app):
    # 检测进度 finds and sorts instruments by it without a join.
    order_no = Varchar(length=50, default="")
    name = Varchar(length=100)  # 器具名称
    serial_no = Varchar(length=100, default="")  # 出厂编号
    model = Varchar(length=100, default="")  # 型号规格
    equipment_no = Varchar(length=100, default="")  # 设备编号
    status = Varchar(length=20, default=ItemStatus.AWAITING, index=True)
    status_at = Timestamptz(default=Now())  # when the status last changed
    # Its certificates (certificate.item is not unique), kept by triggers as waiting is.
    certificates = Integer(default=0)


class Certificate(Table):
    """证书管理: the certificate of one instrument; its current file is ``sha256``."""

    cert_no = Varchar(length=50, unique=True)  # 证书编号
    item = ForeignKey(OrderItem, index=True)
    enterprise = ForeignKey(Enterprise, index=True)
    completed_on = Date(null=True, default=None, index=True)  # 完工日期
    paid = Boolean(default=False)  # 缴费状态
    version = Integer(default=1)  # 1 for the first file, +1 for each replacement
    sha256 = Varchar(length=64, default="")  # of the stamped file now issued
    downloaded_at = Timestamptz(null=True, default=None)  # 下载状态
    created_at = Timestamptz(default=Now())
    updated_at = Timestamptz(default=Now())


class CertificateFile(Table):
    """Every stamped file ever issued: a replaced one still verifies, as superseded."""

    certificate = ForeignKey(Certificate, index=True)
    version = Integer()
    sha256 = Varchar(length=64, unique=True)  # of the stamped file
    source_sha256 = Varchar(length=64, default="")  # of the file the lab sent
    path = Varchar(length=300)  # below DATA_DIR
    size = Integer(default=0)
    issued_at = Timestamptz(default=Now())
    superseded_at = Timestamptz(null=True, default=None)


class DownloadJob(Table):
    """【下载证书】: one zip packaged by a job; the page polls its progress."""

    key = Varchar(length=40, unique=True)  # unguessable, in URLs
    enterprise = ForeignKey(Enterprise, index=True)
    user_id = Integer(null=True, default=None)
    certificate_ids = Text(default="[]")  # JSON list
    status = Varchar(length=20, default=JobStatus.QUEUED)
    total = Integer(default=0)
    done = Integer(default=0)
    path = Varchar(length=300, default="")  # the finished zip, below DATA_DIR
    error = Text(default="")
    created_at = Timestamptz(default=Now(), index=True)
    finished_at = Timestamptz(null=True, default=None)


class FileNameRule(Table):
    """【自定义文件名】: an enterprise's rule for the file names in its zips."""

    enterprise = ForeignKey(Enterprise, unique=True)
    fields = Text(default="[]")  # JSON list of field keys, in order
    updated_at = Timestamptz(default=Now())


class RateHit(Table):
    """One request counted by a per-address limit (证书防伪查询 and the like)."""

    bucket = Varchar(length=30)
    key = Varchar(length=100)
    at = Timestamptz(default=Now(), index=True)


class Tally(Table):
    """How many rows a list holds, kept by database triggers in the same transaction as
    each write (migrations: ``tally``): one row of ``d`` (+1 / −1, or a folded sum) per
    change, per ``kind`` of list, enterprise and status. Inserting a row per change, rather
    than updating one counter row, takes no lock another writer waits for (two writers
    moving bookings between the same two statuses in opposite directions would deadlock
    on shared counter rows). app/services/tallies.py reads the sums and folds the rows."""

    kind = Varchar(length=20)
    enterprise = Integer()
    status = Varchar(length=50)  # as long as the longest status counted (操作日志's event)
    d = Integer()
