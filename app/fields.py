"""The instrument fields, defined once.

A booking's 器具列表 (``BookingItem``) and the 器具托管 register (``Instrument``) hold the
same instrument fields; the register adds its due-date fields. Everything that lists them
reads this module: the tables' columns (app/tables.py), the forms, the import template,
import and export (instrument_xlsx), the searches, the pickers and the lab API.

Pure data: no database or web code, so anything can import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

FieldKind = Literal["text", "int", "date", "choice"]

CERTIFICATE_TYPES: tuple[str, ...] = ("检定证书", "校准证书", "检测报告")


@dataclass(frozen=True, slots=True)
class Field:
    """One instrument field.

    ``label`` is the Chinese name without the ``*`` that marks a required column in the
    spreadsheet (:attr:`header`). ``max_length`` applies to text and choice fields (it is
    the column's VARCHAR length), ``min_value`` / ``max_value`` to int fields. ``default``
    is the column's default and the value a new form starts with (None: the column is
    nullable). ``description`` and ``example`` fill the template's 填写说明 sheet.
    """

    key: str
    label: str
    required: bool = False
    kind: FieldKind = "text"
    max_length: int = 100
    min_value: int | None = None
    max_value: int | None = None
    default: Any = ""
    choices: tuple[str, ...] = ()
    index: bool = False  # a database index on the column
    description: str = ""
    example: Any = None

    @property
    def header(self) -> str:
        """Header cell text: the label, followed by ``*`` when the field is required."""
        return f"{self.label}*" if self.required else self.label

    @property
    def is_text(self) -> bool:
        """Stored as text (text and choice fields): what a keyword search can match."""
        return self.kind in ("text", "choice")


# The fields of an instrument, in the order the manual and the spreadsheets show them.
INSTRUMENT_FIELDS: tuple[Field, ...] = (
    Field("name", "器具名称", required=True, description="器具的名称", example="数字多用表"),
    Field("equipment_no", "设备编号", description="贵单位内部的设备（资产）编号",
          example="SB-2023-017"),
    Field("serial_no", "出厂编号", required=True,
          description="铭牌上的出厂编号；纯数字编号会按文本保存，前导 0 不会丢失",
          example="MY60012345"),
    Field("model", "型号规格", required=True, description="器具的型号或规格", example="34465A"),
    Field("measuring_range", "测量范围", description="测量范围", example="DCV 0～1000 V"),
    Field("accuracy_class", "准确度等级", description="准确度等级、最大允许误差或不确定度",
          example="6½ 位"),
    Field("supply_voltage", "电源电压", description="工作电源，无需供电可不填",
          example="AC 220 V"),
    Field("manufacturer", "制造厂商", description="制造厂商名称", example="是德科技"),
    Field("verification_requirement", "检定要求", max_length=200,
          description="特殊的检定/校准要求，如指定的规程规范、校准点",
          example="依据 JJF 1587-2016 校准"),
    Field("certificate_type", "证书类型", required=True, kind="choice", max_length=10,
          default=CERTIFICATE_TYPES[0], choices=CERTIFICATE_TYPES,
          description="需要出具的证书或报告类型", example="校准证书"),
    Field("quantity", "器具数量", required=True, kind="int", min_value=1, max_value=9999, default=1,
          description="器具的台（件、套）数", example=1),
    Field("remark", "备注", max_length=500, description="其他需要说明的情况",
          example="附测试线一副"),
)  # fmt: skip

# 器具托管 adds when the instrument is due.
REGISTER_FIELDS: tuple[Field, ...] = INSTRUMENT_FIELDS + (
    Field("cycle_months", "检定周期(月)", kind="int", min_value=1, max_value=120, default=None,
          description="检定/校准周期，单位：月", example=12),
    Field("last_verified_on", "上次检定日期", kind="date", default=None,
          description="最近一次检定/校准的日期", example=date(2024, 5, 20)),
    Field("valid_until", "有效期至", kind="date", default=None, index=True,
          description="证书有效期的截止日期，不能早于上次检定日期", example=date(2025, 5, 19)),
)  # fmt: skip

_BY_KEY = {f.key: f for f in REGISTER_FIELDS}


# 协议客户 import (平台管理): the template's columns, read by the same spreadsheet module.
CONTRACT_FIELDS: tuple[Field, ...] = (
    Field(
        "name",
        "单位名称",
        required=True,
        max_length=200,
        example="南京某某仪表有限公司",
        description="协议客户的单位名称",
    ),
    Field(
        "uscc",
        "统一社会信用代码",
        required=True,
        max_length=18,
        example="91350100M000100Y43",
        description="18位；已有的协议客户按此代码更新",
    ),
    Field(
        "contract_no",
        "合同编号",
        required=True,
        max_length=100,
        example="HT-2026-001",
        description="与研究院签订的合同编号",
    ),
    Field(
        "phones",
        "联系人手机",
        required=True,
        max_length=200,
        example="13800000000,13900000000",
        description="可填多个，用逗号分隔",
    ),
)


def fields(*keys: str) -> tuple[Field, ...]:
    """The fields with these keys, in this order."""
    return tuple(_BY_KEY[k] for k in keys)


# The register's keyword search matches every text field.
REGISTER_SEARCH: tuple[Field, ...] = tuple(f for f in INSTRUMENT_FIELDS if f.is_text)
# The history picker searches every booking item ever made, in raw SQL: only the fields a
# person identifies an instrument by.
HISTORY_SEARCH: tuple[Field, ...] = fields(
    "name", "serial_no", "model", "equipment_no", "manufacturer"
)
# The pickers' columns, identity (名称, 出厂编号, 型号规格) first.
HISTORY_PICKER: tuple[Field, ...] = HISTORY_SEARCH + fields("certificate_type", "quantity")
CUSTODY_PICKER: tuple[Field, ...] = fields(
    "name", "serial_no", "model", "equipment_no", "valid_until", "certificate_type", "quantity"
)
