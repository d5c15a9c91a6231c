"""A network as an ONNX file, through torch's exporter, checked and run before it is kept.

torch 2.13 has two exporters: the torch.export-based one (`dynamo=True`, the default) needs
the `onnxscript` package; the TorchScript-based one (`dynamo=False`, deprecated but
maintained) needs nothing beyond torch and exports every op archdsl lowers to. This uses the
TorchScript exporter, so the `[export]` extra is onnx and onnxruntime only.

The file is validated twice: `onnx.checker.check_model`, then onnxruntime on a random batch
against the PyTorch logits of the same model (`max_abs_diff` in the result; the tolerance is
relative to the logits' size), and only then put in place: it is written and checked in a
temporary directory beside the target, so a rejected export never replaces a good file.

A model over protobuf's 2 GiB limit keeps its weights outside the .onnx. torch's exporter
writes one file per tensor, named after the tensor (`head.fc.weight`), which would overwrite a
user's file of that name and another export's weights in the same folder; here they are
gathered into one file named after the model, `NAME.onnx.data`, reported in the result.
"""
from __future__ import annotations

import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

OPSET = 17


class MissingExtra(Exception):
    """onnx or onnxruntime is not installed."""


def require() -> tuple:
    try:
        import onnx
        import onnxruntime
    except ImportError as e:
        raise MissingExtra(f"ONNX export needs onnx and onnxruntime ({e.msg}); install them with "
                           "`pip install 'archdsl[export]'` (or `pip install onnx onnxruntime`)") from None
    return onnx, onnxruntime


@dataclass
class OnnxResult:
    path: Path
    opset: int
    dynamic_batch: bool
    max_abs_diff: float     # onnxruntime vs PyTorch, on a random batch
    batch: int
    size_bytes: int
    extra_files: list[Path] = field(default_factory=list)  # external weights, beside the .onnx

# Protobuf refuses messages over 2 GiB; above this the weights go into NAME.onnx.data.
EXTERNAL_DATA_BYTES = 2 * 1024 ** 3 - 64 * 1024 ** 2


def export_onnx(model, input_shape: tuple, path: str | Path, *, dynamic_batch: bool = False,
                tolerance: float = 1e-4, external_data_bytes: int = EXTERNAL_DATA_BYTES) -> OnnxResult:
    """Export `model` (eval mode is set here) for inputs (B, *input_shape), validate it, and
    only then move it (and its weights file, if any) to `path`. Raises ValueError when
    onnxruntime disagrees with PyTorch by more than `tolerance` x max(1, max |logit|)."""
    from ..atomic import fsync_dir, temp_beside

    path = Path(path)
    work = temp_beside(path, ".d")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        result = _export_and_check(model, input_shape, work / path.name, dynamic_batch, tolerance,
                                   external_data_bytes)
        extra = [path.with_name(f.name) for f in result.extra_files]
        for f in result.extra_files:  # the weights first: the .onnx that names them lands last
            os.replace(f, path.with_name(f.name))
        os.replace(work / path.name, path)
        fsync_dir(path.parent)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return OnnxResult(path, result.opset, dynamic_batch, result.max_abs_diff, result.batch,
                      path.stat().st_size + sum(f.stat().st_size for f in extra), extra)


def _gather_external_data(onnx, path: Path, external_data_bytes: int) -> list[Path]:
    """Rewrite the exported model with every external tensor in one NAME.onnx.data file; the
    per-tensor files torch wrote (in the private work directory) are deleted. [] if the model
    fits in one file."""
    written = [f for f in path.parent.iterdir() if f != path]
    if not written and path.stat().st_size <= external_data_bytes:
        return []
    model = onnx.load(str(path))  # loads the per-tensor files too
    for f in written:
        f.unlink()
    data = path.with_name(path.name + ".data")
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data.name, size_threshold=0)
    return [data]


def _export_and_check(model, input_shape: tuple, path: Path, dynamic_batch: bool, tolerance: float,
                      external_data_bytes: int) -> OnnxResult:
    import torch

    onnx, ort = require()
    model = model.eval()
    batch = 2
    x = torch.randn(batch, *input_shape, generator=torch.Generator().manual_seed(0))
    axes = {"x": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=OPSET, input_names=["x"],
                          output_names=["logits"], dynamic_axes=axes)
    extra = _gather_external_data(onnx, path, external_data_bytes)
    onnx.checker.check_model(str(path), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if dynamic_batch:  # another batch size must run too
        batch = 3
        x = torch.randn(batch, *input_shape, generator=torch.Generator().manual_seed(1))
    (got,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        want = model(x)
    diff = float((torch.from_numpy(got) - want).abs().max())
    scale = max(1.0, float(want.abs().max()))  # logits of 1e14 agree to float precision, not to 1e-4
    if not diff <= tolerance * scale:
        raise ValueError(f"onnxruntime's logits differ from PyTorch's by {diff:.3g} "
                         f"(tolerance {tolerance:g} x {scale:.3g}, the largest |logit|)")
    return OnnxResult(path, OPSET, dynamic_batch, diff, batch, path.stat().st_size, extra)
