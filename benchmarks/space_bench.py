"""Costing the points of a space: archdsl's analytic costs against building each model, in one run.

For the shipped ConvNeXt-T-sized space (specs/spaces/convnext_space.arch: 249,600 points around
ConvNeXt-T's 4.46 GMACs) the same seeded draws are costed two ways:

    archdsl     `Coster.cost` (spaces/cost.py): no torch; each stage's cost computed once by the
                compiler's analysis and remembered. "cold" is the first --cold draws, while the
                memo fills; "warm" the --warm draws after them.
    build       what pycls's samplers do to find a model in a complexity window: build the model
                (here `archdsl.build` on the meta device, which allocates no weights, so this is
                the fast version of it) and count its FLOPs (torch's FlopCounterMode, /2 for MACs).

and the acceptance of a +-1% MACs window around ConvNeXt-T (4.415G:4.505G) is measured over all
draws. The counts of both ways are compared on the points built. The machine's load average is
printed with the table: the numbers are from a shared 2-core machine.

    python benchmarks/space_bench.py                     # ~1-2 minutes
    python benchmarks/space_bench.py --warm 100000 --build 40
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archdsl.lang.errors import ArchError  # noqa: E402
from archdsl.spaces.cost import Coster  # noqa: E402
from archdsl.spaces.sampler import draw_point  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--space", default="convnext_space")
    ap.add_argument("--cold", type=int, default=5000, help="draws costed while the memo fills")
    ap.add_argument("--warm", type=int, default=50000, help="draws costed after them")
    ap.add_argument("--build", type=int, default=20, help="draws built and counted with torch")
    ap.add_argument("--center", type=float, default=4.46e9, help="MACs at the window's center")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if min(args.cold, args.warm, args.build) < 1:
        ap.error("--cold, --warm and --build take positive counts")

    coster = Coster.open(args.space)
    lo, hi = 0.99 * args.center, 1.01 * args.center
    rng = random.Random(args.seed)
    draws = [draw_point(coster.space, rng) for _ in range(args.cold + args.warm)]

    def run(points) -> tuple[float, list]:
        costs = []
        t = time.perf_counter()
        for values in points:
            try:
                costs.append(coster.cost(values, drawn=True))
            except ArchError:
                costs.append(None)
        return time.perf_counter() - t, costs

    cold_s, cold = run(draws[:args.cold])
    warm_s, warm = run(draws[args.cold:])
    costs = cold + warm
    accepted = sum(1 for c in costs if c is not None and lo <= c.macs <= hi)
    assert "torch" not in sys.modules, "costing imported torch"

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import archdsl

    built = draws[:args.build]
    t = time.perf_counter()
    mismatches = 0
    for values, cost in zip(built, costs):
        model = archdsl.build(coster.network(values), device="meta")
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(torch.empty(1, 3, 224, 224, device="meta"))
        params = sum(p.numel() for p in model.parameters())
        mismatches += (counter.get_total_flops() // 2, params) != (cost.macs, cost.params)
    build_s = time.perf_counter() - t

    load = os.getloadavg()
    print(f"space {coster.name}: {len(draws):,} seeded draws (seed {args.seed}); window +-1% of "
          f"{args.center / 1e9:.2f} GMACs = {lo / 1e9:.3f}G:{hi / 1e9:.3f}G")
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          "(1, 5, 15 min)")
    print()
    print(f"{'way':<28} {'points':>8} {'seconds':>9} {'points/s':>10}")
    print(f"{'costing cold (memo fills)':<28} {args.cold:>8,} {cold_s:>9.2f} {args.cold / cold_s:>10,.0f}")
    print(f"{'costing warm':<28} {args.warm:>8,} {warm_s:>9.2f} {args.warm / warm_s:>10,.0f}")
    print(f"{'build + FlopCounterMode':<28} {args.build:>8,} {build_s:>9.2f} {args.build / build_s:>10,.1f}")
    print()
    print(f"acceptance of the window: {accepted:,} of {len(draws):,} draws = {accepted / len(draws):.2%}; "
          f"memo holds {len(coster.cache):,} stage costs")
    per_hit = len(draws) / max(accepted, 1)
    print(f"time per accepted point: archdsl {(cold_s + warm_s) / max(accepted, 1) * 1e3:.2f} ms, "
          f"build {build_s / args.build * per_hit:.1f} s")
    print(f"built points whose params or MACs differ from archdsl's: {mismatches} of {args.build}")


if __name__ == "__main__":
    main()
