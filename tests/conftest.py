"""The test tree mirrors the packages (tests/lang, tests/diff, ...); `reference_models.py`,
the independent plain-PyTorch networks, sits here and is importable from every folder."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
