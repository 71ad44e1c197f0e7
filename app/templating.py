"""What templates get besides their context: the status enums and the ``badge`` filter.

``register(env)`` is called once from app/main.py's Jinja set-up.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from app.enums import BookingStatus, EnterpriseStatus, SmsStatus, UserRole


def badge(status: BookingStatus | EnterpriseStatus | SmsStatus) -> Markup:
    """A status as a coloured badge with its Chinese label.

    ``{{ BookingStatus(b.status) | badge }}``: the one place a status's colour is chosen.
    """
    return Markup('<span class="badge badge-{}">{}</span>').format(status.tone, status.label)


def register(env: Any) -> None:
    """Add the filters and globals above to a Jinja environment."""
    env.filters["badge"] = badge
    env.globals.update(
        BookingStatus=BookingStatus,
        EnterpriseStatus=EnterpriseStatus,
        SmsStatus=SmsStatus,
        UserRole=UserRole,
    )
