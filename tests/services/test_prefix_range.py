"""检测进度's prefix search as a range (app/services/orders.prefix_range): exactly the strings
that start with the prefix lie in it, in code point order, at the edges of Unicode too."""

from __future__ import annotations

import pytest

from app.services.orders import prefix_range


@pytest.mark.parametrize(
    "prefix",
    ["DD10", "DD1z", "DD1\x7f", "DD\ud7ff", "DD\uffff", "号\U0010ffff", "A\U0010ffff\U0010ffff"],
)
def test_the_range_holds_exactly_what_starts_with_the_prefix(prefix: str) -> None:
    bounds = prefix_range(prefix)
    assert bounds is not None
    lo, hi = bounds
    hi.encode()  # never a lone surrogate: the database could not take it
    inside = [prefix, prefix + "\x00", prefix + "0", prefix + "\U0010ffff" * 3]
    outside = [prefix[:-1], hi, hi + "0", prefix[:-1] + chr(ord(prefix[-1]) - 1) + "\U0010ffff"]
    for s in inside:
        assert lo <= s < hi and s.startswith(prefix), s
    for s in outside:
        assert not s.startswith(prefix) and not (lo <= s < hi), s
    # Code point order is UTF-8 byte order: what the database compares.
    assert lo.encode() < hi.encode()


def test_nothing_follows_the_last_code_point() -> None:
    assert prefix_range("\U0010ffff") is None
    assert prefix_range("") is None
