"""The containers of a built model: `stages`, `stages.0`, `stages.0.blocks`, `stages.0.blocks.3`,
`downsample`, `head`... They hold the ops, which the fx graph calls one by one; the graph never
calls a container, so a container works as an index and a hook point, not as a function:

    model.stages[0].blocks[-1]           indexing, len() and iteration, as an nn.ModuleList
    model.stages[1].register_forward_hook(hook)
        fires on every forward with (module, (stage input,), stage output), as PyTorch's hooks:
        registering it puts one call to the container into the graph, after the section's last
        value (a tensor returned by the hook replaces the output, as in PyTorch)
    model.stages[1](x)                   an error saying what to use instead

The values are as the graph holds them, in the layout passes/layout.py gave them: a section
after a channels-last op runs channels-last and gives (B, H, W, C) (ConvNeXt's stem and
stages.0, after the stem's LayerNorm; every Swin stage); tokens are (B, N, C). For NCHW maps
without hooks: `archdsl.build(spec, taps=["stages.1"])` (passes/taps.py).

The built model is a `Model`, a GraphModule whose copies (copy.copy, copy.deepcopy, pickle
and torch.save/torch.load) have their own sections, bound to the copy."""
from __future__ import annotations

import weakref
from collections.abc import Collection

from torch import fx, nn


_LAYOUT = ("permute", "contiguous")  # call_method nodes that only move data between layouts


def _cannot(path: str, what: str) -> str:
    return (f"`{path}` {what}: it holds ops that the model's fx graph calls one by one, and the graph never "
            f"calls `{path}` itself\nhelp: for its output build with `archdsl.build(spec, taps=[\"{path}\"])` "
            f"(or features=True); for a hook use `model.get_submodule(\"{path}\").register_forward_hook(hook)`, "
            "which fires, or hook one of its ops (`model.named_modules()` lists them)")


class Section(nn.Module):
    """A container of ops (see the module docstring)."""

    def __init__(self):
        super().__init__()
        self._root: weakref.ref | None = None
        self._path = ""

    def bind(self, root: fx.GraphModule, path: str) -> None:
        self._root, self._path = weakref.ref(root), path

    def __getstate__(self):  # pickling and deepcopy: a copy is no longer bound to this graph
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        return {**state, "_root": None}

    # ---- a ModuleList's reading
    def __getitem__(self, index: int | str) -> nn.Module:
        keys = list(self._modules)
        key = keys[index] if isinstance(index, int) and -len(keys) <= index < len(keys) else str(index)
        if key not in self._modules:
            raise IndexError(f"`{self._path}` has no `{index}`: it holds " + ", ".join(f"`{k}`" for k in keys))
        return self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    # ---- called and hooked
    def forward(self, *args):
        if len(args) == 2 and getattr(self, "_in_graph", False):  # the call a hook put into the graph
            return args[1]
        raise TypeError(_cannot(self._path, "cannot be called"))

    def register_forward_pre_hook(self, hook, **kwargs):
        raise TypeError(_cannot(self._path, "takes no pre-hooks (it runs as its ops; a pre-hook could not "
                                            "change its input)"))

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False):
        if with_kwargs:
            raise TypeError(_cannot(self._path, "takes hooks without kwargs"))
        self._put_in_graph()

        def fire(module, args, output):  # the graph passes (input, output); the hook sees (input,)
            return hook(module, args[:1], output)

        return super().register_forward_hook(fire, prepend=prepend, always_call=always_call)

    def _put_in_graph(self) -> None:
        root = self._root() if self._root is not None else None
        if root is None or _find(root, self._path) is not self:
            raise TypeError(_cannot(self._path, "is not bound to a built model (a copy?)"))
        graph = root.graph
        if any(n.op == "call_module" and n.target == self._path for n in graph.nodes):
            return
        start, end = _bounds(graph, self._path)
        with graph.inserting_after(end):
            call = graph.call_module(self._path, (start, end))
        call.meta["section"] = True
        end.replace_all_uses_with(call, delete_user_cb=lambda user: user is not call)
        self._in_graph = True
        graph.lint()
        root.recompile()


def _find(root: nn.Module, path: str) -> nn.Module | None:
    try:
        return root.get_submodule(path)
    except AttributeError:
        return None


def _source(node: fx.Node, path: str = "") -> fx.Node:
    """The value a node reads, past layout moves, and past the calls hooks on containers
    enclosing `path` put in (those on containers inside it run first and stay)."""
    while True:
        if node.op == "call_method" and node.target in _LAYOUT:
            node = node.args[0]
        elif path and node.meta.get("section") and path.startswith(f"{node.target}."):
            node = node.args[1]
        else:
            return node


def _bounds(graph: fx.Graph, path: str) -> tuple[fx.Node, fx.Node]:
    """The fx nodes holding the section's input and output: the input of its first op, and
    the input of the first op after it (or what the graph returns)."""
    def inside(n: fx.Node) -> bool:
        return n.op == "call_module" and str(n.target).startswith(path + ".")

    nodes = list(graph.nodes)
    first = next(i for i, n in enumerate(nodes) if inside(n) and not n.meta.get("section"))
    last = max(i for i, n in enumerate(nodes) if inside(n))
    after = next((n for n in nodes[last + 1:] if n.op == "call_module" and not n.meta.get("section")), None)
    if after is None:
        out = next(n for n in nodes if n.op == "output").args[0]
        if not isinstance(out, fx.Node):
            raise TypeError(_cannot(path, "ends where a features build returns its maps; it takes no hook"))
        return _source(nodes[first].args[0]), _source(out, path)
    return _source(nodes[first].args[0]), _source(after.args[0], path)


# ---- the built model and its copies
class Model(fx.GraphModule):
    """What `lower` builds: a GraphModule whose containers are `Section`s bound to it.

    fx copies a GraphModule by building another from its attributes. Left to that, a copy's
    sections stay bound to nothing (a hook on `copy.stages[1]` is refused), a shallow copy's
    containers are plain modules (`copy.stages[1]` is no index), and a deepcopy drops what
    archdsl sets on the model (`feature_info`, `weights_changes`) and its class name. Here
    every copy gets its sections, bound to it, and keeps those."""

    def __init__(self, root, graph: fx.Graph, class_name: str = "GraphModule"):
        super().__init__(root, graph, class_name)
        _sectioned(self)
        _bind(self)

    def __deepcopy__(self, memo):
        res = super().__deepcopy__(memo)
        _carry(self, res, memo)
        _bind(res)
        return res

    def __copy__(self):
        import copy

        res = super().__copy__()
        res.graph = copy.deepcopy(self.graph)  # fx shares it: a hook on the copy would edit this graph
        res = _as_model(res, type(self).__name__)
        _carry(self, res, None)
        return res

    def __reduce__(self):
        rebuild, args = super().__reduce__()[:2]
        return _unpickled, (rebuild, args, type(self).__name__)


class Retracer(fx.Tracer):
    """How fx reads a Model back from its code when it is unpickled: the functions the graph
    calls (the fused `scaled_linear`, `tokens_to_map`) stay calls, as in the graph that was
    pickled, instead of being traced into (`scaled_linear` branches on its input's layout,
    which a trace cannot)."""

    def __init__(self):
        from .lower import tokens_to_map
        from .modules import scaled_linear

        super().__init__(autowrap_functions=(scaled_linear, tokens_to_map))


def _unpickled(rebuild, args, name: str) -> Model:
    """fx's own unpickling (which keeps every attribute), then the sections bound to the result."""
    return _as_model(rebuild(*args), name)


def _as_model(gm: fx.GraphModule, name: str) -> Model:
    """A GraphModule fx made from a Model, made a Model named `name` again: its class (with the
    forward fx keeps on the class), its containers as sections, bound to it."""
    gm.__class__ = type(name, (Model,), {})
    gm.recompile()
    _sectioned(gm)
    _bind(gm)
    return gm


def _carry(src: Model, dst: Model, memo: dict | None) -> None:
    """What fx's copies leave out: the class name, and the attributes set on the model after
    it was built (`feature_info`); deep-copied with `memo`, or shared when it is None."""
    import copy

    type(dst).__name__ = type(src).__name__
    for key, value in src.__dict__.items():
        if not key.startswith("_") and not hasattr(dst, key):
            setattr(dst, key, value if memo is None else copy.deepcopy(value, memo))


def _sectioned(module: nn.Module) -> None:
    """fx makes the containers of the called ops plain `nn.Module`s; they become `Section`s
    (indexable and hookable), holding the same children. (A plain module with tensors of its
    own is no container: fx's shallow copy leaves one where an op's weights are read directly.)"""
    for name, child in list(module._modules.items()):
        if type(child) is nn.Module and not child._parameters and not child._buffers:
            section = Section()
            section._modules = child._modules
            module._modules[name] = section
            _sectioned(section)


def _bind(gm: fx.GraphModule) -> None:
    """Every section bound to `gm`, which unpickles with a Retracer."""
    gm._tracer_cls = Retracer
    for path, module in gm.named_modules():
        if isinstance(module, Section):
            module.bind(gm, path)


def within(name: str, modules: Collection[str]) -> bool:
    """Whether tensor `name` belongs to one of `modules` (module paths) or a module inside one:
    what a features build cut (`model.cut_modules`) holds of a full network's state dict."""
    parts = name.split(".")
    return any(".".join(parts[:i]) in modules for i in range(1, len(parts)))
