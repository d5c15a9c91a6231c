"""`archdsl export SPEC --to model.py`: the file runs where archdsl cannot be imported, loads
archdsl.build's state dict as it is and gives the same logits, for every shipped spec."""
import subprocess
import sys
import sysconfig
import textwrap

import pytest
import torch

import archdsl
import compiler
from archdsl.interop.export_code import code
from archdsl.lang.specpath import shipped_names
from archdsl.lang.to_ir import network_to_ir
from small_nets import small

def randomize(model: torch.nn.Module) -> None:
    """Non-trivial values everywhere: norms, scales and running statistics too."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in list(model.state_dict().items()):
            if t.is_floating_point():
                values = torch.randn(t.shape, generator=g) * 0.2
                t.copy_(values.abs() + 0.5 if name.endswith("running_var") else values)


SPECS = sorted(shipped_names())


def test_exported_files_match_build_outside_archdsl(tmp_path):
    cases = []
    for name in SPECS:
        kw = small(name)
        net = archdsl.load(name, **kw)
        (tmp_path / f"m_{name}.py").write_text(code(net))
        model = compiler.compile(network_to_ir(net), init=(net.init.scheme, net.init.arg), fuse=False).eval()
        randomize(model)
        x = torch.randn(2, *net.input, generator=torch.Generator().manual_seed(1))
        torch.save({"state": model.state_dict(), "x": x}, tmp_path / f"w_{name}.pt")
        fused = archdsl.build(net).eval()
        fused.load_state_dict(model.state_dict())
        with torch.no_grad():
            cases.append((name, model(x), fused(x)))
    site = sysconfig.get_paths()["purelib"]
    script = textwrap.dedent(f"""
        import importlib, json, sys
        sys.path[:] = [{str(tmp_path)!r}] + sys.path + [{site!r}]   # -S: no .pth files, so no editable archdsl
        try:
            import archdsl
            sys.exit("archdsl must not be importable here")
        except ImportError:
            pass
        try:
            import compiler
            sys.exit("compiler must not be importable here")
        except ImportError:
            pass
        import torch
        for name in {SPECS!r}:
            module = importlib.import_module("m_" + name)
            model = module.build().eval()
            saved = torch.load({str(tmp_path)!r} + "/w_" + name + ".pt", weights_only=True)
            model.load_state_dict(saved["state"])   # strict: the same keys and shapes
            with torch.no_grad():
                torch.save(model(saved["x"]), {str(tmp_path)!r} + "/y_" + name + ".pt")
    """)
    run = subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    for name, unfused, fused in cases:
        y = torch.load(tmp_path / f"y_{name}.pt", weights_only=True)
        assert torch.equal(y, unfused), name                       # the same ops in the same order
        torch.testing.assert_close(y, fused, rtol=1e-5, atol=1e-5)  # archdsl.build folds layer scale in


def test_block_class_reads_like_the_official_code():
    text = code("convnext_t", classes=10, input="3x32x32")
    compile(text, "model.py", "exec")
    assert "class ConvnextBlock(nn.Module):" in text
    assert "self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)" in text
    assert "self.pwconv1 = Linear(dim, 4 * dim)" in text
    assert "class Linear(nn.Linear):" in text  # archdsl's kernel choice travels with the file
    assert "x = x.permute(0, 2, 3, 1)  # (B, H, W, C)" in text
    body = text.split('"""', 2)[2]
    assert "archdsl" not in body and "import compiler" not in body and "from compiler" not in body


def test_resnet_block_keeps_its_shortcut_optional():
    text = code("resnet50", classes=10, input="3x32x32")
    assert text.count("class BottleneckBlock") == 1
    assert "if self.shortcut is not None:" in text
    assert "x = x + shortcut" in text


def test_export_after_torch_compile_has_run():
    """torch.compile replaces nn.Module.__init__ with a wrapper; modules without an __init__
    of their own (`tokens`) must still be recorded (this failed when the suite ran in order)."""
    torch.compile(torch.nn.Linear(2, 2), backend="eager")(torch.randn(1, 2))
    text = code("deit_s", **small("deit_s"))
    assert "class " in text and "Tokens" in text


def test_awkward_network_names_and_paths_still_make_a_runnable_file(tmp_path):
    atto = open(archdsl.load("convnext_atto").path).read()
    for name, cls in (("none", "NoneNet"), ("f", "FNet"), ("stage", "StageNet")):
        folder = tmp_path / f'a\\N """{name}'  # a backslash escape and a triple quote in the path
        folder.mkdir()
        spec = folder / f"{name}.arch"
        spec.write_text(atto.replace("network convnext_atto", f"network {name}", 1))
        text = code(str(spec), input="3x32x32", classes=10)
        namespace: dict = {}
        exec(compile(text, "model.py", "exec"), namespace)
        assert f"class {cls}(nn.Module):" in text
        assert namespace["build"]()(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_any_name_override_exports_and_flatten_refuses_what_it_cannot_write():
    from archdsl.lang.flatten import flatten

    for bad in ("a b", "é", "1x", 'x"""\\'):
        text = code("convnext_atto", input="3x32x32", classes=10, name=bad)
        namespace: dict = {}
        exec(compile(text, "model.py", "exec"), namespace)
        assert namespace["build"]()(torch.randn(1, 3, 32, 32)).shape == (1, 10)
        with pytest.raises(archdsl.ArchError, match="E502"):
            flatten(archdsl.load("convnext_atto", name=bad))
