"""器具托管 (SPEC §7): the enterprise's register of instruments and their due dates.

有效期至 is entered, or computed from 上次检定日期 + 检定周期 (the day before the same date
``cycle`` months later). Every query is scoped to the caller's enterprises.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Self

from app import clock
from app.clock import now
from app.db import any_matches, bulk_insert, write_transaction
from app.enums import NotifyKind
from app.fields import REGISTER_FIELDS, REGISTER_SEARCH
from app.security.sessions import CurrentUser
from app.services import audit, bookings, listing, notify, tallies, uploads
from app.services.errors import FormError, NotFound
from app.services.forms import stripped
from app.services.instrument_xlsx import read_upload, validate_fields
from app.services.listing import Cursor, SortKey, Window
from app.services.tenancy import Scope, get_scoped, in_scope
from app.tables import BasicInfo, Enterprise, Instrument

DUE_DAYS = 30
FILTERS = {"all": "全部", "overdue": "已超期", "due": "即将到期", "ok": "正常"}
KEYS = tuple(f.key for f in REGISTER_FIELDS)
TEXT_KEYS = tuple(f.key for f in REGISTER_FIELDS if f.is_text)
SEARCH = tuple(f.key for f in REGISTER_SEARCH)
# 有效期至 soonest first (the default) or latest first; instruments without one last.
SORTS = {
    "valid_until": SortKey(Instrument.valid_until, descending=False, parse=date.fromisoformat),
    "-valid_until": SortKey(Instrument.valid_until, descending=True, parse=date.fromisoformat),
}


@dataclass(frozen=True, slots=True)
class InstrumentInput:
    """【新增】 / 【编辑】 as submitted: the value of each of ``REGISTER_FIELDS``, stripped."""

    values: dict[str, str]

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> Self:
        return cls(stripped(form, KEYS))


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def computed_valid_until(last: date | None, cycle: int | None) -> date | None:
    if last is None or not cycle:
        return None
    return add_months(last, cycle) - timedelta(days=1)


def due_state(valid_until: date | None, today: date | None = None) -> str:
    """已超期 / 即将到期 / 正常, or 未设置 when there is no 有效期至."""
    if valid_until is None:
        return "未设置"
    today = today or clock.today()
    if valid_until < today:
        return "已超期"
    if valid_until <= today + timedelta(days=DUE_DAYS):
        return "即将到期"
    return "正常"


def _where(scope: Scope, q: str, state: str) -> list[Any]:
    today = clock.today()
    return _conditions(
        list(scope.enterprise_ids), q, state, today, today + timedelta(days=DUE_DAYS)
    )


def _conditions(ids: list[Any], q: str, state: str, today: Any, soon: Any) -> list[Any]:
    """The register's conditions: the scope's enterprises (``ids``), the 有效期 filter
    against ``today`` and ``soon`` (today + DUE_DAYS), a search (values, or app.compiled's
    placeholders for them)."""
    where: list[Any] = [Instrument.enterprise.is_in(ids)]  # the scope (tenancy.in_scope)
    if state == "overdue":
        where.append(Instrument.valid_until < today)
    elif state == "due":
        where.append((Instrument.valid_until >= today) & (Instrument.valid_until <= soon))
    elif state == "ok":
        where.append(Instrument.valid_until > soon)
    if q:
        where.append(any_matches([getattr(Instrument, key) for key in SEARCH], q))
    return where


def count_instruments(scope: Scope, q: str = "", state: str = "all") -> tallies.Counting:
    """器具托管's total with this search and 有效期 filter (the list's, and the 首页's
    已超期/即将到期): the tally's, or (filtered) counted up to a limit."""
    today = clock.today()
    values: dict[str, Any] = {"ids": list(scope.enterprise_ids)}
    if not (q or state in ("overdue", "due", "ok")):
        return tallies.total(tallies.INSTRUMENT, values["ids"])
    soon = today + timedelta(days=DUE_DAYS)
    if not q and state == "overdue":  # the tally by 有效期至 ("" for none sorts first)
        return tallies.total_between(
            tallies.INSTRUMENT_DUE, values["ids"], "0", f"{today:%Y-%m-%d}", upto=False
        )
    if not q and state == "due":
        return tallies.total_between(
            tallies.INSTRUMENT_DUE, values["ids"], f"{today:%Y-%m-%d}", f"{soon:%Y-%m-%d}"
        )
    if state in ("overdue", "due", "ok"):
        values.update(today=today, soon=soon)

    def where(p: dict[str, Any]) -> list[Any]:
        return _conditions(p["ids"], q, state, p.get("today"), p.get("soon"))

    return tallies.bounded_count(
        None if q else ("instruments", state, "count"),
        lambda p: Instrument.select(Instrument.id).where(*where(p)),
        **values,
    )


async def list_instruments(
    scope: Scope,
    q: str = "",
    state: str = "all",
    sort: str = "valid_until",
    cursor: Cursor = Cursor(),
    per_page: int = 20,
) -> Window:
    """器具托管, a keyset page in 有效期至 order. The list as opened, filtered or sorted is
    compiled once per shape (a search is built as it comes: its LIKE patterns are made
    from q). The total is the tally's, or (filtered) counted up to a limit."""
    today = clock.today()
    values: dict[str, Any] = {"ids": list(scope.enterprise_ids)}
    if state in ("overdue", "due", "ok"):
        values.update(today=today, soon=today + timedelta(days=DUE_DAYS))

    def where(p: dict[str, Any]) -> list[Any]:
        return _conditions(p["ids"], q, state, p.get("today"), p.get("soon"))

    key = None if q else ("instruments", state)
    total = await count_instruments(scope, q, state)
    found = await listing.sorted_window(
        key and (*key, sort),
        lambda p: Instrument.select().where(*where(p)),
        Instrument,
        SORTS.get(sort, SORTS["valid_until"]),
        cursor,
        per_page,
        total,
        **values,
    )
    for r in found.rows:
        r["due_state"] = due_state(r["valid_until"], today)
    return found


async def get(scope: Scope, instrument_id: int) -> dict[str, Any]:
    return await get_scoped(Instrument, scope, instrument_id)


def _complete(clean: dict[str, Any]) -> dict[str, Any]:
    """Fill 有效期至 from 上次检定日期 + 检定周期 when it was not entered."""
    if clean.get("valid_until") is None:
        clean["valid_until"] = computed_valid_until(
            clean.get("last_verified_on"), clean.get("cycle_months")
        )
    if clean.get("quantity") is None:
        clean["quantity"] = 1
    return clean


async def _identity_taken(enterprise_id: int, clean: dict[str, Any], except_id: int | None) -> bool:
    """Another instrument of that enterprise has the same 名称 + 出厂编号 + 型号规格."""
    row = (
        await Instrument.select(Instrument.id)
        .where(
            (Instrument.enterprise == enterprise_id)
            & (Instrument.name == clean["name"])
            & (Instrument.serial_no == clean["serial_no"])
            & (Instrument.model == clean["model"])
        )
        .first()
    )
    return row is not None and row["id"] != except_id


async def save(
    scope: Scope,
    instrument: InstrumentInput,
    by: CurrentUser,
    ip: str,
    instrument_id: int | None = None,
) -> int:
    """【新增】 (``instrument_id`` None) / 【编辑】: the same checks as an imported row."""
    new = instrument_id is None
    # A parent account may edit a subsidiary's instrument: its own enterprise is the one.
    enterprise_id = scope.enterprise_id
    if instrument_id is not None:
        enterprise_id = (await get(scope, instrument_id))["enterprise"]
    clean, errors = validate_fields(instrument.values, REGISTER_FIELDS)
    for key in TEXT_KEYS:
        clean[key] = clean[key] or ""
    if not errors and await _identity_taken(enterprise_id, clean, instrument_id):
        errors["serial_no"] = "器具托管中已有同名称、同出厂编号、同型号规格的器具"
    if errors:
        raise FormError(errors)
    clean = _complete(clean)
    if instrument_id is None:
        row = Instrument(enterprise=scope.enterprise_id, **clean)
        await row.save()
        instrument_id = int(row.id)
    else:
        await Instrument.update({**clean, "updated_at": now()}).where(
            Instrument.id == instrument_id
        )
    await audit.record(
        "器具托管",
        user=by,
        ip=ip,
        detail=f"{'新增' if new else '编辑'}：{clean['name']} {clean['serial_no']}",
    )
    return instrument_id


async def _check_ids(scope: Scope, ids: list[int]) -> None:
    """Every id must be an instrument in scope, or the whole request is NotFound."""
    found = await Instrument.count().where(Instrument.id.is_in(ids) & in_scope(Instrument, scope))
    if found != len(ids):
        raise NotFound("器具不存在")


async def delete(scope: Scope, ids: Iterable[int], by: CurrentUser, ip: str) -> int:
    ids = sorted(set(ids))
    if not ids:
        raise FormError({"": "请先勾选要删除的器具"})
    await _check_ids(scope, ids)
    await Instrument.delete().where(Instrument.id.is_in(ids))
    await audit.record("器具托管", user=by, ip=ip, detail=f"删除{len(ids)}个器具")
    return len(ids)


Key = tuple[str, str, str]


def _clean_row(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A row read from a file or copied from history, as the register stores it."""
    clean = _complete({k: raw.get(k) for k in KEYS})
    for k in TEXT_KEYS:
        clean[k] = clean[k] or ""
    return clean


def _key(clean: Mapping[str, Any]) -> Key:
    """The register's identity of an instrument: 器具名称 + 出厂编号 + 型号规格."""
    return (clean["name"], clean["serial_no"], clean["model"])


async def _registered(enterprise_id: int) -> dict[Key, int]:
    """The enterprise's instruments: identity → id."""
    return {
        _key(r): r["id"]
        for r in await Instrument.select(
            Instrument.id, Instrument.name, Instrument.serial_no, Instrument.model
        ).where(Instrument.enterprise == enterprise_id)
    }


async def upsert(scope: Scope, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Add new instruments, update those already registered (same 名称+出厂编号+型号规格);
    the same instrument twice in ``rows``: the later row wins. Returns (added, updated),
    each instrument counted once."""
    latest: dict[Key, dict[str, Any]] = {}
    for raw in rows:
        clean = _clean_row(raw)
        latest[_key(clean)] = clean
    stamp = now()
    async with write_transaction():
        existing = await _registered(scope.enterprise_id)
        new: list[dict[str, Any]] = []
        for key, clean in latest.items():
            if key in existing:
                await Instrument.update({**clean, "updated_at": stamp}).where(
                    Instrument.id == existing[key]
                )
            else:
                new.append(
                    {
                        "enterprise": scope.enterprise_id,
                        **clean,
                        "created_at": stamp,
                        "updated_at": stamp,
                    }
                )
        await bulk_insert(Instrument, new)
    return len(new), len(latest) - len(new)


# How many rows the preview of an import lists (the counts cover every row).
PREVIEW_ROWS = 100
EXPIRED = "这次上传已导入或已过期（上传后30分钟内有效），请重新上传文件"


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What 【确定】 will do with an uploaded file: ``added`` and ``updated`` instruments,
    the first :data:`PREVIEW_ROWS` rows (each with its sheet ``row`` and ``action``, 新增 or
    更新), the rows naming an instrument an earlier row named (``repeats``), and the token
    【确定】 sends back."""

    token: str
    added: int
    updated: int
    total: int
    rows: list[dict[str, Any]]
    repeats: list[str]


def _owner(by: CurrentUser) -> str:
    """Whose kept upload: the account's (no one else can confirm it)."""
    return f"instruments-{int(by.id)}"


async def plan_import(scope: Scope, data: bytes, by: CurrentUser) -> ImportPlan:
    """【点击上传】: read and check the whole file (ImportRefused lists every error by row and
    column), say what importing it would do, and keep it for 【确定】. Writes nothing."""
    rows = await read_upload(data, REGISTER_FIELDS, with_rows=True)
    existing = await _registered(scope.enterprise_id)
    first: dict[Key, int] = {}
    repeats: list[str] = []
    shown: list[dict[str, Any]] = []
    for raw in rows:
        clean = _clean_row(raw)
        key = _key(clean)
        if key in first:
            repeats.append(
                f"第{raw['row']}行与第{first[key]}行是同一器具（器具名称、出厂编号、型号规格相同），"
                f"以第{raw['row']}行为准"
            )
        else:
            first[key] = raw["row"]
        if len(shown) < PREVIEW_ROWS:
            action = "更新" if key in existing else "新增"
            shown.append({**clean, "row": raw["row"], "action": action})
    added = sum(1 for key in first if key not in existing)
    token = await uploads.keep(_owner(by), data)
    return ImportPlan(token, added, len(first) - added, len(rows), shown, repeats)


async def confirm_import(scope: Scope, token: str, by: CurrentUser, ip: str) -> tuple[int, int]:
    """【确定】: import the file this account kept with 【点击上传】, once; returns (added,
    updated). A token that is not this account's, used, replaced or expired: FormError."""
    data = await uploads.take(_owner(by), token.strip())
    if data is None:
        raise FormError({"": EXPIRED})
    return await import_file(scope, data, by, ip)


async def import_file(scope: Scope, data: bytes, by: CurrentUser, ip: str) -> tuple[int, int]:
    """Import a whole file: all rows or none; returns (added, updated)."""
    rows = await read_upload(data, REGISTER_FIELDS)
    async with write_transaction():  # the rows and their 操作日志 row, or nothing
        added, updated = await upsert(scope, rows)
        await audit.record("器具托管", user=by, ip=ip, detail=f"导入：新增{added}，更新{updated}")
    return added, updated


async def add_from_history(scope: Scope, item_ids: Iterable[int]) -> tuple[int, int]:
    """【从历史预约数据选择】: put earlier booked instruments into the register."""
    return await upsert(scope, await bookings.history_items(scope, item_ids))


async def export_batch(
    scope: Scope, q: str, state: str, after_id: int, size: int = 2000
) -> list[dict[str, Any]]:
    """One batch of 【导出器具】 after ``after_id`` (keyset paging: no OFFSET at 100,000 rows)."""
    columns = [getattr(Instrument, k) for k in KEYS]
    return (
        await Instrument.select(Instrument.id, *columns)
        .where(*_where(scope, q, state), Instrument.id > after_id)
        .order_by(Instrument.id)
        .limit(size)
    )


async def to_booking(scope: Scope, ids: Iterable[int]) -> bookings.RowsAdded:
    """【一键生成预约送检】: the ticked instruments into the user's draft (those it has
    already are skipped)."""
    ids = sorted(set(ids))
    if not ids:
        raise FormError({"": "请先勾选要预约送检的器具"})
    await _check_ids(scope, ids)
    draft = await bookings.open_draft(scope)
    return await copy_to_booking(scope, draft["id"], ids)


async def copy_to_booking(scope: Scope, booking_id: int, ids: Iterable[int]) -> bookings.RowsAdded:
    """【从托管器具选择】 → 【确定】: the chosen instruments into that booking's table."""
    ids = sorted(set(ids))
    if not ids:
        raise FormError({"": "请先勾选器具"})
    rows = (
        await Instrument.select()
        .where(Instrument.id.is_in(ids) & in_scope(Instrument, scope))
        .order_by(Instrument.id)
    )
    if len(rows) != len(ids):
        raise NotFound("器具不存在")
    return await bookings.add_rows(scope, booking_id, rows)


async def picker(
    scope: Scope, q: str = "", cursor: Cursor = Cursor(), per_page: int = 50
) -> Window:
    """【从托管器具选择】 in 预约送检: the register as 器具托管 lists it (有效期至 soonest
    first, none last; keyset pages), searchable."""
    return await list_instruments(scope, q, "all", "valid_until", cursor, per_page)


async def remind_due(today: date | None = None) -> int:
    """The daily reminder: one 器具即将到期 per instrument and due date, ever, to the
    enterprise's main account by the channels it chose (an SMS to the 基础信息 contact's
    手机, else the registered contact's). Returns how many went out now.

    Running it twice (or after a worker restart) sends nothing more: the message's
    dedupe key is unique in the database.
    """
    today = today or clock.today()
    soon = today + timedelta(days=DUE_DAYS)
    rows = (
        await Instrument.select(
            Instrument.id,
            Instrument.name,
            Instrument.serial_no,
            Instrument.valid_until,
            Instrument.enterprise,
        )
        .where((Instrument.valid_until >= today) & (Instrument.valid_until <= soon))
        .order_by(Instrument.id)
    )
    if not rows:
        return 0
    ent_ids = sorted({r["enterprise"] for r in rows})
    phones = {
        e["id"]: e["contact_phone"]
        for e in await Enterprise.select(Enterprise.id, Enterprise.contact_phone).where(
            Enterprise.id.is_in(ent_ids)
        )
    }
    for info in await BasicInfo.select(BasicInfo.enterprise, BasicInfo.contact_mobile).where(
        BasicInfo.enterprise.is_in(ent_ids)
    ):
        if info["contact_mobile"]:
            phones[info["enterprise"]] = info["contact_mobile"]
    accounts = await notify.main_accounts(ent_ids)
    sent = 0
    for r in rows:
        phone = phones.get(r["enterprise"], "")
        to = accounts.get(r["enterprise"], notify.Recipient(None))
        due = r["valid_until"]
        text = (
            f"您单位托管的器具“{r['name']}”（出厂编号{r['serial_no'] or '无'}）将于"
            f"{due:%Y年%m月%d日}到期，请及时预约送检。"
        )
        if await notify.send(
            NotifyKind.DUE_REMINDER,
            to,
            phone=phone,
            text=text,
            params={"name": r["name"], "serial_no": r["serial_no"], "date": str(due)},
            key=f"due:{r['id']}:{due.isoformat()}",
            about=f"{r['name']}（{due:%Y-%m-%d}）",
        ):
            sent += 1
    return sent
