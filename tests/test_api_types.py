"""Every public entry point checks its arguments: misuse is an ArchError with a hint, never a
TypeError or AttributeError from deep inside."""
from pathlib import Path

import pytest
import torch

import archdsl
from archdsl.lang.errors import ArchError

MISUSE = {
    "load(None)": lambda: archdsl.load(None),
    "load(3)": lambda: archdsl.load(3),
    "loads(None)": lambda: archdsl.loads(None),
    "loads(bytes)": lambda: archdsl.loads(b"network n\n"),
    "loads(path=3)": lambda: archdsl.loads("network n extends convnext_t\n", path=3),
    "check(None)": lambda: archdsl.check(None),
    "check(dict)": lambda: archdsl.check({"name": "x"}),
    "analyze(1.5)": lambda: archdsl.analyze(1.5),
    "build(None)": lambda: archdsl.build(None),
    "build(device=nonsense)": lambda: archdsl.build("convnext_atto", device="nonsense"),
    "build(device=3.5)": lambda: archdsl.build("convnext_atto", device=3.5),
    "build(device=cuda:99)": lambda: archdsl.build("convnext_atto", device="cuda:99"),
    "diff(None, x)": lambda: archdsl.diff(None, "convnext_t"),
    "load_weights(model, path)": lambda: archdsl.load_weights(archdsl.build("convnext_atto", device="meta"), "file.pt"),
    "load_weights(model, Path)": lambda: archdsl.load_weights(archdsl.build("convnext_atto", device="meta"), Path("f.pt")),
    "load_weights(model, None)": lambda: archdsl.load_weights(archdsl.build("convnext_atto", device="meta"), None),
    "load_weights(None, sd)": lambda: archdsl.load_weights(None, {}),
    "load_weights(layout=3)": lambda: archdsl.load_weights(archdsl.build("convnext_atto", device="meta"), {}, layout=3),
    "train(epochs='x')": lambda: archdsl.train("convnext_atto", epochs="x"),
    "train(seed=None)": lambda: archdsl.train("convnext_atto", seed=None),
    "train(out=3)": lambda: archdsl.train("convnext_atto", out=3),
    "train(device=nonsense)": lambda: archdsl.train("convnext_atto", device="nonsense"),
    "train(device=meta)": lambda: archdsl.train("convnext_atto", device="meta", epochs=1),
    "load_checkpoint(None)": lambda: archdsl.load_checkpoint(None),
    "load_checkpoint(3)": lambda: archdsl.load_checkpoint(3),
}
if not torch.cuda.is_available():
    MISUSE["build(device=cuda)"] = lambda: archdsl.build("convnext_atto", device="cuda")
    MISUSE["train(device=cuda)"] = lambda: archdsl.train("convnext_atto", device="cuda")


@pytest.mark.parametrize("name", MISUSE)
def test_misuse_is_an_arch_error_with_a_hint(name):
    with pytest.raises(ArchError) as e:
        MISUSE[name]()
    assert e.value.hint, f"{name}: {e.value} has no hint"


def test_build_refuses_a_model_that_cannot_fit_in_memory(monkeypatch):
    import archdsl.report as report

    monkeypatch.setattr(report, "available_memory", lambda device: 10 * 2**20)  # 10 MiB free
    with pytest.raises(ArchError, match=r"needs about .* but cpu has 10.0 MiB available") as e:
        archdsl.build("convnext_t")  # 28.6M params: 109 MiB of weights
    assert e.value.code == "E901" and 'device="meta"' in e.value.hint and e.value.span is not None
    archdsl.build("convnext_t", device="meta")  # allocates nothing: never refused
    assert archdsl.build("convnext_atto", widths="8,16,32,64", depths="1,1,1,1") is not None


def test_train_refuses_a_run_that_cannot_fit(monkeypatch, tmp_path):
    import archdsl.report as report

    monkeypatch.setattr(report, "available_memory", lambda device: 200 * 2**20)
    with pytest.raises(ArchError, match=r"training convnext_t at batch 256 \(weights .*activations") as e:
        archdsl.train("convnext_t", out=tmp_path / "run", train_batch=256, epochs=1)
    assert e.value.code == "E902" and "train.batch" in e.value.hint
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_available_memory_reads_proc_meminfo():
    from archdsl.report import available_memory

    free = available_memory("cpu")
    if Path("/proc/meminfo").exists():
        assert free is not None and free > 0
    assert available_memory("meta") is None
