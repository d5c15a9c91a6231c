"""archdsl: a declarative language for convolutional networks, with a graph compiler behind it.

    import archdsl
    model = archdsl.build("convnext_t")            # torch.fx.GraphModule
    report = archdsl.analyze("convnext_t")         # .params, .macs, .layers, .stages
"""
from .api import analyze, as_network, build, check, load, loads
from .diff import Diff, diff
from .diff.change import apply, change
from .lang.errors import ArchError, ArchErrors
from .lang.network import Network
from .lang.patch import Patch
from .lang.printer import fmt
from .lang.recipe import TrainRecipe
from .summary import summary

# Imported on first use: they need torch, and checking or counting a spec should not wait for it.
_LAZY = {"load_weights": "interop.weights", "train": "training", "load_checkpoint": "training",
         "transfer": "interop.transfer"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'archdsl' has no attribute {name!r}")


__all__ = ["ArchError", "ArchErrors", "Diff", "Network", "Patch", "TrainRecipe", "analyze", "apply", "as_network",
           "build", "change", "check", "diff", "fmt", "load", "load_checkpoint", "load_weights", "loads", "summary",
           "train", "transfer"]


def __dir__() -> list[str]:
    """The public API, the lazily imported names included (tab completion finds `train`)."""
    return sorted(__all__)
