"""archdsl against the strongest independent implementations, in one process, interleaved.

For each model (ConvNeXt-T, ResNet-50, Swin-T) and each case (eager, the inference build,
torch.compile, bf16; forward and the train step) every contender runs once per round, the
order rotating every round. Around each timed call the run-queue wait of all this process's
threads is read from /proc/self/task/*/schedstat (second field, ns spent runnable but not
running); a round in which any contender waited for a CPU more than --max-wait of its time
is discarded. Medians and ranges are over the kept rounds only. All contenders share one
process, so one allocator: by default freed memory stays in the process (--allocator), so a
call measures its compute rather than the page faults of memory the previous call gave back
(which made the same model's median differ by 25% between cases); faults per call are printed.

Contenders (same architecture, same batch, same head, so the same work):
    archdsl          `archdsl.build(spec)` (train build), `mode="eval"` (inference build),
                     `compile=True`
    ref-competent    tests/reference_models.py written as a competent engineer would:
                     channels-last memory, F.layer_norm on permuted data, nn.Linear pointwise
    ref-official     the official ConvNeXt code (hand-written channels-first LayerNorm)
    hf               HuggingFace transformers' ConvNext/ResNet/Swin ForImageClassification,
                     built from a config (no download); only if `transformers` imports
                     (`pip install -e .[bench]`)
archdsl and the project references hold the same weights, and their logits are checked
equal before anything is timed.

    python benchmarks/bench.py                                  # everything (long: compiles)
    python benchmarks/bench.py --models convnext_t --cases eager,eval --rounds 5   # ~2 min
    python benchmarks/bench.py --models resnet50 --cases eval,compile --ops forward
    python benchmarks/bench.py --cases eager --ops train --profile   # torch.profiler tables
    python benchmarks/bench.py --models convnext_t --cases compile --ops train --refs none  # own eager only

Cases: eager | eval | compile | bf16 | kernels (ConvNeXt-T's pointwise layers alone: F.linear
against archdsl's oneDNN linear, see compiler/pointwise.py).  Ops: forward (no_grad, eval mode) | train (forward,
cross-entropy, backward, AdamW step). `compile` reports the first call (compilation, with a fresh
inductor cache unless --warm-cache) and the steady state; the inference build is compiled with inductor's freezing. The output is a
markdown table: `speedup` is the contender's median / archdsl's median in the same rows
(above 1: archdsl is faster); `page faults` the median minor page faults per call (fresh
memory the kernel zeroes: see --allocator); `% peak` is the achieved GFLOP/s (2 x MACs per sample for a
forward, 3x that for a train step) over the matmul peak printed at the top (the faster of
torch.matmul and oneDNN).
"""
from __future__ import annotations

import argparse
import glob
import importlib
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a fresh clone without installing

import archdsl  # noqa: E402
from archdsl.interop.weights import load_weights  # noqa: E402
from archdsl.training.allocator import keep_freed_memory  # noqa: E402

CL = torch.channels_last


# ----------------------------------------------------------------------------- measuring


def run_queue_wait_ns() -> int:
    """ns this process's threads have spent runnable but waiting for a CPU, so far."""
    total = 0
    for path in glob.glob("/proc/self/task/*/schedstat"):
        try:
            with open(path) as f:
                total += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):  # a thread that exited meanwhile
            pass
    return total


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def timed(fn: Callable[[], None]) -> tuple[float, float, int]:
    """(ms, the share of its compute threads' time spent waiting for a CPU, minor page
    faults): the wait summed over threads, over the wall time times torch's thread count
    (each of them is busy)."""
    faults0, wait0, t0 = minor_faults(), run_queue_wait_ns(), time.perf_counter_ns()
    fn()
    t1, wait1, faults1 = time.perf_counter_ns(), run_queue_wait_ns(), minor_faults()
    return (t1 - t0) / 1e6, (wait1 - wait0) / max((t1 - t0) * torch.get_num_threads(), 1), faults1 - faults0


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 5) -> dict[str, float]:
    """GFLOP/s of a large square matmul, the best of `reps`, through torch.matmul (BLAS: MKL
    in torch's wheels) and through oneDNN where torch has it. The faster is the machine's
    practical peak: on AMD CPUs MKL's sgemm reaches about half of oneDNN's."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    kernels = {"torch.matmul": lambda: a @ b}
    if torch.backends.mkldnn.is_available():
        kernels["oneDNN"] = lambda: torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")
    out = {}
    for name, fn in kernels.items():
        fn()
        best = min(timed(fn)[0] for _ in range(reps))
        out[name] = 2 * n ** 3 / (best / 1e3) / 1e9
    return out


def kernel_table(rounds: int, max_wait: float, batch: int) -> None:
    """ConvNeXt-T's pointwise layers (batch 8 at 224: every stage, both directions): torch's
    `F.linear` (BLAS gemm) against archdsl's `compiler.pointwise.linear` (oneDNN 1x1 conv on
    the same channels-last memory), forward and forward+backward, interleaved."""
    from compiler.pointwise import linear

    print("| layer (N,H,W,C -> C') | op | F.linear ms | archdsl linear ms | speedup |")
    print("|---|---|---:|---:|---:|")
    for hw, c in [(56, 96), (28, 192), (14, 384), (7, 768)]:
        for cin, cout in [(c, 4 * c), (4 * c, c)]:
            x = torch.randn(batch, hw, hw, cin, requires_grad=True)
            w, b = torch.randn(cout, cin, requires_grad=True), torch.randn(cout, requires_grad=True)
            g = torch.randn(batch, hw, hw, cout)
            for op in ("forward", "train"):
                def run(f, op=op):
                    if op == "forward":
                        with torch.no_grad():
                            f(x, w, b)
                    else:
                        x.grad = w.grad = b.grad = None
                        f(x, w, b).backward(g)
                cs = [Contender("F.linear", lambda: run(F.linear)), Contender("archdsl", lambda: run(linear))]
                for c_ in cs:
                    c_.fn()
                kept, _ = interleaved(cs, rounds, max_wait)
                if not kept:
                    print(f"| {batch},{hw},{hw},{cin} -> {cout} | {op} | all rounds waited for a CPU | | |")
                    continue
                ms = [statistics.median(c_.ms) for c_ in cs]
                print(f"| {batch},{hw},{hw},{cin} -> {cout} | {op} | {ms[0]:.2f} | {ms[1]:.2f} | "
                      f"{ms[0] / ms[1]:.2f}x |", flush=True)


@dataclass
class Contender:
    name: str
    fn: Callable[[], None]
    first_s: float | None = None  # first call (compilation), where it was timed
    ms: list[float] = field(default_factory=list)
    faults: list[int] = field(default_factory=list)


def interleaved(contenders: list[Contender], rounds: int, max_wait: float) -> tuple[int, int]:
    """Time every contender once per round, rotating the order; keep only quiet rounds."""
    kept = 0
    for r in range(rounds):
        k = r % len(contenders)
        order = contenders[k:] + contenders[:k]
        results = {c.name: timed(c.fn) for c in order}
        if all(wait <= max_wait for _, wait, _ in results.values()):
            kept += 1
            for c in contenders:
                c.ms.append(results[c.name][0])
                c.faults.append(results[c.name][2])
    return kept, rounds


# ----------------------------------------------------------------------------- models


def import_tests_module(name: str):
    """A module of tests/ (the independent references), imported by its plain name so that
    torch.compile's tracer can import it again; None where it does not exist."""
    if not (ROOT / "tests" / f"{name}.py").exists():
        return None
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    return importlib.import_module(name)


class ChannelsLastInput(nn.Module):
    """What a competent engineer does with a conv net on CPU: channels-last memory throughout."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.to(memory_format=CL)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=CL))


class Logits(nn.Module):
    """HF models return an output object; the benchmark wants the logits tensor."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


def hf_model(kind: str, droppath: float) -> nn.Module | None:
    try:
        import transformers as tf
    except ImportError:
        return None
    if kind == "convnext_t":  # ConvNextConfig's defaults are ConvNeXt-T
        config = tf.ConvNextConfig(num_labels=1000, drop_path_rate=droppath)
        return Logits(tf.ConvNextForImageClassification(config))
    if kind == "resnet50":  # ResNetConfig's defaults are ResNet-50
        return Logits(tf.ResNetForImageClassification(tf.ResNetConfig(num_labels=1000)))
    if kind == "swin_t":  # SwinConfig's defaults are Swin-T
        config = tf.SwinConfig(num_labels=1000, drop_path_rate=droppath)
        return Logits(tf.SwinForImageClassification(config))
    return None


@dataclass
class Case:
    """One model: how to build archdsl's, and the independent references (name -> builder)."""
    name: str
    spec: str
    references: Callable[[], dict[str, nn.Module]]
    archdsl_weights: Callable[[dict[str, nn.Module]], dict | None]  # a state dict for archdsl, or None
    skip: str | None = None


def convnext_case(droppath: float) -> Case:
    ref = import_tests_module("reference_models")

    def references() -> dict[str, nn.Module]:
        official = ref.randomize_(ref.convnext_tiny(drop_path_rate=droppath))
        competent = ref.convnext_tiny(competent=True, drop_path_rate=droppath)
        competent.load_state_dict(official.state_dict())
        models = {"ref-competent": ChannelsLastInput(competent), "ref-official": official}
        hf = hf_model("convnext_t", droppath)
        return models | ({"hf": hf} if hf is not None else {})

    def weights(refs: dict[str, nn.Module]) -> dict:
        model = load_weights(archdsl.build("convnext_t", device="meta"), refs["ref-official"].state_dict(), layout="official")
        return model.state_dict()

    return Case("ConvNeXt-T", "convnext_t", references, weights)


def resnet_case() -> Case:
    ref = import_tests_module("reference_models")

    def references() -> dict[str, nn.Module]:
        plain = ref.randomize_(ref.resnet50(), sample=torch.randn(4, 3, 224, 224))
        models = {"ref-competent": ChannelsLastInput(plain)}
        hf = hf_model("resnet50", 0.0)
        return models | ({"hf": hf} if hf is not None else {})

    def weights(refs: dict[str, nn.Module]) -> dict:
        state = refs["ref-competent"].model.state_dict()
        return load_weights(archdsl.build("resnet50", device="meta"), state, layout="torchvision").state_dict()

    return Case("ResNet-50", "resnet50", references, weights)


def swin_case(droppath: float) -> Case:
    ref = import_tests_module("reference_transformers")
    missing = []
    if ref is None or not hasattr(ref, "swin_t"):
        missing.append("tests/reference_transformers.py with swin_t() (engineer h8's branch)")
    try:
        archdsl.load("swin_t")
    except Exception:  # noqa: BLE001 - any failure to resolve means the spec is not there yet
        missing.append("the `swin_t` spec")

    def references() -> dict[str, nn.Module]:
        models = {"ref-plain": ref.swin_t()}
        hf = hf_model("swin_t", droppath)
        return models | ({"hf": hf} if hf is not None else {})

    return Case("Swin-T", "swin_t", references, lambda refs: None,
                skip=f"needs {' and '.join(missing)}" if missing else None)


# ----------------------------------------------------------------------------- cases


def forward_fn(model: nn.Module, x: torch.Tensor, bf16: bool = False) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(x)
    return run


def train_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, bf16: bool = False) -> Callable[[], None]:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.05)

    def run() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    return run


def contenders_for(case: Case, kind: str, op: str, refs: dict[str, nn.Module], state: dict | None,
                   x: torch.Tensor, y: torch.Tensor) -> list[Contender]:
    def ours(**kw) -> nn.Module:
        return archdsl.build(case.spec, state_dict=state, **kw)

    def prepare(model: nn.Module) -> nn.Module:
        return model.train() if op == "train" else model.eval()

    def fn(model: nn.Module, bf16: bool = False) -> Callable[[], None]:
        return train_fn(model, x, y, bf16) if op == "train" else forward_fn(model, x, bf16)

    if kind == "eager":
        models = {"archdsl": prepare(ours())} | refs
        out = [Contender(n, fn(prepare(m))) for n, m in models.items()]
    elif kind == "bf16":
        models = {"archdsl": prepare(ours())} | refs
        out = [Contender(f"{n} bf16", fn(prepare(m), bf16=True)) for n, m in models.items()]
        out += [Contender(f"{n} fp32", fn(prepare(m))) for n, m in models.items() if n == "archdsl"]
    elif kind == "eval":
        if op == "train":
            return []
        out = [Contender("archdsl eval-build", fn(ours(mode="eval")))]
        out += [Contender(n, fn(prepare(m))) for n, m in refs.items()]
    elif kind == "compile":
        out = []
        if op == "forward":
            out.append(Contender("archdsl eval-build compiled", fn(ours(mode="eval", compile=True))))
        out.append(Contender("archdsl compiled", fn(prepare(ours(compile=True)))))
        out.append(Contender("archdsl eager", fn(prepare(ours()))))
        for n, m in refs.items():
            out.append(Contender(f"{n} compiled", fn(prepare(torch.compile(m)))))
        for c in out:  # the first call compiles: time it on its own
            if "compiled" in c.name:
                c.first_s = timed(c.fn)[0] / 1e3
    else:
        raise SystemExit(f"unknown case {kind!r}: eager, eval, compile, bf16, kernels")
    for c in out:  # warm-up (and compile where it was not already)
        c.fn()
    return out


def check_same_function(case: Case, refs: dict[str, nn.Module], state: dict | None, size: int) -> None:
    """archdsl (train and eval builds) and the project's references: equal logits before timing."""
    if state is None:
        return
    x = torch.randn(2, 3, size, size)
    ours = archdsl.build(case.spec, state_dict=state).eval()
    evaluated = archdsl.build(case.spec, mode="eval", state_dict=state)
    with torch.no_grad():
        expected = ours(x)
        torch.testing.assert_close(evaluated(x), expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
        for name, ref in refs.items():
            if name.startswith("ref"):
                torch.testing.assert_close(ref.eval()(x), expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


def profile(name: str, fn: Callable[[], None], rows: int = 15) -> None:
    from torch.profiler import ProfilerActivity, profile as torch_profile
    with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        fn()
    print(f"\n#### profile: {name}\n\n```")
    print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=rows,
                                                             max_name_column_width=40, max_shapes_column_width=70))
    print("```")


MODELS = ("convnext_t", "resnet50", "swin_t")
CASES = ("eager", "eval", "compile", "bf16", "kernels")
OPS = ("forward", "train")


def main(argv: list[str] | None = None) -> None:
    title, _, method = __doc__.partition("\n")
    parser = argparse.ArgumentParser(description=title, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=method.strip())
    parser.add_argument("--models", default="convnext_t,resnet50,swin_t")
    parser.add_argument("--cases", default="eager,eval,compile,bf16",
                        help=f"comma-separated: {', '.join(CASES)}")
    parser.add_argument("--ops", default="forward,train")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=9, help="timed rounds per case (before filtering)")
    parser.add_argument("--max-wait", type=float, default=0.05,
                        help="discard a round where a call waited for a CPU more than this fraction of its time")
    parser.add_argument("--droppath", type=float, default=0.1, help="stochastic depth of all ConvNeXt/Swin models")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--refs", default="all",
                        help="references to run: all, none, or names (ref-competent,ref-official,hf,ref-plain)")
    parser.add_argument("--profile", action="store_true", help="a torch.profiler table per contender")
    parser.add_argument("--allocator", choices=("keep", "system"), default="keep",
                        help="keep: freed memory stays in the process for every contender, as `archdsl train` "
                             "does (archdsl/training/allocator.py); system: glibc's defaults, which fault "
                             "large activations in again on every call")
    parser.add_argument("--warm-cache", action="store_true",
                        help="let torch.compile reuse its on-disk cache (default: a fresh one, so the "
                             "first call times a real compilation)")
    args = parser.parse_args(argv)
    for option, allowed in (("models", MODELS), ("cases", CASES), ("ops", OPS)):
        unknown = set(getattr(args, option).split(",")) - set(allowed)
        if unknown:
            parser.error(f"--{option}: unknown {', '.join(sorted(unknown))} (choose from {', '.join(allowed)})")
    for option in ("batch", "size", "rounds", "threads"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            parser.error(f"--{option} must be at least 1")
    kept_memory = args.allocator == "keep" and keep_freed_memory()
    if not args.warm_cache:  # read by inductor when it compiles, not at import
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="archdsl-bench-inductor-")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    builders = {"convnext_t": lambda: convnext_case(args.droppath), "resnet50": resnet_case,
                "swin_t": lambda: swin_case(args.droppath)}
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    peak = {dtype: max(by_kernel.values()) for dtype, by_kernel in peaks.items()}
    print(f"# archdsl benchmark: batch {args.batch}, {args.size}x{args.size}, CPU, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}; allocator: "
          f"{'freed memory kept (mallopt)' if kept_memory else 'the system default'}\n")
    for dtype, by_kernel in peaks.items():
        print(f"matmul peak (2048^3), {dtype}: {peak[dtype]:.0f} GFLOP/s ("
              + ", ".join(f"{k} {v:.0f}" for k, v in by_kernel.items()) + ")  ")
    print(f"\nrounds kept where no call waited for a CPU more than {args.max_wait:.0%} of its time\n")
    if "kernels" in args.cases.split(","):
        kernel_table(args.rounds, args.max_wait, args.batch)
        print()
    model_cases = [kind for kind in args.cases.split(",") if kind != "kernels"]
    if model_cases:
        print("| model | case | op | contender | median ms | range ms | speedup of archdsl | % peak | "
              "page faults | first call s |")
        print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, 1000, (args.batch,))
    notes = []
    for key in args.models.split(",") if model_cases else []:
        case = builders[key]()
        if case.skip:
            notes.append(f"{case.name} skipped: {case.skip}")
            continue
        refs = case.references()
        state = case.archdsl_weights(refs)
        check_same_function(case, refs, state, args.size)
        if args.refs != "all":
            refs = {n: m for n, m in refs.items() if n in args.refs.split(",")}
        macs = archdsl.analyze(case.spec, input=f"3x{args.size}x{args.size}").macs * args.batch
        for kind in model_cases:
            for op in args.ops.split(","):
                contenders = contenders_for(case, kind, op, refs, state, x, y)
                if not contenders:
                    continue
                kept, total = interleaved(contenders, args.rounds, args.max_wait)
                if not kept:
                    notes.append(f"{case.name} {kind} {op}: all {total} rounds waited for a CPU more than "
                                 f"{args.max_wait:.0%}; rerun on a quieter machine (or raise --max-wait)")
                    continue
                base = statistics.median(next(c for c in contenders if c.name.startswith("archdsl")).ms)
                flops = 2 * macs * (3 if op == "train" else 1)
                for c in contenders:
                    med = statistics.median(c.ms)
                    p = peak["bf16" if "bf16" in c.name else "fp32"]
                    first = f"{c.first_s:.1f}" if c.first_s is not None else ""
                    print(f"| {case.name} | {kind} ({kept}/{total} rounds) | {op} | {c.name} | {med:.1f} | "
                          f"{min(c.ms):.0f}-{max(c.ms):.0f} | {med / base:.2f}x | "
                          f"{flops / (med / 1e3) / 1e9 / p:.0%} | {statistics.median(c.faults):.0f} | "
                          f"{first} |", flush=True)
                if args.profile:
                    for c in contenders:
                        profile(f"{case.name} {kind} {op}: {c.name}", c.fn)
    for note in notes:
        print(f"\n{note}")


if __name__ == "__main__":
    main()
