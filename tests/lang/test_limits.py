"""Every value is validated: recipe ranges (nan and inf rejected), one value where one belongs,
upper bounds on sizes, op values; and the documented limits refuse a huge spec in seconds."""
import time

import pytest

import archdsl
from archdsl.lang import limits
from archdsl.lang.errors import ArchError

BAD_RECIPE = ["clip_grad=-1", "clip_grad=0", "mixup=inf", "betas=2,3", "warmup=inf", "momentum=-1",
              "lr=inf", "lr=-1", "wd=inf", "wd=nan", "gamma=nan", "gamma=-1", "ema=1", "ema=nan",
              "epochs=1,2", "lr=1e-3,2", "betas=nan,0.9", "betas=0.9", "erasing=1", "droppath=-0.1",
              "label_smoothing=inf", "cutmix=-1", "min_lr=inf", "accumulate=0", "batch=99999999",
              "milestones=60,30", "randaugment=9,inf", "checkpoint_every=-1", "epochs=inf"]


@pytest.mark.parametrize("item", BAD_RECIPE)
def test_harmful_recipe_values_are_errors_with_a_hint(item):
    key, value = item.split("=", 1)
    with pytest.raises(ArchError) as e:
        archdsl.check("convnext_atto", **{f"train.{key}": value})
    assert e.value.code in ("E603", "E501") and f"`{key}`" in e.value.message
    assert e.value.hint and f"train.{key}=" in e.value.hint


@pytest.mark.parametrize("item", ["classes=10,20", "classes=nan", "classes=1e3", "stages.0.width=8,9",
                                  "convnext.dwconv.kernel=7,9", "widths=8,16,32,1e9",
                                  "input=3x99999x32", "classes=9999999999", "stages.0.stride=4096",
                                  "convnext.dwconv.kernel=2147483647", "depths=1,1,100000,1", "name="])
def test_network_overrides_take_one_bounded_value(item):
    key, value = item.split("=", 1)
    with pytest.raises(ArchError) as e:
        archdsl.check("convnext_atto", **{key: value})
    assert e.value.code == "E502"


def test_api_override_values_of_the_wrong_type():
    for kw in ({"classes": None}, {"classes": 2.5}, {"classes": True}, {"input": [3, None, 32]},
               {"name": None}, {"train_lr": None}, {"train_lr": [1, 2]}):
        with pytest.raises(ArchError):
            archdsl.check("convnext_atto", **kw)


def spec(body: str) -> str:
    return ("network n\ninput 3x32x32\nclasses 10\nblock b {\n    residual {\n        " + body +
            "\n    }\n}\nstem conv3 8\nstages {\n    8 b x1\n}\nhead gap, linear\n")


@pytest.mark.parametrize("body,message", [
    ("conv3, layerscale nan", "not a finite number"), ("conv3, layerscale -1", "layerscale"),
    ("conv3, layerscale 0", "layerscale"), ("conv3, layerscale inf", "not a finite number"),
    ("conv3, ln eps=nan", "eps"), ("conv3, ln eps=-1", "eps"), ("conv3, ln eps=inf", "eps"),
    ("dwconv2147483647", "kernel size"), ("conv3 s99999", "stride"), ("conv3 99999999", "width"),
    ("dropout nan", "finite"),
])
def test_op_values_are_checked_where_they_are_read(body, message):
    with pytest.raises(ArchError, match=message) as e:
        archdsl.check(archdsl.loads(spec(body)))
    assert e.value.span is not None and e.value.span.line == 6


def test_huge_specs_are_refused_in_seconds():
    started = time.perf_counter()
    stages = "".join("    8 b x10000\n" for _ in range(100))  # the 2.7 KB spec
    cases = {
        "blocks": "network n\ninput 3x32x32\nblock b {\n relu\n}\nstages {\n" + stages + "}\n",
        "ops": spec(", ".join(["relu"] * 60) + "\n").replace("8 b x1", "8 b x1000"),
        "characters": "network n\n# " + "x" * 50_000_000 + "\n",
        "1M-op line": spec(", ".join(["relu"] * 1_000_000)),
    }
    for what, text in cases.items():
        with pytest.raises(ArchError) as e:
            archdsl.check(archdsl.loads(text))
        assert e.value.code == "E903", what
    assert time.perf_counter() - started < 10


def test_a_huge_spec_file_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "big.arch"
    with open(big, "wb") as f:
        f.truncate(limits.MAX_SPEC_CHARS * 4 + 1)  # sparse: nothing is written
    with pytest.raises(ArchError, match="size of the spec file") as e:
        archdsl.load(big)
    assert e.value.code == "E903"


def test_extends_chains_resolve_in_linear_time_and_are_bounded(tmp_path):
    def chain(n: int):
        (tmp_path / "s0.arch").write_text("network s0 extends convnext_atto\n")
        for i in range(1, n):
            (tmp_path / f"s{i}.arch").write_text(f"network s{i} extends s{i - 1}\n")
        return tmp_path / f"s{n - 1}.arch"

    started = time.perf_counter()
    n = limits.MAX_EXTENDS - 2  # its own chain plus convnext_atto -> convnext_t
    assert archdsl.load(chain(n)).name == f"s{n - 1}"
    assert time.perf_counter() - started < 5
    with pytest.raises(ArchError, match="the `extends` chain") as e:
        archdsl.load(chain(1000))
    assert e.value.code == "E903"
