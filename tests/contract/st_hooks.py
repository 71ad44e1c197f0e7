"""Schemathesis hooks of tests/contract/test_lab_api_fuzz.py (loaded via SCHEMATHESIS_HOOKS).

Two rules of the lab API are stated in words, not in JSON Schema: an order's 唯一性号 are
unique within the request, and a certificate's file is a real PDF. The API answers 422
for either (documented). So that "schema-valid data is accepted" stays a strict check,
a positive case is made to keep these rules too: a generated file becomes a real PDF
and repeated 唯一性号 are dropped. Negative cases are left as generated; one false alarm
of multipart encoding is filtered (``filter_failure``).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema
import schemathesis
from fpdf import FPDF
from schemathesis.core.parameters import ParameterLocation


@cache
def _pdf() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.cell(text="Calibration certificate (schemathesis)")
    return bytes(pdf.output())


def _positive_body(case: Any) -> bool:
    return isinstance(case.body, dict) and not (
        case.meta is not None and case.meta.is_negative_at(ParameterLocation.BODY)
    )


# before_call, not map_case: it sees the cases of every phase (coverage and examples too).
@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if not _positive_body(case):
        return
    operation_id = case.operation.definition.raw.get("operationId")
    if operation_id == "putCertificate" and "file" in case.body:
        case.body["file"] = _pdf()
    elif operation_id == "putOrder" and isinstance(case.body.get("instruments"), list):
        seen: set[Any] = set()
        lines = []
        for line in case.body["instruments"]:
            key = line.get("unique_no") if isinstance(line, dict) else None
            if key is None or key not in seen:
                seen.add(key)
                lines.append(line)
        case.body["instruments"] = lines


def _valid_on_the_wire(schema: dict[str, Any], body: dict[str, Any]) -> bool:
    """Whether every form field, as multipart sends it (text), satisfies its schema."""
    for name, value in body.items():
        field = schema.get("properties", {}).get(name)
        if field is None or field.get("format") == "binary":
            continue
        texts = [value] if isinstance(value, str) else [json.dumps(value), str(value)]
        if not any(_matches(field, text) for text in texts if isinstance(text, str)):
            return False
    return all(name in body for name in schema.get("required", []))


def _matches(field: dict[str, Any], text: str) -> bool:
    try:
        jsonschema.validate(text, field)
    except jsonschema.ValidationError:
        return False
    return True


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but one false alarm: a "schema-violating" multipart body whose
    violation was a type (``true`` for the string "true", ``0`` for "0") that the form
    encoding turned into valid text; on the wire such a request is schema-valid."""
    if case.operation.definition.raw.get("operationId") != "putCertificate":
        return True
    if not (isinstance(case.body, dict) and response.status_code < 300):
        return True
    if case.meta is None or not case.meta.is_negative_at(ParameterLocation.BODY):
        return True
    schema = case.operation.schema.raw_schema["components"]["schemas"]["CertificateUpload"]
    return not _valid_on_the_wire(schema, case.body)
