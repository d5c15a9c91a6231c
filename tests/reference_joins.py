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
