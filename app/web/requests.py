"""Reading a request: the form, ticked ids, the client's address, the caller's scope."""

from __future__ import annotations

from litestar import Request

from app.security.sessions import CurrentUser
from app.services.audit import Actor
from app.services.tenancy import Scope, scope_for
from app.services.validators import strip_controls


def client_ip(request: Request) -> str:
    """The source address (uvicorn's --proxy-headers sets it from a trusted proxy)."""
    return request.client.host if request.client else ""


def current_user(request: Request) -> CurrentUser:
    """The logged-in user (guards make sure there is one)."""
    return request.scope["user"]  # type: ignore[no-any-return]


def actor(request: Request) -> Actor:
    """The signed-in user at this request's address, for the 操作日志."""
    return Actor.of(current_user(request), client_ip(request))


async def current_scope(request: Request) -> Scope:
    """Whose data the logged-in user may see."""
    return await scope_for(current_user(request))


async def form_data(request: Request) -> dict[str, str]:
    """The submitted form as plain strings (the last value of a repeated field), without
    control, bidi-override or byte-order characters (every text input goes through here)."""
    form = await request.form()
    return {k: strip_controls(v) if isinstance(v, str) else "" for k, v in form.items()}


async def ticked(request: Request, name: str) -> list[int]:
    """Ticked ids of a multi-value field; anything not a number is ignored."""
    form = await request.form()
    return [int(v) for v in form.getall(name, []) if isinstance(v, str) and v.isdecimal()]
