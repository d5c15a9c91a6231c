"""draw: user text is never markup, and a diagram too large to render is refused before drawing."""
from __future__ import annotations

import matplotlib
import pytest

import archdsl
from archdsl.interop.draw import draw_network
from archdsl.lang.errors import ArchError

TINY = "network {name}\ninput 3x32x32\nclasses 5\n{blocks}stages {{\n{stages}}}\nhead gap, linear\n"


def spec(kinds: int, name: str = "m") -> archdsl.Network:
    blocks = "".join(f"block b{i} {{\n    conv3\n}}\n" for i in range(kinds))
    stages = "".join(f"    8 b{i} x1\n" for i in range(kinds))
    return archdsl.loads(TINY.format(name=name, blocks=blocks, stages=stages))


@pytest.mark.parametrize("name", ["$\\frac{$", "$x^2$"])
def test_mathtext_in_a_name_is_drawn_as_typed(tmp_path, name):
    net = spec(1).model_copy(update={"name": name})
    assert "PNG" in draw_network(net, tmp_path / "m.png")
    svg = tmp_path / "m.svg"
    draw_network(net, svg)
    assert name.replace("<", "&lt;") in svg.read_text()  # the text itself, not rendered math
    assert matplotlib.rcParams["text.parse_math"] is True  # the user's setting is restored


def test_a_diagram_too_large_is_refused_before_drawing(tmp_path):
    with pytest.raises(ArchError) as e:
        draw_network(spec(200), tmp_path / "huge.png")
    assert e.value.code == "E903" and "pixels" in e.value.message
    assert not list(tmp_path.iterdir())
