"""The services' commands: ``from_form`` picks its keys and strips them, nothing more."""

from __future__ import annotations

from app.fields import INSTRUMENT_FIELDS, REGISTER_FIELDS
from app.services.accounts import PasswordReset, Registration
from app.services.admin import ContractCustomer
from app.services.bookings import (
    BASIC_FIELDS,
    BOOKING_FIELDS,
    BasicInfoInput,
    BookingItemInput,
    BookingSubmission,
)
from app.services.instruments import InstrumentInput


def test_registration_strips_and_reads_the_agree_box() -> None:
    form = {"name": "  某公司 ", "uscc": " 91350100m000100y1 ", "agree": "on", "extra": "x"}
    reg = Registration.from_form(form)
    # Read as typed: capitals and the phone's format are the service's business.
    assert (reg.name, reg.uscc, reg.username) == ("某公司", "91350100m000100y1", "")
    assert reg.agree
    assert not Registration.from_form({"agree": "no"}).agree
    assert PasswordReset.from_form({"phone": " 138 0000 0000 "}).phone == "138 0000 0000"


def test_contract_customer_keeps_the_phones_as_typed() -> None:
    customer = ContractCustomer.from_form({"phones": " 13800000000，13900000000 "})
    assert customer.phones == "13800000000，13900000000"
    assert customer.name == customer.uscc == customer.contract_no == ""


def test_field_list_commands_hold_exactly_their_fields() -> None:
    form = {"client_name": " 甲 ", "name": " 温度计 ", "cycle_months": " 12 ", "junk": "1"}
    assert BookingSubmission.from_form(form).values.keys() == {k for k, *_ in BOOKING_FIELDS}
    assert BasicInfoInput.from_form(form).values.keys() == {k for k, *_ in BASIC_FIELDS}
    instrument = InstrumentInput.from_form(form).values
    assert instrument.keys() == {f.key for f in REGISTER_FIELDS}
    assert (instrument["name"], instrument["cycle_months"]) == ("温度计", "12")
    assert instrument["model"] == ""
    item = BookingItemInput.from_form(form)
    assert item.item.keys() == {f.key for f in INSTRUMENT_FIELDS}
    assert item.booking.values["client_name"] == "甲"


def test_booking_item_id() -> None:
    assert BookingItemInput.from_form({}).item_id is None
    assert BookingItemInput.from_form({"item_id": ""}).item_id is None
    assert BookingItemInput.from_form({"item_id": "42"}).item_id == 42
    # Not a number: id 0, which is no row (the service answers NotFound).
    assert BookingItemInput.from_form({"item_id": "4x"}).item_id == 0
    assert BookingItemInput.from_form({"item_id": "²"}).item_id == 0
