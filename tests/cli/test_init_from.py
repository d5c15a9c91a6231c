"""`archdsl train SPEC --init-from RUN --init-spec SRC`: the run starts from the source's
weights, carried across the edit, and says what it carried."""
import pytest
from typer.testing import CliRunner

from archdsl.cli.main import app

SMALL = ["--set", "widths=8,16,32,64", "--set", "train.batch=128", "--epochs", "1", "-q"]


def test_train_init_from_a_run(tmp_path):
    runner = CliRunner()
    src = tmp_path / "src"
    r = runner.invoke(app, ["train", "convnext_atto", "--out", str(src), "--set", "depths=1,1,1,1", *SMALL])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["train", "convnext_atto", "--out", str(tmp_path / "dst"), "--set", "depths=1,1,2,1",
                            "--init-from", str(src), *SMALL])
    assert r.exit_code == 0, r.output
    assert "transfer convnext_atto -> convnext_atto:" not in r.output  # -q: only errors
    r = runner.invoke(app, ["train", "convnext_atto", "--out", str(tmp_path / "dst2"), "--set", "depths=1,1,2,1",
                            "--set", "convnext.dwconv.kernel=9", "--init-from", str(src),
                            *[a for a in SMALL if a != "-q"]])
    assert r.exit_code == 0, r.output
    assert "freshly initialised" in r.output and "stages.2.blocks.1.dwconv.weight" in r.output
    assert "kernel 7 -> 9: centre zero-padded" in r.output


def test_init_from_nothing_is_an_error(tmp_path):
    r = CliRunner().invoke(app, ["train", "convnext_atto", "--init-from", str(tmp_path / "none"), "--epochs", "1"])
    assert r.exit_code == 1 and "no run directory or .safetensors file" in r.output and "Traceback" not in r.output


def test_init_from_another_networks_run_asks_for_its_spec(tmp_path):
    runner = CliRunner()
    src = tmp_path / "resnet"
    r = runner.invoke(app, ["train", "resnet18", "--out", str(src), "--set", "depths=1,1,1,1", *SMALL])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["train", "convnext_atto", "--out", str(tmp_path / "dst"), "--init-from", str(src), *SMALL])
    assert r.exit_code == 1 and "E751" in r.output and "--init-spec" in r.output and "Traceback" not in r.output


def test_a_swin_run_fine_tuned_at_a_larger_input_and_window(tmp_path):
    """A Swin-T-like spec (three narrow stages) trained at 32x32 with 2x2 windows, then carried
    to 48x48 with 3x3 windows (as 224 with window 7 -> 384 with window 12): every bias table
    is resized, nothing else changes, and the run trains from there."""
    spec = tmp_path / "swin_mini.arch"
    spec.write_text("network swin_mini extends swin_t\ninput 1x32x32\nstages {\n    32  swin x2\n"
                    "    64  swin x1\n    128 swin x1\n}\n")
    runner = CliRunner()
    small = ["--set", "train.batch=1024", "--epochs", "1"]
    src = tmp_path / "at32"
    r = runner.invoke(app, ["train", str(spec), "--out", str(src), "--set", "swin.wattn.kernel=2", *small, "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["train", str(spec), "--out", str(tmp_path / "at48"), "--set", "input=1x48x48",
                            "--set", "swin.wattn.kernel=3", "--init-from", str(src), *small])
    assert r.exit_code == 0, r.output
    assert "transfer swin_mini -> swin_mini: 66 tensors: 62 transferred exactly, 0 adapted, 4 resampled, 0 freshly" in r.output
    for table in ("stages.0.blocks.0-1", "stages.1.blocks.0", "stages.2.blocks.0"):
        assert (f"{table}.attn.relative_position_bias_table  (relative-position-bias table resized "
                "for window 2 -> 3 (3x3 -> 5x5 offsets; index rebuilt))") in r.output
    assert "val_acc" in r.output


def test_weights_of_a_variant_are_not_the_named_init_spec(tmp_path):
    """--init-spec names the network the weights come from: a variant of it (other depths) with
    the same kinds of tensor names is refused, not carried half-fresh (it used to be accepted)."""
    import archdsl
    from safetensors.torch import save_file

    weights = tmp_path / "w.safetensors"
    model = archdsl.build("convnext_atto", widths="8,16,32,64", depths="1,1,1,1")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    r = CliRunner().invoke(app, ["train", "convnext_atto", "--init-from", str(weights), "--init-spec", "convnext_atto",
                                 "--out", str(tmp_path / "run"), *SMALL])
    assert r.exit_code == 1 and "E751" in r.output and "are not convnext_atto's" in r.output, r.output
    assert "missing" in r.output and "Traceback" not in r.output


# ---------------------------------------------------------------- EMA weights, widths, names
TINY = ["--set", "widths=8,16,32,64", "--set", "depths=1,1,1,1", "--set", "train.batch=128", "--epochs", "1"]


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    """A tiny convnext_atto run that keeps an EMA: its checkpoint holds ema.safetensors."""
    src = tmp_path_factory.mktemp("init") / "src"
    r = CliRunner().invoke(app, ["train", "convnext_atto", "--out", str(src), *TINY, "--set", "train.ema=0.99", "-q"])
    assert r.exit_code == 0, r.output
    (ckpt,) = (src / "checkpoints").glob("step-*")
    assert (ckpt / "ema.safetensors").is_file()
    return src, ckpt


def test_init_from_an_ema_file_or_a_runs_ema(ema_run, tmp_path):
    """issue: the documented start from a checkpoint's ema.safetensors was E751 (`module.`
    names); it loads unwrapped, says so, and names the network the checkpoint records."""
    src, ckpt = ema_run
    child = tmp_path / "atto_ft.arch"
    child.write_text("network atto_ft extends convnext_atto\n")
    r = CliRunner().invoke(app, ["train", str(child), "--out", str(tmp_path / "a"), *TINY,
                                 "--init-from", str(ckpt / "ema.safetensors")])
    assert r.exit_code == 0, r.output
    assert f"init from {ckpt / 'ema.safetensors'}" in r.output
    assert "transfer convnext_atto -> atto_ft: 56 tensors: 56 transferred exactly" in r.output  # the source's name
    assert "note: EMA weights (AveragedModel): module. prefix and n_averaged dropped" in r.output

    r = CliRunner().invoke(app, ["train", "convnext_atto", "--out", str(tmp_path / "b"), *TINY,
                                 "--init-from", str(src), "--init-checkpoint", "ema"])
    assert r.exit_code == 0, r.output
    assert (f"init from {ckpt / 'ema.safetensors'}: the newest checkpoint of {src} that verifies, "
            "its EMA weights") in r.output and "module. prefix and n_averaged dropped" in r.output

    r = CliRunner().invoke(app, ["train", "convnext_atto", "--init-from", str(ckpt / "ema.safetensors"),
                                 "--init-checkpoint", "ema", "--out", str(tmp_path / "c"), *TINY])
    assert r.exit_code == 1 and "E751" in r.output and "no directory" in r.output, r.output
    r = CliRunner().invoke(app, ["train", "convnext_atto", "--init-checkpoint", "ema", *TINY])
    assert r.exit_code == 2 and "give --init-from too" in r.output


def test_init_from_weights_of_other_widths_needs_force(ema_run, tmp_path):
    """issue: other widths overlap-copied 55 of 56 tensors with no word; now E751 unless
    --force, which carries them with a warning. A run dir says which file it loads."""
    src, ckpt = ema_run
    wider = ["--set", "widths=16,32,64,128", *TINY[2:]]
    r = CliRunner().invoke(app, ["train", "convnext_atto", "--out", str(tmp_path / "a"), *wider, "--init-from", str(src)])
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert f"init from {ckpt / 'model.safetensors'}: the newest checkpoint of {src} that verifies, its last weights" \
        in r.output
    assert "error[E751]" in r.output and "55 of 56 tensors would only have their overlap copied" in r.output
    assert "--force" in r.output.split("help:")[1]
    r = CliRunner().invoke(app, ["train", "convnext_atto", "--out", str(tmp_path / "b"), *wider, "--init-from", str(src),
                                 "--force"])
    assert r.exit_code == 0, r.output
    assert "55 adapted" in r.output and "warning: 55 of 56 tensors only had their overlap copied" in r.output
    assert "carried anyway (--force)" in r.output and "val_acc" in r.output
