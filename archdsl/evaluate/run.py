"""The evaluation loop: weights -> eval model; a split -> eval transform -> batches -> scores.

    net     the spec with --set values; a run's recorded input and classes fill in what --set
            does not give, and a run trained on another network is refused (E782)
    model   api.build(net, mode="eval", state_dict=...) after interop.weights renamed and
            reshaped the file's layout onto archdsl's names (a key that does not fit: E782)
    images  the split's files (data.listing) streamed through the recipe's eval transform
            (data.transforms.eval_transform: resize the shorter side to int(size / crop_pct),
            centre-crop; at 384 and above resize without a crop) in DataLoader workers; an image
            that cannot be decoded is skipped and counted, never the end of the evaluation
    inputs  x / 255, then (x - mean) / std with what the weights expect: the run's recorded
            normalization, or the ImageNet constants for official, timm and torchvision weights
    scores  evaluate.scores.Tally, in float32 without autocast
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..lang.errors import WeightsError
from .scores import Scores, Tally
from .source import LAYOUTS, EvalError, Weights, read_weights

SHOWN_KEYS = 8  # lines of a WeightsError's key list kept in eval's message


def evaluate(spec: Any, weights: str | os.PathLike, *, data: str | os.PathLike, layout: str | None = None,
             split: str = "val", batch: int = 64, workers: int | None = None,
             out: str | os.PathLike | None = None, which: str = "best", device: str | None = None,
             mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
             crop_pct: float | None = None, on_batch: Callable[[int, int], None] | None = None,
             **overrides: Any) -> Scores:
    """Score `weights` (a run directory or a file in `layout`) with the network `spec` on the
    `split` of `data` (an ImageFolder directory, WebDataset shards or "digits"). `which`: a
    run's "best", "last" or "ema" weights. `out`: a directory for
    confusion.png and scores.json. `overrides`: spec values as in `archdsl.build`
    (classes=10, input=(3, 224, 224)). `on_batch(done, total)` is called after each batch."""
    from ..api import as_device

    _check(batch=batch, workers=workers, crop_pct=crop_pct, which=which, layout=layout)
    for name, value in (("weights", weights), ("data", data)):
        if not isinstance(value, (str, os.PathLike)):
            raise EvalError(f"`{name}` takes a path (str or Path), not {type(value).__name__}", code="E780",
                            hint='for example evaluate("convnext_atto", "runs/atto", data="images")')
    w = read_weights(weights, layout, which)
    net = _network(spec, w, overrides)
    dev = as_device(device) or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    m, s = _normalization(w, net, mean, std)
    recipe = _recipe(w, net)
    pct = crop_pct or w.crop_pct or recipe.crop_pct
    resample = w.interpolation or recipe.interpolation
    dataset, class_names, where, listed_bad = _split(data, split, net, w, pct, resample)  # before building
    model = _model(net, w, dev)
    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    tally, bad, seconds = _score(model, dataset, dev, m, s, batch, workers, net.classes, on_batch)
    bad = listed_bad + bad
    if tally.images == 0:
        raise EvalError(f"no image of {where} could be scored" +
                        (f": all {len(bad)} are unreadable (e.g. {bad[0][0]}: {bad[0][1]})" if bad else ""),
                        hint="check the files with an image viewer, or point --data at another folder",
                        code="E784")
    scores = Scores.of(
        tally, network=net.name, weights=str(w.where), layout=_layout_name(w.layout), data=str(data),
        split=split, class_names=class_names, bad_images=len(bad), bad=bad, seconds=seconds,
        images_per_s=tally.images / seconds if seconds > 0 else 0.0, input=list(net.input),
        crop_pct=pct, interpolation=resample, mean=list(m), std=list(s), notes=list(w.notes))
    if out is not None:
        _write(Path(out), scores)
    return scores


def _check(**values) -> None:
    if not (isinstance(values["batch"], int) and values["batch"] >= 1):
        raise EvalError(f"batch must be a positive int, got {values['batch']!r}", code="E780")
    if values["workers"] is not None and not (isinstance(values["workers"], int) and values["workers"] >= 0):
        raise EvalError(f"workers must be an int >= 0, got {values['workers']!r}", code="E780")
    if values["crop_pct"] is not None and not 0 < values["crop_pct"] <= 1:
        raise EvalError(f"crop_pct must be in (0, 1], got {values['crop_pct']!r}", code="E780",
                        hint="0.875 is the ConvNeXt/DeiT value at 224 (resize to 256, crop 224)")
    if values["which"] not in ("best", "last", "ema"):
        raise EvalError(f"which checkpoint weights: best, last or ema, not {values['which']!r}", code="E780")
    if values["layout"] is not None and values["layout"] not in LAYOUTS:
        raise EvalError(f"unknown weights layout `{values['layout']}`", code="E781",
                        hint="layouts: " + ", ".join(LAYOUTS))


def _layout_name(layout: str) -> str:
    return {v: k for k, v in LAYOUTS.items()}[layout]


# ---------------------------------------------------------------- the network and its weights

def _network(spec: Any, w: Weights, overrides: dict):
    """The spec with --set values, and a run's recorded input/classes where --set is silent."""
    from ..api import as_network
    from ..lang.network import canonical, first_difference

    given = {k: v for k, v in w.recorded.items() if k not in overrides}
    net = as_network(spec, **overrides, **given)
    if w.structure is not None:
        changed = first_difference(w.structure, canonical(net))
        if changed:
            trained = f" ({w.network})" if w.network and w.network != net.name else ""
            raise EvalError(f"{w.run} was trained with another network{trained} than this {net.name}: "
                            f"{changed} (the run's -> this one's)",
                            hint="pass the spec (and --set values) the run was trained with"
                                 + (f", e.g. `archdsl eval {w.network} ...`" if w.network else ""),
                            code="E782")
    return net


def _model(net, w: Weights, dev: torch.device):
    """The eval build of `net` with the weights renamed onto archdsl's names."""
    from ..api import build
    from ..interop.weights import convert

    target = {k: v.shape for k, v in build(net, device="meta").state_dict().items()}
    try:
        native = convert(w.state_dict, w.layout, target)
    except WeightsError as e:
        hint = e.hint and re.sub(r'layout="(\w+)"', lambda m: f"--layout {_layout_name(m[1])}", e.hint)
        head = [k for k in getattr(e, "misshaped", []) if k.startswith(("head", "fc", "classifier"))]
        if not hint and head and len(head) == len(getattr(e, "misshaped", [])) and not e.missing:
            hint = "only the classifier differs: set the number of classes the weights have (--set classes=N)"
        first, *lines = e.message.splitlines()
        if len(lines) > SHOWN_KEYS:
            lines = lines[:SHOWN_KEYS] + [f"  ... and {len(lines) - SHOWN_KEYS} more"]
        raise EvalError("\n".join([f"{w.where} does not hold weights of {net.name} in layout "
                                   f"`{_layout_name(w.layout)}`: {first}", *lines]),
                        hint=hint or "check the spec, the --set values and --layout", code="E782") from None
    return build(net, mode="eval", state_dict=native, device=dev)


def _normalization(w: Weights, net, mean, std) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """--mean/--std; else what the run recorded; else the ImageNet constants for official, timm
    and torchvision weights; else the recipe's rule (the run's recipe, or the spec's for a bare
    archdsl file: training.data.normalization). Statistics measured on data a run did not
    record cannot be guessed (E785)."""
    from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from ..training.data import normalization

    channels = net.input[0]
    if (mean is None) != (std is None):
        raise EvalError("give both --mean and --std, or neither", code="E785")
    if mean is not None:
        m, s = tuple(map(float, mean)), tuple(map(float, std))
        if len(m) == len(s) == 1:  # one value for every channel, as the recipe's `normalize mean`
            m, s = m * channels, s * channels
    elif w.mean is not None:
        m, s = w.mean, w.std
    elif w.layout != "native" and channels == 3:
        m, s = tuple(IMAGENET_MEAN), tuple(IMAGENET_STD)
    else:
        recipe = _recipe(w, net)
        if recipe.normalize == "measured" or (recipe.normalize == "auto" and channels != 3):
            where = f"run {w.run}" if w.run is not None else f"{w.where}"
            raise EvalError(f"{where}: normalized with statistics measured on the training data, "
                            "which are not recorded", code="E785",
                            hint="give the values the weights were trained with: --mean M1,M2,M3 --std S1,S2,S3")
        m, s = normalization(recipe, channels)
    if len(m) != channels or len(s) != channels or any(v <= 0 for v in s):
        raise EvalError(f"normalization needs {channels} means and {channels} positive stds, got "
                        f"mean {list(m)}, std {list(s)}", code="E785")
    return m, s


def _recipe(w: Weights, net):
    """The recipe the weights were trained with: the run's, else the spec's."""
    from ..lang.recipe import TrainRecipe

    if w.recipe is not None:
        try:
            return TrainRecipe(**w.recipe)
        except Exception:  # noqa: BLE001 - a recipe an older or newer archdsl wrote
            pass
    return net.train


# ---------------------------------------------------------------- the data

def _split(data, split: str, net, w: Weights, crop_pct: float, interpolation: str):
    """(dataset, class names in label order, where, bad files the listing left out)."""
    from ..data.transforms import eval_transform

    c, h, wd = net.input
    transform = eval_transform((h, wd), crop_pct=crop_pct, interpolation=interpolation, channels=c)
    from ..data.shards import is_shards

    text = os.fspath(data)
    if text == "digits":
        return _digits(net, w, crop_pct, interpolation)
    if is_shards(text):
        return _shards(text, split, net, w, transform, c)
    return _folder(Path(text), split, net, w, transform, c)


def _digits(net, w: Weights, crop_pct: float, interpolation: str):
    """scikit-learn's digits, split and brought to the input exactly as training does."""
    from ..training.data import materialize, probe

    info = probe("digits")
    recipe = _recipe(w, net).model_copy(update={"crop_pct": crop_pct, "interpolation": interpolation})
    val = materialize(info, net.input, recipe).val
    val.labels, names = _labels(np.asarray(val.labels), list(info.class_names), net, w, "digits")
    return val, names, "digits", []


def _folder(root: Path, split: str, net, w: Weights, transform, channels: int):
    from ..data import listing
    from ..data.datasets import FolderDataset

    classes, part = listing.list_split(root, split, skip_bad=True)  # the split's own sorted folders
    labels, names = _labels(np.asarray(part.labels), classes, net, w, f"{root / split}")
    return (FolderDataset(part.files, labels, transform, channels=channels), names, str(root / split),
            list(part.skipped))


def _shards(pattern: str, split: str, net, w: Weights, transform, channels: int):
    from ..data import shards

    source = shards.find_shards(pattern)
    index = shards.open_split(source, split)
    classes = source.classes or [str(i) for i in range(net.classes)]
    over = int(index.label.max()) if len(index.label) else -1
    if over >= len(classes):
        raise EvalError(f"{pattern}: a sample has label {over}; the weights of {net.name} predict "
                        f"{net.classes} classes", code="E783",
                        hint="score on shards of the classes the weights were trained on")
    labels, names = _labels(np.asarray(index.label), classes, net, w, pattern)
    index.label = labels
    return shards.ShardDataset(index, transform, channels=channels), names, pattern, []


def _labels(labels: np.ndarray, classes: list[str], net, w: Weights, where: str) -> tuple[np.ndarray, list[str]]:
    """The split's labels in the weights' label order, and the class names in that order."""
    if w.class_names is not None:
        if len(w.class_names) != net.classes:
            raise EvalError(f"{w.run} records {len(w.class_names)} class names for a {net.classes}-class "
                            "network", code="E783")
        index = {n: i for i, n in enumerate(w.class_names)}
        unknown = [n for n in classes if n not in index]
        if unknown:
            raise EvalError(f"{where}: classes the weights were not trained on: {', '.join(unknown[:5])}"
                            + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""),
                            hint=f"the run's classes: {', '.join(w.class_names[:8])}"
                                 + (" ..." if len(w.class_names) > 8 else ""), code="E783")
        remap = np.array([index[n] for n in classes], dtype=np.int64)
        return remap[labels], list(w.class_names)
    if len(classes) != net.classes:
        raise EvalError(f"{where} has {len(classes)} classes; the network scored ({net.name}, "
                        f"{'x'.join(map(str, net.input))}) predicts {net.classes}",
                        hint="a weights file records no network: pass the --set values it was trained with "
                             f"(--set classes={len(classes)}, and its input size), or score on data with the "
                             "classes the weights were trained on (sorted folders are the label order)",
                        code="E783")
    return labels.astype(np.int64), list(classes)


# ---------------------------------------------------------------- the loop

@torch.no_grad()
def _score(model, dataset, dev, mean, std, batch: int, workers: int, classes: int, on_batch):
    from torch.utils.data import DataLoader

    from ..data.collate import collate

    loader = DataLoader(dataset, batch_size=batch, shuffle=False, num_workers=workers,
                        collate_fn=collate, pin_memory=dev.type == "cuda")
    m = torch.tensor(mean, device=dev).view(1, -1, 1, 1)
    s = torch.tensor(std, device=dev).view(1, -1, 1, 1)
    tally, bad = Tally(classes), []
    started = time.perf_counter()
    total = len(loader)
    for i, b in enumerate(loader):
        bad += [tuple(x) for x in b.bad]
        if len(b.y):
            x = b.x.to(dev, non_blocking=True).float().div_(255).sub_(m).div_(s)
            tally.add(model(x), b.y)
        if on_batch is not None:
            on_batch(i + 1, total)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return tally, bad, time.perf_counter() - started


def _write(out: Path, scores: Scores) -> None:
    import json

    from ..training.checkpoint import atomic_write
    from .figure import confusion_png

    title = (f"{scores.network} on {Path(scores.data).name}/{scores.split}: top-1 {100 * scores.top1:.2f}% "
             f"({scores.images} images)")
    scores.figure = str(confusion_png(out / "confusion.png", scores.confusion, scores.class_names, title))
    text = json.dumps(scores.to_json(), indent=1).encode()
    atomic_write(out / "scores.json", lambda f: f.write(text))

