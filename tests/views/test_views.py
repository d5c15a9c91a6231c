"""Notebook views (`_repr_html_`) and screen-sized `__repr__` of a network, a report, a diff,
a patch and a training result; `archdsl.summary` against the built module; `dir(archdsl)`."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import archdsl
from archdsl.training.engine import TrainResult

REPO = Path(__file__).resolve().parents[2]


def fits_screen(text: str) -> None:
    lines = text.split("\n")
    assert len(lines) <= 24 and max(map(len, lines)) <= 100, text


def test_network_and_report_views(tmp_path):
    odd = tmp_path / "a<b>&c.arch"  # user text in a path: escaped in HTML
    odd.write_text("network odd extends convnext_t\nclasses 10\n")
    net = archdsl.load(odd)
    text = repr(net)
    fits_screen(text)
    assert text.startswith("Network odd extends convnext_t: input 3x224x224, 10 classes")
    assert "stage 3    384  convnext  x9" in text
    html = net._repr_html_()
    assert "a&lt;b&gt;&amp;c.arch" in html and "a<b>" not in html
    assert "<svg" in html and "dwconv7" in html and "384 convnext x9" in html

    report = archdsl.analyze("convnext_t")
    text = repr(report)
    fits_screen(text)
    assert "Report convnext_t: 28,589,128 params, 4.46 GMACs at 3x224x224" in text  # published: 28.6M, 4.5G
    assert "stage 3  384x14x14  11,114," in text.replace("   ", "  ").replace("   ", "  ") or "384x14x14" in text
    html = report._repr_html_()
    assert "28,589,128" in html and "<svg" in html and "768x7x7 · 15.47M params" in html


def test_diff_and_patch_views():
    d = archdsl.diff("step05", "step06")
    text = repr(d)
    fits_screen(text)
    assert "step05_widen -> step06_inverted" in text and "-23.4%" in text
    html = d._repr_html_()
    assert "<u>blocks</u>" in html and "`conv1 0.25x` -&gt; `pwconv 4x`" in html
    assert "33,761,032" in html and "25,851,496" in html and "-7,909,536 (-23.4%)" in html
    p = archdsl.change("step09")
    assert repr(p) == "change step08_kernel7 -> step09_gelu:\n  block invbottleneck: `relu` -> `gelu` everywhere"
    assert "<td" in p._repr_html_() and "`relu` -&gt; `gelu`" in p._repr_html_()


def test_roadmap_view():
    from archdsl.roadmap import roadmap

    rm = roadmap()
    text = repr(rm)
    fits_screen(text)
    assert text.startswith("Roadmap specs/roadmap: 18 steps")
    assert "step13_downsample" in text and "82.0" in text  # Table 10's last row: ConvNeXt-T, 82.0%
    assert rm._repr_html_().count("<tr>") == len(rm.rows) + 1


def test_train_result_view():
    history = [{"epoch": e, "train_loss": 2.0 / e, "val_loss": 1.5 / e, "val_acc": 0.5 + 0.1 * e,
                "images_per_s": 100.0 + e} for e in range(1, 31)]
    r = TrainResult(history=history, model=torch.nn.Linear(2, 2), checkpoint=Path("runs/x/model.safetensors"),
                    out=Path("runs/x"), best_acc=0.93, best_epoch=4, network=archdsl.load("convnext_atto"))
    text = repr(r)
    fits_screen(text)
    assert text.startswith("TrainResult convnext_atto: 30 epochs, best val acc 93.00% at epoch 4 (runs/x)")
    assert "Linear" not in text  # not the model's repr
    html = r._repr_html_()
    assert html.count("<tr>") == 31 and "<svg" in html and "val acc %" in html


def test_summary_matches_the_built_module():
    """Shapes from forward hooks on the real module, params from its parameters, and a frozen
    stage from requires_grad: none of it read from the analytic counts."""
    torch.manual_seed(0)
    model = archdsl.build("convnext_atto", classes=10, input="1x32x32")
    for p in model.get_submodule("stages.0").parameters():
        p.requires_grad_(False)
    s = archdsl.summary("convnext_atto", input_size=(2, 1, 32, 32), classes=10, model=model, verbose=0)
    seen = {}

    def record(name):
        def hook(module, inputs, output) -> None:
            seen.setdefault(name, (tuple(inputs[0].shape), tuple(output.shape)))
        return hook

    hooks = [m.register_forward_hook(record(name)) for name, m in model.named_modules() if name]
    model(torch.randn(2, 1, 32, 32))
    for h in hooks:
        h.remove()
    checked = 0
    for row in s.rows:
        if row.path in seen:  # a norm may run channels-last (B, H, W, C): the same dims, reordered
            (i, o), order = seen[row.path], lambda shape: (shape[0], sorted(shape[1:]))
            assert (order(i), order(o)) == (order(row.input), order(row.output)), row.path
            checked += 1
        module = model.get_submodule(row.path) if row.path in dict(model.named_modules()) else None
        if module is not None:
            assert row.params == sum(p.numel() for p in module.parameters()), row.path
    assert checked >= 40
    assert s.params == sum(p.numel() for p in model.parameters())
    assert s.frozen == sum(p.numel() for p in model.get_submodule("stages.0").parameters()) > 0
    assert s.params_mb == pytest.approx(s.params * 4 / 2**20)
    full = archdsl.summary("convnext_t", input_size=(8, 3, 224, 224), verbose=0)
    assert full.params == 28_589_128 and full.rows[0].input == (8, 3, 224, 224)  # ConvNeXt-T: 28.6M
    assert round(full.macs / 8 / 1e9, 1) == 4.5 and full.input_mb == pytest.approx(8 * 3 * 224 * 224 * 4 / 2**20)
    text = str(s)
    assert "stages.0.blocks.0.dwconv (dwconv)" in text and "frozen" in text and "Non-trainable params: " in text
    with pytest.raises(archdsl.ArchError, match="input_size"):
        archdsl.summary("convnext_atto", input_size=(3, 32), verbose=0)


def test_dir_lists_the_lazy_api():
    names = dir(archdsl)
    assert {"train", "load_checkpoint", "load_weights", "transfer", "summary", "build", "diff"} <= set(names)
    assert all(hasattr(archdsl, n) for n in names)
