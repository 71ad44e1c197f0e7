"""Field checks shared by every form: USCC, mobile numbers, e-mail addresses, passwords."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

# GB 32100-2015: 统一社会信用代码 alphabet (no I, O, S, V, Z) and the weights of positions 1-17.
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")

# Never stored as typed: control characters (tab and line breaks excepted), the
# byte-order mark and the bidi controls that make text read other than it is stored
# (U+202E turns "txt.exe" around).
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)


def strip_controls(text: str) -> str:
    """``text`` without control, bidi-override and byte-order characters."""
    return _INVISIBLE.sub("", text)


def uscc_error(code: str) -> str | None:
    """None when ``code`` is a valid 统一社会信用代码, else the message to show."""
    if len(code) != 18:
        return "统一社会信用代码应为18位"
    if any(c not in USCC_CHARS for c in code):
        return "统一社会信用代码含有无效字符（只能是数字和除 I、O、S、V、Z 外的大写字母）"
    if uscc_check_char(code[:17]) != code[17]:
        return "统一社会信用代码校验位不正确，请核对"
    return None


def uscc_check_char(first17: str) -> str:
    """The check character (position 18) for the first 17 characters of a code."""
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


def normalize_phone(phone: str) -> str:
    phone = re.sub(r"[\s-]", "", phone)
    return phone.removeprefix("+86")


def mobile_error(phone: str) -> str | None:
    if not phone:
        return "请输入手机号"
    if not MOBILE_RE.match(phone):
        return "请输入正确的11位手机号"
    return None


EMAIL_MAX = 254  # RFC 5321's limit on a forward path
EMAIL_BAD = "邮箱地址格式不正确，请输入如 name@example.com 的地址"


def email_address(text: str) -> tuple[str, str | None]:
    """``text`` as an e-mail address: (the address to store, None) or (``text``, the message).

    Empty is valid (no address). email-validator checks the syntax (no DNS lookup: a form
    must not wait on the network); the stored form has its domain in ASCII (IDNA), and a
    local part in Chinese is refused, since not every mail server takes SMTPUTF8.
    """
    text = text.strip()
    if not text:
        return "", None
    if len(text) > EMAIL_MAX:
        return text, f"邮箱地址不能超过{EMAIL_MAX}个字符"
    try:
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return text, EMAIL_BAD
    return checked.ascii_email or checked.normalized, None


@lru_cache
def common_passwords() -> frozenset[str]:
    path = Path(__file__).with_name("common_passwords.txt")
    return frozenset(line.strip().lower() for line in path.read_text().splitlines() if line)


def password_error(password: str, username: str = "") -> str | None:
    """None when ``password`` is acceptable, else the message (SPEC §3)."""
    if len(password) < 8:
        return "密码至少8位，且须同时包含字母和数字"
    if not re.search(r"[A-Za-z]", password) or not re.search(r"\d", password):
        return "密码至少8位，且须同时包含字母和数字"
    if password.lower() in common_passwords() or (
        username and username.lower() in password.lower()
    ):
        return "密码过于常见或包含账号，请换一个更难猜的密码"
    if len(password) > 128:
        return "密码不能超过128位"
    return None


USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{3,50}$")


def username_error(username: str) -> str | None:
    if not username:
        return "请输入登录账号"
    if not USERNAME_RE.match(username):
        return "登录账号为3-50位字母、数字或 _ . @ -"
    return None


def missing_errors(values: Mapping[str, object], labels: dict[str, str]) -> dict[str, str]:
    """``请输入<label>`` for each key of ``labels`` whose value is empty."""
    return {key: f"请输入{label}" for key, label in labels.items() if not values[key]}


def review_reason_error(approved: bool, reason: str) -> str | None:
    """The reason of a 通过 / 驳回 (stripped): required to reject, at most 200 characters."""
    if not approved and not reason:
        return "驳回时请填写原因"
    if len(reason) > 200:
        return "原因不能超过200个字"
    return None
