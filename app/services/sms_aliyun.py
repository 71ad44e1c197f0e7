"""Alibaba Cloud SMS (Dysmsapi) adapter.

Talks directly to the public HTTP RPC API of Dysmsapi (API version ``2017-05-25``, action
``SendSms``, and ``QuerySendDetails`` to learn whether a message whose sending was cut off
went out) using signature version 1.0 (HMAC-SHA1) over :class:`httpx.AsyncClient`, so no
vendor SDK is needed.

Signing (see Aliyun's "HTTP 协议及签名" documentation):

1. Every request parameter except ``Signature`` is percent-encoded per RFC 3986 (UTF-8;
   unreserved characters ``A-Z a-z 0-9 - _ . ~`` are kept, everything else becomes ``%XX``,
   so a space is ``%20``, ``*`` is ``%2A`` and ``~`` stays as is).
2. The encoded pairs are sorted by parameter name and joined as ``k=v&k=v`` (the canonical
   query string).
3. ``StringToSign = METHOD + "&" + percent_encode("/") + "&" + percent_encode(canonical)``.
4. ``Signature = base64(HMAC-SHA1(key=AccessKeySecret + "&", StringToSign))``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote

import httpx

from app import clock

__all__ = [
    "API_VERSION",
    "AliyunConfig",
    "AliyunSmsBackend",
    "SmsSendError",
    "canonical_query",
    "percent_encode",
    "sign",
]

API_VERSION = "2017-05-25"
"""Dysmsapi API version this adapter speaks."""

_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# QuerySendDetails: at most 50 a page; a phone gets few of our messages a day.
_QUERY_PAGE_SIZE = 50
_MAX_QUERY_PAGES = 10
_BODY_SNIPPET_LEN = 200


class SmsSendError(Exception):
    """Raised when an SMS could not be handed over to Alibaba Cloud.

    The message is safe to log: it never contains the AccessKey secret. When the provider
    answered with an error document, its ``Code``/``Message``/``RequestId`` are included in
    the message and exposed as attributes.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        provider_message: str | None = None,
        request_id: str | None = None,
        status_code: int | None = None,
    ) -> None:
        """Create the error.

        Args:
            message: Human readable description of what went wrong.
            code: The provider's ``Code`` field (e.g. ``isv.BUSINESS_LIMIT_CONTROL``), if any.
            provider_message: The provider's ``Message`` field, if any.
            request_id: The provider's ``RequestId`` field, if any.
            status_code: HTTP status of the provider's answer, if one was received.
        """
        super().__init__(message)
        self.code = code
        self.provider_message = provider_message
        self.request_id = request_id
        self.status_code = status_code


@dataclass(frozen=True)
class AliyunConfig:
    """Credentials and connection settings for Dysmsapi."""

    access_key_id: str
    access_key_secret: str
    sign_name: str
    endpoint: str = "https://dysmsapi.aliyuncs.com/"
    region_id: str = "cn-hangzhou"
    timeout: float = 10.0

    def __repr__(self) -> str:
        """Return a representation that does not reveal the AccessKey secret."""
        return (
            f"AliyunConfig(access_key_id={self.access_key_id!r}, access_key_secret='***', "
            f"sign_name={self.sign_name!r}, endpoint={self.endpoint!r}, "
            f"region_id={self.region_id!r}, timeout={self.timeout!r})"
        )


def percent_encode(s: str) -> str:
    """Percent-encode ``s`` the way Aliyun's RPC signature requires (RFC 3986, UTF-8).

    Only the unreserved characters ``A-Z a-z 0-9 - _ . ~`` are left as they are; a space
    becomes ``%20`` (never ``+``), ``*`` becomes ``%2A`` and ``/`` becomes ``%2F``.
    """
    return quote(s, safe="~")


def canonical_query(params: dict[str, str]) -> str:
    """Build the canonicalized query string: ``k=v`` pairs sorted by key, joined by ``&``.

    Both keys and values are encoded with :func:`percent_encode`. Sorting is by the raw
    parameter name (all Dysmsapi parameter names are ASCII, so this equals byte order).
    """
    return "&".join(
        f"{percent_encode(key)}={percent_encode(params[key])}" for key in sorted(params)
    )


def sign(params: dict[str, str], secret: str, method: str = "GET") -> str:
    """Compute the signature-version-1.0 HMAC-SHA1 ``Signature`` for ``params``.

    Args:
        params: All request parameters except ``Signature`` itself.
        secret: The AccessKey secret; ``"&"`` is appended to form the HMAC key.
        method: HTTP method of the request (``GET`` or ``POST``).

    Returns:
        The base64-encoded signature (not yet percent-encoded).
    """
    string_to_sign = (
        f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"
    )
    digest = hmac.new(
        (secret + "&").encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode("ascii")


class AliyunSmsBackend:
    """Send template SMS through Alibaba Cloud Dysmsapi ``SendSms``."""

    def __init__(
        self, config: AliyunConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        """Create the backend.

        Args:
            config: Credentials, signature name and endpoint.
            transport: Optional httpx transport (tests inject one; production uses the
                default network transport).
        """
        self._config = config
        self._transport = transport

    def build_params(
        self,
        phone: str,
        template_code: str,
        params: dict[str, str],
        out_id: str | None = None,
    ) -> dict[str, str]:
        """Return the signed query parameters of a ``SendSms`` request.

        A fresh ``SignatureNonce`` and the current UTC ``Timestamp`` are used on each call.
        ``out_id`` (``OutId``) is our own id of the message: QuerySendDetails reports it back.
        """
        query: dict[str, str] = {
            "Action": "SendSms",
            "PhoneNumbers": phone,
            "SignName": self._config.sign_name,
            "TemplateCode": template_code,
            "TemplateParam": json.dumps(params, ensure_ascii=False, separators=(",", ":")),
        }
        if out_id:
            query["OutId"] = out_id
        return self._signed(query)

    def _signed(self, action: dict[str, str]) -> dict[str, str]:
        """The common parameters added to ``action``'s, and the whole signed."""
        cfg = self._config
        query: dict[str, str] = {
            "AccessKeyId": cfg.access_key_id,
            "Format": "JSON",
            "RegionId": cfg.region_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": clock.wall_now().strftime(_TIMESTAMP_FORMAT),
            "Version": API_VERSION,
            **action,
        }
        query["Signature"] = sign(query, cfg.access_key_secret, "GET")
        return query

    def _build_url(self, query: dict[str, str]) -> str:
        """Append the percent-encoded query to the configured endpoint."""
        endpoint = self._config.endpoint
        separator = "&" if "?" in endpoint else "?"
        return f"{endpoint}{separator}{canonical_query(query)}"

    def _scrub(self, text: str) -> str:
        """Remove the AccessKey secret from ``text`` (defence in depth for error messages)."""
        secret = self._config.access_key_secret
        return text.replace(secret, "***") if secret else text

    async def send(
        self,
        phone: str,
        template_code: str,
        params: dict[str, str],
        out_id: str | None = None,
    ) -> str:
        """Send one template SMS.

        Args:
            phone: Recipient number(s) as Dysmsapi expects in ``PhoneNumbers``.
            template_code: Approved template code, e.g. ``SMS_123456789``.
            params: Template variables; sent as compact JSON with non-ASCII kept verbatim.
            out_id: Our id of the message (``OutId``), for :meth:`find_sent`.

        Returns:
            The provider's ``BizId`` for the accepted message.

        Raises:
            SmsSendError: On timeouts, network/HTTP errors, non-JSON answers, or any answer
                whose ``Code`` is not ``"OK"``. ``code`` is set only when the provider
                answered (the message was refused); otherwise it may have been sent.
        """
        data = await self._call(self.build_params(phone, template_code, params, out_id))
        biz_id = _as_str(data.get("BizId"))
        if not biz_id:
            raise SmsSendError("Aliyun SMS answered Code=OK but the answer is unusable (no BizId)")
        return biz_id

    async def find_sent(self, phone: str, out_id: str, days: list[date]) -> str | None:
        """Whether a message with ``OutId`` ``out_id`` was accepted for ``phone`` on one of
        ``days`` (China dates): QuerySendDetails, as Aliyun advises before sending again
        after a timeout (SendSms itself is not idempotent). Returns a reference, or None.

        Raises SmsSendError when the provider cannot be asked (then nobody knows yet).
        """
        for day in days:
            for page in range(1, _MAX_QUERY_PAGES + 1):
                query = {
                    "Action": "QuerySendDetails",
                    "PhoneNumber": phone,
                    "SendDate": day.strftime("%Y%m%d"),
                    "PageSize": str(_QUERY_PAGE_SIZE),
                    "CurrentPage": str(page),
                }
                data = await self._call(self._signed(query))
                details = data.get("SmsSendDetailDTOs") or {}
                rows = details.get("SmsSendDetailDTO") if isinstance(details, dict) else None
                rows = rows if isinstance(rows, list) else []
                for row in rows:
                    if isinstance(row, dict) and _as_str(row.get("OutId")) == out_id:
                        return f"OutId={out_id} ({_as_str(row.get('SendDate')) or day})"
                total = int(_as_str(data.get("TotalCount")) or 0)
                if page * _QUERY_PAGE_SIZE >= total or not rows:
                    break
        return None

    async def _call(self, query: dict[str, str]) -> dict[str, Any]:
        """One signed RPC call; its JSON answer when ``Code`` is ``OK``."""
        url = self._build_url(query)
        try:
            async with httpx.AsyncClient(
                transport=self._transport, timeout=self._config.timeout
            ) as client:
                response = await client.get(url, headers={"Accept": "application/json"})
        except httpx.TimeoutException as exc:
            raise SmsSendError(
                f"Aliyun SMS request timed out after {self._config.timeout:g}s "
                f"({type(exc).__name__})"
            ) from None
        except httpx.HTTPError as exc:
            detail = self._scrub(str(exc)) or "no details"
            raise SmsSendError(
                f"Aliyun SMS request failed: {type(exc).__name__}: {detail}"
            ) from None

        return self._parse_response(response)

    def _parse_response(self, response: httpx.Response) -> dict[str, Any]:
        """The answer of a successful call, or :class:`SmsSendError`."""
        status = response.status_code
        try:
            data: Any = response.json()
        except ValueError:
            snippet = self._scrub(response.text[:_BODY_SNIPPET_LEN])
            raise SmsSendError(
                f"Aliyun SMS returned a non-JSON answer (HTTP {status}): {snippet!r}",
                status_code=status,
            ) from None
        if not isinstance(data, dict):
            raise SmsSendError(
                f"Aliyun SMS returned unexpected JSON (HTTP {status}): "
                f"{type(data).__name__} instead of an object",
                status_code=status,
            )

        code = _as_str(data.get("Code"))
        message = _as_str(data.get("Message"))
        request_id = _as_str(data.get("RequestId"))

        if code == "OK" and response.is_success:
            return data

        if code == "OK":
            text = f"Aliyun SMS answered Code=OK but the answer is unusable (HTTP {status})"
        elif code:
            text = f"Aliyun SMS rejected the message (HTTP {status}): Code={code}"
            if message:
                text += f", Message={message}"
        else:
            text = f"Aliyun SMS answered without a Code (HTTP {status})"
        if request_id:
            text += f", RequestId={request_id}"
        raise SmsSendError(
            self._scrub(text),
            code=code,
            provider_message=message,
            request_id=request_id,
            status_code=status,
        )


def _as_str(value: object) -> str | None:
    """Return ``value`` as a string, or ``None`` when it is missing."""
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)
