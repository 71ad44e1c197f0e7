"""检测业务 (SPEC §9, §10): an approved booking becomes the lab's order (大单号), each
instrument gets its 唯一性号 and moves through 待收样 → 检测中 → 待取件 → 已取件; the company
follows it in 检测进度查询 (SPEC §4).

Every write is idempotent: the same call twice changes nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from piccolo.columns.combination import WhereRaw

from app import compiled
from app.clock import now
from app.db import matches, row_locks, write_transaction
from app.enums import BookingStatus, ItemStatus, NotifyKind
from app.security.sessions import CurrentUser
from app.services import audit, listing, notify, tallies
from app.services.audit import Actor
from app.services.errors import Conflict, FormError, NotFound
from app.services.listing import Cursor, Window
from app.services.tenancy import Scope
from app.settings import get_settings
from app.tables import Booking, BookingItem, Order, OrderItem

MAX_LINES = 2000
NO_LENGTH = 50
# 检测进度查询 shows at most this many instruments (a 大单 rarely holds more).
PROGRESS_LIMIT = 200


@dataclass(frozen=True)
class OrderLine:
    """One instrument of an order as the lab sends it."""

    unique_no: str
    name: str
    serial_no: str = ""
    model: str = ""
    status: ItemStatus | None = None


def _check_no(value: str, label: str) -> str:
    value = value.strip()
    if not value:
        raise FormError({"": f"{label}不能为空"})
    if len(value) > NO_LENGTH or not value.isprintable():
        raise FormError({"": f"{label}“{value[:NO_LENGTH]}”无效（至多{NO_LENGTH}个可见字符）"})
    return value


def _check_lines(lines: list[OrderLine]) -> list[OrderLine]:
    if not lines:
        raise FormError({"": "大单中至少要有一台器具"})
    if len(lines) > MAX_LINES:
        raise FormError({"": f"一个大单至多{MAX_LINES}台器具"})
    seen: set[str] = set()
    clean = []
    for line in lines:
        unique_no = _check_no(line.unique_no, "唯一性号")
        if unique_no in seen:
            raise FormError({"": f"唯一性号 {unique_no} 重复"})
        seen.add(unique_no)
        if not line.name.strip():
            raise FormError({"": f"唯一性号 {unique_no} 缺少器具名称"})
        clean.append(
            OrderLine(
                unique_no,
                line.name.strip()[:100],
                line.serial_no.strip()[:100],
                line.model.strip()[:100],
                line.status,
            )
        )
    return clean


async def put_order(
    order_no: str,
    booking_no: str,
    lines: list[OrderLine],
    *,
    by: Actor,
) -> tuple[dict[str, Any], bool]:
    """Create or complete the order ``order_no`` of the approved booking ``booking_no``.

    Returns the order and whether anything changed. An instrument already in the order
    keeps its status unless the call gives one.
    """
    order_no = _check_no(order_no, "大单号")
    lines = _check_lines(lines)
    async with write_transaction():
        booking = (
            await Booking.select(Booking.id, Booking.enterprise, Booking.status, Booking.booking_no)
            .where(Booking.booking_no == booking_no.strip())
            .first()
        )
        if booking is None:
            raise NotFound(f"预约单 {booking_no} 不存在")
        if booking["status"] != BookingStatus.APPROVED:
            raise Conflict(f"预约单 {booking_no} 尚未审核通过，不能生成大单")
        order = await Order.select().where(Order.order_no == order_no).first()
        changed = False
        if order is None:
            if await Order.exists().where(Order.booking == booking["id"]):
                raise Conflict(f"预约单 {booking_no} 已有大单")
            await Order.insert(
                Order(order_no=order_no, booking=booking["id"], enterprise=booking["enterprise"])
            )
            order = await Order.select().where(Order.order_no == order_no).first()
            changed = True
        elif order["booking"] != booking["id"]:
            raise Conflict(f"大单号 {order_no} 已属于另一个预约单")
        lines_changed, moved = await _put_lines(order, lines)
        changed = lines_changed or changed
    await tell_status(order["id"], moved)
    if changed:
        await audit.record(
            "检测业务",
            by=by,
            detail=f"大单 {order_no}（预约单 {booking_no}，{len(lines)} 台器具）",
        )
    return order, changed


async def _put_lines(
    order: dict[str, Any], lines: list[OrderLine]
) -> tuple[bool, list[dict[str, Any]]]:
    """Insert or update the order's instruments. Returns whether anything changed, and the
    instruments whose status moved (as they are now)."""
    existing = {
        r["unique_no"]: r
        for r in await OrderItem.select().where(
            OrderItem.unique_no.is_in([line.unique_no for line in lines])
        )
    }
    changed = False
    moved: list[dict[str, Any]] = []
    stamp = now()
    # The instruments already there first, the new ones after: rows are locked upwards
    # (order_item, then lab_order, whose count of instruments without a certificate an
    # insert moves), as a certificate's triggers lock them (migration 08:00:01). The other
    # way round, a certificate arriving for one of them meanwhile could deadlock with this.
    for line in lines:
        row = existing.get(line.unique_no)
        if row is None:
            continue
        if row["order"] != order["id"]:
            raise Conflict(f"唯一性号 {line.unique_no} 已属于另一个大单")
        values: dict[str, Any] = {
            "name": line.name,
            "serial_no": line.serial_no,
            "model": line.model,
        }
        if line.status is not None and line.status != row["status"]:
            values.update(status=line.status, status_at=stamp)
            moved.append({**row, **values})
        if any(row[k] != v for k, v in values.items()):
            await OrderItem.update(values).where(OrderItem.id == row["id"])
            changed = True
    for line in lines:
        if line.unique_no in existing:
            continue
        await OrderItem.insert(
            OrderItem(
                order=order["id"],
                enterprise=order["enterprise"],
                unique_no=line.unique_no,
                name=line.name,
                serial_no=line.serial_no,
                model=line.model,
                status=line.status or ItemStatus.AWAITING,
                status_at=stamp,
            )
        )
        changed = True
    return changed, moved


async def set_status(
    unique_no: str,
    status: ItemStatus,
    at: datetime | None,
    *,
    by: Actor,
) -> tuple[dict[str, Any], bool]:
    """An instrument's new 检测进度. The same status again changes nothing; a report older
    than the status the instrument has (a late retry) is ignored."""
    at = at or now()
    if at.tzinfo is None:
        raise FormError({"at": "时间需带时区，例如 2026-11-26T10:00:00+08:00"})
    async with write_transaction():
        query = OrderItem.select().where(OrderItem.unique_no == unique_no.strip())
        row = await (query.lock_rows() if row_locks() else query).first()
        if row is None:
            raise NotFound(f"唯一性号 {unique_no} 不存在")
        if row["status"] == status or at < row["status_at"]:
            return row, False
        await OrderItem.update({OrderItem.status: status, OrderItem.status_at: at}).where(
            OrderItem.id == row["id"]
        )
    row.update(status=status, status_at=at)
    await tell_status(row["order"], [row])
    await audit.record(
        "检测业务",
        by=by,
        detail=f"唯一性号 {unique_no}：{status.label}",
    )
    return row, True


PROGRESS_COLUMNS = (
    OrderItem.id,
    OrderItem.unique_no,
    OrderItem.name,
    OrderItem.serial_no,
    OrderItem.model,
    OrderItem.status,
    OrderItem.status_at,
    OrderItem.order_no,  # its order's, kept by triggers: no join
)


async def tell_status(order_id: int, items: list[dict[str, Any]]) -> None:
    """检测状态变化 of ``items`` (the order's instruments whose status moved): to the account
    that booked them, when it chose to hear of it (nothing by default: no message existed
    before the choice). The account is looked up once for the whole order."""
    if not items:
        return
    to, phone = await notify.order_recipient(order_id)
    if not to.channels(NotifyKind.ITEM_STATUS):
        return
    for item in items:
        status = ItemStatus(item["status"])
        await notify.send(
            NotifyKind.ITEM_STATUS,
            to,
            phone=phone,
            text=f"您送检的器具“{item['name']}”（唯一性号{item['unique_no']}）检测状态已更新为"
            f"{status.label}。",
            params={"name": item["name"], "unique_no": item["unique_no"], "status": status.label},
            key=f"item-status:{item['id']}:{status}:{item['status_at'].isoformat()}",
            about=f"{item['name']} {status.label}",
        )


def prefix_range(prefix: str) -> tuple[str, str] | None:
    """The strings that start with ``prefix`` are those from ``prefix`` up to (not
    including) the returned end, in code point order (UTF-8 byte order); None when every
    string from ``prefix`` on does."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop()) + 1
        if 0xD800 <= last <= 0xDFFF:  # surrogates are not characters: past them
            last = 0xE000
        if last <= 0x10FFFF:
            return prefix, "".join(chars) + chr(last)
    return None


def _starting_with(column: str) -> str:
    """SQL: ``column`` starts with the prefix whose range [lo, hi) fills its two ``{}``,
    compared byte by byte whatever the database's collation: PostgreSQL's pattern operators
    (read by the varchar_pattern_ops indexes of migration 07:40), SQLite's BINARY
    comparison (its plain indexes). Unlike LIKE, a ``%`` or ``_`` typed in is a character
    (LIKE took "DD%1" for every number starting "DD" with a 1 further on)."""
    ge, lt = ("~>=~", "~<~") if get_settings().is_postgres else (">=", "<")
    return f"{column} {ge} {{}} AND {column} {lt} {{}}"


async def progress(scope: Scope, q: str) -> list[dict[str, Any]]:
    """检测进度查询: the instruments whose 大单号 or 唯一性号 starts with ``q`` (at least 2
    characters), inside the scope."""
    q = q.strip()
    if len(q) < 2 or len(q) > NO_LENGTH or not q.isprintable():
        return []  # numbers are 2–50 visible characters (_number): nothing else matches
    bounds = prefix_range(q)
    if bounds is None:  # only U+10FFFF…: not printable, never in a number
        return []
    # Two queries, each answered by a prefix index of order_item (唯一性号's, 大单号's),
    # merged here: one query with an OR of the two reads every instrument of the scope
    # (issue #15). Compiled once each (the bounds are values: app/compiled.py).
    found: dict[int, dict[str, Any]] = {}
    for by in ("unique_no", "order_no"):

        def matching(p: dict[str, Any], by: str = by) -> Any:
            # One table, one prefix index (唯一性号's, or the 大单号 the instrument carries:
            # migration 08:20:01): no join to plan. With one, PostgreSQL's planning of each
            # search cost more than the search (0.1–0.19 ms a query at 1,000,000 rows).
            column = OrderItem.unique_no if by == "unique_no" else OrderItem.order_no
            sql = _starting_with(column._meta.get_full_name(with_alias=False))
            match = WhereRaw(sql, p["lo"], p["hi"])
            return (
                OrderItem.select(*PROGRESS_COLUMNS)
                .where(OrderItem.enterprise.is_in(p["ids"]), match)  # the scope (tenancy)
                .order_by(OrderItem.order_no)
                .order_by(OrderItem.unique_no)
                .limit(PROGRESS_LIMIT)
            )

        for row in await compiled.select(
            ("progress", by), matching, ids=list(scope.enterprise_ids), lo=bounds[0], hi=bounds[1]
        ):
            found[row["id"]] = row
    rows = sorted(found.values(), key=lambda r: (r["order_no"], r["unique_no"]))
    rows = rows[:PROGRESS_LIMIT]
    for r in rows:
        r["status"] = ItemStatus(r["status"])
    return rows


# The 检测进度 states the 首页 counts and 检测进度 lists by (#12): still at the lab.
LISTED_STATUSES = (ItemStatus.TESTING, ItemStatus.READY)


def _of_status(p: dict[str, Any]) -> list[Any]:
    # The scope (tenancy.in_scope); index order_item (enterprise, status, id).
    return [OrderItem.enterprise.is_in(p["ids"]), OrderItem.status == p["status"]]


def count_items(scope: Scope, status: ItemStatus) -> tallies.Counting:
    """The scope's instruments at the lab in ``status`` (检测中, 待取件), from their tally:
    what 检测进度's list of that status shows."""
    return tallies.total(tallies.ITEM_STATUS, scope.enterprise_ids, str(status))


async def items_of_status(
    scope: Scope, status: ItemStatus, cursor: Cursor, per_page: int
) -> Window:
    """检测进度 of one status (the 首页's 检测中/待取件 links), newest first, a keyset page."""
    total = await count_items(scope, status)
    found = await listing.window(
        ("progress", "status"),
        lambda p: OrderItem.select(*PROGRESS_COLUMNS).where(*_of_status(p)),
        OrderItem.id,
        cursor,
        per_page,
        total,
        ids=list(scope.enterprise_ids),
        status=str(status),
    )
    for r in found.rows:
        r["status"] = ItemStatus(r["status"])
    return found


def all_collected(rows: list[dict[str, Any]]) -> bool:
    """Nothing left to follow: the page stops refreshing itself."""
    return all(r["status"] == ItemStatus.COLLECTED for r in rows)


# ------------------------------------------------------------------ 检测业务 (平台管理)


# Kept by triggers (migration 08:10:01): the booking's lab orders. Written as literals, not
# parameters, so that the planner can use the partial index booking_awaiting_order.
AWAITING_ORDER = (
    f'"booking"."status" = \'{BookingStatus.APPROVED.value}\' AND "booking"."order_count" = 0'
)


async def approved_without_order(
    page: int, per_page: int
) -> tuple[list[dict[str, Any]], tallies.Total]:
    """Approved bookings that have no order yet, oldest first: a range of the partial index
    booking_awaiting_order (the list's own rows, not every booking or order), counted up to
    the limit (a lab far behind has more than it can work through anyway)."""
    where = WhereRaw(AWAITING_ORDER)
    total = await tallies.bounded_count(
        ("orders", "awaiting"), lambda p: Booking.select(Booking.id).where(WhereRaw(AWAITING_ORDER))
    )
    rows = (
        await Booking.select(
            Booking.id,
            Booking.booking_no,
            Booking.client_name,
            Booking.item_count,
            Booking.expected_date,
            Booking.reviewed_at,
        )
        .where(where)
        .order_by(Booking.reviewed_at)
        .order_by(Booking.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return rows, total


def stale_before(days: int) -> datetime:
    """Orders made before this instant and still waiting for a certificate are late."""
    return now() - timedelta(days=days)


# Kept by triggers (migration 08:00:01): the order's instruments without a certificate.
# Written as a literal, not a parameter, so that the planner (PostgreSQL's generic plan,
# SQLite's) can use the partial index lab_order_waiting (created_at, id) WHERE waiting > 0.
WAITING = "lab_order.waiting > 0"


def _stale(before: datetime) -> list[Any]:
    """Orders older than ``before`` with an instrument that has no certificate yet: a range
    of the partial index of the orders still waiting, whatever the number of instruments."""
    return [Order.created_at < before, WhereRaw(WAITING)]


def count_stale(before: datetime) -> tallies.Counting:
    """平台管理's 首页: orders without a certificate past N days, counted up to a limit."""
    return tallies.bounded_count(
        None, lambda p: Order.select(Order.id).where(*_stale(p["before"])), before=before
    )


def _listed(p: dict[str, Any], q: str) -> list[Any]:
    """检测业务's list: the orders whose 大单号 contains ``q``, and (``before`` given) only
    those still without a certificate since then."""
    where: list[Any] = []
    if q:
        where.append(matches(Order.order_no, q))
    if "before" in p:
        where += _stale(p["before"])
    return where


def _filtered(query: Any, where: list[Any]) -> Any:
    return query.where(*where) if where else query


def count_orders(q: str = "", before: datetime | None = None) -> tallies.Counting:
    """检测业务's total, counted up to a limit (no tally counts orders; staff read
    "10000+" well enough). ?stale=1 alone is the 首页's own count."""
    q = q.strip()[:NO_LENGTH]
    if before is not None and not q:
        return count_stale(before)
    values = {} if before is None else {"before": before}
    return tallies.bounded_count(
        None if q else "orders.count",
        lambda p: _filtered(Order.select(Order.id), _listed(p, q)),
        **values,
    )


async def orders(
    cursor: Cursor, per_page: int, q: str = "", before: datetime | None = None
) -> Window:
    """Every order, newest first, a keyset page, with its booking; ``q``: 大单号 contains
    it; ``before``: only those still without a certificate since then (the 首页's link)."""
    q = q.strip()[:NO_LENGTH]
    values = {} if before is None else {"before": before}
    total = await count_orders(q, before)
    # A search's LIKE pattern is made from q: its SQL is built as it comes (key None).
    return await listing.window(
        None if q else ("orders", before is not None),
        lambda p: _filtered(
            Order.select(
                Order.id,
                Order.order_no,
                Order.created_at,
                Order.booking.booking_no,
                Order.booking.client_name,
            ),
            _listed(p, q),
        ),
        Order.id,
        cursor,
        per_page,
        total,
        **values,
    )


async def order_items(order_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    order = (
        await Order.select(
            Order.id, Order.order_no, Order.booking.booking_no, Order.booking.client_name
        )
        .where(Order.id == order_id)
        .first()
    )
    if order is None:
        raise NotFound("大单不存在")
    items = await OrderItem.select().where(OrderItem.order == order_id).order_by(OrderItem.id)
    for r in items:
        r["status"] = ItemStatus(r["status"])
    return order, items


def lines_from_booking(booking_no: str, rows: list[dict[str, Any]]) -> list[OrderLine]:
    """The order's instruments for a booking's 器具列表: one 唯一性号 per instrument
    (a row of 器具数量 3 is three instruments), ``{booking_no}-001`` on."""
    lines: list[OrderLine] = []
    for row in rows:
        for _ in range(max(1, min(int(row["quantity"] or 1), MAX_LINES + 1 - len(lines)))):
            lines.append(
                OrderLine(
                    f"{booking_no}-{len(lines) + 1:03d}",
                    row["name"],
                    row["serial_no"],
                    row["model"],
                )
            )
    return lines


async def order_from_booking(
    booking_id: int, user: CurrentUser, ip: str
) -> tuple[dict[str, Any], bool]:
    """检测业务 in the UI: the approved booking's order, 大单号 ``DD`` + the booking's number."""
    booking = await Booking.select(Booking.booking_no).where(Booking.id == booking_id).first()
    if booking is None or not booking["booking_no"]:
        raise NotFound("预约不存在")
    booking_no = booking["booking_no"]
    rows = await BookingItem.select().where(BookingItem.booking == booking_id)
    order_no = "DD" + booking_no.removeprefix("YY")
    return await put_order(
        order_no,
        booking_no,
        lines_from_booking(order_no, rows),
        by=Actor.of(user, ip),
    )
