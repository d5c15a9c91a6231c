"""Compiled ConvNeXt-T (`archdsl.build("convnext_t")`) against the eager form people use.

The reference is the official repo's code (tests/reference_models.py): depthwise conv on
NCHW, permute to NHWC, LayerNorm + two nn.Linear + GELU + gamma, permute back; the stem and
downsample LayerNorms are the official hand-written channels_first ones. Both models hold
the same weights (loaded with `load_weights`) and run in this process, interleaved (the order
alternates every run), after warm-up; each cell is the median over --runs.

    python benchmarks/bench_convnext.py                      # batch 8, 224x224, fp32, CPU
    python benchmarks/bench_convnext.py --runs 5 --threads 4 --profile

ratio = reference ms / archdsl ms: above 1 means archdsl is faster.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a fresh clone without installing

import archdsl  # noqa: E402
from archdsl.interop.weights import load_weights  # noqa: E402


def import_reference():
    spec = importlib.util.spec_from_file_location("reference_models", ROOT / "tests" / "reference_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_optimizer(name: str, model: torch.nn.Module) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    return torch.optim.AdamW(model.parameters(), lr=4e-3, weight_decay=0.05)


def forward_case(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        model.eval()
        with torch.no_grad():
            model(x)
    return run


def train_case(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
               optimizer: torch.optim.Optimizer) -> Callable[[], None]:
    def run() -> None:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return run


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def interleaved(ref: Callable[[], None], ours: Callable[[], None], runs: int,
                warmup: int) -> tuple[list[float], list[float]]:
    """ms of every run of each, alternating which goes first so neither always runs on a warm cache."""
    for _ in range(warmup):
        ref(), ours()
    times: dict[str, list[float]] = {"ref": [], "ours": []}
    for i in range(runs):
        order = [("ref", ref), ("ours", ours)] if i % 2 == 0 else [("ours", ours), ("ref", ref)]
        for name, fn in order:
            times[name].append(timed(fn))
    return times["ref"], times["ours"]


def profile(name: str, fn: Callable[[], None], rows: int) -> None:
    from torch.profiler import ProfilerActivity, profile as torch_profile
    fn()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    print(f"\n## {name}\n")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default="convnext_t")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--optimizer", choices=["sgd", "adamw"], default="adamw")
    parser.add_argument("--droppath", type=float, default=0.1,
                        help="the reference's stochastic depth; match the spec's recipe")
    parser.add_argument("--cases", default="forward,train")
    parser.add_argument("--profile", action="store_true", help="print torch.profiler tables")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    ref_models = import_reference()
    reference = ref_models.randomize_(ref_models.convnext_tiny(drop_path_rate=args.droppath))
    ours = load_weights(archdsl.build(args.spec), reference.state_dict(), layout="official")
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, 1000, (args.batch,))

    reference.eval(), ours.eval()
    with torch.no_grad():  # same weights, same function: check before timing
        torch.testing.assert_close(ours(x[:2]), reference(x[:2]), rtol=1e-4, atol=1e-4)

    cases = {
        "forward": (forward_case(reference, x), forward_case(ours, x)),
        "train": (train_case(reference, x, y, make_optimizer(args.optimizer, reference)),
                  train_case(ours, x, y, make_optimizer(args.optimizer, ours))),
    }
    print(f"# {args.spec}: batch {args.batch}, {args.size}x{args.size}, fp32, CPU, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"median of {args.runs} (+{args.warmup} warm-up), train = fwd+bwd+{args.optimizer}\n")
    print(f"| case | reference ms | archdsl ms | ratio |")
    print(f"|---|---:|---:|---:|")
    spreads = []
    for name in args.cases.split(","):
        ref_runs, ours_runs = interleaved(*cases[name], runs=args.runs, warmup=args.warmup)
        ref_ms, ours_ms = statistics.median(ref_runs), statistics.median(ours_runs)
        print(f"| {name} | {ref_ms:.1f} | {ours_ms:.1f} | {ref_ms / ours_ms:.2f}x |", flush=True)
        spreads.append(f"{name}: reference {min(ref_runs):.0f}-{max(ref_runs):.0f} ms, "
                       f"archdsl {min(ours_runs):.0f}-{max(ours_runs):.0f} ms")
    print("\nrange over runs: " + "; ".join(spreads))
    if args.profile:
        for name in args.cases.split(","):
            ref_fn, ours_fn = cases[name]
            profile(f"{name}: reference", ref_fn, rows=15)
            profile(f"{name}: archdsl", ours_fn, rows=15)


if __name__ == "__main__":
    main()
