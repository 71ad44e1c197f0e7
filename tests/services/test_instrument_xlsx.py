"""Tests for app.services.instrument_xlsx: template, validated import and streaming export."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any

import openpyxl
import openpyxl.xml
import pytest
from defusedxml import EntitiesForbidden

from app.services.instrument_xlsx import (
    BOOKING_COLUMNS,
    CERTIFICATE_TYPES,
    DEFAULT_MAX_ROWS,
    IMPORT_SHEET_TITLE,
    MSG_NO_DATA,
    MSG_NOT_XLSX,
    MSG_ZIP_BOMB,
    NOTES_SHEET_TITLE,
    REGISTER_COLUMNS,
    Column,
    ImportError_,
    ImportRefused,
    build_template,
    export_bytes,
    looks_like_formula,
    read_instruments,
    write_export,
)
from tests.helpers import fill_template

BOOKING_HEADERS = [
    "器具名称*",
    "设备编号",
    "出厂编号*",
    "型号规格*",
    "测量范围",
    "准确度等级",
    "电源电压",
    "制造厂商",
    "检定要求",
    "证书类型*",
    "器具数量*",
    "备注",
]
REGISTER_HEADERS = [*BOOKING_HEADERS, "检定周期(月)", "上次检定日期", "有效期至"]


# ----------------------------------------------------------------------------- helpers


def valid_row(**overrides: Any) -> dict[str, Any]:
    """A valid booking/register row keyed by column key (cell values as a user types)."""
    row: dict[str, Any] = {
        "name": "数字多用表",
        "equipment_no": "SB-001",
        "serial_no": "MY600123",
        "model": "34465A",
        "measuring_range": "0～1000 V",
        "accuracy_class": "0.5级",
        "supply_voltage": "AC 220 V",
        "manufacturer": "是德科技",
        "verification_requirement": "",
        "certificate_type": "校准证书",
        "quantity": 1,
        "remark": None,
    }
    row.update(overrides)
    return row


def sheet_bytes(rows: Sequence[Sequence[Any]], title: str = "Sheet1") -> bytes:
    """A plain workbook (not the template) holding ``rows`` from A1."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for row in rows:
        ws.append(list(row))
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def refusal(data: bytes, columns: Sequence[Column] = BOOKING_COLUMNS, **kwargs: Any) -> list:
    """Read ``data`` expecting a refusal; return its errors."""
    with pytest.raises(ImportRefused) as info:
        read_instruments(data, columns, **kwargs)
    assert info.value.errors, "a refusal always carries at least one error"
    return info.value.errors


def messages(errors: Sequence[ImportError_]) -> list[str]:
    """Only the message texts."""
    return [error.message for error in errors]


def zip_bytes(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive with the given entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, body in entries.items():
            archive.writestr(name, body)
    return buffer.getvalue()


def replace_in_zip(data: bytes, name: str, body: bytes) -> bytes:
    """Copy the zip ``data`` with entry ``name`` replaced by ``body``."""
    source = zipfile.ZipFile(io.BytesIO(data))
    entries = {info.filename: source.read(info.filename) for info in source.infolist()}
    entries[name] = body
    return zip_bytes(entries)


# ---------------------------------------------------------------------------- columns


def test_column_definitions() -> None:
    assert [c.header for c in BOOKING_COLUMNS] == BOOKING_HEADERS
    assert [c.header for c in REGISTER_COLUMNS] == REGISTER_HEADERS
    assert [c.key for c in REGISTER_COLUMNS] == [
        "name",
        "equipment_no",
        "serial_no",
        "model",
        "measuring_range",
        "accuracy_class",
        "supply_voltage",
        "manufacturer",
        "verification_requirement",
        "certificate_type",
        "quantity",
        "remark",
        "cycle_months",
        "last_verified_on",
        "valid_until",
    ]
    assert REGISTER_COLUMNS[: len(BOOKING_COLUMNS)] == BOOKING_COLUMNS
    assert CERTIFICATE_TYPES == ("检定证书", "校准证书", "检测报告")
    kinds = {c.key: c.kind for c in REGISTER_COLUMNS}
    assert kinds["certificate_type"] == "choice"
    assert kinds["quantity"] == kinds["cycle_months"] == "int"
    assert kinds["last_verified_on"] == kinds["valid_until"] == "date"
    lengths = {c.key: c.max_length for c in BOOKING_COLUMNS if c.kind == "text"}
    assert lengths.pop("remark") == 500
    assert lengths.pop("verification_requirement") == 200
    assert set(lengths.values()) == {100}
    with pytest.raises(AttributeError):
        BOOKING_COLUMNS[0].label = "x"  # type: ignore[misc]


def test_defusedxml_is_used_by_openpyxl() -> None:
    assert openpyxl.xml.DEFUSEDXML is True


# --------------------------------------------------------------------------- template


@pytest.mark.parametrize(
    ("columns", "headers"),
    [(BOOKING_COLUMNS, BOOKING_HEADERS), (REGISTER_COLUMNS, REGISTER_HEADERS)],
)
def test_template_headers_in_order_and_no_example_row(
    columns: Sequence[Column], headers: list[str]
) -> None:
    wb = openpyxl.load_workbook(io.BytesIO(build_template(columns)))
    assert wb.sheetnames == [IMPORT_SHEET_TITLE, NOTES_SHEET_TITLE]
    ws = wb[IMPORT_SHEET_TITLE]
    assert [cell.value for cell in ws[1]] == headers
    assert ws.max_row == 1  # the import sheet has no example row
    assert ws.freeze_panes == "A2"
    for index in range(1, len(columns) + 1):
        cell = ws.cell(row=1, column=index)
        assert cell.font.b is True
        letter = openpyxl.utils.get_column_letter(index)
        assert ws.column_dimensions[letter].width >= 10
    # Required headers are marked by * and a distinct colour.
    required = {
        ws.cell(row=1, column=i).font.color.rgb for i, c in enumerate(columns, 1) if c.required
    }
    optional = {
        ws.cell(row=1, column=i).font.color for i, c in enumerate(columns, 1) if not c.required
    }
    assert len(required) == 1 and optional == {None}


def test_template_column_formats() -> None:
    wb = openpyxl.load_workbook(io.BytesIO(build_template(REGISTER_COLUMNS)))
    ws = wb[IMPORT_SHEET_TITLE]
    dims = ws.column_dimensions
    assert dims["N"].number_format == "yyyy-mm-dd"  # 上次检定日期
    assert dims["O"].number_format == "yyyy-mm-dd"  # 有效期至
    assert dims["C"].number_format == "@"  # 出厂编号 as text keeps leading zeros


def test_template_certificate_type_dropdown() -> None:
    ws = openpyxl.load_workbook(io.BytesIO(build_template(BOOKING_COLUMNS)))[IMPORT_SHEET_TITLE]
    lists = [dv for dv in ws.data_validations.dataValidation if dv.type == "list"]
    assert len(lists) == 1
    dv = lists[0]
    assert str(dv.sqref) == "J2:J5001"  # 证书类型 column, rows 2..5001
    assert dv.formula1 == '"检定证书,校准证书,检测报告"'
    assert dv.showErrorMessage is True
    assert dv.errorStyle == "stop"
    assert dv.error and all(kind in dv.error for kind in CERTIFICATE_TYPES)
    assert dv.showDropDown in (None, False)  # True would *hide* the in-cell arrow
    wholes = {str(dv.sqref): dv for dv in ws.data_validations.dataValidation if dv.type == "whole"}
    assert wholes["K2:K5001"].formula1 == "1"  # 器具数量 >= 1


def test_template_notes_sheet() -> None:
    wb = openpyxl.load_workbook(io.BytesIO(build_template(REGISTER_COLUMNS)))
    notes = wb[NOTES_SHEET_TITLE]
    rows = [row for row in notes.iter_rows(values_only=True)]
    text = "\n".join(str(v) for row in rows for v in row if v is not None)
    for column in REGISTER_COLUMNS:
        line = next(row for row in rows if row[0] == column.label)
        assert line[1] == ("必填" if column.required else "选填")
        assert line[3]  # format / allowed values
        assert line[4] is not None  # example value
    assert "检定证书 / 校准证书 / 检测报告" in text
    assert "YYYY-MM-DD" in text
    assert str(DEFAULT_MAX_ROWS) in text
    # The example row: the template's headers, followed by a complete valid row.
    header_index = next(i for i, row in enumerate(rows) if list(row) == REGISTER_HEADERS)
    example = rows[header_index + 1]
    assert example[0] == "数字多用表"
    assert example[9] in CERTIFICATE_TYPES
    assert isinstance(example[13], datetime)


def test_template_round_trip_booking() -> None:
    data = fill_template(
        [
            valid_row(),
            valid_row(
                name="  压力表 ",
                serial_no=20240001,
                certificate_type="检定证书",
                quantity="2",
                remark="表盘有划痕",
            ),
        ]
    )
    rows = read_instruments(data, BOOKING_COLUMNS)
    assert rows == [
        {
            "name": "数字多用表",
            "equipment_no": "SB-001",
            "serial_no": "MY600123",
            "model": "34465A",
            "measuring_range": "0～1000 V",
            "accuracy_class": "0.5级",
            "supply_voltage": "AC 220 V",
            "manufacturer": "是德科技",
            "verification_requirement": "",
            "certificate_type": "校准证书",
            "quantity": 1,
            "remark": "",
        },
        {
            "name": "压力表",
            "equipment_no": "SB-001",
            "serial_no": "20240001",
            "model": "34465A",
            "measuring_range": "0～1000 V",
            "accuracy_class": "0.5级",
            "supply_voltage": "AC 220 V",
            "manufacturer": "是德科技",
            "verification_requirement": "",
            "certificate_type": "检定证书",
            "quantity": 2,
            "remark": "表盘有划痕",
        },
    ]


def test_template_round_trip_register_dates() -> None:
    data = fill_template(
        [
            valid_row(
                cycle_months=12,
                last_verified_on=datetime(2024, 5, 20),
                valid_until=date(2025, 5, 19),
            ),
            valid_row(cycle_months="6", last_verified_on="2024/01/05", valid_until="2024-07-04"),
            valid_row(),
        ],
        REGISTER_COLUMNS,
    )
    rows = read_instruments(data, REGISTER_COLUMNS)
    assert [(r["cycle_months"], r["last_verified_on"], r["valid_until"]) for r in rows] == [
        (12, date(2024, 5, 20), date(2025, 5, 19)),
        (6, date(2024, 1, 5), date(2024, 7, 4)),
        (None, None, None),
    ]
    assert all(type(r["last_verified_on"]) is date for r in rows[:2])


# ------------------------------------------------------------------- validation rules


def test_required_columns_reported_by_row_and_column() -> None:
    data = fill_template([valid_row(), valid_row(serial_no=None, model="   ")])
    errors = refusal(data)
    assert errors == [
        ImportError_(3, "出厂编号", "第3行「出厂编号」：必填"),
        ImportError_(3, "型号规格", "第3行「型号规格」：必填"),
    ]


def test_every_error_is_collected() -> None:
    data = fill_template(
        [
            valid_row(name=None, quantity=0),
            valid_row(),
            valid_row(certificate_type="合格证", quantity="abc", remark="x" * 501),
            valid_row(serial_no="", certificate_type=None, quantity=2.5),
        ]
    )
    errors = refusal(data)
    assert [(e.row, e.column) for e in errors] == [
        (2, "器具名称"),
        (2, "器具数量"),
        (4, "证书类型"),
        (4, "器具数量"),
        (4, "备注"),
        (5, "出厂编号"),
        (5, "证书类型"),
        (5, "器具数量"),
    ]
    for error in errors:
        assert error.message.startswith(f"第{error.row}行「{error.column}」：")
    text = messages(errors)
    assert "应为以下之一：检定证书、校准证书、检测报告" in text[2]
    assert "不能超过 500 个字符" in text[4]


@pytest.mark.parametrize("value", [3, 3.0, "3", " 3 ", "3.0"])
def test_quantity_accepts_whole_numbers(value: Any) -> None:
    rows = read_instruments(fill_template([valid_row(quantity=value)]), BOOKING_COLUMNS)
    assert rows[0]["quantity"] == 3
    assert type(rows[0]["quantity"]) is int


@pytest.mark.parametrize("value", [2.5, 0, -1, "0", "abc", "2.5", "1,000", True])
def test_quantity_refuses_other_values(value: Any) -> None:
    errors = refusal(fill_template([valid_row(quantity=value)]))
    assert len(errors) == 1
    assert errors[0].row == 2 and errors[0].column == "器具数量"
    assert errors[0].message.startswith("第2行「器具数量」：应为 1～9999 之间的整数")


@pytest.mark.parametrize(("value", "ok"), [(1, True), (120, True), (0, False), (121, False)])
def test_cycle_months_range(value: int, ok: bool) -> None:
    data = fill_template([valid_row(cycle_months=value)], REGISTER_COLUMNS)
    if ok:
        assert read_instruments(data, REGISTER_COLUMNS)[0]["cycle_months"] == value
    else:
        (error,) = refusal(data, REGISTER_COLUMNS)
        assert error.column == "检定周期(月)"
        assert "应为 1～120 之间的整数" in error.message


@pytest.mark.parametrize(
    "value",
    [date(2024, 5, 20), datetime(2024, 5, 20, 0, 0), "2024-05-20", "2024/05/20", "2024/5/20"],
)
def test_date_accepts_excel_dates_and_strings(value: Any) -> None:
    data = fill_template([valid_row(last_verified_on=value)], REGISTER_COLUMNS)
    assert read_instruments(data, REGISTER_COLUMNS)[0]["last_verified_on"] == date(2024, 5, 20)


@pytest.mark.parametrize("value", ["2024-02-30", "20240520", "下个月", 45432])
def test_date_refuses_other_values(value: Any) -> None:
    data = fill_template([valid_row(valid_until=value)], REGISTER_COLUMNS)
    (error,) = refusal(data, REGISTER_COLUMNS)
    assert (error.row, error.column) == (2, "有效期至")
    assert error.message.startswith("第2行「有效期至」：日期")


def test_valid_until_not_before_last_verified() -> None:
    data = fill_template(
        [valid_row(last_verified_on=date(2024, 5, 20), valid_until=date(2024, 5, 19))],
        REGISTER_COLUMNS,
    )
    assert messages(refusal(data, REGISTER_COLUMNS)) == ["第2行「有效期至」：不能早于上次检定日期"]


@pytest.mark.parametrize(
    ("key", "label", "limit"),
    [
        ("name", "器具名称", 100),
        ("model", "型号规格", 100),
        ("verification_requirement", "检定要求", 200),
        ("remark", "备注", 500),
    ],
)
def test_text_length_limits(key: str, label: str, limit: int) -> None:
    ok = fill_template([valid_row(**{key: "量" * limit})])
    assert read_instruments(ok, BOOKING_COLUMNS)[0][key] == "量" * limit
    (error,) = refusal(fill_template([valid_row(**{key: "量" * (limit + 1)})]))
    assert error.message == f"第2行「{label}」：不能超过 {limit} 个字符（当前 {limit + 1} 个）"


def test_number_like_serials_become_plain_text() -> None:
    data = fill_template(
        [
            valid_row(serial_no=12345, equipment_no="00123"),
            valid_row(serial_no=12345.0, equipment_no=7, model=2024),
            valid_row(serial_no=1.5),
        ]
    )
    rows = read_instruments(data, BOOKING_COLUMNS)
    assert [(r["serial_no"], r["equipment_no"], r["model"]) for r in rows] == [
        ("12345", "00123", "34465A"),
        ("12345", "7", "2024"),
        ("1.5", "SB-001", "34465A"),
    ]


def test_blank_rows_are_skipped_and_rows_keep_excel_numbers() -> None:
    data = fill_template(
        [
            valid_row(),
            None,
            [None, "  ", None, "\t"],  # whitespace only: blank
            valid_row(serial_no=None),
        ]
    )
    (error,) = refusal(data)
    assert error.message == "第5行「出厂编号」：必填"
    rows = read_instruments(fill_template([None, valid_row(), None, valid_row()]), BOOKING_COLUMNS)
    assert len(rows) == 2


def test_headers_without_star_with_whitespace_and_extra_columns() -> None:
    headers = [
        " 器具名称 ",
        "设备编号",
        "出厂编号 *",
        "型号规格",
        "测量范围",
        "准确度等级",
        "电源电压",
        "制造厂商",
        "检定要求",
        "证书类型＊",
        "器具数量",
        "备注",
        "序号",
    ]
    values = ["温度计", "", "T-1", "0～50 ℃", "", "", "", "", "", "检测报告", 4, "", 1]
    data = sheet_bytes([headers, values, [None] * 12 + [2]])  # a 序号-only row is blank
    assert read_instruments(data, BOOKING_COLUMNS) == [
        {
            "name": "温度计",
            "equipment_no": "",
            "serial_no": "T-1",
            "model": "0～50 ℃",
            "measuring_range": "",
            "accuracy_class": "",
            "supply_voltage": "",
            "manufacturer": "",
            "verification_requirement": "",
            "certificate_type": "检测报告",
            "quantity": 4,
            "remark": "",
        }
    ]


def test_columns_in_other_order_and_title_row_above_header() -> None:
    headers = [c.header for c in reversed(BOOKING_COLUMNS)]
    row = list(reversed([valid_row()[c.key] for c in BOOKING_COLUMNS]))
    data = sheet_bytes([["XX公司送检器具清单"], headers, row])
    assert read_instruments(data, BOOKING_COLUMNS)[0]["serial_no"] == "MY600123"
    errors = refusal(sheet_bytes([["清单"], headers, row, [None] * 11 + ["只有名称"]]))
    # Excel row numbers, counted from the top of the sheet (title row included).
    assert [(e.row, e.column) for e in errors] == [
        (4, "出厂编号"),
        (4, "型号规格"),
        (4, "证书类型"),
        (4, "器具数量"),
    ]


def test_register_import_needs_register_columns() -> None:
    data = fill_template([valid_row()], BOOKING_COLUMNS)
    (error,) = refusal(data, REGISTER_COLUMNS)
    assert error.row is None and error.column is None
    assert error.message.startswith("缺少以下列：检定周期(月)、上次检定日期、有效期至")


# ------------------------------------------------------------------- file-level refusals


def test_missing_and_renamed_headers_listed() -> None:
    headers = list(BOOKING_HEADERS)
    headers[2] = "机身编号"  # renamed 出厂编号
    del headers[8]  # removed 检定要求
    errors = refusal(sheet_bytes([headers, ["x"] * len(headers)]))
    assert messages(errors) == ["缺少以下列：出厂编号、检定要求（请使用下载的模板，不要修改表头）"]


def test_duplicate_header_refused() -> None:
    errors = refusal(sheet_bytes([[*BOOKING_HEADERS, "备注"], valid_row().values()]))
    assert messages(errors) == ["表头「备注」重复出现，请只保留一列"]


def test_no_recognisable_header() -> None:
    errors = refusal(sheet_bytes([["a", "b"], [1, 2]]))
    assert errors[0].message.startswith("缺少以下列：器具名称、设备编号、出厂编号")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(lambda: build_template(BOOKING_COLUMNS), id="template-without-rows"),
        pytest.param(lambda: sheet_bytes([]), id="empty-workbook"),
        pytest.param(lambda: fill_template([None, [" "], None]), id="only-blank-rows"),
    ],
)
def test_no_data_rows(data: Any) -> None:
    assert messages(refusal(data())) == [MSG_NO_DATA]


def test_too_many_rows() -> None:
    data = fill_template([valid_row() for _ in range(4)])
    assert len(read_instruments(data, BOOKING_COLUMNS, max_rows=4)) == 4
    (error,) = refusal(data, max_rows=3)
    assert error.message == "数据行数超过上限：每次最多导入 3 行器具数据，请分批导入"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("器具名称,出厂编号\n万用表,123\n".encode(), id="text-file"),
        pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", id="pdf"),
        pytest.param(b"", id="empty-bytes"),
        pytest.param(zip_bytes({"word/document.xml": b"<w/>", "a.txt": b"x"}), id="zip-no-wb"),
        pytest.param(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, id="legacy-xls"),
        pytest.param(zip_bytes({"xl/workbook.xml": b"not xml"}), id="broken-xlsx"),
    ],
)
def test_not_an_xlsx(data: bytes) -> None:
    (error,) = refusal(data)
    assert error.message.startswith(MSG_NOT_XLSX)
    assert (error.row, error.column) == (None, None)


def test_oversize_file() -> None:
    (error,) = refusal(b"PK" + b"\0" * (5 * 1024 * 1024))
    assert error.message == "文件过大（5 MB），最大允许 5 MB"
    data = fill_template([valid_row()])
    (error,) = refusal(data, max_bytes=1024)
    assert "最大允许 1 KB" in error.message
    assert read_instruments(data, BOOKING_COLUMNS, max_bytes=len(data)) != []


def test_zip_bomb_total_size() -> None:
    template = zipfile.ZipFile(io.BytesIO(fill_template([valid_row()])))
    entries = {i.filename: template.read(i.filename) for i in template.infolist()}
    entries["xl/media/padding.bin"] = b"\0" * (60 * 1024 * 1024)
    data = zip_bytes(entries)
    assert len(data) < 1024 * 1024  # tiny on the wire
    assert messages(refusal(data)) == [MSG_ZIP_BOMB]


def test_zip_bomb_compression_ratio() -> None:
    data = replace_in_zip(
        fill_template([valid_row()]), "xl/media/zeros.bin", b"\0" * (10 * 1024 * 1024)
    )
    assert messages(refusal(data)) == [MSG_ZIP_BOMB]


def test_too_many_zip_entries() -> None:
    template = zipfile.ZipFile(io.BytesIO(fill_template([valid_row()])))
    entries = {i.filename: template.read(i.filename) for i in template.infolist()}
    entries.update({f"xl/junk/{n}.xml": b"<x/>" for n in range(1001)})
    assert messages(refusal(zip_bytes(entries))) == [MSG_ZIP_BOMB]


def test_xml_entity_expansion_refused() -> None:
    data = fill_template([valid_row()])
    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    )
    hostile = bomb + sheet.replace("MY600123", "&lol2;")
    with pytest.raises(ImportRefused) as info:
        read_instruments(
            replace_in_zip(data, "xl/worksheets/sheet1.xml", hostile.encode()), BOOKING_COLUMNS
        )
    (error,) = info.value.errors
    assert error.message == MSG_NOT_XLSX + "（包含不允许的 XML 内容，已拒绝）"
    # The refusal really came from defusedxml, somewhere down openpyxl's exception chain.
    chain, current = [], info.value.__cause__
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    assert any(isinstance(e, EntitiesForbidden) for e in chain)


def test_import_refused_summary() -> None:
    errors = [ImportError_(n, "备注", f"第{n}行「备注」：x") for n in range(2, 9)]
    refused = ImportRefused(errors)
    assert refused.errors == errors
    assert str(refused).startswith("第2行「备注」：x；第3行")
    assert str(refused).endswith("共 7 处错误")


def test_reading_5000_rows() -> None:
    # How fast is bench/booking.py's to say (a timed test fails on a busy machine).
    row = valid_row(remark="常规送检", verification_requirement="全项检定")
    data = fill_template([{**row, "serial_no": f"SN{n:06d}"} for n in range(DEFAULT_MAX_ROWS)])
    rows = read_instruments(data, BOOKING_COLUMNS)
    assert len(rows) == DEFAULT_MAX_ROWS
    assert rows[-1]["serial_no"] == "SN004999"


# ------------------------------------------------------------------------------ export


FORMULA_LIKE = [
    "=1+1",
    '=HYPERLINK("http://x")',
    "+SUM(A1:A2)",
    "-2+3",
    "@cmd",
    "\tTAB",
    "#N/A",
    "=",
    "=cmd|' /C calc'!A0",
]


def test_looks_like_formula() -> None:
    assert all(looks_like_formula(text) for text in [*FORMULA_LIKE, "\rCR", "\nLF"])
    assert not any(looks_like_formula(text) for text in ["万用表", "A=1", "12-3", ""])


def test_export_dates_ints_and_formula_like_text() -> None:
    rows = [
        {
            **valid_row(),
            "name": text,
            "serial_no": "00123",
            "quantity": 2,
            "cycle_months": 12,
            "last_verified_on": date(2024, 5, 20),
            "valid_until": datetime(2025, 5, 19, 0, 0),
        }
        for text in FORMULA_LIKE
    ]
    data = export_bytes(rows, REGISTER_COLUMNS)

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "<f " not in xml

    wb = openpyxl.load_workbook(io.BytesIO(data))
    ws = wb["器具托管"]
    assert [c.value for c in ws[1]] == [c.label for c in REGISTER_COLUMNS]
    assert all(c.font.b for c in ws[1])
    assert ws.freeze_panes == "A2"
    for number, text in enumerate(FORMULA_LIKE, start=2):
        name = ws.cell(row=number, column=1)
        assert name.value == text
        assert name.data_type == "s"
        assert name.quotePrefix is True
        assert ws.cell(row=number, column=3).value == "00123"
        quantity = ws.cell(row=number, column=11)
        assert quantity.value == 2 and quantity.data_type == "n"
        for column, expected in ((14, datetime(2024, 5, 20)), (15, datetime(2025, 5, 19))):
            cell = ws.cell(row=number, column=column)
            assert cell.value == expected
            assert cell.is_date and cell.number_format == "yyyy-mm-dd"
    assert ws.cell(row=2, column=12).value is None  # remark None -> empty cell

    # The same workbook read as an upload gives the user's text back exactly.
    imported = read_instruments(data, REGISTER_COLUMNS)
    assert [r["name"] for r in imported] == [t.strip() for t in FORMULA_LIKE]


def test_export_round_trips_through_import() -> None:
    rows = read_instruments(
        fill_template(
            [
                valid_row(cycle_months=12, last_verified_on="2024-01-31", valid_until="2025-01-30"),
                valid_row(serial_no=98765, remark="带\n换行"),
            ],
            REGISTER_COLUMNS,
        ),
        REGISTER_COLUMNS,
    )
    buffer = io.BytesIO()
    assert write_export(rows, REGISTER_COLUMNS, buffer, sheet_title="托管清单") == 2
    assert openpyxl.load_workbook(io.BytesIO(buffer.getvalue())).sheetnames == ["托管清单"]
    assert read_instruments(buffer.getvalue(), REGISTER_COLUMNS) == rows


def test_export_booking_columns_and_missing_keys() -> None:
    data = export_bytes([{"name": "砝码", "quantity": 5, "ignored": "x"}], BOOKING_COLUMNS)
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    assert ws.max_column == len(BOOKING_COLUMNS)
    assert [c.value for c in ws[2]] == ["砝码"] + [None] * 9 + [5, None]


def test_export_carriage_returns_become_line_feeds() -> None:
    data = export_bytes([{"name": "\rCR", "remark": "第一行\r\n第二行\r"}], BOOKING_COLUMNS)
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    assert ws["A2"].value == "\nCR" and ws["A2"].data_type == "s"
    assert ws["L2"].value == "第一行\n第二行\n"


def test_export_drops_characters_xml_cannot_hold() -> None:
    data = export_bytes([{"name": "万用\x00表\x07", "remark": "=A1\x0b"}], BOOKING_COLUMNS)
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    assert ws["A2"].value == "万用表"
    assert ws["L2"].value == "=A1" and ws["L2"].data_type == "s"


def test_export_streams_a_generator() -> None:
    consumed = 0

    def rows() -> Iterator[dict[str, Any]]:
        nonlocal consumed
        for n in range(10_000):
            consumed += 1
            yield {**valid_row(), "serial_no": f"SN{n}", "last_verified_on": date(2024, 1, 1)}

    buffer = io.BytesIO()
    assert write_export(rows(), REGISTER_COLUMNS, buffer) == 10_000
    assert consumed == 10_000
    wb = openpyxl.load_workbook(io.BytesIO(buffer.getvalue()), read_only=True)
    try:
        *_, last = wb.active.iter_rows(values_only=True)
        assert last is not None and last[2] == "SN9999"
        assert last[13] == datetime(2024, 1, 1)
    finally:
        wb.close()


def test_export_empty() -> None:
    data = export_bytes([], BOOKING_COLUMNS)
    assert messages(refusal(data)) == [MSG_NO_DATA]


def test_rows_beyond_excel_limit_are_not_walked() -> None:
    data = fill_template([valid_row()])
    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    far = '<row r="99999999"><c r="A99999999" t="inlineStr"><is><t>x</t></is></c></row>'
    hostile = replace_in_zip(
        data, "xl/worksheets/sheet1.xml", sheet.replace("</sheetData>", far + "</sheetData>")
    )
    started = time.perf_counter()
    assert len(read_instruments(hostile, BOOKING_COLUMNS)) == 1
    assert time.perf_counter() - started < 5


def test_columns_are_required() -> None:
    with pytest.raises(ValueError):
        read_instruments(fill_template([valid_row()]), ())
