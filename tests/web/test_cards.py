"""The cells of a list's rows told their column, for the phone's cards (app/web/cards.py)."""

from __future__ import annotations

from markupsafe import Markup

from app.web.cards import card_columns, mark_cells


def test_columns_name_the_lead_the_tick_box_and_the_buttons() -> None:
    headers = ["操作", "状态", "器具名称", "备注"]
    columns = card_columns(headers, ["器具名称", "出厂编号", "状态"], "操作", check=True)
    assert columns == [
        {"data-cell": "check"},
        {"data-label": "操作", "data-cell": "actions"},
        {"data-label": "状态", "data-lead": "1"},  # 出厂编号 is not in this table
        {"data-label": "器具名称", "data-lead": "0"},
        {"data-label": "备注"},
    ]


def test_each_row_counts_its_cells_afresh() -> None:
    rows = Markup(
        '<tr class="x"><td><input type="checkbox"></td><td class="num">1</td><td>extra</td></tr>\n'
        "<tr><td>a<table><thead></thead></table></td><td>b</td></tr>"
    )
    out = mark_cells(rows, [{"data-cell": "check"}, {"data-label": 'a "quoted" <label>'}])
    assert isinstance(out, Markup)
    assert out == (
        '<tr class="x"><td data-cell="check"><input type="checkbox"></td>'
        '<td data-label="a &#34;quoted&#34; &lt;label&gt;" class="num">1</td><td>extra</td></tr>\n'
        '<tr><td data-cell="check">a<table><thead></thead></table></td>'
        '<td data-label="a &#34;quoted&#34; &lt;label&gt;">b</td></tr>'
    )
