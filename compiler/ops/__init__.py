"""The op registry: every op is defined once, here and in the modules beside this file.

An `OpDef` states the arguments it accepts, its shape rule, its parameter and MAC counts
and its lowering. The analytic counts and the built module come from the same definition,
and `docs/language.md` is generated from it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import CompileError
from ..ir import Attrs, Shape

if TYPE_CHECKING:
    from torch import nn

# Argument kinds an op can accept. The language maps words onto these:
#   width: `4x`, `0.25x`, `64`   stride: `sN`, `stride`   groups: `gG`
#   bias: `bias`, `nobias`       value: a number          eps: `eps=1e-5`
#   groups also as a group width: `gwN` (channels / N groups)
#   heads: `h6`                  headdim: `d32`           shift: `shift`
#   momentum: `momentum=0.01`    padding: `pN`
ARG_KINDS = ("width", "stride", "groups", "bias", "value", "eps", "heads", "headdim", "shift", "momentum",
             "padding")

# Layouts a tensor can be in between ops. A sequence of tokens (C, N) is always (B, N, C),
# channels-last, so it runs in NHWC.
NCHW, NHWC, VEC = "nchw", "nhwc", "vec"


def cat_dim(layout: str) -> int:
    """The channel axis a `concat { }` joins along: 1 on NCHW data, the last on channels-last
    maps and tokens (B, N, C); a vector's 1 is its last."""
    return 1 if layout == NCHW else -1


class OpDef:
    name: str = ""
    summary: str = ""
    example: str = ""
    kernel: bool = False            # the kernel size is part of the word: conv3, maxpool3
    accepts: tuple[str, ...] = ()   # argument kinds, from ARG_KINDS
    width_default: str = "keep"     # no width given: `dim` (stage width), `keep` (input's), `classes`
    needs_value: bool = False       # a number is required (layerscale init, dropout p)
    module_name: str = ""           # name inside a block: stages.0.blocks.1.<module_name>
    family: str = ""                # conv, linear, pool, norm, act, drop, scale: what a diff pairs up
    replaces: tuple[str, ...] = ()  # ops a diff reads it as replacing, where one goes and it comes
    related: tuple[str, ...] = ()   # other spellings people type for this op (`swish` for silu),
                                    # the only words besides its name a hint may suggest it for
    takes: str = "map"              # input rank: `map` (C,H,W), `vec` (C,), `seq` (C,N) or `any`
    tokens: bool = False            # also works on a sequence of tokens (C,N), channels-last
    layouts: tuple[str, ...] = (NCHW,)  # layouts it runs in, first preferred
    shape_rule: str = "same as input"
    params_rule: str = "0"
    macs_rule: str = "0"

    def out_shape(self, a: Attrs, x: Shape) -> Shape:
        return ((a.out or x[0]),) + tuple(x[1:])

    def params(self, a: Attrs, x: Shape) -> int:
        return 0

    def macs(self, a: Attrs, x: Shape, y: Shape) -> int:
        return 0

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        raise NotImplementedError(self.name)

    def layouts_for(self, a: Attrs) -> tuple[str, ...]:
        return self.layouts

    def detail(self, a: Attrs, x: Shape) -> str:
        """What the op resolved to where it runs, when the word alone does not say
        (`--emit layers`): window attention's window, shift and heads."""
        return ""

    def check_input(self, x: Shape) -> None:
        if len(x) == 2 or self.takes == "seq":
            return check_tokens(self, x)
        if self.takes == "map" and len(x) != 3:
            raise CompileError("E405", f"`{self.name}` needs a feature map (C,H,W), got a vector of {x[0]}",
                               hint="put it before `gap`/`flatten`, or use an op that works on vectors")
        if self.takes == "vec" and len(x) != 1:
            hint = ("inside a `gate`, `gap` keeps a 1x1 map so the gate's convs are 1x1 convs: use `conv1` "
                    "where you would use `linear`" if x[1:] == (1, 1) else "reduce the map first with `gap` or `flatten`")
            raise CompileError("E405", f"`{self.name}` needs a vector, got a feature map {fmt_shape(x)}", hint=hint)


def check_tokens(op: OpDef, x: Shape) -> None:
    """Rank checks where a sequence of tokens is involved (given, or the only rank taken)."""
    if len(x) == 2 and not (op.tokens or op.takes == "seq"):
        ok = ", ".join(f"`{n}`" for n, o in REGISTRY.items() if o.tokens or o.takes == "seq")
        want = {"map": "needs a feature map (C,H,W), got", "vec": "needs a vector, got"}.get(
            op.takes, "does not work on")
        raise CompileError("E405", f"`{op.name}` {want} a sequence of {x[1]} tokens of {x[0]} channels",
                           hint=f"ops that work on tokens: {ok}; `clspool` reads the class token into a vector")
    if op.takes == "seq" and len(x) != 2:
        got = f"a feature map {fmt_shape(x)}" if len(x) == 3 else f"a vector of {x[0]}"
        raise CompileError("E405", f"`{op.name}` needs a sequence of tokens (C,N), got {got}",
                           hint="turn the map into tokens first with `tokens` (after the patchify conv)"
                           if len(x) == 3 else "put it before the op that reduced the tokens to a vector")


REGISTRY: dict[str, OpDef] = {}


def register(cls: type[OpDef]) -> type[OpDef]:
    assert cls.name not in REGISTRY, f"op {cls.name} defined twice"
    REGISTRY[cls.name] = cls()
    return cls


def get(name: str) -> OpDef:
    return REGISTRY[name]


def fmt_shape(s: Shape) -> str:
    return "x".join(str(d) for d in s)


def has_bias(a: Attrs) -> bool:
    """A conv's or an attention's bias: on unless the spec (or a pass) turned it off."""
    return True if a.bias is None else a.bias


def nearest_divisor(near: int, *widths: int) -> int:
    """The common divisor of `widths` closest to `near`: the value an error's hint offers."""
    divisors = [d for d in range(1, max(widths) + 1) if all(w % d == 0 for w in widths)]
    return min(divisors, key=lambda d: abs(d - near))


def padding(kernel: int, stride: int, given: int | None = None) -> int:
    """`pN` where the spec gives it; else `K // 2`, or none when the kernel equals the stride (patchify)."""
    if given is not None:
        return given
    return 0 if kernel == stride else kernel // 2


def spatial(x: Shape, kernel: int, stride: int, given: int | None = None) -> tuple[int, int]:
    p = padding(kernel, stride, given)
    if given is not None and p > kernel // 2:
        raise CompileError("E402", f"padding {p} is more than half the {kernel}x{kernel} window",
                           hint=f"padding is at most {kernel // 2} for kernel {kernel} (PyTorch's limit)")
    h, w = ((d + 2 * p - kernel) // stride + 1 for d in x[1:])
    if h <= 0 or w <= 0:
        raise CompileError("E402", f"a {kernel}x{kernel} window with stride {stride} shrinks the "
                           f"{x[1]}x{x[2]} map to nothing",
                           hint="use a larger input, or fewer/smaller strides before this op")
    return h, w


from . import activation, attention, conv, linear, norm, pool, regularize, tokenmix  # noqa: E402,F401  (registers ops)
