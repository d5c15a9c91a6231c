"""Kept as a thin entry: ConvNeXt-T only, through benchmarks/bench.py (see its docstring).

    python benchmarks/bench_convnext.py --cases eager,eval --rounds 5
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import main  # noqa: E402

if __name__ == "__main__":
    main(["--models", "convnext_t", *sys.argv[1:]])
