"""The console table (make bench, make audit, make load): columns as wide as their widest cell,
left-aligned, two spaces apart, a rule under the header, no trailing spaces."""

from __future__ import annotations

import pytest

from local.table import format_table


def test_columns_are_as_wide_as_their_widest_cell_with_a_rule_under_the_header():
    rows = [("name", "ms", "note"), ("cold start", "162", ""), ("warm", "3", "p50")]

    assert format_table(rows).splitlines() == [
        "name        ms   note",
        "----------  ---  ----",
        "cold start  162",
        "warm        3    p50",
    ]


def test_a_header_alone_is_the_header_and_its_rule():
    assert format_table([["a", "bcd"]]) == "a  bcd\n-  ---"


def test_a_row_shorter_than_the_header_is_an_error():
    with pytest.raises(IndexError):
        format_table([("a", "b"), ("c",)])
