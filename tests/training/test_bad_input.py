"""Issue 22's training reproductions that need no training: each ends in a clean ArchError."""
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

import archdsl
from archdsl.cli.main import app


def test_load_checkpoint_with_a_name_too_long_is_an_error():
    with pytest.raises(archdsl.ArchError) as e:
        archdsl.load_checkpoint("a" * 5000)
    assert e.value.code == "E751"


def test_a_seed_out_of_range_is_an_error():
    with pytest.raises(archdsl.ArchError, match="seed") as e:
        archdsl.train("convnext_atto", seed=2 ** 70, epochs=1)
    assert e.value.code == "E760"


@pytest.mark.parametrize("weights,match", [({}, "holds no tensors"),
                                           ({"stem.0.weight": torch.full((2, 2), float("nan"))}, "NaN")])
def test_init_from_empty_or_nan_weights_is_refused(tmp_path, weights, match):
    path = tmp_path / "w.safetensors"
    save_file(weights, str(path))
    r = CliRunner().invoke(app, ["train", "convnext_atto", "--init-from", str(path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "E751" in r.output and match in r.output
    assert not (tmp_path / "o").exists()
