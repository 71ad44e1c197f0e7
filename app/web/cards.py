"""A list table's rows as cards on a phone: each cell is told its column.

Below 900 px app.css lays a ``table.cards`` row out as a card: a cell shows its header as
its label (``data-label``), the columns that identify a row and its state come first
(``data-lead``: 0 is the card's title), the tick box sits in the corner and the row's
buttons at the bottom (``data-cell``). The rows come from each page's template; rather than
every page writing these attributes on every cell, the table macro runs the rows it is
given through :func:`mark_cells` with the attributes of :func:`card_columns`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

# The start of a row or of a cell (not of <thead>, <tbody> or <tdx>).
_TAG = re.compile(r"<(tr|td)(?=[\s>])", re.IGNORECASE)


def card_columns(
    headers: Sequence[str],
    lead: Sequence[str] = (),
    actions: str = "",
    check: bool = False,
) -> list[dict[str, str]]:
    """The attributes of each column's cells, in column order.

    ``headers``: the header texts; ``lead``: the headers that identify a row, in the order a
    card shows them (those the table lacks are skipped); ``actions``: the header of the
    column of row buttons; ``check``: the table starts with a column of tick boxes.
    """
    present = [h for h in lead if h in headers]
    columns: list[dict[str, str]] = [{"data-cell": "check"}] if check else []
    for header in headers:
        attrs = {"data-label": header}
        if header in present:
            attrs["data-lead"] = str(present.index(header))
        if actions and header == actions:
            attrs["data-cell"] = "actions"
        columns.append(attrs)
    return columns


def mark_cells(html: str, columns: Sequence[Mapping[str, str]]) -> Markup:
    """``html`` (rendered rows) with each ``<td>`` given its column's attributes, counting
    the cells from each ``<tr>``; cells beyond ``columns`` are left as they are."""
    out: list[str] = []
    at = 0
    cell = 0
    for m in _TAG.finditer(str(html)):
        out.append(str(html)[at : m.end()])
        at = m.end()
        if m.group(1).lower() == "tr":
            cell = 0
            continue
        if cell < len(columns):
            out.extend(f' {k}="{escape(v)}"' for k, v in columns[cell].items())
        cell += 1
    out.append(str(html)[at:])
    return Markup("".join(out))
