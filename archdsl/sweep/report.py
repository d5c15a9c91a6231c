"""Reading sweeps back: the error EDF of each study (plain, and complexity-normalized as in
Radosavovic et al. 2019, sec. 4 / pycls), per-value marginals with bootstrap intervals, the best
points as specs, and one HTML page.

    studies = [load("sweeps/cnx"), load("sweeps/res")]
    write_report(studies, Path("report/"))

The EDF of n errors e_i is F(e) = (1/n) #{e_i < e}. The normalized EDF weights each point so that
every complexity bin (MACs, log-spaced, shared by all studies compared) holds the same total
weight: pycls's answer to spaces whose samples differ in complexity."""
from __future__ import annotations

import base64
import html
import io
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from ..lang.expr import show
from .study import SweepError, default_url, open_study, storage

BINS = 8          # complexity bins of the normalized EDF
BOOTSTRAP = 1000  # resamples for a marginal's interval


@dataclass
class Point:
    number: int
    values: dict
    error: float
    params: int
    macs: int
    run: str


@dataclass
class Study:
    name: str
    space: str        # the space's path, as recorded
    space_hash: str
    points: list[Point]
    pruned: int
    failed: int


def load(where: str, study: str | None = None, url: str | None = None) -> Study:
    """A sweep's study: `where` is a sweep's output folder (its study.db; `study` picks one when it
    holds several), or a study name in the storage `url`."""
    import optuna

    folder = Path(where)
    if url is None:
        if not (folder / "study.db").is_file():
            raise SweepError(f"`{where}` holds no study.db", hint="give a folder written by `archdsl sweep -o DIR`, "
                             "or a study name with --storage URL", code="E783")
        url = default_url(folder)
        name = study
    else:
        name = study or where
    store = storage(url)
    if name is None:
        names = [s.study_name for s in optuna.get_all_study_summaries(store)]
        if len(names) != 1:
            raise SweepError(f"`{where}` holds {len(names)} studies", hint="name one with --study: " + ", ".join(names),
                             code="E783")
        name = names[0]
    s = open_study(store, name, "", "", create=False)
    complete, pruned, fail = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                              optuna.trial.TrialState.FAIL)
    points = [Point(t.number, t.user_attrs["values"], t.value, t.user_attrs["params"], t.user_attrs["macs"],
                    t.user_attrs["run"]) for t in s.get_trials(deepcopy=False, states=(complete,))
              if t.value is not None and math.isfinite(t.value)]
    trials = s.get_trials(deepcopy=False)
    return Study(name, s.user_attrs.get("space_path", "?"), s.user_attrs.get("space_hash", "?"), points,
                 sum(t.state == pruned for t in trials), sum(t.state == fail for t in trials))


# ---- EDFs ------------------------------------------------------------------------------------

def edf(errors: list[float], weights: list[float] | None = None) -> tuple[list[float], list[float]]:
    """The steps of the (weighted) EDF: sorted errors and the cumulative weight up to each."""
    w = weights or [1.0 / len(errors)] * len(errors)
    pairs = sorted(zip(errors, w))
    xs, ys, total = [], [], 0.0
    for e, wi in pairs:
        total += wi
        xs.append(e)
        ys.append(total)
    return xs, ys


def complexity_bins(all_macs: list[int], n: int = BINS) -> list[float]:
    lo, hi = math.log(min(all_macs)), math.log(max(all_macs))
    if hi - lo < 1e-12:
        return [min(all_macs) * 0.999, max(all_macs) * 1.001]
    return [math.exp(lo + (hi - lo) * i / n) for i in range(n + 1)]


def normalized_weights(macs: list[int], edges: list[float]) -> list[float]:
    """Weights making every non-empty complexity bin hold the same total (pycls's normalization)."""
    def bin_of(m):
        for i in range(len(edges) - 1):
            if m <= edges[i + 1] or i == len(edges) - 2:
                return i
        return len(edges) - 2
    bins = [bin_of(m) for m in macs]
    counts = {b: bins.count(b) for b in set(bins)}
    return [1.0 / (counts[b] * len(counts)) for b in bins]


# ---- marginals ---------------------------------------------------------------------------------

def bootstrap_mean(values: list[float], rng: random.Random, n: int = BOOTSTRAP) -> tuple[float, float, float]:
    """The mean and its 95% percentile-bootstrap interval."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, mean, mean
    means = sorted(sum(rng.choice(values) for _ in values) / len(values) for _ in range(n))
    return mean, means[int(0.025 * n)], means[int(0.975 * n) - 1]


def marginals(study: Study, seed: int = 0) -> dict[str, list[dict]]:
    """For each open value: the mean error of the points at each of its values (numbers in up to
    four quantile bins when there are more than four distinct ones), with a bootstrap interval."""
    rng = random.Random(seed)
    out: dict[str, list[dict]] = {}
    names = sorted({k for p in study.points for k in p.values})
    for name in names:
        pairs = [(p.values[name], p.error) for p in study.points if name in p.values]
        groups: dict[str, list[float]] = {}
        numeric = all(_number(v) is not None for v, _ in pairs)
        distinct = sorted({_number(v) for v, _ in pairs}) if numeric else []
        if numeric and len(distinct) > 4:
            cuts = [distinct[int(len(distinct) * q / 4)] for q in range(1, 4)]
            for v, e in pairs:
                x = _number(v)
                k = sum(x >= c for c in cuts)
                lo = distinct[0] if k == 0 else cuts[k - 1]
                hi = cuts[k] if k < 3 else distinct[-1]
                groups.setdefault(f"{show(lo)}..{show(hi)}", []).append(e)
        else:
            for v, e in pairs:
                groups.setdefault(str(v), []).append(e)
        rows = []
        for label, errs in sorted(groups.items(), key=lambda kv: _sort_key(kv[0])):
            mean, lo, hi = bootstrap_mean(errs, rng)
            rows.append({"value": label, "n": len(errs), "mean_error": mean, "ci95": [lo, hi]})
        out[name] = rows
    return out


def _number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _sort_key(label: str):
    head = label.split("..")[0]
    x = _number(head)
    return (0, x, "") if x is not None else (1, 0.0, label)


# ---- the report --------------------------------------------------------------------------------

def summary(studies: list[Study]) -> dict:
    all_macs = [p.macs for s in studies for p in s.points]
    edges = complexity_bins(all_macs) if all_macs else []
    out = []
    for s in studies:
        errors = [p.error for p in s.points]
        best = sorted(s.points, key=lambda p: p.error)
        out.append({
            "study": s.name, "space": s.space, "space_hash": s.space_hash, "points": len(s.points),
            "pruned": s.pruned, "failed": s.failed,
            "error": {"min": min(errors), "median": sorted(errors)[len(errors) // 2], "max": max(errors)} if errors else None,
            "edf": dict(zip(("error", "cumulative"), edf(errors))) if errors else None,
            "edf_normalized": dict(zip(("error", "cumulative"), edf(errors, normalized_weights(
                [p.macs for p in s.points], edges)))) if errors else None,
            "marginals": marginals(s),
            "best": [vars(p) for p in best[:3]],
        })
    return {"complexity_bins": edges, "studies": out}


def plot_edfs(data: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key, title in ((axes[0], "edf", "error EDF"), (axes[1], "edf_normalized", "complexity-normalized EDF")):
        for s in data["studies"]:
            if s[key]:
                xs, ys = s[key]["error"], s[key]["cumulative"]
                ax.step([xs[0], *xs], [0.0, *ys], where="post", label=f"{Path(s['space']).stem} (n={s['points']})")
        ax.set_title(title)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("top-1 error (%)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("cumulative probability")
    axes[0].legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_best_specs(study: Study, out: Path, k: int = 3) -> list[Path]:
    """The `k` best points of a study as self-contained specs (through the printer)."""
    from ..lang.flatten import flatten
    from ..lang.printer import format_spec
    from ..spaces.cost import Coster

    coster = Coster.open(study.space)
    if coster.space is None or coster.space.hash != study.space_hash:
        raise SweepError(f"the space `{study.space}` has changed since the study `{study.name}` was made "
                         f"(content {coster.space.hash if coster.space else '-'}, study {study.space_hash})",
                         hint="the best points' values are in the report's JSON; restore the space to write them "
                         "as specs", code="E784")
    paths = []
    for rank, p in enumerate(sorted(study.points, key=lambda p: p.error)[:k], 1):
        name = f"{coster.name}_best{rank}"
        net = coster.network(p.values)
        path = out / f"{name}.arch"
        path.write_text(format_spec(flatten(net, name=name), layout=False))
        paths.append(path)
    return paths


def write_report(studies: list[Study], out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    data = summary(studies)
    plot_edfs(data, out / "edf.png")
    for s, d in zip(studies, data["studies"]):
        d["best_specs"] = [str(p) for p in write_best_specs(s, out)]
    (out / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "index.html").write_text(_html(data, out / "edf.png"))
    return data


def _html(data: dict, png: Path) -> str:
    e = html.escape
    img = base64.b64encode(png.read_bytes()).decode()
    parts = ["<!doctype html><meta charset=utf-8><title>archdsl sweep report</title>",
             "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse;"
             "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style>",
             "<h1>Sweep report</h1>", f"<img alt='error EDFs' src='data:image/png;base64,{img}' width=900>",
             "<h2>Studies</h2><table><tr><th>study<th>space<th>points<th>rejected<th>failed<th>min error"
             "<th>median<th>max</tr>"]
    for s in data["studies"]:
        err = s["error"] or {"min": math.nan, "median": math.nan, "max": math.nan}
        parts.append(f"<tr><td>{e(s['study'])}<td>{e(s['space'])}<td>{s['points']}<td>{s['pruned']}<td>{s['failed']}"
                     f"<td>{err['min']:.2f}<td>{err['median']:.2f}<td>{err['max']:.2f}</tr>")
    parts.append("</table>")
    for s in data["studies"]:
        parts.append(f"<h2>{e(s['study'])}: marginals (mean error, 95% bootstrap interval)</h2><table>"
                     "<tr><th>value<th>at<th>n<th>mean error<th>95% interval</tr>")
        for name, rows in s["marginals"].items():
            for r in rows:
                parts.append(f"<tr><td>{e(name)}<td>{e(r['value'])}<td>{r['n']}<td>{r['mean_error']:.2f}"
                             f"<td>{r['ci95'][0]:.2f} .. {r['ci95'][1]:.2f}</tr>")
        parts.append("</table><h3>best points</h3><table><tr><th>trial<th>error<th>params<th>MACs<th>values<th>spec</tr>")
        for p, spec in zip(s["best"], s.get("best_specs", [])):
            values = " ".join(f"{k}={v}" for k, v in p["values"].items())
            parts.append(f"<tr><td>{p['number']}<td>{p['error']:.2f}<td>{p['params']:,}<td>{p['macs']:,}"
                         f"<td>{e(values)}<td>{e(Path(spec).name)}</tr>")
        parts.append("</table>")
    return "\n".join(parts) + "\n"
