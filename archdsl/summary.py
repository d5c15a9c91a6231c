"""`archdsl.summary(spec, input_size=(B, C, H, W))`: a torchinfo-style layer table, from the
analytic counts (no model is built, nothing is allocated): each layer's module path and op,
input and output shape with the batch dimension, params, trainable or frozen, MACs for the
batch; then the totals and the memory of parameters and activations in MB.

    print(archdsl.summary("convnext_t", input_size=(8, 3, 224, 224)))
    archdsl.summary("convnext_t", input_size=(8, 3, 224, 224), model=m)  # m's frozen params

With `model=` (a module built by `archdsl.build`), parameters whose `requires_grad` is off
count as frozen, layer by layer (the module paths are the layers' paths)."""
from __future__ import annotations

from dataclasses import dataclass
from html import escape

from .api import SpecLike, _spec_arg, analyze
from .lang.errors import ArchError
from .lang.views import table
from .report import FLOAT_BYTES, Report

MB = 2 ** 20


@dataclass(frozen=True)
class SummaryRow:
    path: str
    op: str
    input: tuple[int, ...]     # with the batch dimension
    output: tuple[int, ...]
    params: int
    frozen: int
    macs: int                  # for the whole batch
    activations: int           # output elements for the whole batch


@dataclass(frozen=True)
class Summary:
    name: str
    batch: int
    rows: tuple[SummaryRow, ...]

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def frozen(self) -> int:
        return sum(r.frozen for r in self.rows)

    @property
    def trainable(self) -> int:
        return self.params - self.frozen

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def input_mb(self) -> float:
        return self.batch * _numel(self.rows[0].input[1:]) * FLOAT_BYTES / MB if self.rows else 0.0

    @property
    def activations_mb(self) -> float:
        """Every layer's output for the batch, in float32: what the forward pass keeps for backward."""
        return sum(r.activations for r in self.rows) * FLOAT_BYTES / MB

    @property
    def params_mb(self) -> float:
        return self.params * FLOAT_BYTES / MB

    def _cells(self) -> list[list[str]]:
        return [[f"{r.path} ({r.op})", str(list(r.input)), str(list(r.output)), f"{r.params:,}",
                 "frozen" if r.frozen == r.params and r.params else "partly" if r.frozen else
                 ("yes" if r.params else "--"), f"{r.macs:,}"] for r in self.rows]

    def _totals(self) -> list[tuple[str, str]]:
        return [("Total params", f"{self.params:,}"), ("Trainable params", f"{self.trainable:,}"),
                ("Non-trainable params", f"{self.frozen:,}"), ("Total mult-adds (G)", f"{self.macs / 1e9:.2f}"),
                ("Input size (MB)", f"{self.input_mb:.2f}"),
                ("Activations, forward (MB)", f"{self.activations_mb:.2f}"),
                ("Params size (MB)", f"{self.params_mb:.2f}"),
                ("Estimated total size (MB)", f"{self.input_mb + self.activations_mb + self.params_mb:.2f}")]

    def __str__(self) -> str:
        header = ["Layer (path (op))", "Input shape", "Output shape", "Param #", "Trainable", "Mult-adds"]
        cells = self._cells()
        widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
        line = lambda row: "  ".join(c.rjust(w) if i >= 3 else c.ljust(w)  # noqa: E731
                                     for i, (c, w) in enumerate(zip(row, widths))).rstrip()
        rule = "=" * len(line(header))
        out = [rule, f"{self.name}, batch {self.batch}", rule, line(header), rule, *map(line, cells), rule]
        out += [f"{k}: {v}" for k, v in self._totals()[:4]] + [rule] + [f"{k}: {v}" for k, v in self._totals()[4:]]
        return "\n".join(out + [rule])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        totals = "".join(f"<tr><td>{escape(k)}</td><td style='text-align:right'>{escape(v)}</td></tr>"
                         for k, v in self._totals())
        return (f"<div><b>{escape(self.name)}</b>, batch {self.batch}"
                + table(["layer", "input", "output", "params", "trainable", "mult-adds"], self._cells(), (3, 5))
                + f"<table style='font-family:ui-monospace,monospace;font-size:12px'>{totals}</table></div>")


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _input_size(input_size) -> tuple[int, tuple[int, int, int]]:
    if isinstance(input_size, (tuple, list)) and all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                                     for d in input_size) and len(input_size) in (3, 4):
        size = tuple(input_size)
        return (size[0], size[1:]) if len(size) == 4 else (1, size)  # type: ignore[return-value]
    raise ArchError(f"archdsl.summary's input_size takes (batch, channels, height, width) or (channels, height, "
                    f"width) as positive ints, not {input_size!r}"[:200],
                    hint="for example input_size=(8, 3, 224, 224)", code="E010")


def _frozen(model, path: str) -> int:
    if model is None:
        return 0
    try:
        module = model.get_submodule(path)
    except AttributeError:
        return 0
    return sum(p.numel() for p in module.parameters() if not p.requires_grad)


def summary(spec: SpecLike, input_size=None, *, model=None, verbose: int | None = None, **overrides) -> Summary:
    """The layer table of `spec` at `input_size` (default: the spec's input, batch 1). Printed
    too when `verbose` is 1 (the default outside a notebook, as torchinfo does)."""
    import sys

    _spec_arg(spec, "summary")
    if input_size is not None:
        batch, chw = _input_size(input_size)
        overrides = {**overrides, "input": "x".join(map(str, chw))}
    else:
        batch = 1
    report: Report = analyze(spec, **overrides)
    rows = tuple(SummaryRow(r.path, r.op + (f" {r.detail}" if r.detail else ""), (batch, *r.in_shape),
                            (batch, *r.shape), r.params, min(_frozen(model, r.path), r.params), r.macs * batch,
                            r.act * batch) for r in report.layers)
    result = Summary(report.network.name, batch, rows)
    if verbose is None:
        verbose = 0 if "ipykernel" in sys.modules else 1
    if verbose:
        print(result)
    return result
