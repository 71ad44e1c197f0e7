"""登录页面 (manual ch. 1): 登录, 客户注册, 忘记密码, 使用手机号登录, 退出."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Response, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from app import clock
from app.security.sessions import cookie_name, end_session, start_session
from app.services import accounts, audit, throttle
from app.services.errors import Conflict, FormError, Throttled
from app.settings import get_settings
from app.web.errors import form_again, on_error
from app.web.pages import go, page
from app.web.requests import client_ip, form_data

CHOOSE_TTL = 300  # seconds a verified phone may pick one of its accounts


def _safe_next(raw: str | None) -> str:
    """Only local paths: never redirect to another site after login."""
    if raw and raw.startswith("/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return "/"


def _set_session_cookie(response: Response[Any], key: str) -> None:
    """The session cookie; an empty ``key`` clears it (with the same attributes: a browser
    refuses a ``__Host-`` cookie without Secure, even one that clears it)."""
    response.set_cookie(
        key=cookie_name(),
        value=key,
        path="/",
        httponly=True,
        samesite="lax",
        secure=get_settings().secure_cookies,
        max_age=None if key else 0,
        expires=None if key else 0,
    )


async def _logged_in(request: Request, user_id: int, next_url: str) -> Response[Any]:
    """Start a fresh session (the pre-login id dies) and go on."""
    key = await start_session(request.cookies.get(cookie_name()), user_id)
    target = _safe_next(next_url)
    response = go(request, target)
    # CSRF tokens are bound to the session: the new one's are new, and whatever was bound
    # to the visitor before goes with this response (app/security/csrf.py).
    _set_session_cookie(response, key)
    return response


# The browser that proved the code holds this cookie; the chooser's token is signed with it.
CHOOSE_COOKIE = "choose"


def _choose_token(phone: str, ids: list[int], issued: int, nonce: str) -> str:
    payload = f"{phone}|{','.join(map(str, ids))}|{issued}"
    signed = f"{payload}|{nonce}".encode()
    mac = hmac.new(get_settings().secret_key.encode(), signed, hashlib.sha256)
    return f"{payload}|{mac.hexdigest()}"


def _read_choose_token(token: str, nonce: str) -> tuple[str, list[int]] | None:
    """The phone and its account ids, when the token is ours, fresh, and was given to the
    browser that sends ``nonce`` (its cookie)."""
    try:
        phone, ids_raw, issued, mac = token.split("|")
        ids = [int(i) for i in ids_raw.split(",") if i]
        expected = _choose_token(phone, ids, int(issued), nonce).rsplit("|", 1)[1]
    except ValueError:
        return None
    if not nonce or not hmac.compare_digest(mac, expected):
        return None
    if clock.timestamp() - int(issued) > CHOOSE_TTL:
        return None
    return phone, ids


async def _login_again(request: Request, exc: FormError | Conflict) -> Template:
    form = await form_data(request)
    waiting = isinstance(exc, accounts.AwaitingReview)
    return page(
        "auth/login.html",
        request,
        values={"username": form.get("username", "")},
        errors=exc.errors if isinstance(exc, FormError) and not waiting else {},
        next=form.get("next", ""),
        notice="",
        info=exc.first if waiting else "",
    )


def _code_field(purpose: str) -> str:
    return {"register": "contact_phone"}.get(purpose, "phone")


async def _code_status(request: Request, exc: FormError | Conflict | None) -> Template:
    """The 获取验证码 answer: the status line (htmx), or the whole form again."""
    form = await form_data(request)
    purpose = form.get("purpose", "")
    error = exc.first if isinstance(exc, FormError) else ""
    if request.htmx:
        return page("auth/_code_status.html", request, error=error, sent=not error)
    template = {"register": "auth/register.html", "reset": "auth/forgot.html"}.get(
        purpose, "auth/phone_login.html"
    )
    return page(
        template,
        request,
        values=form,
        errors={_code_field(purpose): error} if error else {},
        notice="" if error else "验证码已发送，5分钟内有效",
    )


class AuthController(Controller):
    @get("/login", name="login")
    async def login_page(self, request: Request) -> Template | Redirect:
        next_url = request.query_params.get("next", "")
        if request.scope.get("user"):
            return Redirect(path="/")
        notice = request.query_params.get("notice", "")
        messages = {
            "reset": "密码已重置，请使用新密码登录",
            "registered": "注册成功，请等待管理员审核",
            "logout": "您已安全退出",
            "expired": "登录已超时，请重新登录",
        }
        return page(
            "auth/login.html",
            request,
            values={},
            errors={},
            next=next_url or "",
            notice=messages.get(notice, ""),
        )

    @post("/login", status_code=200, opt=on_error(_login_again))
    async def login(self, request: Request) -> Response[Any]:
        form = await form_data(request)
        user_id = await accounts.login_password(
            form.get("username", ""), form.get("password", ""), client_ip(request)
        )
        return await _logged_in(request, user_id, form.get("next", ""))

    @get("/register")
    async def register_page(self, request: Request) -> Template:
        return page("auth/register.html", request, values={}, errors={}, notice="")

    @post("/register", status_code=200, opt=form_again("auth/register.html", notice=""))
    async def register(self, request: Request) -> Template:
        application = accounts.Registration.from_form(await form_data(request))
        await accounts.register(application, client_ip(request))
        return page("auth/registered.html", request)

    @post("/sms-code", status_code=200, opt=on_error(_code_status))
    async def sms_code(self, request: Request) -> Template:
        """获取验证码. htmx swaps the status line; without JS the whole form comes back."""
        form = await form_data(request)
        purpose = form.get("purpose", "")
        await accounts.request_code(form.get(_code_field(purpose), ""), purpose, client_ip(request))
        return await _code_status(request, None)

    @get("/forgot")
    async def forgot_page(self, request: Request) -> Template:
        return page("auth/forgot.html", request, values={}, errors={}, notice="")

    @post("/forgot", status_code=200, opt=form_again("auth/forgot.html", notice=""))
    async def forgot(self, request: Request) -> Redirect:
        reset = accounts.PasswordReset.from_form(await form_data(request))
        await accounts.reset_password(reset, client_ip(request))
        return Redirect(path="/login?notice=reset", status_code=HTTP_303_SEE_OTHER)

    @get("/login/phone")
    async def phone_page(self, request: Request) -> Template:
        return page("auth/phone_login.html", request, values={}, errors={}, notice="")

    @post("/login/phone", status_code=200, opt=form_again("auth/phone_login.html", notice=""))
    async def phone_login(self, request: Request) -> Response[Any]:
        form = await form_data(request)
        ip = client_ip(request)
        found = await accounts.login_phone(form.get("phone", ""), form.get("code", ""), ip)
        if len(found) == 1:
            await accounts.finish_phone_login(found[0]["id"], ip)
            return await _logged_in(request, found[0]["id"], "/")
        # Several accounts share this phone: let the verified owner pick one, once, from
        # this browser (the token is signed with a nonce only its cookie carries).
        nonce = secrets.token_urlsafe(16)
        ids = [a["id"] for a in found]
        token = _choose_token(form.get("phone", "").strip(), ids, int(clock.timestamp()), nonce)
        response = page("auth/choose_account.html", request, accounts=found, token=token)
        response.set_cookie(
            key=CHOOSE_COOKIE,
            value=nonce,
            path="/login/phone/choose",
            max_age=CHOOSE_TTL,
            httponly=True,
            samesite="strict",
            secure=get_settings().secure_cookies,
        )
        return response

    @post("/login/phone/choose", status_code=200)
    async def choose_account(self, request: Request) -> Response[Any]:
        form = await form_data(request)
        nonce = request.cookies.get(CHOOSE_COOKIE, "")
        read = _read_choose_token(form.get("token", ""), nonce)
        try:
            user_id = int(form.get("user_id", ""))
        except ValueError:
            user_id = 0
        if read is not None and user_id in read[1]:
            try:  # single use: the first choice spends the nonce
                await throttle.hit("choose-account", nonce, 1, timedelta(seconds=2 * CHOOSE_TTL))
            except Throttled:
                read = None
        if read is None or user_id not in read[1]:
            return page(
                "auth/phone_login.html",
                request,
                values={},
                errors={},
                notice="选择已超时，请重新获取验证码登录",
            )
        await accounts.finish_phone_login(user_id, client_ip(request))
        response = await _logged_in(request, user_id, "/")
        response.delete_cookie(CHOOSE_COOKIE, path="/login/phone/choose")
        return response

    @post("/logout", status_code=200)
    async def logout(self, request: Request) -> Redirect:
        user = request.scope.get("user")
        await end_session(request.cookies.get(cookie_name()))
        if user:
            await audit.record("退出", user=user, ip=client_ip(request))
        response = Redirect(path="/login?notice=logout", status_code=HTTP_303_SEE_OTHER)
        _set_session_cookie(response, "")
        return response
