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
