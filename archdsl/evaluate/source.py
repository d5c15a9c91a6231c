"""Where the weights come from, and what they say about themselves.

`--weights` is either
- an archdsl run directory (OUT of `archdsl train`): its newest checkpoint that verifies
  against its manifest (`training.checkpoint`), the best weights (`best.safetensors`) or the
  last (`model.safetensors`) or the EMA's (`ema.safetensors`, torch's AveragedModel state
  dict, unwrapped), in archdsl's own names. The run records its network (name,
  structure, input, classes), the label order (class names) and the normalization it trained
  with: in the manifest, or in state.pt (read with weights_only=True, nothing unpickled).
- a file: `.safetensors`, or `.pth`/`.pt`/`.bin` (torch.load with weights_only=True), in a
  layout of `interop.weights`: `archdsl` (native names), `official` (the ConvNeXt/Swin
  repositories), `timm` or `torchvision`; an EMA file (AveragedModel: `module.` names and
  `n_averaged`) is unwrapped, with a note. A file says nothing else: the network is the spec's,
  the normalization the ImageNet constants the official, timm and torchvision weights were
  trained with.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..lang.errors import ArchError

LAYOUTS = {"archdsl": "native", "official": "official", "timm": "timm", "torchvision": "torchvision"}
FILE_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


class EvalError(ArchError):
    """Weights or data that cannot be scored: E781 no weights there, E782 weights of another
    network, E783 classes that do not match, E784 no image to score, E785 normalization unknown,
    E786 a weights file that cannot be read."""

    code = "E780"


@dataclass
class Weights:
    state_dict: dict[str, torch.Tensor]
    layout: str                          # an interop.weights layout: native, official, timm, torchvision
    where: Path                          # the file read
    run: Path | None = None              # the run directory, when the weights come from one
    network: str | None = None           # recorded by a run
    structure: dict | None = None        # canonical network of a run (lang.network.canonical)
    class_names: list[str] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    crop_pct: float | None = None
    interpolation: str | None = None
    recipe: dict | None = None           # the run's recipe (TrainRecipe fields), when it recorded one
    notes: list[str] = field(default_factory=list)

    @property
    def recorded(self) -> dict:
        """Spec values a run fixes: its input and classes, when it recorded them."""
        if self.structure is None:
            return {}
        out = {}
        if "input" in self.structure:
            out["input"] = tuple(self.structure["input"])
        if "classes" in self.structure:
            out["classes"] = int(self.structure["classes"])
        return out


def read_weights(path: str | os.PathLike, layout: str | None = None, which: str = "best") -> Weights:
    """The weights at `path` (a run directory or a file) in `layout` (default: archdsl's own)."""
    p = Path(path)
    if layout is not None and layout not in LAYOUTS:
        raise EvalError(f"unknown weights layout `{layout}`", code="E781",
                        hint="layouts: " + ", ".join(LAYOUTS))
    if p.is_dir():
        if layout not in (None, "archdsl"):
            raise EvalError(f"{p} is an archdsl run directory; its weights are in archdsl's layout, "
                            f"not `{layout}`", hint="leave out --layout for a run directory", code="E781")
        return _from_run(p, which)
    if p.is_file():
        return _from_file(p, LAYOUTS[layout or "archdsl"])
    raise EvalError(f"no weights at {p}: no run directory or file there", code="E781",
                    hint="pass a run directory (OUT of `archdsl train`) or a .safetensors/.pth file")


def _from_file(p: Path, layout: str) -> Weights:
    if p.suffix not in FILE_SUFFIXES:
        raise EvalError(f"{p}: not a weights file ({', '.join(FILE_SUFFIXES)})", code="E786",
                        hint="pass a .safetensors or .pth checkpoint, or a run directory")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(p))
        else:
            import warnings

            with warnings.catch_warnings():  # torch's pickle-protocol note names its own site-packages file
                warnings.simplefilter("ignore")
                sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a damaged or foreign file is the user's to fix
        detail = str(e).strip().splitlines()[0] if str(e).strip() else ""
        if not isinstance(e, OSError):  # an unpickler's KeyError is a bare number: say what failed
            detail = f"not a checkpoint torch.load can read ({type(e).__name__}{': ' + detail if detail else ''})"
        raise EvalError(f"cannot read weights from {p}: {detail}"[:300], code="E786",
                        hint="a .safetensors file, or a .pth holding a state dict (plain tensors; "
                             "pickled objects are refused)") from None
    if not isinstance(sd, dict):
        raise EvalError(f"{p} holds a {type(sd).__name__}, not a state dict", code="E786",
                        hint="save weights with torch.save(model.state_dict(), path)")
    notes: list[str] = []
    return Weights(_averaged(sd, notes), layout, p, notes=notes)


def _averaged(sd: dict, notes: list[str]) -> dict:
    """An EMA's `AveragedModel` state dict (a run's ema.safetensors) unwrapped, with a note saying so."""
    from ..interop.weights import strip_averaged

    sd, note = strip_averaged(sd)
    if note:
        notes.append(note)
    return dict(sd)


def _from_run(run: Path, which: str) -> Weights:
    from ..training import checkpoint as ckpt

    problems: list[str] = []
    found = ckpt.newest_verified(run, quiet=True, problems=problems)
    if found is None:
        what = ("no checkpoint that verifies: " + "; ".join(problems) if problems
                else "no checkpoint (RUN/checkpoints/step-*/)")
        raise EvalError(f"{run}: {what}"[:400], code="E781",
                        hint="pass the --out directory of an `archdsl train` run, or a weights file")
    name, manifest = ckpt.weights_in(found, which)
    notes = [f"checkpoint {found} (verified)"]
    if name is None and which == "ema":
        raise EvalError(f"{found} has no EMA weights (the run's recipe keeps no EMA)", code="E781",
                        hint="--checkpoint best or last")
    if name is None:
        if which == "best":
            notes.append("the checkpoint has no best weights: scoring the last")
        name = ckpt.MODEL
    try:
        sd = ckpt.read_weights(found / name)
    except Exception as e:  # noqa: BLE001 - verified a moment ago; changed since
        raise EvalError(f"cannot read {found / name}: {e}"[:300], code="E786") from None
    sd = _averaged(sd, notes)
    w = Weights(sd, "native", found / name, run=run, notes=notes)
    _recorded(w, manifest, found / ckpt.STATE)
    return w


def _recorded(w: Weights, manifest: dict, state_path: Path) -> None:
    """What the run recorded: the manifest first, state.pt for what it lacks."""
    info = dict(manifest)
    if not {"network_structure", "normalize", "class_names"} <= info.keys():
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - verified, so only an older format gets here
            state = {}
        if isinstance(state, dict):
            info = {**{k: state[k] for k in ("network", "network_structure", "normalize", "class_names",
                                              "crop_pct", "recipe") if k in state}, **info}
    w.network = info.get("network")
    w.structure = info.get("network_structure")
    names = info.get("class_names")
    w.class_names = [str(n) for n in names] if isinstance(names, list) and names else None
    norm = info.get("normalize")
    if isinstance(norm, dict) and "mean" in norm and "std" in norm:
        w.mean, w.std = tuple(map(float, norm["mean"])), tuple(map(float, norm["std"]))
    if isinstance(info.get("recipe"), dict):
        w.recipe = dict(info["recipe"])
    if isinstance(info.get("crop_pct"), (int, float)):
        w.crop_pct = float(info["crop_pct"])
    if info.get("interpolation") in ("bilinear", "bicubic"):
        w.interpolation = info["interpolation"]
