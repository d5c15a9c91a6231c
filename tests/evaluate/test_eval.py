"""`archdsl eval` against an independent scorer written here from the official definitions.

The reference: ConvNeXt's evaluation transform (`datasets.build_transform`, input < 384:
torchvision Resize(int(size / crop_pct), BICUBIC) on the PIL image, i.e. the shorter side to
that size and the longer to int(size * long / short), then CenterCrop at
int(round((H - h) / 2)), ToTensor, Normalize), the official ConvNeXt module
(tests/reference_models.py) holding the weights under the official names, and a plain loop
counting top-1, top-k, per-class hits and the confusion matrix one image at a time. The
checkpoint in the official layout is made here from archdsl's own weights with a renaming
written here (not interop.weights' rules)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

import archdsl
from archdsl.cli.main import app
from archdsl.evaluate import EvalError, evaluate
from reference_models import ConvNeXt

CLASSES = ["ant", "bee", "cat", "dog", "eel", "fox", "gnu"]
SIZE = 64
ATTO = dict(classes=len(CLASSES), input=(3, SIZE, SIZE))
IMAGENET = (torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225]))


# ------------------------------------------------------------------ the independent reference

def reference_input(path, mean, std, size=SIZE, crop_pct=0.875) -> torch.Tensor:
    img = Image.open(path).convert("RGB")  # torchvision's ImageFolder loader
    short = int(size / crop_pct)
    w, h = img.size
    nw, nh = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    img = img.resize((nw, nh), Image.BICUBIC)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    img = img.crop((left, top, left + size, top + size))
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (x - mean[:, None, None]) / std[:, None, None]


def reference_scores(model, images, mean, std, k=5):
    """images: [(path, label)]. Plain Python counting, one image at a time."""
    n = len(CLASSES)
    confusion = [[0] * n for _ in range(n)]
    top1 = topk = 0
    with torch.no_grad():
        for path, label in images:
            logits = model(reference_input(path, mean, std)[None])[0].tolist()
            order = sorted(range(n), key=lambda c: -logits[c])
            confusion[label][order[0]] += 1
            top1 += order[0] == label
            topk += label in order[:k]
    return {"top1": top1 / len(images), "top5": topk / len(images), "confusion": confusion}


def official_names(native: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """archdsl's ConvNeXt names -> the official repository's (facebookresearch/ConvNeXt)."""
    rules = [(r"stem\.(\d)\.(\w+)", r"downsample_layers.0.\1.\2"),
             (r"downsample\.(\d)\.(\d)\.(\w+)", r"downsample_layers.\1.\2.\3"),
             (r"stages\.(\d)\.blocks\.(\d+)\.layerscale\.gamma", r"stages.\1.\2.gamma"),
             (r"stages\.(\d)\.blocks\.(\d+)\.(\w+)\.(\w+)", r"stages.\1.\2.\3.\4"),
             (r"head\.norm\.(\w+)", r"norm.\1"), (r"head\.fc\.(\w+)", r"head.\1")]
    out = {}
    for key, value in native.items():
        for pattern, repl in rules:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, repl, key)] = value.clone()
                break
        else:
            raise AssertionError(f"no official name for {key}")
    return out


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    images = []
    for label, name in enumerate(CLASSES):
        d = root / "data" / "val" / name
        d.mkdir(parents=True)
        for i in range(3):  # landscape, portrait, grey; JPEG and PNG
            w, h = [(97, 71), (66, 90), (80, 80)][i]
            a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            a[: h // 2, :, label % 3] = 40 * label  # some structure per class
            img = Image.fromarray(a)
            if i == 2:
                img = img.convert("L")
            path = d / f"{name}{i}.{'jpg' if i == 0 else 'png'}"
            img.save(path, quality=90)
            images.append((path, label))
    (root / "data" / "val" / "cat" / "broken.jpg").write_bytes(b"")  # unreadable: skipped, counted
    for split, names in (("few", CLASSES[:3]), ("bad", ["ant"])):
        for name in names:
            (root / "data" / split / name).mkdir(parents=True)
    for name in CLASSES[:3]:
        Image.fromarray(rng.integers(0, 256, (70, 70, 3), dtype=np.uint8)).save(root / "data" / "few" / name / "a.png")
    (root / "data" / "bad" / "ant" / "x.jpg").write_bytes(b"not a jpeg")

    torch.manual_seed(0)
    model = archdsl.build("convnext_atto", **ATTO)
    g = torch.Generator().manual_seed(1)
    native = {}
    for key, value in model.state_dict().items():  # non-trivial: every tensor matters
        if key.endswith("gamma") or (value.ndim == 1 and "norm" in key and key.endswith("weight")):
            native[key] = 0.5 + torch.rand(value.shape, generator=g)
        elif value.ndim == 1:
            native[key] = 0.05 * torch.randn(value.shape, generator=g)
        else:
            native[key] = value.detach().contiguous().clone()
    reference = ConvNeXt(num_classes=len(CLASSES), depths=(2, 2, 6, 2), dims=(40, 80, 160, 320))
    reference.load_state_dict(official_names(native), strict=True)
    reference.eval()
    fit_head(reference, native, images)
    save_file(native, root / "atto.safetensors")
    torch.save({"model": official_names(native)}, root / "atto_official.pth")
    return {"root": root, "data": root / "data", "images": images, "native": native, "reference": reference}


@torch.no_grad()
def fit_head(reference, native, images):
    """A classifier that depends on fine detail: the head fitted (least squares) to two images of
    each class, so the third lands wherever small differences in its features send it, and a
    transform that differs from the reference by a pixel changes the scores."""
    feats = []
    for path, _ in images:
        x = reference_input(path, *IMAGENET)[None]
        for down, stage in zip(reference.downsample_layers, reference.stages):
            x = stage(down(x))
        feats.append(reference.norm(x.mean([-2, -1]))[0])
    f = torch.stack(feats).double()
    mu = f.mean(0)
    fit = [i for i, (p, _) in enumerate(images) if not p.stem.endswith("2")]
    target = torch.eye(len(CLASSES), dtype=torch.float64)[[images[i][1] for i in fit]]
    w = torch.linalg.lstsq(f[fit] - mu, target - target.mean(0)).solution  # (C, K)
    native["head.fc.weight"] = w.T.float().contiguous()
    native["head.fc.bias"] = (-(mu @ w)).float().contiguous()
    reference.head.weight.copy_(native["head.fc.weight"])
    reference.head.bias.copy_(native["head.fc.bias"])


def run_cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


# ------------------------------------------------------------------ scoring

def test_official_layout_scores_as_the_independent_loop_and_as_archdsl_weights(world, tmp_path):
    ref = reference_scores(world["reference"], world["images"], *IMAGENET)
    official = evaluate("convnext_atto", world["root"] / "atto_official.pth", layout="official",
                        data=world["data"], workers=0, batch=5, out=tmp_path / "out", **ATTO)
    own = evaluate("convnext_atto", world["root"] / "atto.safetensors", data=world["data"], workers=2,
                   batch=8, **ATTO)
    assert official.images == own.images == len(world["images"]) == 21
    assert official.confusion == ref["confusion"]
    assert (official.top1, official.top5) == (ref["top1"], ref["top5"])
    assert 0.3 < ref["top1"] < 1  # the fitted head: right on most, not on all
    # and sensitive: the same weights through crop_pct 0.95 instead of 0.875 score differently
    other = evaluate("convnext_atto", world["root"] / "atto.safetensors", data=world["data"], workers=0,
                     crop_pct=0.95, **ATTO)
    assert other.confusion != ref["confusion"]
    for field in ("top1", "top5", "confusion", "per_class", "per_class_images", "mean", "std"):
        assert getattr(own, field) == getattr(official, field), field
    assert official.layout == "official" and own.layout == "archdsl"
    assert official.bad_images == 1 and official.bad[0][0].endswith("broken.jpg")

    # top-5, per-class and the confusion matrix agree with each other
    s, c = official, np.array(official.confusion)
    assert c.sum() == s.images and s.top5_k == 5 and s.top5 >= s.top1 and s.images_per_s > 0
    assert s.top1 == np.trace(c) / s.images
    assert s.per_class == [c[i, i] / c[i].sum() for i in range(len(CLASSES))]
    assert s.per_class_images == [3] * len(CLASSES) and s.class_names == CLASSES
    png = (tmp_path / "out" / "confusion.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    saved = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert saved["confusion"] == s.confusion and saved["figure"].endswith("confusion.png")
    assert not list((tmp_path / "out").glob(".*tmp*"))  # atomic writes leave no temporary


def test_run_directory_uses_recorded_classes_and_normalization(world, tmp_path):
    """A run records its label order and normalization; eval follows both."""
    from archdsl.training import checkpoint as ckpt
    from archdsl.lang.network import canonical

    names = CLASSES[::-1]  # the run's label order differs from the folder's sorted order
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    net = archdsl.load("convnext_atto", **ATTO)
    ckpt.save(tmp_path / "run", 7, world["native"], {"epoch": 1},
              meta={"network": net.name, "network_structure": canonical(net), "class_names": names,
                    "normalize": {"mean": list(mean), "std": list(std)}})
    s = evaluate("convnext_atto", tmp_path / "run", data=world["data"], workers=0)  # input, classes: the run's
    relabelled = [(p, names.index(CLASSES[y])) for p, y in world["images"]]
    ref = reference_scores(world["reference"], relabelled, torch.tensor(mean), torch.tensor(std))
    assert s.class_names == names and s.confusion == ref["confusion"] and s.top1 == ref["top1"]
    assert (s.mean, s.std) == (list(mean), list(std))

    r = run_cli("eval", "resnet18", "--weights", tmp_path / "run", "--data", world["data"])
    assert r.exit_code == 1 and "E782" in r.output and "another network" in r.output


def test_shards_score_as_the_folder(world, tmp_path):
    """WebDataset shards written here with tarfile (key.png + key.cls, the format's convention)."""
    import io
    import tarfile

    (tmp_path / "shards").mkdir()
    images = sorted(world["images"], key=lambda pair: pair[0].name)  # another order than the folder's
    for k in range(2):
        with tarfile.open(tmp_path / "shards" / f"val-{k:06d}.tar", "w") as tar:
            for i, (path, label) in enumerate(images[k::2]):
                for suffix, data in ((path.suffix, path.read_bytes()), (".cls", str(label).encode())):
                    info = tarfile.TarInfo(f"s{k}_{i:04d}{suffix}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    pattern = str(tmp_path / "shards" / "val-{000000..000001}.tar")
    s = evaluate("convnext_atto", world["root"] / "atto.safetensors", data=pattern, workers=0, **ATTO)
    ref = reference_scores(world["reference"], world["images"], *IMAGENET)
    assert s.images == 21 and s.confusion == ref["confusion"] and s.top5 == ref["top5"]


# ------------------------------------------------------------------ the command and its errors

def test_cli_text_and_json(world):
    args = ["eval", "convnext_atto", "--weights", world["root"] / "atto_official.pth", "--layout", "official",
            "--data", world["data"], "--workers", "0", "--set", "classes=7", "--set", "input=3x64x64"]
    text = run_cli(*args)
    assert text.exit_code == 0, text.output
    assert "top-1" in text.output and "1 unreadable image skipped" in text.output
    assert "broken.jpg" in text.output
    js = run_cli(*args, "--json")
    assert js.exit_code == 0
    data = json.loads(js.stdout)
    assert data["images"] == 21 and len(data["per_class"]) == 7 and f"{100 * data['top1']:.2f}%" in text.output


@pytest.mark.parametrize("case, code", [
    ("missing", "E781"), ("other_network", "E782"), ("classes", "E783"), ("empty", "E784"),
    ("unreadable", "E786"), ("wrong_layout", "E782")])
def test_clean_errors(world, tmp_path, case, code):
    root = world["root"]
    base = ["--data", world["data"], "--set", "classes=7", "--set", "input=3x64x64", "--workers", "0"]
    args = {
        "missing": ["convnext_atto", "--weights", tmp_path / "nothing", *base],
        "other_network": ["convnext_t", "--weights", root / "atto.safetensors", *base],
        "classes": ["convnext_atto", "--weights", root / "atto.safetensors", *base, "--split", "few"],
        "empty": ["convnext_atto", "--weights", root / "atto.safetensors", *base, "--split", "bad",
                  "--set", "classes=1"],
        "unreadable": ["convnext_atto", "--weights", tmp_path / "junk.pth", *base],
        "wrong_layout": ["convnext_atto", "--weights", root / "atto_official.pth", *base],
    }[case]
    (tmp_path / "junk.pth").write_bytes(b"\x00junk")
    if case == "empty":  # a 1-class head for the 1-class split
        save_file({k: v[:1].contiguous() if k.startswith("head.fc") else v for k, v in world["native"].items()},
                  tmp_path / "one.safetensors")
        args[2] = tmp_path / "one.safetensors"
    r = run_cli("eval", *args)
    assert r.exit_code == 1, r.output
    assert f"error[{code}]" in r.output and "Traceback" not in r.output


def test_usage_errors_exit_2(world):
    r = run_cli("eval", "convnext_atto", "--weights", world["root"] / "atto.safetensors", "--data",
                world["data"], "--layout", "caffe")
    assert r.exit_code == 2 and "--layout" in r.output


def test_api_error_is_an_arch_error(world):
    with pytest.raises(EvalError) as e:
        evaluate("convnext_atto", world["root"] / "atto.safetensors", data=world["data"], split="few", **ATTO)
    assert e.value.code == "E783" and "3 classes" in e.value.message


def test_a_trained_run_scores_as_its_own_validation(tmp_path):
    """End to end: `archdsl train` on digits, then `archdsl eval` of its last (and EMA) weights
    gives the val_acc (and ema_acc) the engine measured for that epoch."""
    from archdsl.training import train

    r = train("convnext_atto", "digits", epochs=1, out=tmp_path / "run", quiet=True,
              widths="8,16,32,64", depths="1,1,1,1")
    args = ["eval", "convnext_atto", "--weights", tmp_path / "run", "--data", "digits", "--workers", "0"]
    other = run_cli(*args)  # the spec without the run's --set values: another network
    assert other.exit_code == 1 and "stages[0].depth: 1 -> 2" in other.output
    out = run_cli(*args, "--set", "widths=8,16,32,64", "--set", "depths=1,1,1,1", "--checkpoint", "last", "--json")
    assert out.exit_code == 0, out.output
    scores = json.loads(out.stdout)
    assert scores["images"] == 360 and scores["input"] == [1, 32, 32]  # the run's, not the spec's
    assert scores["top1"] == pytest.approx(r.history[-1]["val_acc"], abs=1e-9)
    assert 0.2 < scores["top1"] < 1
    ema = run_cli(*args, "--set", "widths=8,16,32,64", "--set", "depths=1,1,1,1", "--checkpoint", "ema", "--json")
    assert ema.exit_code == 0, ema.output
    assert json.loads(ema.stdout)["top1"] == pytest.approx(r.history[-1]["val_acc_ema"], abs=1e-9)
    assert json.loads(ema.stdout)["weights"].endswith("ema.safetensors")


def test_an_ema_file_scores_as_the_weights_it_averages(world, tmp_path):
    """issue: `--weights .../ema.safetensors` (AveragedModel: `module.` names, `n_averaged`) was
    E782; it is unwrapped, with a note, and scores as the same weights saved plainly."""
    ema = {f"module.{k}": v for k, v in world["native"].items()} | {"n_averaged": torch.tensor(3)}
    save_file(ema, tmp_path / "ema.safetensors")
    plain = evaluate("convnext_atto", world["root"] / "atto.safetensors", data=world["data"], workers=0, **ATTO)
    s = evaluate("convnext_atto", tmp_path / "ema.safetensors", data=world["data"], workers=0, **ATTO)
    assert s.confusion == plain.confusion and s.top1 == plain.top1
    assert "EMA weights (AveragedModel): module. prefix and n_averaged dropped" in s.notes
    out = run_cli("eval", "convnext_atto", "--weights", tmp_path / "ema.safetensors", "--data", world["data"],
                  "--workers", "0", "--set", "classes=7", "--set", "input=3x64x64")
    assert out.exit_code == 0 and "note: EMA weights (AveragedModel)" in out.output, out.output
