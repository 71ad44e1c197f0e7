"""Tests for the Alibaba Cloud SMS adapter (``app.services.sms_aliyun``).

The signing helpers are checked against Aliyun's documented example, and the backend is
exercised end to end against a real local HTTP server that verifies signatures with its own,
independent implementation of the signature-version-1.0 algorithm.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from app import clock
from app.services.sms_aliyun import (
    AliyunConfig,
    AliyunSmsBackend,
    SmsSendError,
    canonical_query,
    percent_encode,
    sign,
)

ACCESS_KEY_ID = "LTAI-test-key-id"
ACCESS_KEY_SECRET = "s3cr3t-Do-Not-Leak-9f8e7d"
SIGN_NAME = "计量院"

# Aliyun's documented SendSms signing example ("HTTP 协议及签名"). Note the casing: the
# documentation uses AccessKeyId "testId" and AccessKeySecret "testSecret".
DOC_PARAMS: dict[str, str] = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
DOC_SECRET = "testSecret"
DOC_SIGNATURE = "zJDF+Lrzhj/ThnlvIToysFRq6t4="
DOC_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123"
    "%26PhoneNumbers%3D15300000001%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF"
    "%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1%25E6%25B5%258B%25E8%25AF"
    "%2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce"
    "%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode"
    "%3DSMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D"
    "%26Timestamp%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
)

REQUIRED_PARAMS = (
    "AccessKeyId",
    "Action",
    "Format",
    "RegionId",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "Timestamp",
    "Version",
    "PhoneNumbers",
    "SignName",
    "TemplateCode",
    "TemplateParam",
    "Signature",
)


# --------------------------------------------------------------------------- pure helpers


def test_documented_signature_vector() -> None:
    assert sign(DOC_PARAMS, DOC_SECRET) == DOC_SIGNATURE
    assert sign(DOC_PARAMS, DOC_SECRET, "get") == DOC_SIGNATURE


def test_documented_string_to_sign() -> None:
    string_to_sign = f"GET&{percent_encode('/')}&{percent_encode(canonical_query(DOC_PARAMS))}"
    assert string_to_sign == DOC_STRING_TO_SIGN
    expected = base64.b64encode(
        hmac.new(b"testSecret&", DOC_STRING_TO_SIGN.encode(), hashlib.sha1).digest()
    ).decode()
    assert expected == DOC_SIGNATURE


def test_signature_depends_on_secret_method_and_params() -> None:
    assert sign(DOC_PARAMS, "testsecret") != DOC_SIGNATURE
    assert sign(DOC_PARAMS, DOC_SECRET, "POST") != DOC_SIGNATURE
    assert sign({**DOC_PARAMS, "PhoneNumbers": "15300000000"}, DOC_SECRET) != DOC_SIGNATURE


def test_signature_independent_of_dict_order() -> None:
    reversed_params = dict(reversed(list(DOC_PARAMS.items())))
    assert sign(reversed_params, DOC_SECRET) == DOC_SIGNATURE


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("abcXYZ019-_.~", "abcXYZ019-_.~"),
        ("a b", "a%20b"),
        ("*", "%2A"),
        ("~", "~"),
        ("+", "%2B"),
        ("/", "%2F"),
        ("=", "%3D"),
        ("&", "%26"),
        (":", "%3A"),
        ("%", "%25"),
        ('{"k":"v"}', "%7B%22k%22%3A%22v%22%7D"),
        ("阿里", "%E9%98%BF%E9%87%8C"),
        ("", ""),
    ],
)
def test_percent_encode(raw: str, encoded: str) -> None:
    assert percent_encode(raw) == encoded


def test_canonical_query_sorts_and_encodes() -> None:
    params = {"b": "2 3", "A": "x*y", "a": "~", "Zed": "阿"}
    assert canonical_query(params) == "A=x%2Ay&Zed=%E9%98%BF&a=~&b=2%203"
    assert canonical_query({}) == ""


def test_config_repr_hides_secret() -> None:
    cfg = AliyunConfig(ACCESS_KEY_ID, ACCESS_KEY_SECRET, SIGN_NAME)
    assert ACCESS_KEY_SECRET not in repr(cfg)
    assert ACCESS_KEY_ID in repr(cfg)


def test_build_params_are_complete_and_signed() -> None:
    backend = AliyunSmsBackend(AliyunConfig(ACCESS_KEY_ID, ACCESS_KEY_SECRET, SIGN_NAME))
    query = backend.build_params("13800000000", "SMS_1", {"code": "1234", "name": "张三"})
    assert set(REQUIRED_PARAMS) <= set(query)
    assert query["Action"] == "SendSms"
    assert query["Format"] == "JSON"
    assert query["Version"] == "2017-05-25"
    assert query["SignatureMethod"] == "HMAC-SHA1"
    assert query["SignatureVersion"] == "1.0"
    assert query["RegionId"] == "cn-hangzhou"
    assert query["TemplateParam"] == '{"code":"1234","name":"张三"}'
    datetime.strptime(query["Timestamp"], "%Y-%m-%dT%H:%M:%SZ")
    unsigned = {k: v for k, v in query.items() if k != "Signature"}
    assert query["Signature"] == sign(unsigned, ACCESS_KEY_SECRET)
    again = backend.build_params("13800000000", "SMS_1", {})
    assert again["SignatureNonce"] != query["SignatureNonce"]
    assert "OutId" not in query
    # Our id of the message, which QuerySendDetails reports back (signed like the rest).
    tagged = backend.build_params("13800000000", "SMS_1", {}, out_id="sms-7")
    assert tagged["OutId"] == "sms-7"
    assert tagged["Signature"] == sign({k: v for k, v in tagged.items() if k != "Signature"},
                                       ACCESS_KEY_SECRET)  # fmt: skip


# --------------------------------------------------------------------- fake Dysmsapi server


def _reference_signature(params: dict[str, str], secret: str) -> str:
    """Independent implementation of Aliyun signature v1.0 used by the fake server."""

    def enc(value: str) -> str:
        return quote(value.encode("utf-8"), safe="-_.~")

    canonical = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))
    string_to_sign = "GET&%2F&" + enc(canonical)
    mac = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


@dataclass
class FakeDysmsapi:
    """State shared between the tests and the request handler thread."""

    access_key_id: str = ACCESS_KEY_ID
    secret: str = ACCESS_KEY_SECRET
    mode: str = "normal"  # normal | limit | non_json | html_500 | json_list | slow
    requests: list[dict[str, str]] = field(default_factory=list)
    seen_nonces: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        """Restore the default behaviour between tests."""
        with self.lock:
            self.mode = "normal"
            self.requests.clear()
            self.seen_nonces.clear()

    def answer(self, path: str) -> tuple[int, str, bytes]:
        """Return (status, content type, body) for a request to ``path``."""
        split = urlsplit(path)
        pairs = parse_qsl(split.query, keep_blank_values=True, strict_parsing=False)
        params = dict(pairs)
        with self.lock:
            self.requests.append(params)
            mode = self.mode

        if mode == "slow":
            time.sleep(1.5)
        if mode == "non_json":
            return 200, "text/plain", b"this is not json"
        if mode == "html_500":
            return 500, "text/html", b"<html><body>502 Bad Gateway</body></html>"
        if mode == "json_list":
            return 200, "application/json", b"[1, 2, 3]"

        request_id = "D9CB3933-9FE3-4870-BA8E-2BEE91B69D23"

        def error(status: int, code: str, message: str) -> tuple[int, str, bytes]:
            body = {"RequestId": request_id, "Code": code, "Message": message}
            return status, "application/json", json.dumps(body).encode()

        if split.path != "/":
            return error(404, "InvalidAction.NotFound", "Specified api is not found")
        if len(pairs) != len(params):
            return error(400, "InvalidParameter", "Duplicated parameter")
        missing = [name for name in REQUIRED_PARAMS if not params.get(name)]
        if missing:
            return error(400, "MissingParameter", f"Missing {', '.join(missing)}")
        if params["AccessKeyId"] != self.access_key_id:
            return error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if (
            params["Action"] != "SendSms"
            or params["Version"] != "2017-05-25"
            or params["SignatureMethod"] != "HMAC-SHA1"
            or params["SignatureVersion"] != "1.0"
        ):
            return error(400, "InvalidParameter", "Unsupported action or signature method")
        try:
            ts = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return error(400, "InvalidTimeStamp.Format", "Specified time stamp is invalid.")
        if abs(clock.wall_now() - ts) > timedelta(minutes=15):
            return error(400, "InvalidTimeStamp.Expired", "Specified time stamp is expired.")

        received_signature = params.pop("Signature")
        expected = _reference_signature(params, self.secret)
        if not hmac.compare_digest(received_signature, expected):
            return error(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation.",
            )
        with self.lock:
            if params["SignatureNonce"] in self.seen_nonces:
                return error(400, "SignatureNonceUsed", "Specified signature nonce was used.")
            self.seen_nonces.add(params["SignatureNonce"])
        try:
            json.loads(params["TemplateParam"])
        except ValueError:
            return error(400, "isv.INVALID_JSON_PARAM", "JSON参数不合法")

        if mode == "limit":
            return error(200, "isv.BUSINESS_LIMIT_CONTROL", "触发号码天级流控Permits:10")
        body = {
            "RequestId": request_id,
            "Code": "OK",
            "Message": "OK",
            "BizId": f"900619746936498440^{len(self.seen_nonces)}",
        }
        return 200, "application/json", json.dumps(body).encode()


def _make_handler(state: FakeDysmsapi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
            status, content_type, body = state.answer(self.path)
            try:
                self.send_response(status)
                self.send_header("Content-Type", f"{content_type}; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    return Handler


@dataclass
class RunningServer:
    """A started fake Dysmsapi server."""

    state: FakeDysmsapi
    endpoint: str


@pytest.fixture(scope="module")
def _server() -> Iterator[RunningServer]:
    state = FakeDysmsapi()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    thread = threading.Thread(target=httpd.serve_forever, name="fake-dysmsapi", daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    try:
        yield RunningServer(state=state, endpoint=f"http://{host}:{port}/")
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def server(_server: RunningServer) -> RunningServer:
    _server.state.reset()
    return _server


def _backend(
    endpoint: str, secret: str = ACCESS_KEY_SECRET, timeout: float = 5.0
) -> AliyunSmsBackend:
    return AliyunSmsBackend(
        AliyunConfig(
            access_key_id=ACCESS_KEY_ID,
            access_key_secret=secret,
            sign_name=SIGN_NAME,
            endpoint=endpoint,
            timeout=timeout,
        )
    )


# ------------------------------------------------------------------------- end-to-end tests


async def test_send_success_returns_bizid(server: RunningServer) -> None:
    backend = _backend(server.endpoint)
    params = {"name": "张三", "device": "压力表 (0~1.6) MPa*", "code": "a+b=c&d"}

    biz_id = await backend.send("13800138000", "SMS_465900123", params)

    assert biz_id.startswith("900619746936498440^")
    assert len(server.state.requests) == 1
    seen = server.state.requests[0]
    assert seen["PhoneNumbers"] == "13800138000"
    assert seen["TemplateCode"] == "SMS_465900123"
    assert seen["SignName"] == SIGN_NAME
    assert seen["Format"] == "JSON"
    assert seen["RegionId"] == "cn-hangzhou"
    assert seen["TemplateParam"] == (
        '{"name":"张三","device":"压力表 (0~1.6) MPa*","code":"a+b=c&d"}'
    )
    assert json.loads(seen["TemplateParam"]) == params
    assert ACCESS_KEY_SECRET not in json.dumps(seen, ensure_ascii=False)


async def test_send_twice_uses_fresh_nonce(server: RunningServer) -> None:
    backend = _backend(server.endpoint)
    first = await backend.send("13800138000", "SMS_1", {"code": "111111"})
    second = await backend.send("13800138000", "SMS_1", {"code": "222222"})
    assert first != second
    nonces = {req["SignatureNonce"] for req in server.state.requests}
    assert len(nonces) == 2


async def test_wrong_secret_raises_signature_mismatch(server: RunningServer) -> None:
    wrong_secret = "wrong-secret-0123456789"
    backend = _backend(server.endpoint, secret=wrong_secret)

    with pytest.raises(SmsSendError) as excinfo:
        await backend.send("13800138000", "SMS_1", {"code": "1234"})

    err = excinfo.value
    assert "SignatureDoesNotMatch" in str(err)
    assert err.code == "SignatureDoesNotMatch"
    assert err.status_code == 400
    assert err.request_id
    assert wrong_secret not in str(err)
    assert ACCESS_KEY_SECRET not in str(err)


async def test_provider_error_code_raises(server: RunningServer) -> None:
    server.state.mode = "limit"
    backend = _backend(server.endpoint)

    with pytest.raises(SmsSendError) as excinfo:
        await backend.send("13800138000", "SMS_1", {"code": "1234"})

    err = excinfo.value
    assert err.code == "isv.BUSINESS_LIMIT_CONTROL"
    assert err.status_code == 200
    assert err.provider_message == "触发号码天级流控Permits:10"
    assert "isv.BUSINESS_LIMIT_CONTROL" in str(err)
    assert "触发号码天级流控" in str(err)
    assert ACCESS_KEY_SECRET not in str(err)


async def test_unknown_path_error_is_reported(server: RunningServer) -> None:
    backend = _backend(server.endpoint + "nope")
    with pytest.raises(SmsSendError, match="InvalidAction.NotFound"):
        await backend.send("13800138000", "SMS_1", {})


async def test_server_down_raises() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The socket is closed now, so nothing listens on the port.
    backend = _backend(f"http://127.0.0.1:{port}/", timeout=2.0)

    with pytest.raises(SmsSendError) as excinfo:
        await backend.send("13800138000", "SMS_1", {"code": "1234"})

    assert "request failed" in str(excinfo.value)
    assert excinfo.value.code is None
    assert ACCESS_KEY_SECRET not in str(excinfo.value)


async def test_non_json_body_raises(server: RunningServer) -> None:
    server.state.mode = "non_json"
    backend = _backend(server.endpoint)

    with pytest.raises(SmsSendError, match="non-JSON") as excinfo:
        await backend.send("13800138000", "SMS_1", {"code": "1234"})

    assert excinfo.value.status_code == 200
    assert "this is not json" in str(excinfo.value)


async def test_http_500_html_raises(server: RunningServer) -> None:
    server.state.mode = "html_500"
    backend = _backend(server.endpoint)

    with pytest.raises(SmsSendError, match="HTTP 500") as excinfo:
        await backend.send("13800138000", "SMS_1", {})

    assert excinfo.value.status_code == 500


async def test_json_that_is_not_an_object_raises(server: RunningServer) -> None:
    server.state.mode = "json_list"
    backend = _backend(server.endpoint)

    with pytest.raises(SmsSendError, match="unexpected JSON"):
        await backend.send("13800138000", "SMS_1", {})


async def test_timeout_raises(server: RunningServer) -> None:
    server.state.mode = "slow"
    backend = _backend(server.endpoint, timeout=0.2)

    with pytest.raises(SmsSendError, match="timed out"):
        await backend.send("13800138000", "SMS_1", {"code": "1234"})
