"""预约管理 (SPEC §5): 基础信息, the booking form and its draft, 预约记录, review.

Every function that takes a booking or item id takes the caller's :class:`Scope` and
filters on it; an id outside answers NotFound.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Self

from app import compiled
from app.clock import now, today
from app.db import (
    any_matches,
    bulk_insert,
    contains_pattern,
    like_sql,
    row_locks,
    write_transaction,
)
from app.enums import BookingStatus, NotifyKind
from app.fields import HISTORY_SEARCH, INSTRUMENT_FIELDS
from app.security.sessions import CurrentUser
from app.services import audit, listing, notify, tallies
from app.services.audit import Actor
from app.services.errors import Conflict, FormError, NotFound
from app.services.forms import stripped
from app.services.instrument_xlsx import read_upload, validate_fields
from app.services.listing import Cursor, Window
from app.services.tenancy import Scope, get_scoped, in_scope
from app.services.validators import mobile_error, normalize_phone, review_reason_error
from app.settings import get_settings
from app.tables import BasicInfo, Booking, BookingItem, Enterprise

STATUSES = tuple(BookingStatus)
EDITABLE = BookingStatus.editable()
ITEM_KEYS = tuple(f.key for f in INSTRUMENT_FIELDS)

# (key, label, required, max length): the booking fields of the form, in the manual's order.
BOOKING_FIELDS: tuple[tuple[str, str, bool, int], ...] = (
    ("client_name", "委托单位名称", True, 200),
    ("client_address", "委托单位地址", True, 300),
    ("contact_name", "联系人", True, 50),
    ("phone", "电话", True, 30),
    ("cert_name", "证书单位名称", True, 200),
    ("cert_address", "证书单位地址", True, 300),
    ("mobile", "手机", True, 20),
    ("expected_date", "预计送检日期", True, 10),
    ("sender", "送检人", False, 50),
)
BASIC_FIELDS: tuple[tuple[str, str, int], ...] = (
    ("client_name", "委托单位名称", 200),
    ("cert_name", "证书单位名称", 200),
    ("client_address", "委托单位地址", 300),
    ("cert_address", "证书单位地址", 300),
    ("contact_name", "委托单位联系人", 50),
    ("contact_mobile", "委托单位联系人手机", 20),
    ("contact_phone", "委托单位电话", 30),
)
# 基础信息 → booking field it prefills.
PREFILL = {
    "client_name": "client_name",
    "cert_name": "cert_name",
    "client_address": "client_address",
    "cert_address": "cert_address",
    "contact_name": "contact_name",
    "contact_mobile": "mobile",
    "contact_phone": "phone",
}
PHONE_CHARS = set("0123456789-+() 转")
# What people type for an instrument that has no 出厂编号.
NO_SERIAL = frozenset({"无", "无编号", "没有", "n/a", "na", "none"})
# How many skipped instruments a message names (the rest are counted).
NAMED_SKIPS = 5


@dataclass(frozen=True, slots=True)
class BasicInfoInput:
    """基础信息 as submitted: the value of each of :data:`BASIC_FIELDS`, stripped."""

    values: dict[str, str]

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> Self:
        return cls(stripped(form, (key for key, _, _ in BASIC_FIELDS)))


@dataclass(frozen=True, slots=True)
class BookingSubmission:
    """The booking fields of 预约送检 as submitted: the value of each of
    :data:`BOOKING_FIELDS`, stripped. 【提交】 checks them; a draft keeps them as they are."""

    values: dict[str, str]

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> Self:
        return cls(stripped(form, (key for key, _, _, _ in BOOKING_FIELDS)))


@dataclass(frozen=True, slots=True)
class BookingItemInput:
    """【添加器具】 as submitted: the instrument typed (each of ``INSTRUMENT_FIELDS``,
    stripped), the row it replaces (None: a new row) and the booking fields typed so far."""

    item: dict[str, str]
    item_id: int | None
    booking: BookingSubmission

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> Self:
        raw_id = form.get("item_id") or ""
        item_id = None
        if raw_id:
            # Not a number: id 0, which names no row, so it is NotFound as any id that is
            # not this booking's.
            item_id = int(raw_id) if raw_id.isdecimal() else 0
        return cls(stripped(form, ITEM_KEYS), item_id, BookingSubmission.from_form(form))


@dataclass(frozen=True, slots=True)
class RowsAdded:
    """What copying rows into a 器具列表 did: how many were added, and the rows skipped
    because the list already had them (or an earlier row of the same batch was them)."""

    added: int
    skipped: list[dict[str, Any]]
    # The place in the list (1-based) of the first row added: the page to show after.
    position: int = 1

    def skipped_message(self) -> str:
        """``已在列表中，跳过 2 个：温度计1（2023011001）、…``, or "" when none was skipped."""
        if not self.skipped:
            return ""
        names = "、".join(
            f"{r.get('name') or ''}（{r.get('serial_no') or '无出厂编号'}）"
            for r in self.skipped[:NAMED_SKIPS]
        )
        more = "等" if len(self.skipped) > NAMED_SKIPS else ""
        return f"已在列表中，跳过 {len(self.skipped)} 个：{names}{more}"


def _same(value: Any) -> str:
    """A value as compared for sameness: case, full-width forms and spaces ignored."""
    return "".join(unicodedata.normalize("NFKC", str(value or "")).casefold().split())


def item_key(row: Mapping[str, Any]) -> tuple[str, str, str]:
    """What makes two rows of a 器具列表 the same instrument: the same 出厂编号 and 型号规格;
    for an instrument without a 出厂编号 ("", "/", "无"), the same 器具名称 and 型号规格."""
    serial = _same(row.get("serial_no"))
    if serial in NO_SERIAL or not any(ch.isalnum() for ch in serial):
        return (_same(row.get("name")), "", _same(row.get("model")))
    return ("", serial, _same(row.get("model")))


def key_hash(row: Mapping[str, Any]) -> str:
    """:func:`item_key` as stored with each row (``booking_item.item_key``, indexed with the
    booking): a duplicate is found by one index lookup, not by reading the whole list."""
    return hashlib.blake2b("\t".join(item_key(row)).encode(), digest_size=16).hexdigest()


# ------------------------------------------------------------------------------ 基础信息


async def basic_info(scope: Scope) -> dict[str, str]:
    """基础信息: as saved, or before the first save as :func:`basic_info_state` fills it."""
    values, _ = await basic_info_state(scope)
    return values


async def basic_info_state(scope: Scope) -> tuple[dict[str, str], bool]:
    """基础信息 and whether it was saved. Until it is, it comes from the registration (单位
    名称 and 地址 for both 委托单位 and 证书单位, 联系人, 手机, 单位电话), so nothing is
    typed twice: the page and every new booking start from it."""
    row = await BasicInfo.select().where(BasicInfo.enterprise == scope.enterprise_id).first()
    if row:
        return {k: row[k] for k, _, _ in BASIC_FIELDS}, True
    ent = (
        await Enterprise.select(
            Enterprise.name,
            Enterprise.address,
            Enterprise.contact_name,
            Enterprise.contact_phone,
            Enterprise.phone,
        )
        .where(Enterprise.id == scope.enterprise_id)
        .first()
    ) or {}
    registered = {
        "client_name": ent.get("name"),
        "cert_name": ent.get("name"),
        "client_address": ent.get("address"),
        "cert_address": ent.get("address"),
        "contact_name": ent.get("contact_name"),
        "contact_mobile": ent.get("contact_phone"),
        "contact_phone": ent.get("phone"),
    }
    return {k: registered[k] or "" for k, _, _ in BASIC_FIELDS}, False


async def save_basic_info(
    scope: Scope, info: BasicInfoInput, by: CurrentUser, ip: str
) -> dict[str, str]:
    """All seven fields required; the phones checked."""
    values = dict(info.values)
    values["contact_mobile"] = normalize_phone(values["contact_mobile"])
    errors: dict[str, str] = {}
    for key, label, limit in BASIC_FIELDS:
        if not values[key]:
            errors[key] = f"请填写{label}"
        elif len(values[key]) > limit:
            errors[key] = f"{label}不能超过{limit}个字"
    if values["contact_mobile"] and (err := mobile_error(values["contact_mobile"])):
        errors["contact_mobile"] = err
    if values["contact_phone"] and not set(values["contact_phone"]) <= PHONE_CHARS:
        errors["contact_phone"] = "电话只能包含数字、空格和 - + ( )"
    if errors:
        raise FormError(errors)
    updated = (
        await BasicInfo.update({**values, "updated_at": now()})
        .where(BasicInfo.enterprise == scope.enterprise_id)
        .returning(BasicInfo.id)
    )
    if not updated:
        await BasicInfo.insert(BasicInfo(enterprise=scope.enterprise_id, **values))
    await audit.record("基础信息", user=by, ip=ip, detail=values["client_name"])
    return values


# ------------------------------------------------------------------------------ the form


async def get_booking(scope: Scope, booking_id: int) -> dict[str, Any]:
    return await get_scoped(Booking, scope, booking_id)


def _draft_of(scope: Scope) -> Any:
    return (
        (Booking.created_by == scope.user_id)
        & (Booking.status == BookingStatus.DRAFT)
        & (Booking.enterprise == scope.enterprise_id)
    )


async def find_draft(scope: Scope) -> dict[str, Any] | None:
    """The user's draft, if one has been made (reads only)."""
    return await Booking.select().where(_draft_of(scope)).first()


async def blank_draft(scope: Scope) -> dict[str, Any]:
    """The form of a draft not made yet: the booking fields prefilled from 基础信息, nothing
    stored (a GET writes nothing; the first POST that needs the draft makes it). ``id`` is
    None."""
    info = await basic_info(scope)
    return {
        **{key: "" for key, _, _, _ in BOOKING_FIELDS},
        **{PREFILL[k]: v for k, v in info.items()},
        "id": None,
        "enterprise": scope.enterprise_id,
        "status": BookingStatus.DRAFT,
        "booking_no": None,
        "item_count": 0,
        "reject_reason": "",
    }


async def open_draft(scope: Scope) -> dict[str, Any]:
    """The user's draft, made now when there is none, prefilled from 基础信息: only for a
    POST that needs it (添加器具, an import, a picker's 确定, 提交, 一键生成预约送检).

    Race-free: one draft per user is a partial unique index, so of parallel first POSTs one
    INSERT makes the draft and the others' ``ON CONFLICT DO NOTHING`` load it.
    """
    # A second round only when the draft found in conflict was submitted or deleted since.
    for _ in range(3):
        if (row := await find_draft(scope)) is not None:
            return row
        info = await basic_info(scope)
        made = (
            await Booking.insert(
                Booking(
                    enterprise=scope.enterprise_id,
                    created_by=scope.user_id,
                    status=BookingStatus.DRAFT,
                    **{PREFILL[k]: v for k, v in info.items()},
                )
            )
            .on_conflict(action="DO NOTHING")
            .returning(Booking.id)
        )
        if made:
            return await get_booking(scope, int(made[0]["id"]))
    raise Conflict("预约草稿正在被其他页面修改，请稍后重试")


async def items(booking_id: int) -> list[dict[str, Any]]:
    """Every row of a booking's 器具列表, in entry order (the lab's and the admin's view)."""
    return (
        await BookingItem.select().where(BookingItem.booking == booking_id).order_by(BookingItem.id)
    )


def list_pages(booking: Mapping[str, Any], per_page: int) -> int:
    """How many pages the booking's 器具列表 has (at least one, even empty)."""
    return max(1, math.ceil(int(booking.get("item_rows") or 0) / per_page))


def page_of(position: int, per_page: int) -> int:
    """The page of the list's ``position``-th row (1-based)."""
    return max(1, math.ceil(position / per_page))


async def items_page(booking_id: int, page: int, per_page: int) -> list[dict[str, Any]]:
    """One page of a booking's 器具列表, in entry order (the order rows were added)."""
    return await compiled.select(
        ("booking_items.page", per_page, (page - 1) * per_page),
        lambda p: (
            BookingItem.select()
            .where(BookingItem.booking == p["booking"])
            .order_by(BookingItem.id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        ),
        booking=booking_id,
    )


async def get_item(scope: Scope, booking_id: int, item_id: int) -> dict[str, Any]:
    return await get_scoped(BookingItem, scope, item_id, BookingItem.booking == booking_id)


async def find_item(scope: Scope, booking_id: int, item_id: int) -> dict[str, Any] | None:
    """A row of the booking, or None (deleted meanwhile, or not this booking's)."""
    return (
        await BookingItem.select()
        .where(
            (BookingItem.id == item_id)
            & (BookingItem.booking == booking_id)
            & in_scope(BookingItem, scope)
        )
        .first()
    )


def _booking_values(submission: BookingSubmission) -> dict[str, str]:
    """The booking fields to store: each cut to its column's length, the 手机 normalised."""
    values = {k: submission.values[k][:limit] for k, _, _, limit in BOOKING_FIELDS}
    values["mobile"] = normalize_phone(values["mobile"])
    return values


async def _editable(scope: Scope, booking_id: int) -> dict[str, Any]:
    """The booking, if it may still change. Called inside a write transaction it locks the
    row, so a review cannot approve it between this check and the write that follows."""
    booking = await get_scoped(Booking, scope, booking_id, lock=True)
    if booking["status"] not in EDITABLE:
        raise FormError({"": f"该预约{_label(booking)}，不能再修改"})
    return booking


def _label(booking: dict[str, Any]) -> str:
    return BookingStatus(booking["status"]).label


async def _recount(booking_id: int) -> dict[str, int]:
    """器具数量 (the sum of the rows' quantities) and the number of rows, counted again in
    one statement (after a 删除 or a batch); returns both."""
    rows = await Booking.raw(
        "UPDATE booking SET "
        "item_count = (SELECT COALESCE(SUM(quantity), 0) FROM booking_item WHERE booking = {}), "
        "item_rows = (SELECT COUNT(*) FROM booking_item WHERE booking = {}) "
        "WHERE id = {} RETURNING item_count, item_rows",
        booking_id,
        booking_id,
        booking_id,
    )
    if not rows:
        return {"item_count": 0, "item_rows": 0}
    return {"item_count": int(rows[0]["item_count"]), "item_rows": int(rows[0]["item_rows"])}


async def keep_draft_fields(scope: Scope, booking_id: int, submission: BookingSubmission) -> None:
    """A draft keeps whatever was typed in the booking fields (validated only at 提交)."""
    await Booking.update(_booking_values(submission)).where(
        (Booking.id == booking_id)
        & (Booking.status == BookingStatus.DRAFT)
        & in_scope(Booking, scope)
    )


@dataclass(frozen=True, slots=True)
class ItemSaved:
    """What 【添加器具】 did: the booking as it is now (its counts included), the row as
    stored, and whether it is a new row (else the edited one)."""

    booking: dict[str, Any]
    row: dict[str, Any]
    added: bool


BOOKING_KEYS = tuple(key for key, _, _, _ in BOOKING_FIELDS)
ITEM_COLUMNS = BookingItem.all_columns()


async def _keep_fields_locked(
    scope: Scope, booking_id: int, values: dict[str, str]
) -> dict[str, Any] | None:
    """A draft of the scope: its booking fields saved as typed, its row locked until the
    transaction ends (an UPDATE holds the lock it takes); None when it is not such a draft.
    One statement where a check, a lock and a save were three."""
    rows = await compiled.select(
        ("booking.keep_fields", len(scope.enterprise_ids)),
        lambda p: (
            Booking.update({getattr(Booking, k): p[k] for k in BOOKING_KEYS})
            .where(
                (Booking.id == p["id"])
                & (Booking.status == BookingStatus.DRAFT)
                & Booking.enterprise.is_in(p["scope"])  # tenancy.in_scope, with placeholders
            )
            .returning(*Booking.all_columns())
        ),
        id=booking_id,
        scope=list(scope.enterprise_ids),
        **values,
    )
    return rows[0] if rows else None


# A row the same as the one typed: the columns that say which, and where.
SAME = "SELECT id, name, serial_no, model, quantity FROM booking_item WHERE booking = {}"
# ... or the row being edited: two index lookups, not one OR (PostgreSQL's generic plan
# for "item_key = $2 OR id = $3" read every row of the booking: bench/booking.py, 5,000 rows).
SAME_OR_EDITED = f"{SAME} AND item_key = {{}} UNION ALL {SAME} AND id = {{}}"


async def _same_or_edited(booking_id: int, key: str, item_id: int | None) -> list[dict[str, Any]]:
    """The rows of the list with this :func:`key_hash`, and the row being edited: index
    lookups, whatever the length of the list."""
    if item_id is None:
        return await BookingItem.raw(f"{SAME} AND item_key = {{}}", booking_id, key)
    return await BookingItem.raw(SAME_OR_EDITED, booking_id, key, booking_id, item_id)


async def _row_number(booking_id: int, item_id: int) -> int:
    """The place of a row in its list (1-based, entry order)."""
    return await BookingItem.count().where(
        (BookingItem.booking == booking_id) & (BookingItem.id <= item_id)
    )


async def _write_row(
    scope: Scope, booking: dict[str, Any], clean: dict[str, Any], key: str, item_id: int | None
) -> dict[str, Any]:
    """The new row inserted, or the edited one updated; returns it as stored."""
    values = {k: clean[k] for k in ITEM_KEYS}
    if item_id is None:
        rows = await compiled.select(
            "booking_items.insert",
            lambda p: BookingItem.insert(
                BookingItem(
                    booking=p["booking"],
                    enterprise=p["enterprise"],
                    item_key=p["hash"],
                    **{k: p[k] for k in ITEM_KEYS},
                )
            ).returning(*ITEM_COLUMNS),
            booking=booking["id"],
            enterprise=booking["enterprise"],
            hash=key,
            **values,
        )
        return rows[0]
    rows = await compiled.select(
        ("booking_items.update", len(scope.enterprise_ids)),
        lambda p: (
            BookingItem.update(
                {BookingItem.item_key: p["hash"]}
                | {getattr(BookingItem, k): p[k] for k in ITEM_KEYS}
            )
            .where(
                (BookingItem.id == p["item"])
                & (BookingItem.booking == p["booking"])
                & BookingItem.enterprise.is_in(p["scope"])  # tenancy.in_scope
            )
            .returning(*ITEM_COLUMNS)
        ),
        item=item_id,
        booking=booking["id"],
        scope=list(scope.enterprise_ids),
        hash=key,
        **values,
    )
    if not rows:
        raise NotFound("器具不存在")
    return rows[0]


async def _count_in(booking: dict[str, Any], quantity: int, rows: int) -> None:
    """器具数量 and the row count moved by what one row changed (the booking is locked:
    nothing else changes them meanwhile), without reading the list again."""
    if not quantity and not rows:
        return
    counted = await Booking.raw(
        "UPDATE booking SET item_count = item_count + {}, item_rows = item_rows + {} "
        "WHERE id = {} RETURNING item_count, item_rows",
        quantity,
        rows,
        booking["id"],
    )
    booking["item_count"] = int(counted[0]["item_count"])
    booking["item_rows"] = int(counted[0]["item_rows"])


async def save_item(scope: Scope, booking_id: int, entry: BookingItemInput) -> ItemSaved:
    """【添加器具】: add a row, or update the row being edited (``entry.item_id``).

    A draft also keeps the booking fields typed so far, even when the row is refused; an
    instrument the list already has (:func:`item_key`) is refused beside its 出厂编号.
    The hottest handler, and as fast on a 5,000-row list as on an empty one: the draft's
    fields saved and its row locked in one UPDATE, the duplicate found by an index, the row
    written, the counts moved (nothing reads the whole list).
    """
    clean, errors = validate_fields(entry.item, INSTRUMENT_FIELDS)
    async with write_transaction():
        booking = await _keep_fields_locked(scope, booking_id, _booking_values(entry.booking))
        if booking is None:  # not a draft (待审核, 已驳回: their fields change at 提交) or gone
            booking = await _editable(scope, booking_id)
        if not errors:
            errors, saved = await _add_or_update(scope, booking, clean, entry.item_id)
            if saved is not None:
                return saved
    # Raised after the commit: the draft keeps the booking fields typed so far.
    raise FormError(errors)


async def _add_or_update(
    scope: Scope, booking: dict[str, Any], clean: dict[str, Any], item_id: int | None
) -> tuple[dict[str, str], ItemSaved | None]:
    """The row written (in the caller's transaction, the booking locked), or the message
    saying which row of the list is already this instrument."""
    key = key_hash(clean)
    found = await _same_or_edited(booking["id"], key, item_id)
    edited = next((r for r in found if r["id"] == item_id), None)
    if item_id is not None and edited is None:
        raise NotFound("器具不存在")
    same = item_key(clean)
    # The hash narrows the search; the keys themselves decide.
    twin = next((r for r in found if r["id"] != item_id and item_key(r) == same), None)
    if twin is not None:
        number = await _row_number(booking["id"], twin["id"])
        return {
            "serial_no": f"该器具已在列表中（第{number}行“{twin['name']}”，"
            "出厂编号和型号规格相同），未重复添加"
        }, None
    row = await _write_row(scope, booking, clean, key, item_id)
    old = edited["quantity"] if edited else 0
    await _count_in(booking, row["quantity"] - old, 0 if edited else 1)
    return {}, ItemSaved(booking, row, added=edited is None)


async def mark_listed(booking_id: int | None, rows: list[dict[str, Any]]) -> None:
    """Mark the rows (a picker's page) the booking's 器具列表 already has: ``in_list``. A
    form without a draft yet (None) has nothing."""
    keys = {id(r): key_hash(r) for r in rows}
    listed: set[str] = set()
    if booking_id is not None and rows:
        wanted = sorted(set(keys.values()))
        found = await BookingItem.select(BookingItem.item_key).where(
            (BookingItem.booking == booking_id) & BookingItem.item_key.is_in(wanted)
        )
        listed = {r["item_key"] for r in found}
    for r in rows:
        r["in_list"] = keys[id(r)] in listed


@dataclass(frozen=True, slots=True)
class ItemsDeleted:
    """What 【删除】 did: the rows deleted and the booking as it is now (its counts)."""

    ids: list[int]
    booking: dict[str, Any]


async def delete_items(scope: Scope, booking_id: int, item_ids: Iterable[int]) -> ItemsDeleted:
    """【删除】 the ticked rows. A row of another booking or enterprise is NotFound."""
    ids = sorted(set(item_ids))
    async with write_transaction():
        booking = await _editable(scope, booking_id)
        if not ids:
            raise FormError({"": "请先勾选要删除的器具"})
        found = await BookingItem.count().where(
            BookingItem.id.is_in(ids)
            & (BookingItem.booking == booking_id)
            & in_scope(BookingItem, scope)
        )
        if found != len(ids):
            raise NotFound("器具不存在")
        await BookingItem.delete().where(BookingItem.id.is_in(ids))
        booking.update(await _recount(booking_id))
    return ItemsDeleted(ids, booking)


def _item_values(row: dict[str, Any]) -> dict[str, Any]:
    """An instrument row's BookingItem columns (copied rows may lack some or hold None)."""
    values = {k: row.get(k) or "" for k in ITEM_KEYS}
    values["quantity"] = row.get("quantity") or 1
    return values


async def _insert_items(booking: dict[str, Any], rows: list[dict[str, Any]]) -> RowsAdded:
    """Insert the rows the list does not have yet (nor an earlier row of ``rows``)."""
    listed = await BookingItem.select(BookingItem.item_key).where(
        BookingItem.booking == booking["id"]
    )
    seen = {r["item_key"] for r in listed}
    new: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for r in rows:
        key = key_hash(r)
        if key in seen:
            skipped.append(r)
            continue
        seen.add(key)
        new.append({**_item_values(r), "item_key": key})
    await bulk_insert(
        BookingItem,
        [{"booking": booking["id"], "enterprise": booking["enterprise"], **r} for r in new],
    )
    counts = await _recount(booking["id"])
    return RowsAdded(len(new), skipped, position=counts["item_rows"] - len(new) + 1)


async def add_rows(scope: Scope, booking_id: int, rows: list[dict[str, Any]]) -> RowsAdded:
    """Copy instrument rows (from the register, history or a file) into an editable booking;
    an instrument the list already has is skipped (inside the write lock: two tabs adding
    the same instrument at once add it once)."""
    async with write_transaction():
        booking = await _editable(scope, booking_id)
        return await _insert_items(booking, rows)


async def import_items(scope: Scope, booking_id: int, data: bytes) -> RowsAdded:
    """【点击上传】: all rows or none (ImportRefused lists every error)."""
    await _editable(scope, booking_id)  # a read-only booking refuses before parsing
    # Parsing takes a while for a big file: off the event loop, so other requests go on.
    rows = await read_upload(data, INSTRUMENT_FIELDS)
    return await add_rows(scope, booking_id, rows)


# How many of a customer's booked instruments one page of 【从历史预约数据选择】 looks at, at
# most (listing.walked_window): a page is one indexed walk whatever the customer's history
# and however many rows the newest-of-each-instrument rule passes over (a customer who
# books the same instruments every year: ~11 ms at 2,000 rows, PostgreSQL, 1.6M rows). A
# search reads each row too (~3 µs a row): it looks further, ~4,000 bookings back, so an
# instrument booked in the last year or two of a large customer is found at once.
HISTORY_LOOK = 2000
HISTORY_SEARCH_LOOK = 20000


def _history_walk(scope: Scope, q: str) -> listing.Walk:
    """The walk behind :func:`history`: the booked instruments of the scope's bookings but
    drafts, by id, from the index on (enterprise, id, booking) alone; of those matching the
    search, a row is kept when no later one (of the same rows) is the same instrument
    (``item_key``: the identity the 器具列表 itself refuses twice), asked of the index on
    (enterprise, item_key, id, booking) alone."""
    ids = list(scope.enterprise_ids)
    marks = ", ".join("{}" for _ in ids)
    draft = BookingStatus.DRAFT.value
    postgres = get_settings().is_postgres

    def booked(alias: str) -> tuple[str, list[Any]]:
        """The scope's booked instruments but drafts' (rows of ``alias``)."""
        drafts = f"SELECT d.id FROM booking d WHERE d.enterprise IN ({marks}) AND d.status = {{}}"
        where = f"{alias}.enterprise IN ({marks}) AND {alias}.booking NOT IN ({drafts})"
        return where, [*ids, *ids, draft]

    def matching(alias: str) -> tuple[str, list[Any]]:
        """The search on the rows of ``alias`` (nothing without one)."""
        if not q:
            return "", []
        ors = " OR ".join(like_sql(f"{alias}.{f.key}") for f in HISTORY_SEARCH)
        return f" AND ({ors})", [contains_pattern(q)] * len(HISTORY_SEARCH)

    def kept(alias: str) -> tuple[str, list[Any]]:
        """Rows of ``alias`` matching the search, and no later one of them the same
        instrument: asked per row (LIMIT 1 OFFSET 0 keeps PostgreSQL from making it a join,
        which on a small table read every row of the customer's for each row shown)."""
        later, later_args = booked("j")
        j_match, j_args = matching("j")
        match, match_args = matching(alias)
        return (
            f"{match} AND NOT EXISTS (SELECT 1 FROM booking_item j WHERE {later}"
            f" AND j.item_key = {alias}.item_key AND j.id > {alias}.id{j_match}"
            " LIMIT 1 OFFSET 0)",
            [*match_args, *later_args, *j_args],
        )

    async def walk(cut: int | None, ascending: bool, limit: int, look: int) -> listing.Walked:
        where, args = booked("k")
        if cut is not None:
            where += f" AND k.id {'>' if ascending else '<'} {{}}"
            args.append(cut)
        order = "ASC" if ascending else "DESC"
        # The rows looked at, read from the index alone (booking_item_history).
        looked = f"SELECT k.id FROM booking_item k WHERE {where} ORDER BY k.id {order}"

        async def stop() -> tuple[int | None, int | None]:
            """The last row looked at, and whether the walk stopped there (more past it)."""
            past = await BookingItem.raw(f"{looked} LIMIT 2 OFFSET {int(look) - 1}", *args)
            return (past[0]["id"] if past else None), (past[0]["id"] if len(past) == 2 else None)

        if postgres:
            # Each row looked at, read by its id in turn: PostgreSQL is told so (a subquery
            # it may not flatten, OFFSET 0); taking a rare search's rows for few, it would
            # rather read the whole table and sort it (1.1 s at 1,600,000 rows).
            condition, condition_args = kept("i")
            rows = await BookingItem.raw(
                f"SELECT i.* FROM ({looked} LIMIT {int(look)}) w CROSS JOIN LATERAL"
                " (SELECT * FROM booking_item x WHERE x.id = w.id OFFSET 0) i"
                f" WHERE TRUE{condition} ORDER BY w.id {order} LIMIT {int(limit)}",
                *args,
                *condition_args,
            )
            reach = (await stop())[1] if len(rows) < limit else None
            return listing.Walked(rows, reach)
        # SQLite sorts a subquery's rows again when joined: the rows looked at are those
        # up to the last one (an id range of the same index), read in its order.
        last, reach = await stop()
        where, args = booked("i")
        if cut is not None:
            where += f" AND i.id {'>' if ascending else '<'} {{}}"
            args.append(cut)
        if last is not None:
            where += f" AND i.id {'<=' if ascending else '>='} {{}}"
            args.append(last)
        condition, condition_args = kept("i")
        rows = await BookingItem.raw(
            f"SELECT i.* FROM booking_item i WHERE {where}{condition}"
            f" ORDER BY i.id {order} LIMIT {int(limit)}",
            *args,
            *condition_args,
        )
        return listing.Walked(rows, reach)

    return walk


async def history(
    scope: Scope, q: str = "", cursor: Cursor = Cursor(), per_page: int = 50
) -> Window:
    """【从历史预约数据选择】: the instruments of the scope's bookings (drafts aside), each
    once, as its newest booking has it (of those matching the search), newest first; a
    keyset page that looks at no more than HISTORY_LOOK rows (HISTORY_SEARCH_LOOK with a
    search). No total unless one page shows them all: counting the instruments would mean
    reading the whole history, and a picker is searched rather than counted."""
    look = HISTORY_SEARCH_LOOK if q else HISTORY_LOOK
    return await listing.walked_window(_history_walk(scope, q), cursor, per_page, look)


async def history_items(scope: Scope, item_ids: Iterable[int]) -> list[dict[str, Any]]:
    """The instruments ticked in a history picker; one outside the scope is NotFound."""
    ids = sorted(set(item_ids))
    if not ids:
        raise FormError({"": "请先勾选器具"})
    rows = await BookingItem.select().where(
        BookingItem.id.is_in(ids) & in_scope(BookingItem, scope)
    )
    if len(rows) != len(ids):
        raise NotFound("器具不存在")
    return rows


async def copy_history(scope: Scope, booking_id: int, item_ids: Iterable[int]) -> RowsAdded:
    """【确定】 in the history picker: copy the chosen instruments into this booking."""
    await _editable(scope, booking_id)
    return await add_rows(scope, booking_id, await history_items(scope, item_ids))


def validate_booking(values: dict[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for key, label, required, _ in BOOKING_FIELDS:
        if required and not values[key]:
            errors[key] = f"请填写{label}"
    if values["mobile"] and (err := mobile_error(values["mobile"])):
        errors["mobile"] = err
    if values["phone"] and not set(values["phone"]) <= PHONE_CHARS:
        errors["phone"] = "电话只能包含数字、空格和 - + ( )"
    if values["expected_date"]:
        try:
            expected = date.fromisoformat(values["expected_date"])
        except ValueError:
            errors["expected_date"] = "请选择正确的日期"
        else:
            if expected < today():
                errors["expected_date"] = "预计送检日期不能早于今天"
            elif expected > today() + timedelta(days=366):
                errors["expected_date"] = "预计送检日期不能超过一年以后"
    return errors


async def submit(
    scope: Scope, booking_id: int, submission: BookingSubmission, by: CurrentUser, ip: str
) -> dict[str, Any]:
    """【提交】: check the booking fields and that there is an instrument; → 待审核.

    Re-submitting (a double click, a second tab) finds the booking already 待审核 and only
    saves the fields again: one booking, one number.
    """
    booking = await _editable(scope, booking_id)
    values = _booking_values(submission)
    errors = validate_booking(values)
    if not await BookingItem.exists().where(BookingItem.booking == booking_id):
        errors[""] = "请至少添加一个器具"
    if errors:
        if booking["status"] == BookingStatus.DRAFT:
            await keep_draft_fields(scope, booking_id, submission)
        raise FormError(errors)
    number = booking["booking_no"] or _booking_no(booking_id)
    # The submission itself: one UPDATE that only a 草稿/已驳回 booking passes, so of ten
    # parallel submits one is the submission (and its 操作日志 row, in the same transaction:
    # the database going away between the two leaves the draft as it was) ...
    async with write_transaction():
        submitted = (
            await Booking.update(
                {
                    **values,
                    "status": BookingStatus.PENDING,
                    "booking_no": number,
                    "submitted_at": now(),
                    "reject_reason": "",
                }
            )
            .where(
                (Booking.id == booking_id)
                & Booking.status.is_in([BookingStatus.DRAFT, BookingStatus.REJECTED])
            )
            .returning(Booking.id)
        )
        if submitted:
            await audit.record("提交预约", user=by, ip=ip, detail=number)
    if submitted:
        return await get_booking(scope, booking_id)
    # ... and the others (a double click, a second tab) only save the fields again.
    saved = (
        await Booking.update(values)
        .where((Booking.id == booking_id) & (Booking.status == BookingStatus.PENDING))
        .returning(Booking.id)
    )
    if not saved:
        raise FormError({"": "该预约已审核，不能再修改"})
    return await get_booking(scope, booking_id)


def _booking_no(booking_id: int) -> str:
    return f"YY{today():%Y%m%d}{booking_id:06d}"


# ------------------------------------------------------------------------------ 预约记录


def _list_where(scope: Scope, status: str, start: str, end: str, q: str) -> list[Any]:
    return _where_of(list(scope.enterprise_ids), BookingStatus.parse(status), start, end, q)


def _where_of(ids: list[Any], status: Any, start: str, end: str, q: str) -> list[Any]:
    """预约记录's conditions: the scope's enterprises (``ids``), a status, 预计送检日期 from
    and to, a search (values, or app.compiled's placeholders for them)."""
    where: list[Any] = [Booking.enterprise.is_in(ids)]  # the scope (tenancy.in_scope)
    # An untouched draft is not a record yet.
    where.append((Booking.status != BookingStatus.DRAFT) | (Booking.item_count > 0))
    if status:
        where.append(Booking.status == status)
    if start:
        where.append(Booking.expected_date >= start)
    if end:
        where.append(Booking.expected_date <= end)
    if q:
        where.append(
            any_matches([Booking.booking_no, Booking.client_name, Booking.contact_name], q)
        )
    return where


LIST_COLUMNS = (
    Booking.id,
    Booking.enterprise,  # 所属单位, when the scope holds subsidiaries
    Booking.booking_no,
    Booking.client_name,
    Booking.expected_date,
    Booking.item_count,
    Booking.status,
    Booking.submitted_at,
    Booking.reject_reason,
)


async def list_bookings(
    scope: Scope,
    status: str = "",
    start: str = "",
    end: str = "",
    q: str = "",
    cursor: Cursor = Cursor(),
    per_page: int = 20,
) -> Window:
    """A keyset page of 预约记录 (newest first). The total of the list as opened, or of
    one status, is the tally's; with dates or a search it is counted, up to a limit."""
    values: dict[str, Any] = {"ids": list(scope.enterprise_ids)}
    wanted = BookingStatus.parse(status)
    if wanted:
        values["status"] = wanted.value
    if start:
        values["start"] = start
    if end:
        values["end"] = end

    def where(p: dict[str, Any]) -> list[Any]:
        return _where_of(p["ids"], p.get("status"), p.get("start", ""), p.get("end", ""), q)

    # A search's LIKE patterns are made from q: its SQL is built as it comes (key None);
    # the rest is compiled once per shape (app.compiled).
    key = None if q else "bookings"
    if start or end or q:
        total = await tallies.bounded_count(
            None if q else "bookings.count",
            lambda p: Booking.select(Booking.id).where(*where(p)),
            **values,
        )
    else:
        total = await tallies.total(tallies.BOOKING, values["ids"], values.get("status", ""))
    return await listing.window(
        key,
        lambda p: Booking.select(*LIST_COLUMNS).where(*where(p)),
        Booking.id,
        cursor,
        per_page,
        total,
        **values,
    )


async def latest(scope: Scope, n: int = 5) -> list[dict[str, Any]]:
    """The 首页's newest records (no count: it shows no pager)."""
    return await compiled.select(
        ("bookings.latest", n),
        lambda p: (
            Booking.select(*LIST_COLUMNS)
            .where(*_where_of(p["ids"], None, "", "", ""))
            .order_by(Booking.id, ascending=False)
            .limit(n)
        ),
        ids=list(scope.enterprise_ids),
    )


async def delete_bookings(
    scope: Scope, ids: Iterable[int], by: CurrentUser, ip: str
) -> tuple[int, list[str]]:
    """【删除】 ticked bookings not yet 已通过; returns (deleted, what was kept and why)."""
    ids = sorted(set(ids))
    if not ids:
        raise FormError({"": "请先勾选要删除的预约"})
    async with write_transaction():
        # Locked: a booking approved a moment ago is kept, not deleted.
        query = Booking.select(Booking.id, Booking.booking_no, Booking.status).where(
            Booking.id.is_in(ids) & in_scope(Booking, scope)
        )
        rows = await (query.lock_rows() if row_locks() else query)
        if len(rows) != len(ids):
            raise NotFound("预约不存在")
        gone = [r["id"] for r in rows if r["status"] != BookingStatus.APPROVED]
        if gone:
            await BookingItem.delete().where(BookingItem.booking.is_in(gone))
            await Booking.delete().where(Booking.id.is_in(gone))
    kept = [
        f"{r['booking_no'] or BookingStatus.DRAFT.label}：已通过审核，已转为检测业务，不能删除"
        for r in rows
        if r["status"] == BookingStatus.APPROVED
    ]
    if gone:
        await audit.record(
            "删除预约",
            user=by,
            ip=ip,
            detail="，".join(
                r["booking_no"] or f"{BookingStatus.DRAFT.label}{r['id']}"
                for r in rows
                if r["id"] in gone
            ),
        )
    return len(gone), kept


# ------------------------------------------------------------------------------ review


async def review(
    booking_no: str,
    approved: bool,
    reason: str,
    *,
    by: Actor,
) -> tuple[dict[str, Any], bool]:
    """通过 / 驳回 a 待审核 booking; the booking's 手机 gets the SMS.

    Idempotent: repeating the same decision returns (booking, False) and sends nothing.
    """
    reason = reason.strip()
    if err := review_reason_error(approved, reason):
        raise FormError({"reason": err})
    booking = await Booking.select().where(Booking.booking_no == booking_no).first()
    if booking is None:
        raise NotFound(f"预约单 {booking_no} 不存在")
    target = BookingStatus.APPROVED if approved else BookingStatus.REJECTED
    if booking["status"] == target and (approved or booking["reject_reason"] == reason):
        return booking, False
    if booking["status"] != BookingStatus.PENDING:
        verb = "通过" if approved else "驳回"
        raise Conflict(f"预约单 {booking_no} 当前状态为{_label(booking)}，不能{verb}")
    changed = (
        await Booking.update(
            {
                Booking.status: target,
                Booking.reject_reason: "" if approved else reason,
                Booking.reviewed_at: now(),
            }
        )
        .where((Booking.id == booking["id"]) & (Booking.status == BookingStatus.PENDING))
        .returning(Booking.id)
    )
    if not changed:  # a concurrent review won, or the customer deleted the booking
        booking = await Booking.select().where(Booking.id == booking["id"]).first()
        if booking is None:
            raise NotFound(f"预约单 {booking_no} 已被删除")
        if booking["status"] == target:
            return booking, False
        raise Conflict(f"预约单 {booking_no} 当前状态为{_label(booking)}")
    await _tell_reviewed(booking, approved, reason)
    await audit.record(
        "预约审核",
        by=by,
        detail=f"{'通过' if approved else '驳回'}：{booking_no}"
        + (f"，原因：{reason}" if reason else ""),
    )
    booking = await Booking.select().where(Booking.id == booking["id"]).first()
    return booking, True


async def _tell_reviewed(booking: dict[str, Any], approved: bool, reason: str) -> None:
    """预约审核结果 to the account that submitted it (by SMS to the booking's 手机 unless it
    chose otherwise), once per decision on one submission."""
    booking_no = booking["booking_no"]
    if approved:
        text = (
            f"您的预约单{booking_no}已审核通过，请于{booking['expected_date']}携带器具到我院送检。"
        )
    else:
        text = f"您的预约单{booking_no}未通过审核，原因：{reason}。请登录平台修改后重新提交。"
    target = BookingStatus.APPROVED if approved else BookingStatus.REJECTED
    await notify.send(
        NotifyKind.BOOKING_REVIEW,
        await notify.booking_recipient(booking["id"], booking["enterprise"]),
        phone=booking["mobile"],
        text=text,
        params={
            "booking_no": booking_no,
            "result": "通过" if approved else "驳回",
            "reason": reason,
        },
        key=f"booking-review:{booking['id']}:{target}:{booking['submitted_at']}",
        about=booking_no,
    )


async def admin_list(
    status: str = BookingStatus.PENDING, q: str = "", cursor: Cursor = Cursor(), per_page: int = 20
) -> Window:
    """平台管理 › 预约审核: every enterprise's submitted bookings, a keyset page."""
    wanted = BookingStatus.parse(status)
    values: dict[str, Any] = {"status": wanted.value} if wanted else {}

    def where(p: dict[str, Any]) -> list[Any]:
        found: list[Any] = [Booking.status != BookingStatus.DRAFT]
        if "status" in p:
            found.append(Booking.status == p["status"])
        if q:
            found.append(any_matches([Booking.booking_no, Booking.client_name], q))
        return found

    key = None if q else "review"
    if q:
        total = await tallies.bounded_count(
            None, lambda p: Booking.select(Booking.id).where(*where(p)), **values
        )
    else:
        submitted = [wanted.value] if wanted else [s.value for s in BookingStatus.submitted()]
        total = await tallies.total(tallies.BOOKING, None, submitted)
    return await listing.window(
        key,
        lambda p: Booking.select(*LIST_COLUMNS, Booking.mobile, Booking.contact_name).where(
            *where(p)
        ),
        Booking.id,
        cursor,
        per_page,
        total,
        **values,
    )


async def admin_get(booking_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    booking = (
        await Booking.select()
        .where((Booking.id == booking_id) & (Booking.status != BookingStatus.DRAFT))
        .first()
    )
    if booking is None:
        raise NotFound("预约不存在")
    return booking, await items(booking_id)


async def lab_list(
    status: BookingStatus | None, page: int, per_page: int
) -> tuple[list[dict[str, Any]], int]:
    """The lab system's view: bookings (never drafts) with their instruments; ``status``
    None lists every submitted booking."""
    where: list[Any] = [Booking.status != BookingStatus.DRAFT]
    if status:
        where.append(Booking.status == status)
    total = await Booking.count().where(*where)
    rows = (
        await Booking.select()
        .where(*where)
        .order_by(Booking.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    if rows:
        all_items = (
            await BookingItem.select()
            .where(BookingItem.booking.is_in([r["id"] for r in rows]))
            .order_by(BookingItem.id)
        )
        by_booking: dict[int, list[dict[str, Any]]] = {}
        for it in all_items:
            by_booking.setdefault(it["booking"], []).append(it)
        for r in rows:
            r["items"] = by_booking.get(r["id"], [])
    return rows, total
