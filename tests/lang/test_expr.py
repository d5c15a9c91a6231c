"""The expression language of spaces (lang/expr.py): values, lists item by item, distributions,
and errors that point into the expression."""
from __future__ import annotations

import pytest

from archdsl.lang.errors import Span
from archdsl.lang.expr import SpaceError, distribution_of, parse_expr

AT = Span("<t>", 3, 10, 3, 40)


def ev(text, **env):
    return parse_expr(text, AT).evaluate(env)


def test_numbers_lists_and_functions():
    assert ev("w0 + wa * range(4)", w0=24, wa=2.5) == [24, 26.5, 29.0, 31.5]
    assert ev("quant([12, 20, 27], 8)") == [16, 16, 24]      # half to even: 12/8 = 1.5 -> 2, 20/8 = 2.5 -> 2
    assert ev("unique([8, 8, 16, 32, 32, 32])") == [8, 16, 32]
    assert ev("counts([8, 8, 16, 32, 32, 32])") == [2, 1, 3]
    assert ev("min(gw, ws)", gw=16, ws=[8, 32]) == [8, 16] and ev("max(ws)", ws=[8, 32]) == 32
    assert ev("ws + 8 if ws < 20 else ws", ws=[8, 32]) == [16, 32]
    assert ev("ws[-1] // 3 + 2 ** 3", ws=[8, 32]) == 18
    assert ev("all(ws % 8 == 0) and len(ws) == 2", ws=[8, 32]) is True
    assert ev("1 < x <= 3", x=3) is True and ev("1 < x <= 3", x=4) is False


def test_distributions():
    d = distribution_of(parse_expr("int(8, 256, log, q=8)", AT))
    assert (d.kind, d.low, d.high, d.scale, d.q, d.size()) == ("int", 8, 256, "log", 8, 32)
    assert distribution_of(parse_expr("int(1, 32, pow2)", AT)).size() == 6
    assert distribution_of(parse_expr("float(0.1, 1.0)", AT)).size() is None
    assert distribution_of(parse_expr("choice(gelu, relu)", AT)).options == ("gelu", "relu")
    assert distribution_of(parse_expr("2 * w", AT)) is None


@pytest.mark.parametrize("text, code, column", [
    ("2 * (w", "E171", None),
    ("w.real", "E171", 10),
    ("open(w)", "E172", 10),
    ("2 * choice(1, 2)", "E171", 14),
    ("choice(1, gelu)", "E175", 10),
    ("float(1, 2, pow2)", "E175", 22),
    ("int(1, 2, q=0.5)", "E175", 22),
])
def test_errors_point_into_the_expression(text, code, column):
    with pytest.raises(SpaceError) as info:
        e = parse_expr(text, AT)
        distribution_of(e)
    assert info.value.code == code
    if column is not None:
        assert info.value.span.column == column


def test_evaluation_errors_name_the_part_at_fault():
    with pytest.raises(SpaceError, match="unknown name `wdth`") as info:
        ev("2 * wdth", width=3)
    assert info.value.span.column == 14 and info.value.code == "E172"
    with pytest.raises(SpaceError, match="division by zero"):
        ev("w / (w - w)", w=2)
    with pytest.raises(SpaceError, match="different lengths"):
        ev("a + b", a=[1, 2], b=[1, 2, 3])
    with pytest.raises(SpaceError, match="outside a list"):
        ev("ws[4]", ws=[1])
