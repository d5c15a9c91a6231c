"""Trained tensors made to fit a model at another input size, channel count or class count,
as timm does when it loads a checkpoint into a model built otherwise:

- an absolute position embedding (1, P + H*W, C) is resampled bicubically from its grid to
  the model's (timm's `resample_abs_pos_embed`: the P tokens in front, the class token, kept
  as they are). The model's grid (H, W) is the one its spec flattens (the `tokens` op's map,
  kept on the module as `grid`), so a non-square input (14x20 patches) gets its own grid; the
  checkpoint's grid is square unless the source model says otherwise (`transfer`);
- a relative-position-bias table ((2W-1)^2, heads) is resized to another window W' (timm's
  `resize_rel_pos_bias_table`: the source offsets spread by a geometric progression over
  the target's range, as BEiT's fine-tuning code does, and interpolated bilinearly onto the
  target's integer offsets; the model rebuilds its index buffer for W');
- the conv that reads the image takes another number of input channels (timm's
  `adapt_input_conv`: summed over the RGB weights for 1 channel; repeated and scaled by
  3/C for C channels);
- the layer that gives the logits, for another number of classes, starts afresh.

`fit(role, name, tensor, shape)` says what to do with one tensor; `load_weights` and
`transfer` call it for every tensor whose shape differs and report each change
(`resampled(name)`: the tensor was interpolated, not cut or adapted)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..lang.errors import WeightsError

if TYPE_CHECKING:
    import torch
    from torch import nn

FRESH = "fresh"  # the model keeps its own initialisation for this tensor


@dataclass
class Change:
    path: str           # the model's tensor
    source: str         # the checkpoint's tensor
    how: str            # what was done, in words


# ---------------------------------------------------------------- the formulas
def resample_pos_embed(pe: torch.Tensor, new_grid: tuple[int, int], prefix: int,
                       old_grid: tuple[int, int] | None = None) -> torch.Tensor:
    """(1, prefix + h*w, C) -> (1, prefix + H*W, C), bicubic (antialiased, as timm); the old
    grid (h, w) is square unless given."""
    import torch
    import torch.nn.functional as F

    if old_grid is None:
        old_grid = (math.isqrt(pe.shape[1] - prefix),) * 2
    front, grid = pe[:, :prefix], pe[:, prefix:]
    c = grid.shape[-1]
    grid = grid.float().reshape(1, *old_grid, c).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=new_grid, mode="bicubic", antialias=True)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], c).to(pe.dtype)
    return torch.cat((front, grid), dim=1)


def _offsets(src: int, dst: int) -> list[float]:
    """Where the src (odd) source offsets sit on the target's range: 0, then a geometric
    progression 1, 1+q, 1+q+q^2 ... each way, q found by bisection so that it ends near dst // 2."""
    left, right = 1.01, 1.5
    while right - left > 1e-6:
        q = (left + right) / 2.0
        if (1.0 - q ** (src // 2)) / (1.0 - q) > dst // 2:
            right = q
        else:
            left = q
    dis, cur = [], 1.0
    for i in range(src // 2):
        dis.append(cur)
        cur += q ** (i + 1)
    return [-d for d in reversed(dis)] + [0.0] + dis


def _bilinear(points: torch.Tensor, values: torch.Tensor, at: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per axis: (left index, right index) and (weight of left, weight of right) of `at` among the
    sorted `points`; outside the range a point takes the end value."""
    import torch

    right = torch.bucketize(at, points).clamp(max=len(points) - 1)
    left = (right - 1).clamp(min=0)
    d_left = (at - points[left]).clamp(min=0)
    d_right = (points[right] - at).clamp(min=0)
    both = (d_left == 0) & (d_right == 0)
    d_left, d_right = torch.where(both, 1.0, d_left), torch.where(both, 1.0, d_right)
    total = d_left + d_right
    return torch.stack((left, right)), torch.stack((d_right / total, d_left / total))


def resize_bias_table(table: torch.Tensor, window: int) -> torch.Tensor:
    """((2w-1)^2, heads) -> ((2W-1)^2, heads) for window W."""
    import torch

    src = math.isqrt(table.shape[0])
    dst = 2 * window - 1
    if src == dst:
        return table
    points = torch.tensor(_offsets(src, dst), dtype=torch.float64)
    target = torch.arange(-(dst // 2), dst // 2 + 1, dtype=torch.float64)
    idx, w = _bilinear(points, None, target)  # the same along rows and columns
    z = table.double().T.reshape(-1, src, src)  # (heads, rows, cols)
    out = torch.zeros(z.shape[0], dst, dst, dtype=torch.float64)
    for a in (0, 1):
        for b in (0, 1):
            out += z[:, idx[a][:, None], idx[b][None, :]] * (w[a][:, None] * w[b][None, :])
    return out.reshape(z.shape[0], dst * dst).T.to(table.dtype).contiguous()


def adapt_input_conv(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """(O, 3, k, k) -> (O, channels, k, k): summed for 1; repeated and scaled by 3/channels else."""
    if channels == 1:
        return weight.float().sum(dim=1, keepdim=True).to(weight.dtype)
    repeat = math.ceil(channels / weight.shape[1])
    out = weight.float().repeat(1, repeat, 1, 1)[:, :channels] * (weight.shape[1] / channels)
    return out.to(weight.dtype)


# ---------------------------------------------------------------- which tensor gets which
@dataclass(frozen=True)
class Roles:
    """What the model's tensors are: the conv that reads the image, the layer giving the
    logits, and how many tokens sit in front of the position embedding's grid."""

    input_conv: str | None = None
    head: str | None = None
    prefix: int = 0
    grids: tuple[tuple[str, tuple[int, int]], ...] = ()  # (pos_embed tensor, its (H, W) grid)

    def grid(self, name: str) -> tuple[int, int] | None:
        return dict(self.grids).get(name)


RESAMPLED = ("pos_embed", "relative_position_bias_table")


def resampled(name: str) -> bool:
    """Whether `fit` interpolates this tensor (a position embedding, a bias table) rather than
    cutting or adapting it."""
    return name.rpartition(".")[2] in RESAMPLED


def regridded(roles: Roles, source_roles: Roles, name: str, source: str) -> bool:
    """Whether a position embedding of the same length lies on another grid (2x3 -> 3x2)."""
    new, old = roles.grid(name), source_roles.grid(source)
    return new is not None and old is not None and new != old


def roles_of(model: nn.Module) -> Roles:
    from torch import fx, nn

    grids = tuple((f"{path}.pos_embed" if path else "pos_embed", tuple(m.grid))
                  for path, m in model.named_modules() if getattr(m, "grid", None) and hasattr(m, "pos_embed"))

    graph = getattr(model, "graph", None)
    if not isinstance(graph, fx.Graph):
        return Roles(grids=grids)
    calls = [n for n in graph.nodes if n.op == "call_module"]
    first = calls[0].target if calls and isinstance(model.get_submodule(calls[0].target), nn.Conv2d) else None
    out = next(n for n in graph.nodes if n.op == "output").args[0]
    head = None
    if isinstance(out, fx.Node):  # one tensor of logits (not a features build's maps)
        with_params = [n.target for n in calls if any(True for _ in model.get_submodule(n.target).parameters())]
        last = with_params[-1] if with_params else None
        if last is not None and isinstance(model.get_submodule(last), (nn.Linear, nn.Conv2d)):
            head = last
    prefix = sum(1 for name, _ in model.named_parameters() if name.endswith(".cls_token"))
    return Roles(first, head, prefix, grids)


def fit(roles: Roles, name: str, source: str, value: torch.Tensor,
        shape: tuple[int, ...], source_roles: Roles | None = None) -> tuple[torch.Tensor | str, str] | None:
    """`value` (the checkpoint's `source`) made to fit the model's `name` of `shape`, and how;
    FRESH where the model keeps its own; None where no rule here applies. A rule that applies
    but cannot do it raises WeightsError saying why. `source_roles`, where the model the
    checkpoint was made for is known (`transfer`), give its position embedding's grid."""
    owner, _, leaf = name.rpartition(".")
    have, want = tuple(value.shape), tuple(shape)
    if leaf == "pos_embed" and len(have) == len(want) == 3 and have[2] == want[2]:
        old_grid = source_roles.grid(source) if source_roles is not None else None
        return _pos_embed(roles, name, source, value, want, old_grid)
    if leaf == "relative_position_bias_table" and len(have) == len(want) == 2:
        return _bias_table(name, source, value, want)
    if owner == roles.input_conv and leaf == "weight" and len(have) == 4 and have[0] == want[0] \
            and have[2:] == want[2:] and have[1] != want[1]:
        if have[1] != 3 and want[1] != 1:
            raise WeightsError(f"`{source}` was trained on {have[1]} input channels and the model takes "
                               f"{want[1]}: only RGB weights (3 channels) adapt to another count, and any "
                               "count to 1 (summed)", hint="build the model with the checkpoint's input "
                               f"channels (`--set input={have[1]}x...`)", code="E802")
        how = "summed over RGB" if want[1] == 1 else f"repeated and scaled by {have[1]}/{want[1]}"
        return adapt_input_conv(value, want[1]), f"input conv: {have[1]} -> {want[1]} input channels ({how})"
    if owner == roles.head and have[1:] == want[1:] and have[0] != want[0]:
        return FRESH, f"a new head: {have[0]} -> {want[0]} classes"
    return None


def _pos_embed(roles: Roles, name: str, source: str, value, want, old_grid=None) -> tuple:
    """The checkpoint's grid: `old_grid` where known, else square; the model's: its own (the
    map its `tokens` op flattens), else square."""
    p = roles.prefix
    old, new = value.shape[1] - p, want[1] - p
    g_old = old_grid if old_grid is not None and old_grid[0] * old_grid[1] == old else _square(old)
    g_new = roles.grid(name)
    g_new = g_new if g_new is not None and g_new[0] * g_new[1] == new else _square(new)
    if g_old is None or g_new is None:
        which = "the checkpoint's" if g_old is None else "the model's"
        raise WeightsError(f"`{source}` {list(value.shape)} cannot be resampled onto `{name}` {list(want)}: "
                           f"after {p} class token(s), {which} {old if g_old is None else new} positions form "
                           "no square grid, and no other grid is known for them",
                           hint="a checkpoint's position embedding is read as a square grid: load it into a "
                                "model of its own input (or carry it with archdsl.transfer from the spec it "
                                "was made with, which knows its grid)", code="E802")
    kept = f", {p} class token kept" if p == 1 else f", {p} tokens in front kept" if p else ""
    return (resample_pos_embed(value, g_new, p, g_old),
            f"position embedding resampled {g_old[0]}x{g_old[1]} -> {g_new[0]}x{g_new[1]} (bicubic{kept})")


def _square(n: int) -> tuple[int, int] | None:
    side = math.isqrt(n) if n > 0 else 0
    return (side, side) if side and side * side == n else None


def _bias_table(name: str, source: str, value, want) -> tuple:
    s_old, s_new = math.isqrt(value.shape[0]), math.isqrt(want[0])
    if value.shape[1] != want[1] or s_old ** 2 != value.shape[0] or s_new ** 2 != want[0] \
            or s_old % 2 == 0 or s_new % 2 == 0:
        raise WeightsError(f"`{source}` {list(value.shape)} cannot be resized onto `{name}` {list(want)}",
                           hint="a relative-position-bias table is ((2W-1)^2, heads): the heads must match "
                                "and both windows be square", code="E802")
    w_old, w_new = (s_old + 1) // 2, (s_new + 1) // 2
    return (resize_bias_table(value, w_new),
            f"relative-position-bias table resized for window {w_old} -> {w_new} "
            f"({s_old}x{s_old} -> {s_new}x{s_new} offsets; index rebuilt)")
