"""Recipe values from the spec, overrides from the API and the CLI, and the run plan."""
import math

import pytest

import archdsl
from archdsl.lang.errors import ArchError
from archdsl.lang.overrides import parse_set
from archdsl.training.plan import adapt_recipe, plan


def test_spec_recipe_is_the_enhanced_recipe():
    r = archdsl.load("convnext_atto").train
    assert (r.optimizer, r.lr, r.wd, r.schedule, r.warmup, r.epochs, r.batch) == ("adamw", 4e-3, 0.05, "cosine", 20, 300, 4096)
    assert (r.mixup, r.cutmix, r.erasing, r.label_smoothing, r.droppath, r.ema) == (0.8, 1.0, 0.25, 0.1, 0.1, 0.9999)


def test_api_and_cli_overrides_of_train_values():
    a = archdsl.load("convnext_atto", **{"train.epochs": 5}, train_lr=1e-3, train_betas=(0.9, 0.95))
    assert (a.train.epochs, a.train.lr, a.train.betas) == (5, 1e-3, (0.9, 0.95))
    cli = parse_set(["train.randaugment=9,0.3", "train.ema=none", "train.precision=bf16",
                     "train.schedule=step", "train.milestones=2,4"])
    b = archdsl.load("convnext_atto", **cli)
    assert b.train.randaugment == (9, 0.3) and b.train.ema is None and b.train.precision == "bf16"
    assert b.train.milestones == (2, 4)
    with pytest.raises(ArchError):
        archdsl.load("convnext_atto", **{"train.optimizer": "lion"})
    with pytest.raises(ArchError, match="lr"):
        archdsl.load("convnext_atto", **{"train.lrr": 1})


def test_plan_takes_classes_and_input_from_data_and_adapts_a_short_run():
    p = plan("convnext_atto", "digits", epochs=5)
    net, r = p.network, p.recipe
    assert (net.classes, net.input) == (10, (1, 32, 32))
    assert r.epochs == 5 and r.warmup == pytest.approx(20 * 5 / 300)
    assert r.batch == 64 and r.lr == pytest.approx(4e-3 * math.sqrt(64 / 4096))
    assert (r.flip, r.rrc, r.randaugment, r.mixup, r.cutmix, r.erasing) == (False, False, None, 0, 0, 0)
    assert (r.label_smoothing, r.droppath, r.wd) == (0.1, 0.1, 0.05)  # the rest of the spec's recipe
    steps = 5 * (1437 // 64)
    assert r.ema == pytest.approx(1 - 10 / steps)
    assert len(p.notes) == 6 and p.data.shape == (1, 32, 32)
    assert p.notes[0] == ("from digits: classes 1000 -> 10, input 3x224x224 -> 1x32x32 "
                          "(set input= to train at the spec's size)")
    at_384 = plan("convnext_atto", "digits", epochs=1, classes=10, input="3x384x384").notes
    assert not any(n.startswith("from digits") for n in at_384)  # nothing taken from the data: no note
    assert p.notes[-1].startswith("normalize: the training images' own mean/std (grey input)")


def test_user_values_win_over_data_and_adaptation():
    p = plan("convnext_atto", "digits", epochs=5, input="3x64x64", train_batch=32, train_warmup=1,
             train_mixup=0.2, train_ema=0.999)
    r = p.recipe
    assert p.network.input == (3, 64, 64) and p.data.shape == (3, 64, 64)
    assert (r.batch, r.lr, r.warmup, r.mixup, r.ema) == (32, 4e-3, 1, 0.2, 0.999)


def test_too_few_classes_is_an_error():
    with pytest.raises(ArchError, match="5 classes but digits has 10"):
        plan("convnext_atto", "digits", classes=5)


def test_sgd_scales_linearly_and_milestones_follow_the_run():
    spec = archdsl.TrainRecipe(optimizer="sgd", lr=0.1 * 4096 / 256, batch=4096, epochs=90,
                               schedule="step", milestones=(30, 60, 80))
    run = spec.model_copy(update={"epochs": 9})
    update, notes = adapt_recipe(spec, run, n_train=1437, user=set())
    assert update["milestones"] == (3, 6, 8)
    assert update["batch"] == 64 and update["lr"] == pytest.approx(0.1 * 64 / 256)
    assert "linear scaling" in notes[-1]


def test_milestones_of_a_very_short_run_merge_instead_of_failing():
    spec = archdsl.TrainRecipe(optimizer="sgd", epochs=90, schedule="step", milestones=(30, 60, 80))
    for epochs, expected in ((1, (1,)), (2, (1, 2)), (3, (1, 2, 3))):
        update, _ = adapt_recipe(spec, spec.model_copy(update={"epochs": epochs}), n_train=1437, user=set())
        assert update["milestones"] == expected
        archdsl.TrainRecipe(**(spec.model_dump() | update))  # valid for the recipe's own checks


def test_a_batch_of_one_is_refused_for_batchnorm_networks_only():
    with pytest.raises(archdsl.ArchError, match="E605"):
        plan("resnet18", "digits", **{"train.batch": 1})
    assert plan("convnext_atto", "digits", **{"train.batch": 1}).recipe.batch == 1  # LayerNorm: fine


def test_digits_too_large_for_memory_is_refused_before_resizing():
    with pytest.raises(archdsl.ArchError, match="E902"):  # 1,797 images of 16k x 16k: ~2 TiB
        plan("convnext_atto", "digits", input="1x16384x16384")


def test_a_step_every_epoch_keeps_the_specs_decay_over_a_short_run():
    spec = archdsl.load("mobilenet_v2").train  # 300 epochs, x0.98 every epoch: 0.98 ** 300 in all
    update, notes = adapt_recipe(spec, spec.model_copy(update={"epochs": 3}), n_train=1437, user=set())
    assert update["gamma"] ** 3 == pytest.approx(0.98 ** 300)
    assert any("step gamma 0.98 ->" in n for n in notes)


def test_the_recipes_own_run_keeps_its_ema_and_a_shortened_one_adapts():
    """convnext_t on ImageNet (1,281,167 images, 300 epochs, batch 4096): 93,600 steps, EMA
    0.9999 as the paper ran it; the same recipe cut to 30 epochs adapts and says so."""
    spec = archdsl.load("convnext_t").train
    update, notes = adapt_recipe(spec, spec, n_train=1_281_167, user=set())
    assert "ema" not in update and not any("EMA" in n for n in notes)
    short = spec.model_copy(update={"epochs": 30})
    update, notes = adapt_recipe(spec, short, n_train=1_281_167, user=set())
    steps = 30 * (1_281_167 // 4096)
    assert update["ema"] == pytest.approx(1 - 10 / steps) and any("EMA decay 0.9999 ->" in n for n in notes)


def test_the_papers_recipe_values_in_the_shipped_specs():
    assert archdsl.load("convnext_t").train.min_lr == 1e-6  # the official ConvNeXt main.py
    assert archdsl.load("convnext_s").train.min_lr == 1e-6
    deit = archdsl.load("deit_s").train
    assert (deit.repeats, deit.min_lr, deit.erasing_mode) == (3, 1e-5, "pixel")  # DeiT main.py
    assert archdsl.load("convnext_t").train.normalize == "auto"  # ImageNet's mean/std on RGB


def test_new_recipe_fields_parse_print_and_refuse_bad_values(tmp_path):
    from archdsl.lang.flatten import recipe_settings
    spec = tmp_path / "r.arch"
    spec.write_text("network r extends convnext_atto\ntrain {\n"
                    "    augment randaugment rand-m9-mstd0.5-inc1, erasing 0.25 const\n"
                    "    normalize mean 0.5 std 0.25\n    workers 2\n    crop_pct 0.9\n"
                    "    interpolation bilinear\n    repeats 3\n}\n")
    r = archdsl.load(str(spec), input="1x32x32").train
    assert (r.randaugment, r.erasing_mode, r.normalize, r.mean, r.std) == (
        "rand-m9-mstd0.5-inc1", "const", "explicit", (0.5,), (0.25,))
    assert (r.workers, r.crop_pct, r.interpolation, r.repeats) == (2, 0.9, "bilinear", 3)
    lines = {s.key.text: " ".join(w.text for g in s.groups for w in g) for s in recipe_settings(r)}
    assert lines["normalize"] == "mean 0.5 std 0.25" and lines["repeats"] == "3"
    assert "rand-m9-mstd0.5-inc1" in lines["augment"] and "erasing 0.25 const" in lines["augment"]
    for bad, match in (({"train.randaugment": "rand-q9"}, "config string"),
                       ({"train.mean": "0.5"}, "mean` and `std` together"),
                       ({"train.crop_pct": "1.5"}, "crop_pct"), ({"train.workers": "-1"}, "workers")):
        with pytest.raises(ArchError, match=match):
            archdsl.load("convnext_atto", **bad)
