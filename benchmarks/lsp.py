"""How long the language server takes to re-check a document after an edit: `analysis.analyze`
(parse, resolve, check shapes, count) on a shipped spec's text, as `did_change` runs it.

    python benchmarks/lsp.py                     # convnext_t, swin_t, resnet50, convnextv2_atto
    python benchmarks/lsp.py --specs convnext_t --rounds 200

Prints the median and 90th percentile in ms, and whether torch got imported (it must not)."""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archdsl.lang.specpath import find_spec  # noqa: E402
from archdsl.lsp.analysis import analyze  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", default="convnext_t,swin_t,resnet50,convnextv2_atto")
    ap.add_argument("--rounds", type=int, default=50)
    args = ap.parse_args()
    for name in args.specs.split(","):
        path = find_spec(name)
        text = path.read_text()
        analyze(text, str(path))  # warm: the grammar is built once per process
        times = []
        for i in range(args.rounds):
            edited = text + f"\n# edit {i}\n"  # a new text each time, as typing makes
            started = time.perf_counter()
            a = analyze(edited, str(path))
            times.append((time.perf_counter() - started) * 1000)
            assert not a.errors, a.errors
        times.sort()
        print(f"{name:18} {len(text.splitlines()):3} lines  median {statistics.median(times):6.1f} ms  "
              f"p90 {times[int(0.9 * len(times))]:6.1f} ms")
    print(f"torch imported: {'torch' in sys.modules}")


if __name__ == "__main__":
    main()
