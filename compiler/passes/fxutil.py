"""What the fx-level passes share: find the module a node calls, follow single-user chains,
and drop a node or a submodule once a pass has absorbed it."""
from __future__ import annotations

from torch import fx, nn


def called_module(gm: fx.GraphModule, node: fx.Node, kind: type | tuple[type, ...]) -> nn.Module | None:
    """The module `node` calls if it is a `call_module` of an instance of `kind`, else None."""
    if node.op != "call_module" or node._erased:  # erased earlier in the same pass
        return None
    module = gm.get_submodule(node.target)
    return module if isinstance(module, kind) else None


def sole_user(node: fx.Node) -> fx.Node | None:
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def bypass(gm: fx.GraphModule, node: fx.Node, replacement: fx.Node) -> None:
    """Route `node`'s users to `replacement`, erase it, and drop the submodule it called."""
    node.replace_all_uses_with(replacement)
    gm.graph.erase_node(node)
    if node.op == "call_module":
        gm.delete_submodule(node.target)


def finish(gm: fx.GraphModule) -> fx.GraphModule:
    gm.graph.lint()
    gm.recompile()
    return gm
