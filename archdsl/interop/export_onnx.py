"""A network as an ONNX file, through torch's exporter, checked and run before it is kept.

torch 2.13 has two exporters: the torch.export-based one (`dynamo=True`, the default) needs
the `onnxscript` package; the TorchScript-based one (`dynamo=False`, deprecated but
maintained) needs nothing beyond torch and exports every op archdsl lowers to. This uses the
TorchScript exporter, so the `[export]` extra is onnx and onnxruntime only.

The file is validated twice: `onnx.checker.check_model`, then onnxruntime on a random batch
against the PyTorch logits of the same model (`max_abs_diff` in the result).
"""
from __future__ import annotations

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
    outputs: list[str] = field(default_factory=lambda: ["logits"])


def export_onnx(model, input_shape: tuple, path: str | Path, *, dynamic_batch: bool = False,
                tolerance: float = 1e-4) -> OnnxResult:
    """Export `model` (eval mode is set here) for inputs (B, *input_shape) and validate it.
    Raises ValueError when onnxruntime disagrees with PyTorch by more than `tolerance`."""
    import torch

    onnx, ort = require()
    path = Path(path)
    model = model.eval()
    batch = 2
    x = torch.randn(batch, *input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        names = output_names(model(x))
    axes = {name: {0: "batch"} for name in ("x", *names)} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=OPSET, input_names=["x"],
                          output_names=names, dynamic_axes=axes)
    onnx.checker.check_model(str(path), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if dynamic_batch:  # another batch size must run too
        batch = 3
        x = torch.randn(batch, *input_shape, generator=torch.Generator().manual_seed(1))
    got = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        want = _flat(model(x))
    diff = max(float((torch.from_numpy(g) - w).abs().max()) for g, w in zip(got, want))
    if not diff <= tolerance:
        what = "logits" if len(want) == 1 else "outputs"
        raise ValueError(f"onnxruntime's {what} differ from PyTorch's by {diff:.3g} (tolerance {tolerance:g})")
    return OnnxResult(path, OPSET, dynamic_batch, diff, batch, path.stat().st_size, names)


def _flat(out) -> list:
    """A model's output as a flat list of tensors: logits, a features build's maps, or both."""
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _flat(o)]
    return [out]


def output_names(out) -> list[str]:
    """`logits`; a features build's `feature0`, `feature1`, ...; or `logits` and the features."""
    if not isinstance(out, (list, tuple)):
        return ["logits"]
    if isinstance(out, tuple):  # (logits, [taps])
        return ["logits", *(f"feature{i}" for i in range(len(out[1])))]
    return [f"feature{i}" for i in range(len(out))]
