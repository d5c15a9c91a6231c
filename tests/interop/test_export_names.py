"""`export --to .py` for networks named like the classes the file defines, and for blocks with
nothing in them: a file whose build() runs, or a clear error."""
from __future__ import annotations

import importlib.util

import pytest
import torch

import archdsl
from archdsl.interop.export_code import ExportError, code


def _module(text: str, tmp_path, name="m"):
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", ["linear", "layer_scale", "drop_path", "global_avg_pool", "convnext_block"])
def test_a_network_named_like_a_copied_class_builds(name, tmp_path):
    net = archdsl.load("convnext_atto", name=name, depths="1,1,1,1", input="3x32x32")
    mod = _module(code(net), tmp_path)
    model = mod.build()
    ref = archdsl.build(net)
    model.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model.eval()(x), ref.eval()(x))


def test_an_empty_block_is_a_clear_export_error():
    net = archdsl.loads("network g\ninput 3x32x32\nclasses 5\nblock e {\n}\nstem conv3 8\n"
                        "stages {\n    8 e x1\n}\nhead gap, linear\n")
    with pytest.raises(ExportError, match="block `e` has no ops"):
        code(net)
