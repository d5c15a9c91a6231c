"""Scoring weights on images: `archdsl eval SPEC --weights RUN|FILE --data DIR|SHARDS`.

    from archdsl.evaluate import evaluate
    scores = evaluate("convnext_t", "convnext_tiny_1k_224.pth", layout="official", data="imagenet")
    scores.top1, scores.top5, scores.per_class, scores.confusion

Modules: `source` (where the weights come from: an archdsl run directory, verified, or a
.safetensors/.pth file in an official, timm or torchvision layout, and what they say about
their network, classes and normalization), `scores` (top-1, top-5, per-class accuracy and the
confusion matrix, accumulated batch by batch), `figure` (the confusion-matrix PNG), `run` (the
loop: the eval model, the split streamed through the recipe's eval transform, normalization).

May import `training` (its checkpoint reader, atomic writer, normalization rule and digits set
only), `data`, `interop` (weights layouts), `api`, `report`, `lang` and `compiler`; never
`roadmap` or `cli`.
"""
from .run import evaluate
from .scores import Scores
from .source import EvalError

__all__ = ["EvalError", "Scores", "evaluate"]
