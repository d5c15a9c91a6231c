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


TINY = "network tiny\ninput 3x16x16\nclasses 5\nblock b {\n    conv3\n}\nstages {\n    8 b x1\n}\nhead gap, linear\n"


@pytest.mark.parametrize("state_dict, code, words", [
    ("w.safetensors", "E010", "not a file"),
    ({"stem.0.weight": 3}, "E010", "dict of names to tensors"),
    ({"nosuch.weight": __import__("torch").zeros(1)}, "E800", "does not fit"),
])
def test_build_with_a_state_dict_it_cannot_use(state_dict, code, words):
    with pytest.raises(ArchError) as e:
        archdsl.build(archdsl.loads(TINY), state_dict=state_dict)
    assert e.value.code == code and words in e.value.message


def test_build_with_an_unknown_compile_backend_is_named_before_the_first_call():
    with pytest.raises(ArchError) as e:
        archdsl.build(archdsl.loads(TINY), compile={"backend": "nosuch"})
    assert e.value.code == "E010" and "`nosuch`" in e.value.message and "inductor" in e.value.hint


@pytest.fixture
def tiny():
    return archdsl.loads(TINY)


@pytest.mark.parametrize("make, words", [
    (lambda tmp, m: tmp / "missing.safetensors", "no weights file"),
    (lambda tmp, m: tmp, "it is a directory"),
    (lambda tmp, m: None, "cannot take weights from NoneType"),
    (lambda tmp, m: {k: v.to("meta") for k, v in m.state_dict().items()}, "holds no values"),
    (lambda tmp, m: {}, "hold no tensors"),
    (lambda tmp, m: (tmp / "bad.safetensors").write_bytes(b"not safetensors") and tmp / "bad.safetensors",
     "cannot read"),
])
def test_transfer_from_weights_it_cannot_use_is_a_weights_error(tiny, tmp_path, make, words):
    from archdsl.interop.transfer import transfer

    with pytest.raises(ArchError) as e:
        transfer(tiny, tiny, make(tmp_path, archdsl.build(tiny)), quiet=True)
    assert e.value.code == "E800" and words in e.value.message


def test_transfer_into_something_not_a_model(tiny):
    from archdsl.interop.transfer import transfer

    with pytest.raises(ArchError, match="`into` takes the model"):
        transfer(tiny, tiny, archdsl.build(tiny), into=3, quiet=True)


@pytest.mark.parametrize("key", ["train_epochs", "train_lr", "train_batch"])
def test_a_recipe_number_given_true_is_refused_not_taken_as_1(key):
    with pytest.raises(ArchError) as e:
        archdsl.load("convnext_atto", **{key: True})
    assert e.value.code == "E502" and "not an on/off setting" in e.value.message


def test_a_recipe_flag_still_takes_true():
    assert archdsl.load("convnext_atto", train_nesterov=True).train.nesterov is True
