"""The errors services raise. Each maps to an HTTP answer in one place
(``app.web.errors``); no handler translates them."""

from __future__ import annotations

from dataclasses import dataclass, field


class NotFound(Exception):
    """The object does not exist, or is outside the caller's scope: 404."""

    def __init__(self, message: str = "您访问的页面或数据不存在") -> None:
        super().__init__(message)
        self.message = message


class Conflict(Exception):
    """The request contradicts the object's state (e.g. a booking already reviewed): 409."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Throttled(Exception):
    """Too many requests from one address or account: 429."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class FormError(Exception):
    """Field errors (``""`` key: a message for the top of the form): the form comes back
    with each message beside its field (422 in the JSON API)."""

    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return "; ".join(f"{k}: {v}" for k, v in self.errors.items())

    @property
    def first(self) -> str:
        return next(iter(self.errors.values()), "")
