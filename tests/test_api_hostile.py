"""Public entry points given what they cannot use answer with an ArchError subclass and a
message that says what is wrong, never a raw pydantic/torch/OS exception."""
from __future__ import annotations

import pytest

import archdsl
from archdsl.lang.errors import ArchError


@pytest.mark.parametrize("text", ["{}", "[]", "not json", '{"before": 3}'])
def test_diff_from_json_of_something_else_is_E905(text):
    with pytest.raises(ArchError) as e:
        archdsl.Diff.from_json(text)
    assert e.value.code == "E905" and "not a diff" in e.value.message


def test_diff_json_round_trips():
    d = archdsl.diff("convnext_t", "swin_t")
    assert archdsl.Diff.from_json(d.to_json()).to_json() == d.to_json()


@pytest.mark.parametrize("word", ["1", "2"])
def test_dropout_with_a_whole_number_is_a_probability_out_of_range(word):
    spec = f"network d\ninput 3x16x16\nclasses 5\nblock b {{\n    conv3\n    dropout {word}\n}}\nstages {{\n    8 b x1\n}}\nhead gap, linear\n"
    with pytest.raises(ArchError) as e:
        archdsl.check(archdsl.loads(spec))
    assert e.value.code == "E305" and "probability" in e.value.message and "width" not in e.value.message


def test_dropout_zero_as_a_whole_number_is_accepted():
    spec = "network d\ninput 3x16x16\nclasses 5\nblock b {\n    conv3\n    dropout 0\n}\nstages {\n    8 b x1\n}\nhead gap, linear\n"
    assert archdsl.analyze(archdsl.loads(spec)).params > 0


@pytest.mark.parametrize("step", ["evil\nnetwork x", "red\x1b[31m", "", "x" * 201])
def test_a_change_whose_step_name_is_not_one_printable_line_is_E905(step):
    import json

    from archdsl.lang.patch import Patch

    data = json.loads(archdsl.change("step09").to_json())
    data["step"] = step
    with pytest.raises(ArchError) as e:
        Patch.from_json(json.dumps(data))
    assert e.value.code == "E905" and "one line of printable text" in e.value.message
    assert "\n" not in e.value.message and "\x1b" not in e.value.message
