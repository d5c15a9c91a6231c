"""What a network costs: per layer, per stage and in total, read off the checked IR."""
from __future__ import annotations

from dataclasses import dataclass, field

from compiler import IRGraph

from .lang.network import Network


@dataclass(frozen=True)
class LayerRow:
    path: str
    op: str
    group: str
    in_shape: tuple[int, ...]
    shape: tuple[int, ...]
    params: int
    macs: int
    act: int  # output elements per sample
    detail: str = ""  # what the op resolved to here, where the word does not say (a window's size)


@dataclass(frozen=True)
class StageRow:
    name: str
    shape: tuple[int, ...]  # output shape of the stage
    params: int
    macs: int
    act: int


@dataclass
class Report:
    network: Network
    layers: list[LayerRow] = field(default_factory=list)
    outputs: dict[str, tuple[int, ...]] = field(default_factory=dict)  # group -> the shape it ends in,
                                                                        # a join's where one closes it
    taps: list[dict] = field(default_factory=list)  # a features build's maps (compiler/passes/taps.py),
                                                    # else the spec's declared `taps`
    taps_returned: bool = False  # the build returns `taps` (a features or taps build), not only the logits

    @property
    def params(self) -> int:
        return sum(r.params for r in self.layers)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.layers)

    @property
    def activations(self) -> int:
        """Elements of every op's output per sample: roughly what training keeps for backward."""
        return sum(r.act for r in self.layers)

    @property
    def peak_activation(self) -> int:
        """The largest single op output per sample, in elements."""
        return max((r.act for r in self.layers), default=0)

    @property
    def stages(self) -> list[StageRow]:
        rows: dict[str, list[LayerRow]] = {}
        for r in self.layers:
            rows.setdefault(r.group, []).append(r)
        return [StageRow(name, self.outputs.get(name, rs[-1].shape), sum(r.params for r in rs), sum(r.macs for r in rs),
                         sum(r.act for r in rs)) for name, rs in rows.items()]

    def __repr__(self) -> str:
        from .lang.views import report_text
        return report_text(self)

    def _repr_html_(self) -> str:
        from .lang.views import report_html
        return report_html(self)

    def to_dict(self) -> dict:
        return {
            "network": self.network.name,
            "input": list(self.network.input),
            "params": self.params,
            "macs": self.macs,
            "activations": self.activations,
            "peak_activation": self.peak_activation,
            "stages": [vars(s) | {"shape": list(s.shape)} for s in self.stages],
            "layers": [vars(r) | {"in_shape": list(r.in_shape), "shape": list(r.shape)} for r in self.layers],
            **({"taps": self.taps, "taps_returned": self.taps_returned} if self.taps else {}),
        }


def report_from_ir(network: Network, ir: IRGraph) -> Report:
    from compiler import ops

    layers = []
    outputs = {d["group"]: tuple(d["meta"]["shape"]) for _, d in ir.nodes() if d["op"] not in ("input", "output")}
    for _, d in ir.op_nodes():
        m = d["meta"]
        layers.append(LayerRow(d["path"], d["op"], d["group"], tuple(m["in_shape"]), tuple(m["shape"]),
                               m["params"], m["macs"], m["act"], ops.get(d["op"]).detail(d["attrs"], m["in_shape"])))
    return Report(network, layers, outputs)


def gmacs(macs: int) -> str:
    return f"{macs / 1e9:.2f} GMACs"


def count(n: int) -> str:
    return f"{n:,}"


# ---------------------------------------------------------------- memory, before allocating
FLOAT_BYTES = 4


def available_memory(device) -> int | None:
    """Bytes free for new tensors on `device`: MemAvailable of /proc/meminfo for the CPU,
    the driver's free memory for CUDA; None where it cannot be told (then nothing is refused)."""
    kind = getattr(device, "type", None) or str(device or "cpu").split(":")[0]
    if kind == "cpu":
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
        return None
    if kind == "cuda":
        try:
            import torch

            return int(torch.cuda.mem_get_info(device)[0])
        except Exception:  # no driver, another process's context: cannot tell
            return None
    return None


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**27 else f"{n / 2**20:.1f} MiB"


def training_memory(report: Report, optimizer: str, ema: bool, batch: int, precision: str = "fp32") -> dict[str, int]:
    """An estimate of what training keeps, in bytes: weights, gradients, optimizer state
    (AdamW: two moments; SGD: momentum), an EMA copy, and every op's output for the batch
    (what autograd saves for backward; bf16 under autocast)."""
    p = report.params * FLOAT_BYTES
    act_bytes = 2 if precision == "bf16" else FLOAT_BYTES
    return {"weights": p, "gradients": p, "optimizer": p * (2 if optimizer == "adamw" else 1),
            "ema": p if ema else 0, "activations": report.activations * batch * act_bytes}


def require_memory(needed: int, device, what: str, hint: str, code: str = "E901", span=None) -> None:
    """Raise a ResourceError when `needed` bytes exceed what `device` has available."""
    from .lang.errors import ResourceError

    free = available_memory(device)
    if free is not None and needed > free:
        raise ResourceError(f"{what} needs about {gib(needed)}, but {device} has {gib(free)} available",
                            span, hint=hint, code=code)
