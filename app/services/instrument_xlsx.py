"""Instrument spreadsheets: the ONE place that builds, reads and exports them.

Used by the booking form (导入器具) and by the instrument register (器具托管) for
import and export.  Everything here is a pure function on bytes / iterables; no web
framework code.

* :func:`build_template` -- an empty ``.xlsx`` import template for a column set.
* :func:`read_instruments` -- validate an uploaded ``.xlsx`` and return typed rows,
  all-or-nothing: any problem raises :class:`ImportRefused` carrying *every* error.
* :func:`write_export` / :func:`export_bytes` -- stream rows into an ``.xlsx`` with a
  write-only workbook (constant memory, text never turned into formulas).

Uploaded files are hostile until proven otherwise: the zip container is inspected
(size, entry count, declared uncompressed sizes, compression ratios) *before*
openpyxl unpacks anything, and openpyxl parses the XML through ``defusedxml``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from io import BytesIO
from operator import itemgetter
from typing import Any, BinaryIO

import anyio
import openpyxl
import openpyxl.xml

# Importing defusedxml here makes a missing dependency fail loudly at import time;
# openpyxl itself switches to defusedxml's parsers whenever the package is importable.
from defusedxml import DefusedXmlException
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from app import deadline
from app.fields import CERTIFICATE_TYPES, INSTRUMENT_FIELDS, REGISTER_FIELDS, Field
from app.services.validators import strip_controls

logger = logging.getLogger(__name__)

# openpyxl decides once, at import time, whether to parse XML through defusedxml
# (``openpyxl.xml.DEFUSEDXML``).  Without it a crafted workbook could use entity
# expansion ("billion laughs") against us, so refuse to run rather than degrade.
if not openpyxl.xml.DEFUSEDXML:  # pragma: no cover - environment misconfiguration
    logger.critical("openpyxl is not using defusedxml; refusing to handle xlsx uploads")
    raise RuntimeError(
        "openpyxl must parse XML through defusedxml: install defusedxml and do not set "
        "OPENPYXL_DEFUSEDXML=False"
    )

__all__ = [
    "BOOKING_COLUMNS",
    "CERTIFICATE_TYPES",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ROWS",
    "IMPORT_SHEET_TITLE",
    "NOTES_SHEET_TITLE",
    "REGISTER_COLUMNS",
    "Column",
    "ImportError_",
    "ImportRefused",
    "build_template",
    "looks_like_formula",
    "export_bytes",
    "read_instruments",
    "write_export",
]

# --------------------------------------------------------------------------- columns

# A spreadsheet column is an instrument field (app/fields.py); the booking's template has
# the instrument fields, the register's adds its due-date fields.
Column = Field
BOOKING_COLUMNS: tuple[Column, ...] = INSTRUMENT_FIELDS
REGISTER_COLUMNS: tuple[Column, ...] = REGISTER_FIELDS

# ------------------------------------------------------------------------ limits

DEFAULT_MAX_ROWS = 5000
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
MAX_ZIP_ENTRIES = 1000
MAX_UNCOMPRESSED_BYTES = 50 * 1024 * 1024
MAX_COMPRESSION_RATIO = 100
# Parts openpyxl loads whole, bounded by size and by count of their entries before it does:
# a small crafted file must not cost hundreds of MB (a 1.1 MB upload once held 620,000
# <xf> styles, 47 MB unpacked). Real workbooks stay far below these.
PART_LIMITS: dict[str, tuple[int, bytes, int]] = {
    # part: (max unpacked bytes, entry tag, max entries)
    "xl/styles.xml": (4 * 1024 * 1024, b"<xf ", 20_000),
    "xl/sharedStrings.xml": (16 * 1024 * 1024, b"<si>", 200_000),
}
MAX_SHEET_BYTES = 40 * 1024 * 1024
# Imports parsed at once in one process; the next waits this long for a turn, then is told
# to try again (503).
MAX_CONCURRENT_IMPORTS = 2
IMPORT_WAIT_SECONDS = 20
# An entry smaller than this cannot hurt even at a huge ratio; ignoring the ratio of
# tiny parts avoids refusing a legitimate file over a few hundred bytes of XML.
_RATIO_CHECK_MIN_BYTES = 1024 * 1024
# Never walk further down a sheet than Excel itself can go (a crafted <row r="...">
# with a huge number would otherwise make openpyxl yield millions of filler rows).
_EXCEL_MAX_ROW = 1_048_576
# The header is the first of these rows that contains a known column label, so a
# title row above the header does not break the import.
_HEADER_SCAN_ROWS = 10

IMPORT_SHEET_TITLE = "器具导入"
NOTES_SHEET_TITLE = "填写说明"
DATE_FORMAT = "yyyy-mm-dd"

MSG_NOT_XLSX = "文件不是有效的 Excel (.xlsx) 文件"
MSG_ZIP_BOMB = "文件解压后过大，疑似压缩炸弹，已拒绝"
MSG_NO_DATA = "文件中没有器具数据"

# ------------------------------------------------------------------------ errors


@dataclass(frozen=True, slots=True)
class ImportError_:  # trailing underscore: do not shadow the builtin ImportError
    """One problem found in an uploaded file.

    ``row`` is the row number as Excel shows it and ``column`` the column label
    (without ``*``); both are ``None`` for problems with the file as a whole.
    ``message`` is the complete Chinese text to show, e.g. ``第3行「出厂编号」：必填``.
    """

    row: int | None
    column: str | None
    message: str


class ImportRefused(Exception):
    """The upload was refused; :attr:`errors` lists every problem found."""

    def __init__(self, errors: Sequence[ImportError_]) -> None:
        """Keep the errors; the exception text is a short summary of them."""
        self.errors: list[ImportError_] = list(errors)
        summary = "；".join(e.message for e in self.errors[:5])
        if len(self.errors) > 5:
            summary += f"……共 {len(self.errors)} 处错误"
        super().__init__(summary)


def _file_error(message: str) -> ImportRefused:
    """An :class:`ImportRefused` with a single error about the file as a whole."""
    return ImportRefused([ImportError_(None, None, message)])


class _CellError(Exception):
    """Raised by the cell parsers; the text completes ``第N行「列」：…``."""


# ------------------------------------------------------------------------ template


_HEADER_FONT = Font(bold=True)
_REQUIRED_HEADER_FONT = Font(bold=True, color="C00000")
_REQUIRED_FILL = PatternFill("solid", fgColor="FCE4D6")
_OPTIONAL_FILL = PatternFill("solid", fgColor="E7E6E6")
_HEADER_ALIGNMENT = Alignment(horizontal="center", vertical="center", wrap_text=True)
_WRAP = Alignment(vertical="top", wrap_text=True)


def _column_width(column: Column) -> float:
    """A comfortable column width for ``column`` (in Excel character units)."""
    if column.kind == "date":
        return 14
    if column.kind == "int":
        return 12
    if column.max_length >= 500:
        return 40
    if column.max_length >= 200:
        return 30
    # CJK characters are roughly two width units wide.
    return max(14, len(column.header) * 2 + 4)


def _format_rule(column: Column) -> str:
    """Human-readable format / allowed-values rule for the 填写说明 sheet."""
    if column.kind == "choice":
        return "从下拉列表中选择：" + " / ".join(column.choices)
    if column.kind == "int":
        low, high = column.min_value, column.max_value
        if low is not None and high is not None:
            return f"整数，{low}～{high}"
        if low is not None:
            return f"整数，不小于 {low}"
        return "整数"
    if column.kind == "date":
        return "日期，格式 YYYY-MM-DD 或 YYYY/MM/DD，如 2024-05-20（也可直接输入 Excel 日期）"
    return f"文本，最多 {column.max_length} 个字符"


def _add_validations(ws: Any, columns: Sequence[Column], last_row: int) -> None:
    """Add Excel data validations (dropdown, whole numbers, text length) to ``ws``."""
    by_length: dict[int, list[str]] = {}
    for index, column in enumerate(columns, start=1):
        letter = get_column_letter(index)
        ref = f"{letter}2:{letter}{last_row}"
        if column.kind == "choice":
            dv = _choice_validation(column)
        elif column.kind == "int":
            dv = _int_validation(column)
        elif column.kind == "text":
            by_length.setdefault(column.max_length, []).append(ref)
            continue
        else:
            continue
        dv.add(ref)
        ws.add_data_validation(dv)
    for max_length, refs in sorted(by_length.items()):
        dv = DataValidation(
            type="textLength",
            operator="lessThanOrEqual",
            formula1=str(max_length),
            allow_blank=True,
            showErrorMessage=True,
            errorTitle="内容过长",
            error=f"最多 {max_length} 个字符",
        )
        for ref in refs:
            dv.add(ref)
        ws.add_data_validation(dv)


def _choice_validation(column: Column) -> DataValidation:
    """The dropdown of a choice column."""
    return DataValidation(
        type="list",
        formula1='"' + ",".join(column.choices) + '"',
        allow_blank=True,
        showErrorMessage=True,
        errorStyle="stop",
        errorTitle=f"{column.label}无效",
        error=f"请从下拉列表中选择：{'、'.join(column.choices)}",
        showInputMessage=True,
        promptTitle=column.label,
        prompt=f"请从下拉列表中选择{column.label}",
    )


def _int_validation(column: Column) -> DataValidation:
    """Whole numbers within an int column's bounds."""
    low = str(column.min_value if column.min_value is not None else 0)
    if column.max_value is not None:
        dv = DataValidation(
            type="whole", operator="between", formula1=low, formula2=str(column.max_value)
        )
    else:
        dv = DataValidation(type="whole", operator="greaterThanOrEqual", formula1=low)
    dv.allow_blank = True
    dv.showErrorMessage = True
    dv.errorTitle = f"{column.label}无效"
    dv.error = f"{column.label}应为{_format_rule(column)}"
    return dv


def _write_notes_sheet(ws: Any, columns: Sequence[Column]) -> None:
    """Fill the 填写说明 sheet: general rules, one line per column and an example row."""
    ws["A1"] = "器具导入填写说明"
    ws["A1"].font = Font(bold=True, size=14)
    general = (
        f"1. 请在「{IMPORT_SHEET_TITLE}」工作表第 2 行起填写，每行一条器具；"
        "不要修改、删除或移动表头。",
        "2. 表头带 * 的列为必填项，其余列可留空。",
        f"3. 每次最多导入 {DEFAULT_MAX_ROWS} 行，"
        f"文件不超过 {_format_megabytes(DEFAULT_MAX_BYTES)}；空行会被忽略。",
        "4. 导入时会检查全部数据：只要有一处错误，整个文件都不会导入，并会列出所有错误的行和列。",
    )
    for offset, text in enumerate(general, start=2):
        ws.cell(row=offset, column=1, value=text)

    table_row = len(general) + 3
    for index, title in enumerate(("列名", "是否必填", "说明", "格式与取值", "示例"), start=1):
        cell = ws.cell(row=table_row, column=index, value=title)
        cell.font = _HEADER_FONT
        cell.fill = _OPTIONAL_FILL
    for offset, column in enumerate(columns, start=1):
        row = table_row + offset
        ws.cell(row=row, column=1, value=column.label).font = (
            _REQUIRED_HEADER_FONT if column.required else _HEADER_FONT
        )
        ws.cell(row=row, column=2, value="必填" if column.required else "选填")
        ws.cell(row=row, column=3, value=column.description).alignment = _WRAP
        ws.cell(row=row, column=4, value=_format_rule(column)).alignment = _WRAP
        example = ws.cell(row=row, column=5)
        _set_example(example, column)

    example_row = table_row + len(columns) + 2
    ws.cell(
        row=example_row,
        column=1,
        value=f"示例行（仅供参考，请在「{IMPORT_SHEET_TITLE}」工作表中填写）：",
    ).font = _HEADER_FONT
    for index, column in enumerate(columns, start=1):
        head = ws.cell(row=example_row + 1, column=index, value=column.header)
        head.font = _REQUIRED_HEADER_FONT if column.required else _HEADER_FONT
        head.fill = _REQUIRED_FILL if column.required else _OPTIONAL_FILL
        _set_example(ws.cell(row=example_row + 2, column=index), column)

    widths = {1: 16, 2: 10, 3: 40, 4: 44, 5: 24}
    for index in range(1, max(len(columns), 5) + 1):
        letter = get_column_letter(index)
        ws.column_dimensions[letter].width = widths.get(index, 16)


def _set_example(cell: Any, column: Column) -> None:
    """Put the example value of ``column`` into ``cell`` (dates as real dates)."""
    value = column.example
    if value is None:
        return
    cell.value = value
    if column.kind == "date":
        cell.number_format = DATE_FORMAT
    elif column.kind in ("text", "choice"):
        cell.number_format = "@"


def build_template(columns: Sequence[Column]) -> bytes:
    """Build the empty import template for ``columns`` and return the ``.xlsx`` bytes.

    Sheet 器具导入 holds only the header row (bold; required headers carry ``*`` and are
    highlighted), frozen below the header, with column widths, column number formats
    (text columns as text so serial numbers keep leading zeros, date columns as
    ``yyyy-mm-dd``) and data validations for rows 2..5001: the 证书类型 dropdown,
    whole-number ranges and text lengths.  Sheet 填写说明 explains every column and
    shows an example row; the import sheet itself has no example row.
    """
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = IMPORT_SHEET_TITLE
    for index, column in enumerate(columns, start=1):
        cell = ws.cell(row=1, column=index, value=column.header)
        cell.font = _REQUIRED_HEADER_FONT if column.required else _HEADER_FONT
        cell.fill = _REQUIRED_FILL if column.required else _OPTIONAL_FILL
        cell.alignment = _HEADER_ALIGNMENT
        dimension = ws.column_dimensions[get_column_letter(index)]
        dimension.width = _column_width(column)
        # Column-level number format: Excel applies it to every cell typed into it.
        if column.kind == "date":
            dimension.number_format = DATE_FORMAT
        elif column.kind in ("text", "choice"):
            dimension.number_format = "@"
    ws.row_dimensions[1].height = 24
    ws.freeze_panes = "A2"
    _add_validations(ws, columns, last_row=DEFAULT_MAX_ROWS + 1)

    _write_notes_sheet(wb.create_sheet(NOTES_SHEET_TITLE), columns)
    wb.active = 0
    wb.properties.creator = "计量客户服务平台"

    buffer = BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


# ------------------------------------------------------------------------ reading


def _format_megabytes(size: int) -> str:
    """``5242880`` -> ``"5 MB"``; ``1572864`` -> ``"1.5 MB"``."""
    megabytes = size / (1024 * 1024)
    return f"{megabytes:g} MB" if megabytes >= 0.1 else f"{size / 1024:g} KB"


def _check_container(data: bytes, max_bytes: int) -> None:
    """Inspect the zip container before anything unpacks it; raise :class:`ImportRefused`.

    Python's zipfile never inflates an entry beyond its declared ``file_size`` (it
    stops and fails the CRC check instead), so checking the declared sizes bounds
    what openpyxl will later decompress.
    """
    if len(data) > max_bytes:
        raise _file_error(
            f"文件过大（{_format_megabytes(len(data))}），最大允许 {_format_megabytes(max_bytes)}"
        )
    if not data:
        raise _file_error(MSG_NOT_XLSX)
    try:
        archive = zipfile.ZipFile(BytesIO(data))
    except Exception as exc:  # BadZipFile, but a crafted directory can raise anything
        if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":  # OLE2: legacy .xls / encrypted
            raise _file_error(
                MSG_NOT_XLSX + "（旧版 .xls 或加密的文件请在 Excel 中另存为 .xlsx 后再上传）"
            ) from exc
        raise _file_error(MSG_NOT_XLSX) from exc
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            raise _file_error(MSG_ZIP_BOMB)
        total = 0
        for entry in entries:
            total += entry.file_size
            if entry.file_size >= _RATIO_CHECK_MIN_BYTES and (
                entry.compress_size <= 0
                or entry.file_size / entry.compress_size > MAX_COMPRESSION_RATIO
            ):
                raise _file_error(MSG_ZIP_BOMB)
        if total > MAX_UNCOMPRESSED_BYTES:
            raise _file_error(MSG_ZIP_BOMB)
        if "xl/workbook.xml" not in {entry.filename for entry in entries}:
            raise _file_error(MSG_NOT_XLSX)
        _check_parts(archive, entries)


def _check_parts(archive: zipfile.ZipFile, entries: list[zipfile.ZipInfo]) -> None:
    """Each part openpyxl loads whole: bounded in size, and in entries (counted while
    streaming the part, never holding it)."""
    for entry in entries:
        name = entry.filename
        if name.startswith("xl/worksheets/") and entry.file_size > MAX_SHEET_BYTES:
            raise _file_error(MSG_ZIP_BOMB)
        limit = PART_LIMITS.get(name)
        if limit is None:
            continue
        max_bytes, tag, max_count = limit
        if entry.file_size > max_bytes:
            raise _file_error(MSG_ZIP_BOMB)
        count, tail = 0, b""
        with archive.open(entry) as part:
            while chunk := part.read(1024 * 1024):
                # The tail (shorter than the tag) joins the next chunk: a tag cut in two
                # by the chunking is counted once.
                window = tail + chunk
                count += window.count(tag)
                tail = window[-(len(tag) - 1) :]
                if count > max_count:
                    raise _file_error(MSG_ZIP_BOMB)


def _normalise_header(value: Any) -> str:
    """Header cell -> comparable label: stripped, ``*`` removed, full-width brackets."""
    if value is None:
        return ""
    text = str(value).strip().rstrip("*＊").strip()
    return text.replace("（", "(").replace("）", ")")


def _is_blank(values: Sequence[Any]) -> bool:
    """True when every value is None or a whitespace-only string."""
    if values.count(None) == len(values):
        return True
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in values)


def _show(value: Any) -> str:
    """Short rendering of a bad cell value for an error message."""
    text = _as_text(value)
    return text if len(text) <= 20 else text[:20] + "…"


def _as_text(value: Any) -> str:
    """Any cell value as a stripped string; whole numbers lose their ``.0``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return strip_controls(value).strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


_INT_TEXT = re.compile(r"[+-]?\d+(?:\.0*)?")
_DATE_TEXT = re.compile(
    r"(\d{4})\s*(?:[-/.]|年)\s*(\d{1,2})\s*(?:[-/.]|月)\s*(\d{1,2})\s*日?"
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
)


def _parse_int(value: Any, column: Column) -> int:
    """Parse a whole number within the column's bounds; raise :class:`_CellError`."""
    low, high = column.min_value, column.max_value
    if low is not None and high is not None:
        expected = f"应为 {low}～{high} 之间的整数"
    elif low is not None:
        expected = f"应为不小于 {low} 的整数"
    else:
        expected = "应为整数"
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if value.is_integer():
            number = int(value)
    elif isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value():
            number = int(value)
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value):
        try:
            number = int(Decimal(value))
        except (InvalidOperation, ValueError):
            number = None
    if number is None:
        raise _CellError(f"{expected}（当前为「{_show(value)}」）")
    if (low is not None and number < low) or (high is not None and number > high):
        raise _CellError(f"{expected}（当前为 {number}）")
    return number


def _parse_date(value: Any) -> date:
    """Parse an Excel date/datetime or a ``YYYY-MM-DD`` / ``YYYY/MM/DD`` string."""
    if isinstance(value, datetime):
        result = value.date()
    elif isinstance(value, date):
        result = value
    else:
        match = _DATE_TEXT.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise _CellError(
                f"日期格式不正确，应为 YYYY-MM-DD 或 YYYY/MM/DD（当前为「{_show(value)}」）"
            )
        try:
            result = date(*(int(part) for part in match.groups()))
        except ValueError:
            raise _CellError(f"日期无效（当前为「{_show(value)}」）") from None
    if not 1900 <= result.year <= 2100:
        raise _CellError(f"日期超出合理范围（当前为 {result.isoformat()}）")
    return result


Parser = Callable[[Any], Any]


def _make_parser(column: Column) -> Parser:
    """Return a function turning one raw cell value into the column's typed value.

    The function raises :class:`_CellError` with the message tail on invalid input.
    """
    if column.kind in ("int", "date"):
        typed: Parser = partial(_parse_int, column=column) if column.kind == "int" else _parse_date

        def parse_typed(value: Any) -> Any:
            if value is None or (isinstance(value, str) and not value.strip()):
                if column.required:
                    raise _CellError("必填")
                return None
            return typed(value.strip() if isinstance(value, str) else value)

        return parse_typed

    choices = column.choices

    def parse_text(value: Any) -> str:
        text = value.strip() if isinstance(value, str) else _as_text(value)
        if not text:
            if column.required:
                raise _CellError("必填")
            return ""
        if choices and text not in choices:
            raise _CellError(f"应为以下之一：{'、'.join(choices)}（当前为「{_show(text)}」）")
        if len(text) > column.max_length:
            raise _CellError(f"不能超过 {column.max_length} 个字符（当前 {len(text)} 个）")
        return text

    return parse_text


def _find_header(
    rows: Iterable[tuple[Any, ...]], labels: set[str]
) -> tuple[int, tuple[Any, ...]] | None:
    """Return ``(row_number, cells)`` of the first row holding a known label, else None."""
    for number, cells in enumerate(rows, start=1):
        if any(_normalise_header(cell) in labels for cell in cells):
            return number, cells
    return None


def _header_errors(
    header: tuple[Any, ...], columns: Sequence[Column]
) -> tuple[dict[str, int], list[ImportError_]]:
    """Map column keys to 0-based positions; report missing and duplicated headers."""
    by_label = {_normalise_header(column.label): column for column in columns}
    positions: dict[str, int] = {}
    errors: list[ImportError_] = []
    for index, cell in enumerate(header):
        column = by_label.get(_normalise_header(cell))
        if column is None:
            continue
        if column.key in positions:
            errors.append(
                ImportError_(None, column.label, f"表头「{column.label}」重复出现，请只保留一列")
            )
            continue
        positions[column.key] = index
    missing = [column.label for column in columns if column.key not in positions]
    if missing:
        errors.insert(
            0,
            ImportError_(
                None,
                None,
                f"缺少以下列：{'、'.join(missing)}（请使用下载的模板，不要修改表头）",
            ),
        )
    return positions, errors


class ImportBusy(Exception):
    """Every import slot of this process stayed taken: try again shortly (503)."""


# One semaphore per event loop (the test client runs the app on a loop of its own).
_import_slots: dict[int, anyio.Semaphore] = {}


async def read_upload(
    data: bytes, columns: Sequence[Column], *, with_rows: bool = False
) -> list[dict[str, Any]]:
    """:func:`read_instruments` off the event loop, at most MAX_CONCURRENT_IMPORTS at once
    per process; the next waits IMPORT_WAIT_SECONDS for a turn, then :class:`ImportBusy`.

    Neither the wait nor the parse counts against the request's deadline (app/deadline.py):
    both have bounds of their own (the wait above, the part limits) and hold no database
    connection, and a big file's parse may well take longer than a page."""
    slots = _import_slots.setdefault(
        id(asyncio.get_running_loop()), anyio.Semaphore(MAX_CONCURRENT_IMPORTS)
    )
    with deadline.paused():
        try:
            with anyio.fail_after(IMPORT_WAIT_SECONDS):
                await slots.acquire()
        except TimeoutError:
            raise ImportBusy("导入的文件较多，服务器正忙，请稍后再试") from None
        try:
            read = partial(read_instruments, data, columns, with_rows=with_rows)
            return await anyio.to_thread.run_sync(read)
        finally:
            slots.release()


def read_instruments(
    data: bytes,
    columns: Sequence[Column],
    max_rows: int = DEFAULT_MAX_ROWS,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    with_rows: bool = False,
) -> list[dict[str, Any]]:
    """Validate an uploaded ``.xlsx`` and return one typed dict per non-blank data row.

    All-or-nothing: every row is validated and *every* error is collected; if there
    is any, :class:`ImportRefused` is raised and nothing is returned.  The sheet named
    器具导入 is read (else the first sheet); its header row may carry ``*`` and
    whitespace and may sit below a title row.  Every column of ``columns`` must be
    present; unknown extra columns are ignored.  Blank rows are skipped.

    ``with_rows`` adds each record's sheet row number under ``"row"`` (for errors found
    later, by row and column).

    Values: text/choice columns -> stripped ``str`` (``""`` when empty and optional;
    numbers keep no ``.0``); int columns -> ``int`` or ``None``; date columns ->
    :class:`datetime.date` or ``None``.
    """
    if not columns:
        raise ValueError("columns must not be empty")
    _check_container(data, max_bytes)
    try:
        wb = openpyxl.load_workbook(BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl reports broken packages with many exception types
        raise _broken_file(exc) from exc
    try:
        return _read_workbook(wb, columns, max_rows, with_rows)
    except ImportRefused:
        raise
    except Exception as exc:  # in read-only mode the sheet XML is parsed while iterating
        raise _broken_file(exc) from exc
    finally:
        wb.close()


def _broken_file(exc: BaseException) -> ImportRefused:
    """The refusal for a package openpyxl could not read; say so if defusedxml objected."""
    logger.info("refused xlsx upload: %s: %s", type(exc).__name__, exc)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # openpyxl wraps the cause
        if isinstance(current, DefusedXmlException):
            return _file_error(MSG_NOT_XLSX + "（包含不允许的 XML 内容，已拒绝）")
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return _file_error(MSG_NOT_XLSX)


def _read_workbook(
    wb: Any, columns: Sequence[Column], max_rows: int, with_rows: bool = False
) -> list[dict[str, Any]]:
    """Read and validate the import sheet of an open read-only workbook."""
    if not wb.worksheets:
        raise _file_error(MSG_NO_DATA)
    ws = wb[IMPORT_SHEET_TITLE] if IMPORT_SHEET_TITLE in wb.sheetnames else wb.worksheets[0]
    header_row, header = _locate_header(ws, columns)
    positions, errors = _header_errors(header, columns)
    if errors:
        raise ImportRefused(errors)
    indexes = [positions[column.key] for column in columns]
    rows = ws.iter_rows(
        min_row=header_row + 1,
        max_row=_EXCEL_MAX_ROW,
        max_col=max(indexes) + 1,
        values_only=True,
    )
    try:
        result, data_rows = _parse_rows(
            rows, header_row, columns, indexes, max_rows, errors, with_rows
        )
    finally:
        rows.close()
    if data_rows > max_rows:
        raise _file_error(f"数据行数超过上限：每次最多导入 {max_rows} 行器具数据，请分批导入")
    if data_rows == 0:
        raise _file_error(MSG_NO_DATA)
    if errors:
        raise ImportRefused(errors)
    return result


def _locate_header(ws: Any, columns: Sequence[Column]) -> tuple[int, tuple[Any, ...]]:
    """The header row's number and cells: the first of the top rows holding a known label.

    Without one, an empty sheet is refused as such; otherwise row 1 is taken, so that the
    header check lists the missing columns.
    """
    labels = {_normalise_header(column.label) for column in columns}
    header_rows = ws.iter_rows(min_row=1, max_row=_HEADER_SCAN_ROWS, values_only=True)
    try:
        found = _find_header(header_rows, labels)
    finally:
        header_rows.close()
    if found is not None:
        return found
    rows = ws.iter_rows(min_row=1, max_row=_HEADER_SCAN_ROWS, values_only=True)
    try:
        empty = all(_is_blank(row) for row in rows)
    finally:
        rows.close()
    if empty:
        raise _file_error(MSG_NO_DATA)
    return 1, ()


def _row_picker(indexes: list[int]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A function taking the cells at ``indexes`` out of a row, as a tuple."""
    if len(indexes) == 1:
        only = indexes[0]
        return lambda row: (row[only],)
    return itemgetter(*indexes)


def _parse_rows(
    rows: Iterable[tuple[Any, ...]],
    header_row: int,
    columns: Sequence[Column],
    indexes: list[int],
    max_rows: int,
    errors: list[ImportError_],
    with_rows: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """Typed records of the non-blank rows below the header, and how many such rows were
    read (reading stops at the first row past ``max_rows``). Every problem is appended to
    ``errors``."""
    pick = _row_picker(indexes)
    plan = [(column.key, column.label, _make_parser(column)) for column in columns]
    check_dates = {"last_verified_on", "valid_until"} <= {column.key for column in columns}
    valid_label = next((c.label for c in columns if c.key == "valid_until"), "")
    result: list[dict[str, Any]] = []
    data_rows = 0
    for number, raw in enumerate(rows, start=header_row + 1):
        if not raw:
            continue
        values = pick(raw)
        if _is_blank(values):
            continue
        data_rows += 1
        if data_rows > max_rows:
            break  # one row past the limit says enough: the rest is not read
        record: dict[str, Any] = {"row": number} if with_rows else {}
        for (key, label, parse), value in zip(plan, values, strict=True):
            try:
                record[key] = parse(value)
            except _CellError as exc:
                errors.append(ImportError_(number, label, f"第{number}行「{label}」：{exc}"))
                record[key] = None
        if (
            check_dates
            and isinstance(record.get("last_verified_on"), date)
            and isinstance(record.get("valid_until"), date)
            and record["valid_until"] < record["last_verified_on"]
        ):
            message = f"第{number}行「{valid_label}」：不能早于上次检定日期"
            errors.append(ImportError_(number, valid_label, message))
        result.append(record)
    return result, data_rows


def validate_fields(
    values: Mapping[str, Any], columns: Sequence[Column]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Check one instrument typed into a form by the same rules as an imported row.

    Returns the typed values and the errors by column key (message without the row).
    """
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for column in columns:
        try:
            clean[column.key] = _make_parser(column)(values.get(column.key))
        except _CellError as exc:
            errors[column.key] = f"请填写{column.label}" if str(exc) == "必填" else str(exc)
            clean[column.key] = None
    last, valid = clean.get("last_verified_on"), clean.get("valid_until")
    if isinstance(last, date) and isinstance(valid, date) and valid < last:
        errors["valid_until"] = "不能早于上次检定日期"
    return clean, errors


# ------------------------------------------------------------------------ export

# Text starting with one of these could be taken for a formula (or DDE payload) once
# a user edits the cell in Excel / LibreOffice.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")


def looks_like_formula(text: str) -> bool:
    """True when ``text`` must be shielded so that it is never treated as a formula.

    Shielding never changes the text: the cell is forced to the string type and
    gets Excel's "quote prefix" flag (the invisible leading apostrophe).  Strings
    equal to an Excel error code (``#N/A`` ...) are shielded too, since openpyxl
    would otherwise write them as error cells.
    """
    return text.startswith(_FORMULA_PREFIXES) or text in ERROR_CODES


def _export_cell(ws: Any, column: Column, value: Any) -> Any:
    """Convert one row value into what the write-only sheet should receive."""
    if value is None:
        return None
    if column.kind == "date" and isinstance(value, date):
        day = value.date() if isinstance(value, datetime) else value
        cell = WriteOnlyCell(ws, value=day)
        cell.number_format = DATE_FORMAT
        return cell
    if (
        column.kind == "int"
        and isinstance(value, int | float | Decimal)
        and not isinstance(value, bool)
    ):
        return value
    text = value if isinstance(value, str) else _as_text(value)
    if not text:
        return None
    # openpyxl refuses control characters XML cannot carry; drop them, keep the rest.
    text = ILLEGAL_CHARACTERS_RE.sub("", text)
    if "\r" in text:
        # XML parsers turn a raw CR (and CRLF) into LF, so write what will be read back.
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if looks_like_formula(text):
        cell = WriteOnlyCell(ws, value=text)
        cell.data_type = "s"  # keep the exact text, never a formula / error cell
        cell.quotePrefix = True
        return cell
    return text


def write_export(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[Column],
    fileobj: BinaryIO,
    sheet_title: str = "器具托管",
) -> int:
    """Stream ``rows`` into an ``.xlsx`` written to ``fileobj``; return the rows written.

    Uses a write-only workbook, so rows are consumed one by one and never held in
    memory as a workbook (100,000 rows are fine).  The header row shows the plain
    labels (bold) and is frozen; dates become real Excel dates formatted
    ``yyyy-mm-dd``, ints stay numbers, and text is written as text exactly as given,
    never as a formula (see :func:`looks_like_formula`).  The only changes to text:
    characters XML cannot hold (NUL and other C0 controls except tab/LF/CR) are
    dropped, and CR / CRLF become LF, which is what any XML reader returns anyway.
    Missing keys are left empty.
    The result can be read back with :func:`read_instruments`.
    """
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(sheet_title)
    for index, column in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(index)].width = _column_width(column)
    ws.freeze_panes = "A2"

    header = []
    for column in columns:
        cell = WriteOnlyCell(ws, value=column.label)
        cell.font = _HEADER_FONT
        cell.fill = _OPTIONAL_FILL
        header.append(cell)
    ws.append(header)

    written = 0
    for row in rows:
        ws.append([_export_cell(ws, column, row.get(column.key)) for column in columns])
        written += 1
    if columns:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{written + 1}"
    wb.save(fileobj)
    return written


def export_bytes(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[Column],
    sheet_title: str = "器具托管",
) -> bytes:
    """Like :func:`write_export` but return the ``.xlsx`` as bytes (for small exports)."""
    buffer = BytesIO()
    write_export(rows, columns, buffer, sheet_title=sheet_title)
    return buffer.getvalue()
