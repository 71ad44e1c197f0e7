"""首页: the latest bookings of the enterprise (or the admin's work queue)."""

from __future__ import annotations

from litestar import Controller, Request, get
from litestar.response import Template

from app.security.guards import login_required
from app.services import home
from app.web.pages import EXISTING_PATHS, page


class HomeController(Controller):
    guards = [login_required]

    @get("/")
    async def index(self, request: Request) -> Template:
        user = request.scope["user"]
        data = await home.overview(user)
        return page("home.html", request, data=data, has_bookings="/bookings" in EXISTING_PATHS)
