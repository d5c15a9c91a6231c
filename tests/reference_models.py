"""Trusted plain-PyTorch ConvNeXt and ResNet-50, written from the paper and the public model
code (official ConvNeXt repo, torchvision ResNet), independent of archdsl.

State-dict names are the ones real checkpoints use, so these models double as a source of
checkpoints in the `official` (ConvNeXt) and `torchvision` (ResNet) layouts. Import-free of
archdsl on purpose: the tests compare archdsl's compiled models against these.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# --------------------------------------------------------------------------- ConvNeXt (official)


class LayerNorm(nn.Module):
    """The official repo's LayerNorm: `channels_last` for (B, H, W, C) inputs, `channels_first`
    for (B, C, H, W) inputs, normalized by hand over dim 1."""

    def __init__(self, normalized_shape: int, eps: float = 1e-6, data_format: str = "channels_last"):
        super().__init__()
        assert data_format in ("channels_last", "channels_first")
        self.weight = nn.Parameter(torch.ones(normalized_shape))
        self.bias = nn.Parameter(torch.zeros(normalized_shape))
        self.eps = eps
        self.data_format = data_format
        self.normalized_shape = (normalized_shape,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.data_format == "channels_last":
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        u = x.mean(1, keepdim=True)  # (B, 1, H, W)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth per sample: zero a residual branch with probability p, rescale the rest."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training)


class Block(nn.Module):
    """dwconv7 -> permute to NHWC -> LN -> Linear 4C -> GELU -> Linear C -> gamma -> permute back,
    then drop path and the residual add."""

    def __init__(self, dim: int, drop_path: float = 0.0, layer_scale_init_value: float = 1e-6):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(dim))
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.dwconv(x)
        x = x.permute(0, 2, 3, 1)  # (B, C, H, W) -> (B, H, W, C)
        x = self.norm(x)
        x = self.pwconv1(x)
        x = self.act(x)
        x = self.pwconv2(x)
        x = self.gamma * x
        x = x.permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)
        return shortcut + self.drop_path(x)


class ConvNeXt(nn.Module):
    """Keys: downsample_layers.{0..3}.{0,1}, stages.{i}.{j}.{dwconv,norm,pwconv1,pwconv2,gamma},
    norm, head."""

    def __init__(self, in_chans: int = 3, num_classes: int = 1000,
                 depths: tuple[int, ...] = (3, 3, 9, 3), dims: tuple[int, ...] = (96, 192, 384, 768),
                 drop_path_rate: float = 0.0, layer_scale_init_value: float = 1e-6):
        super().__init__()
        self.downsample_layers = nn.ModuleList()
        self.downsample_layers.append(nn.Sequential(
            nn.Conv2d(in_chans, dims[0], kernel_size=4, stride=4),
            LayerNorm(dims[0], eps=1e-6, data_format="channels_first"),
        ))
        for i in range(len(dims) - 1):
            self.downsample_layers.append(nn.Sequential(
                LayerNorm(dims[i], eps=1e-6, data_format="channels_first"),
                nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2),
            ))
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        cur = 0
        for dim, depth in zip(dims, depths):
            self.stages.append(nn.Sequential(*[
                Block(dim, drop_path=rates[cur + j], layer_scale_init_value=layer_scale_init_value)
                for j in range(depth)]))
            cur += depth
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        x = self.norm(x.mean([-2, -1]))  # global average pool, then LN: (B, C)
        return self.head(x)


def convnext_tiny(competent: bool = False, **kwargs) -> ConvNeXt:
    """`competent=True`: the stem and downsample LayerNorms run as F.layer_norm on permuted
    data instead of the official hand-written channels-first norm (same function, same state
    dict): how a performance-minded engineer writes it. Feed it channels-last memory."""
    model = ConvNeXt(depths=(3, 3, 9, 3), dims=(96, 192, 384, 768), **kwargs)
    if competent:
        for m in model.modules():
            if isinstance(m, LayerNorm) and m.data_format == "channels_first":
                m.__class__ = PermutedLayerNorm
    return model


class PermutedLayerNorm(LayerNorm):
    """A channels-first LayerNorm as F.layer_norm over a permuted view (free on channels-last memory)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


# --------------------------------------------------------------------------- ResNet-50 (torchvision)


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class Bottleneck(nn.Module):
    """ResNet v1.5: the stride sits in the 3x3 conv."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """Keys: conv1, bn1, layer{1..4}.{j}.{conv1,bn1,conv2,bn2,conv3,bn3,downsample.{0,1}}, fc."""

    def __init__(self, layers: tuple[int, ...] = (3, 4, 6, 3), num_classes: int = 1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * Bottleneck.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * Bottleneck.expansion, stride),
                                       nn.BatchNorm2d(planes * Bottleneck.expansion))
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)  # (B, 2048)
        return self.fc(x)


def resnet50(**kwargs) -> ResNet:
    return ResNet(layers=(3, 4, 6, 3), **kwargs)


# --------------------------------------------------------------------------- random, non-trivial weights


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 0, sample: torch.Tensor | None = None) -> nn.Module:
    """Make every parameter and BN statistic non-trivial, so a mixed-up key or a skipped
    buffer changes the output: LN/BN affine ~U(0.5, 1.5) and N(0, 0.1), biases N(0, 0.02),
    layer scale ~U(0.5, 1.5). BN running statistics are measured on `sample` (a batch in
    train mode, so activations keep a sane scale through 16 blocks) and then perturbed:
    mean + N(0, 0.1), var x U(0.5, 1.5). Leaves the model in eval mode."""
    g = torch.Generator().manual_seed(seed)

    def uniform(shape: torch.Size, lo: float, hi: float) -> torch.Tensor:
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    def normal(shape: torch.Size, std: float) -> torch.Tensor:
        return torch.randn(shape, generator=g) * std

    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm2d, nn.LayerNorm, LayerNorm)):
            module.weight.copy_(uniform(module.weight.shape, 0.5, 1.5))
            module.bias.copy_(normal(module.bias.shape, 0.1))
        if isinstance(module, (nn.Conv2d, nn.Linear)) and module.bias is not None:
            module.bias.copy_(normal(module.bias.shape, 0.02))
        if isinstance(module, Block):
            module.gamma.copy_(uniform(module.gamma.shape, 0.5, 1.5))
    if bns and sample is not None:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the calibration batch
        model.train()
        model(sample)
        for bn in bns:
            bn.momentum = 0.1
    for bn in bns:
        bn.running_mean.add_(normal(bn.running_mean.shape, 0.1))
        bn.running_var.mul_(uniform(bn.running_var.shape, 0.5, 1.5))
        bn.num_batches_tracked.fill_(int(torch.randint(1, 1000, (), generator=g)))
    return model.eval()
