"""archdsl: a declarative language for convolutional networks, with a graph compiler behind it.

    import archdsl
    model = archdsl.build("convnext_t")            # torch.fx.GraphModule
    report = archdsl.analyze("convnext_t")         # .params, .macs, .layers, .stages
"""
from .api import analyze, as_network, build, check, load, loads
from .errors import ArchError, ArchErrors
from .network import Network
from .recipe import TrainRecipe

__all__ = ["ArchError", "ArchErrors", "Network", "TrainRecipe", "analyze", "as_network", "build", "check",
           "load", "loads"]
