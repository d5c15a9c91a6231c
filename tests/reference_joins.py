"""Trusted plain-PyTorch DenseNet-121, PoolFormer-S12 and MLP-Mixer-S/16, written from the public
model code (torchvision `densenet.py`; timm `metaformer.py` for PoolFormer v1 and
`mlp_mixer.py`), independent of archdsl: the networks whose joins (concatenation,
subtraction) and token mixing archdsl's specs must reproduce.

State-dict names are the ones real checkpoints use:
    DenseNet-121    torchvision  features.{conv0, norm0, denseblock{i}.denselayer{j}.{norm1, conv1,
                                 norm2, conv2}, transition{i}.{norm, conv}, norm5}, classifier
    PoolFormer-S12  timm         stem.conv, stages.{i}.downsample.conv, stages.{i}.blocks.{j}.{norm1,
                                 layer_scale1.scale, norm2, mlp.fc1, mlp.fc2, layer_scale2.scale},
                                 head.norm, head.fc
    Mixer-S/16      timm         stem.proj, blocks.{j}.{norm1, mlp_tokens.fc1/fc2, norm2,
                                 mlp_channels.fc1/fc2}, norm, head
Import-free of archdsl on purpose.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

# --------------------------------------------------------------------------- DenseNet (torchvision)


class DenseLayer(nn.Sequential):
    def __init__(self, cin: int, growth: int, bn_size: int):
        super().__init__()
        self.add_module("norm1", nn.BatchNorm2d(cin))
        self.add_module("relu1", nn.ReLU())
        self.add_module("conv1", nn.Conv2d(cin, bn_size * growth, 1, 1, bias=False))
        self.add_module("norm2", nn.BatchNorm2d(bn_size * growth))
        self.add_module("relu2", nn.ReLU())
        self.add_module("conv2", nn.Conv2d(bn_size * growth, growth, 3, 1, 1, bias=False))


class DenseBlock(nn.Module):
    def __init__(self, layers: int, cin: int, growth: int, bn_size: int):
        super().__init__()
        for i in range(layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(cin + i * growth, growth, bn_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.children():
            x = torch.cat([x, layer(x)], 1)
        return x


class DenseNet(nn.Module):
    def __init__(self, growth: int = 32, blocks=(6, 12, 24, 16), init_features: int = 64, bn_size: int = 4,
                 num_classes: int = 1000):
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv0", nn.Conv2d(3, init_features, 7, 2, 3, bias=False)),
            ("norm0", nn.BatchNorm2d(init_features)),
            ("relu0", nn.ReLU()),
            ("pool0", nn.MaxPool2d(3, 2, 1)),
        ]))
        c = init_features
        for i, n in enumerate(blocks):
            self.features.add_module(f"denseblock{i + 1}", DenseBlock(n, c, growth, bn_size))
            c += n * growth
            if i != len(blocks) - 1:
                self.features.add_module(f"transition{i + 1}", nn.Sequential(OrderedDict([
                    ("norm", nn.BatchNorm2d(c)), ("relu", nn.ReLU()),
                    ("conv", nn.Conv2d(c, c // 2, 1, 1, bias=False)), ("pool", nn.AvgPool2d(2, 2))])))
                c //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(c))
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.features(x))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# --------------------------------------------------------------------------- PoolFormer v1 (timm metaformer.py)


class Pooling(nn.Module):
    def __init__(self, pool_size: int = 3):
        super().__init__()
        self.pool = nn.AvgPool2d(pool_size, stride=1, padding=pool_size // 2, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x) - x


class Scale(nn.Module):
    def __init__(self, dim: int, init_value: float):
        super().__init__()
        self.scale = nn.Parameter(init_value * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.view(-1, 1, 1)


class ConvMlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Conv2d(dim, hidden, 1), nn.GELU(), nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class PoolFormerBlock(nn.Module):
    def __init__(self, dim: int, layer_scale: float = 1e-5):
        super().__init__()
        self.norm1 = nn.GroupNorm(1, dim)  # timm's GroupNorm1: eps 1e-5
        self.token_mixer = Pooling()
        self.layer_scale1 = Scale(dim, layer_scale)
        self.norm2 = nn.GroupNorm(1, dim)
        self.mlp = ConvMlp(dim, 4 * dim)
        self.layer_scale2 = Scale(dim, layer_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.layer_scale1(self.token_mixer(self.norm1(x)))
        return x + self.layer_scale2(self.mlp(self.norm2(x)))


class PoolFormerStage(nn.Module):
    def __init__(self, cin: int, cout: int, depth: int):
        super().__init__()
        self.downsample = nn.Identity() if cin == cout else nn.Sequential(OrderedDict(
            conv=nn.Conv2d(cin, cout, 3, 2, 1)))
        self.blocks = nn.Sequential(*[PoolFormerBlock(cout) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class LayerNorm2d(nn.LayerNorm):
    """timm's LayerNorm2d (eps 1e-6): LayerNorm over the channels of an NCHW map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                            self.eps).permute(0, 3, 1, 2)


class PoolFormer(nn.Module):
    def __init__(self, depths=(2, 2, 6, 2), dims=(64, 128, 320, 512), num_classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, dims[0], 7, 4, 2)))
        prev, stages = dims[0], []
        for depth, dim in zip(depths, dims):
            stages.append(PoolFormerStage(prev, dim, depth))
            prev = dim
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(OrderedDict(norm=LayerNorm2d(dims[-1], eps=1e-6), fc=nn.Linear(dims[-1], num_classes)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        x = self.head.norm(x.mean((2, 3), keepdim=True)).flatten(1)  # timm: pool, norm, flatten, fc
        return self.head.fc(x)


# --------------------------------------------------------------------------- MLP-Mixer (timm mlp_mixer.py)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class MixerBlock(nn.Module):
    def __init__(self, dim: int, seq_len: int, mlp_ratio=(0.5, 4.0)):
        super().__init__()
        tokens_dim, channels_dim = int(mlp_ratio[0] * dim), int(mlp_ratio[1] * dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp_tokens = Mlp(seq_len, tokens_dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp_channels = Mlp(dim, channels_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, C)
        x = x + self.mlp_tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.mlp_channels(self.norm2(x))


class Mixer(nn.Module):
    def __init__(self, img_size: int = 224, patch: int = 16, dim: int = 512, blocks: int = 8,
                 num_classes: int = 1000):
        super().__init__()
        self.stem = nn.Module()
        self.stem.proj = nn.Conv2d(3, dim, patch, patch)
        seq_len = (img_size // patch) ** 2
        self.blocks = nn.Sequential(*[MixerBlock(dim, seq_len) for _ in range(blocks)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem.proj(x).flatten(2).transpose(1, 2)  # timm's PatchEmbed: (B, N, C)
        x = self.norm(self.blocks(x))
        return self.head(x.mean(dim=1))  # global_pool "avg": the mean over the tokens


# --------------------------------------------------------------------------- CoAtNet-0 (timm maxxvit.py)


class LayerNorm2dCl(nn.LayerNorm):
    """timm's LayerNorm2d: LayerNorm over the channels of an NCHW map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                            self.eps).permute(0, 3, 1, 2)


class BatchNormAct2d(nn.BatchNorm2d):
    """timm's BatchNormAct2d: BatchNorm, then GELU (or nothing)."""

    def __init__(self, channels: int, act: bool = True):
        super().__init__(channels)
        self.act = nn.GELU() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


class Downsample2d(nn.Module):
    """avg2: a 2x2 average pool, then a 1x1 conv where the width changes."""

    def __init__(self, dim: int, dim_out: int):
        super().__init__()
        self.pool = nn.AvgPool2d(2)
        self.expand = nn.Conv2d(dim, dim_out, 1) if dim != dim_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expand(self.pool(x))


class SEModule(nn.Module):
    def __init__(self, channels: int, rd: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Conv2d(channels, rd, 1), nn.SiLU(), nn.Conv2d(rd, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))))


class MbConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        mid = cout * 4
        self.shortcut = Downsample2d(cin, cout) if stride == 2 else nn.Identity()
        self.pre_norm = BatchNormAct2d(cin, act=False)
        self.conv1_1x1 = nn.Conv2d(cin, mid, 1, bias=False)
        self.norm1 = BatchNormAct2d(mid)
        self.conv2_kxk = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.norm2 = BatchNormAct2d(mid)
        self.se = SEModule(mid, int(0.25 * cout))
        self.conv3_1x1 = nn.Conv2d(mid, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(x)
        x = self.norm1(self.conv1_1x1(self.pre_norm(x)))
        x = self.se(self.norm2(self.conv2_kxk(x)))
        return self.conv3_1x1(x) + shortcut


def relative_position_index(h: int, w: int) -> torch.Tensor:
    """timm's gen_relative_position_index: each (dy, dx) pair's rank among all of them."""
    coords = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    return torch.unique(rel.reshape(-1, 2).cpu(), return_inverse=True, dim=0)[1]


class RelPosBias(nn.Module):
    def __init__(self, window: tuple[int, int], heads: int):
        super().__init__()
        self.shape = (window[0] * window[1],) * 2 + (heads,)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window[0] - 1) * (2 * window[1] - 1), heads))
        with torch.device("cpu"):  # torch has no meta kernel for unique
            index = relative_position_index(*window)
        self.register_buffer("relative_position_index", index, persistent=False)

    def get_bias(self) -> torch.Tensor:
        bias = self.relative_position_bias_table[self.relative_position_index].view(self.shape)
        return bias.permute(2, 0, 1).unsqueeze(0)


class Attention2d(nn.Module):
    """Head-first qkv (each head's q, k, v channels together), expand_first: the attention has dim_out."""

    def __init__(self, dim: int, dim_out: int, window: tuple[int, int], dim_head: int = 32):
        super().__init__()
        self.heads, self.dim_head = dim_out // dim_head, dim_head
        self.qkv = nn.Conv2d(dim, dim_out * 3, 1)
        self.rel_pos = RelPosBias(window, self.heads)
        self.proj = nn.Conv2d(dim_out, dim_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # the non-fused path of timm, written out
        b, _, h, w = x.shape
        q, k, v = self.qkv(x).view(b, self.heads, self.dim_head * 3, -1).chunk(3, dim=2)
        attn = (q * self.dim_head ** -0.5).transpose(-2, -1) @ k
        attn = (attn + self.rel_pos.get_bias()).softmax(dim=-1)
        return self.proj((v @ attn.transpose(-2, -1)).view(b, -1, h, w))


class TransformerBlock2d(nn.Module):
    def __init__(self, dim: int, dim_out: int, stride: int, window: tuple[int, int]):
        super().__init__()
        if stride == 2:
            self.shortcut = Downsample2d(dim, dim_out)
            self.norm1 = nn.Sequential(OrderedDict(norm=LayerNorm2dCl(dim, eps=1e-6), down=Downsample2d(dim, dim)))
        else:
            self.shortcut, self.norm1 = nn.Identity(), LayerNorm2dCl(dim, eps=1e-6)
        self.attn = Attention2d(dim, dim_out, window)
        self.norm2 = LayerNorm2dCl(dim_out, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1, self.mlp.act, self.mlp.fc2 = (nn.Conv2d(dim_out, 4 * dim_out, 1), nn.GELU(),
                                                    nn.Conv2d(4 * dim_out, dim_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.shortcut(x) + self.attn(self.norm1(x))
        return x + self.mlp.fc2(self.mlp.act(self.mlp.fc1(self.norm2(x))))


class CoAtNet(nn.Module):
    def __init__(self, img_size: int = 224, dims=(96, 192, 384, 768), depths=(2, 3, 5, 2), stem: int = 64,
                 num_classes: int = 1000):
        super().__init__()
        self.stem = nn.Module()
        self.stem.conv1 = nn.Conv2d(3, stem, 3, 2, 1, bias=False)
        self.stem.norm1 = BatchNormAct2d(stem)
        self.stem.conv2 = nn.Conv2d(stem, stem, 3, 1, 1, bias=False)
        size, cin, stages = img_size // 2, stem, []
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            size = (size - 1) // 2 + 1
            blocks = [MbConvBlock(cin if j == 0 else dim, dim, 2 if j == 0 else 1) if i < 2 else
                      TransformerBlock2d(cin if j == 0 else dim, dim, 2 if j == 0 else 1, (size, size))
                      for j in range(depth)]
            stages.append(nn.Module())
            stages[-1].blocks = nn.Sequential(*blocks)
            cin = dim
        self.stages = nn.ModuleList(stages)
        self.head = nn.Module()
        self.head.norm = LayerNorm2dCl(dims[-1], eps=1e-6)
        self.head.pre_logits = nn.Module()
        self.head.pre_logits.fc = nn.Linear(dims[-1], dims[-1])
        self.head.fc = nn.Linear(dims[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem.conv2(self.stem.norm1(self.stem.conv1(x)))
        for stage in self.stages:
            x = stage.blocks(x)
        x = self.head.norm(x.mean((2, 3), keepdim=True)).flatten(1)  # NormMlpClassifierHead
        return self.head.fc(torch.tanh(self.head.pre_logits.fc(x)))
