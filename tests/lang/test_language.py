"""The language: parsing, `extends`, overrides, name lookup and recipes."""
from __future__ import annotations

import pytest

import archdsl
from archdsl.lang.errors import ArchError

BASE = """network base
input 3x32x32
classes 10
block plain {
    conv3, bn, relu
}
block other {
    residual { conv3, bn }
}
stem conv3 s1 16, bn, relu
stages {
    16 plain x2
    32 plain x2 s2
}
head gap, linear
init kaiming fan_out
train {
    epochs 7
    optimizer sgd lr 0.1 momentum 0.9 wd 1e-4
    schedule step 3 5 gamma 0.2
    augment rrc, flip, mixup 0.2
}
"""


@pytest.fixture
def base_dir(tmp_path):
    (tmp_path / "base.arch").write_text(BASE)
    return tmp_path


def test_parse_resolves_every_section(base_dir):
    net = archdsl.load(base_dir / "base.arch")
    assert net.input == (3, 32, 32) and net.classes == 10
    assert net.widths == (16, 32) and net.depths == (2, 2) and net.stages[1].stride == 2
    assert net.init.scheme == "kaiming" and net.init.arg == "fan_out"
    r = net.train
    assert (r.epochs, r.optimizer, r.lr, r.momentum, r.wd) == (7, "sgd", 0.1, 0.9, 1e-4)
    assert (r.schedule, r.milestones, r.gamma) == ("step", (3, 5), 0.2)
    assert r.rrc and r.flip and r.mixup == 0.2 and r.cutmix == 0.0


def test_child_replaces_sections_and_blocks_and_inherits_the_rest(base_dir):
    (base_dir / "child.arch").write_text("""network child extends base   # found beside this file
block plain {
    conv3, bn, gelu
}
stages {
    24 plain x1
}
""")
    net = archdsl.load(base_dir / "child.arch")
    assert net.name == "child" and net.chain == ("base",)
    assert net.widths == (24,)                      # replaced whole
    assert net.classes == 10 and net.train.epochs == 7  # inherited
    assert [op.name.text for op in net.blocks["plain"].body] == ["conv3", "bn", "gelu"]
    assert "other" in net.blocks


def test_extends_cycle_names_the_chain(base_dir):
    (base_dir / "a.arch").write_text("network a extends b\n")
    (base_dir / "b.arch").write_text("network b extends a\n")
    with pytest.raises(ArchError) as e:
        archdsl.load(base_dir / "a.arch")
    assert e.value.code == "E202" and "a -> b -> a" in e.value.message
    assert e.value.path.endswith("b.arch") and e.value.line == 1


def test_overrides_change_scalars(base_dir):
    net = archdsl.load(base_dir / "base.arch", classes=3, input="1x16x16", widths=[8, 8], depths="1,3",
                       train_epochs=2, **{"train.lr": "0.5", "plain.conv.kernel": 5, "stages.1.stride": 1})
    assert net.classes == 3 and net.input == (1, 16, 16)
    assert net.widths == (8, 8) and net.depths == (1, 3) and net.stages[1].stride == 1
    assert net.train.epochs == 2 and net.train.lr == 0.5
    assert net.blocks["plain"].body[0].name.text == "conv5"
    assert archdsl.analyze(net).layers[-1].shape == (3,)


@pytest.mark.parametrize("overrides, code", [
    ({"clases": 3}, "E501"),
    ({"widths": "8"}, "E502"),
    ({"input": "3x32"}, "E502"),
    ({"train.epoch": 3}, "E501"),
    ({"train.epochs": 0}, "E603"),
    ({"nosuch.dwconv.kernel": 3}, "E501"),
])
def test_bad_overrides_are_user_errors(base_dir, overrides, code):
    with pytest.raises(ArchError) as e:
        archdsl.load(base_dir / "base.arch", **overrides)
    assert code in {err.code for err in e.value.errors}


def test_cli_set_overrides_the_spec(base_dir):
    from typer.testing import CliRunner

    from archdsl.cli import app

    result = CliRunner().invoke(app, ["compile", str(base_dir / "base.arch"), "--set", "classes=4",
                                      "--set", "widths=8,16"])
    assert result.exit_code == 0, result.output
    net = archdsl.load(base_dir / "base.arch", classes=4, widths="8,16")
    assert f"{archdsl.analyze(net).params:,} params" in result.output


def test_shipped_names_and_strings_resolve():
    assert archdsl.load("convnext_t").path.endswith("specs/convnext_t.arch")
    net = archdsl.loads("network mine extends convnext_t\nclasses 10\n")
    assert net.classes == 10 and net.widths == (96, 192, 384, 768)
    with pytest.raises(ArchError) as e:
        archdsl.load("convnext_q")
    assert "convnext_t" in (e.value.hint or "")


def test_comments_blank_lines_and_commas_across_lines():
    net = archdsl.loads("""
# leading comment

network c   # trailing comment
input 3x16x16
block b {
    # a comment line inside a block
    conv3, bn,
        relu
}
stages { 8 b x1 }
head gap, linear
""")
    assert [op.name.text for op in net.blocks["b"].body] == ["conv3", "bn", "relu"]
    assert net.classes == 1000  # the default


def test_errors_are_collected_across_a_spec():
    with pytest.raises(ArchError) as e:
        archdsl.check(archdsl.loads("""network bad
input 3x16x16
block b {
    conv3 0.25x
    reluu
    dwconv3 g2
}
stages { 10 b x1 }
"""))
    assert [err.code for err in e.value.errors] == ["E308", "E301", "E304"]
    assert [err.line for err in e.value.errors] == [4, 5, 6]


def test_set_lines_change_scalars_in_the_file(base_dir):
    (base_dir / "mid.arch").write_text("network mid extends base\nset depths 1,3\nset plain.conv.kernel 5\n"
                                       "set train.epochs 2\n")
    mid = archdsl.load(base_dir / "mid.arch")
    assert mid.depths == (1, 3) and mid.train.epochs == 2
    assert mid.blocks["plain"].body[0].name.text == "conv5"
    # a child that restates `stages` replaces it whole, the parent's `set depths` included
    (base_dir / "leaf.arch").write_text("network leaf extends mid\nstages {\n 8 plain x2\n}\n")
    leaf = archdsl.load(base_dir / "leaf.arch")
    assert leaf.depths == (2,) and leaf.blocks["plain"].body[0].name.text == "conv5"
    (base_dir / "bad.arch").write_text("network bad extends base\nset depths 1,2,3\n")
    with pytest.raises(ArchError) as e:
        archdsl.load(base_dir / "bad.arch")
    assert (e.value.code, e.value.line, e.value.column) == ("E502", 2, 1)
