"""`archdsl train SPEC --init-from RUN --init-spec SRC`: the run starts from the source's
weights, carried across the edit, and says what it carried."""
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
