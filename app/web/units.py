"""Lists over several units (企业管理): each row's unit, and a filter by unit.

A user whose scope holds more than one enterprise (its subsidiaries) sees a 所属单位 column
and a 所属单位 filter; everyone else sees the list as before.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from app.services.tenancy import Scope, narrow
from app.web.lists import list_query


def unit_filter(request: Request, scope: Scope) -> tuple[Scope, dict[str, Any]]:
    """The scope narrowed to the ``unit`` the list is filtered by (a unit outside the scope
    is ignored: a filter never widens), and the template context for the column and filter:
    ``units`` (empty when there is one unit), ``unit_names`` and the chosen ``unit``."""
    narrowed = narrow(scope, list_query(request).get("unit", ""))
    chosen = str(narrowed.enterprise_ids[0]) if narrowed is not scope else ""
    return narrowed, {
        "units": scope.units if scope.has_units else (),
        "unit_names": dict(scope.units),
        "unit": chosen,
    }
