"""One sweep worker: draw points through the study's sampler, train each, record it.

Each trial's values are suggested to Optuna one by one (a choice as a categorical, a range as
an int or float with its log scale and step), so TPE can learn from them. A point that breaks a
`require`, does not check, or falls outside the complexity window is pruned before anything is
trained (its reason kept on the trial); only finished trainings count towards `trials`. Every
worker on the same storage and study shares the count; a finished trial is never redone."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..lang.errors import ArchError
from ..lang.expr import SpaceError, pow2_values, show
from ..spaces.cost import Coster
from .study import SweepError, default_url, open_study, storage

MAX_DRAWS_PER_TRIAL = 200  # a space that rejects nearly everything stops instead of spinning


@dataclass
class SweepConfig:
    spec: str                       # a space (name or path) or a folder written by `archdsl sample`
    trials: int
    epochs: int
    data: str = "digits"
    out: Path = Path("sweeps")
    storage: str | None = None
    study: str | None = None
    sampler: str = "random"
    seed: int = 0
    macs: tuple[float, float] | None = None
    params: tuple[float, float] | None = None
    overrides: dict | None = None
    heartbeat: float = 10
    grace: float = 30


def suggest(trial, space) -> dict:
    """Each open value through Optuna's suggest calls (fixed values when the trial is a retry)."""
    values = {}
    for v in space.free:
        d = v.dist
        if d.kind == "choice":
            values[v.name] = trial.suggest_categorical(v.name, list(d.options))
        elif d.scale == "pow2":
            values[v.name] = trial.suggest_categorical(v.name, pow2_values(d.low, d.high))
        elif d.kind == "int":
            if d.scale == "log" and d.q:
                # Optuna's log scale takes no step: draw the multiple's index log-uniformly
                k = trial.suggest_int(v.name + "/q", math.ceil(d.low / d.q), math.floor(d.high / d.q), log=True)
                values[v.name] = k * d.q
                trial.set_user_attr("value:" + v.name, values[v.name])
            else:
                values[v.name] = trial.suggest_int(v.name, d.low, d.high, step=d.q or 1, log=d.scale == "log")
        else:
            values[v.name] = trial.suggest_float(v.name, d.low, d.high, log=d.scale == "log",
                                                 step=d.q if d.scale != "log" else None)
    return values


def to_params(space, values: dict) -> dict:
    """A point's values as the trial's parameters (`suggest`'s names: `w0/q` for a log range
    with a quantum), for enqueueing points listed in a folder."""
    out = {}
    for v in space.free:
        d = v.dist
        if d.kind == "int" and d.scale == "log" and d.q:
            out[v.name + "/q"] = values[v.name] // d.q
        else:
            out[v.name] = values[v.name]
    return out


def _requeue_interrupted(study) -> None:
    """A trial interrupted mid-run (Ctrl-C: Optuna marks it failed at once, with no heartbeat to
    go stale) is queued again with its values, once; a training that failed on its own (its
    `failed` attribute says why) is not."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    taken = [t.params for t in trials if t.state != optuna.trial.TrialState.FAIL]
    for t in trials:
        if t.state == optuna.trial.TrialState.FAIL and "failed" not in t.user_attrs and t.params \
                and t.params not in taken:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
            taken.append(t.params)


def _points_dir(path: Path) -> tuple[str, list[dict]] | None:
    index = path / "points.json"
    if not path.is_dir():
        return None
    if not index.is_file():
        raise SweepError(f"`{path}` is a folder without points.json", hint="a folder to sweep is one written by "
                         "`archdsl sample SPACE -n N -o DIR`", code="E785")
    try:
        data = json.loads(index.read_text())
        return data["path"], data["points"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SweepError(f"cannot read `{index}`: {e}", code="E785") from None


def run_sweep(cfg: SweepConfig, log=print) -> dict:
    """Run this worker until the study has `cfg.trials` finished trials; a summary back."""
    import optuna

    from ..training import train
    from ..training.engine import Interrupted

    given = Path(cfg.spec)
    listed = _points_dir(given)
    coster = Coster.open(listed[0] if listed else cfg.spec, cfg.overrides)
    if coster.space is None:
        raise SweepError(f"`{cfg.spec}` has no open values: there is nothing to sweep",
                         hint="sweep a space (a spec with `let { }`), e.g. convnext_space", code="E785")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    url = cfg.storage or default_url(out)
    store = storage(url, cfg.heartbeat, cfg.grace)
    name = cfg.study or f"{coster.name}-{coster.space.hash}"
    study = open_study(store, name, coster.space.hash, coster.path, cfg.sampler, cfg.seed)
    _requeue_interrupted(study)
    if listed:
        for p in listed[1]:
            study.enqueue_trial(to_params(coster.space, p["values"]), skip_if_exists=True)
        target = min(cfg.trials, len(listed[1]))
    else:
        target = cfg.trials

    def objective(trial) -> float:
        values = suggest(trial, coster.space)
        try:
            cost = coster.cost(values)
        except SpaceError as e:
            trial.set_user_attr("rejected", e.message)
            raise optuna.TrialPruned() from None
        except ArchError as e:
            trial.set_user_attr("rejected", f"{e.errors[0].span}: {e.errors[0].message}")
            raise optuna.TrialPruned() from None
        for key, window in (("macs", cfg.macs), ("params", cfg.params)):
            if window and not window[0] <= getattr(cost, key) <= window[1]:
                trial.set_user_attr("rejected", f"{key} {getattr(cost, key):,} outside the window")
                raise optuna.TrialPruned()
        run = out / "trials" / f"{trial.number:05d}"
        trial.set_user_attr("values", {k: show(v) for k, v in values.items()})
        trial.set_user_attr("params", cost.params)
        trial.set_user_attr("macs", cost.macs)
        trial.set_user_attr("run", str(run))
        log(f"trial {trial.number}: {' '.join(f'{k}={show(v)}' for k, v in values.items())} "
            f"({cost.params:,} params, {cost.macs / 1e9:.3f} GMACs) -> {run}")
        try:
            result = train(coster.network(values), data=cfg.data, epochs=cfg.epochs, out=run, quiet=True,
                           seed=cfg.seed, force=True)
        except Interrupted:
            raise  # Ctrl-C or SIGTERM stops the worker (the trial is failed, then queued again), not just this trial
        except ArchError as e:
            trial.set_user_attr("failed", f"{e.errors[0].message}")
            log(f"trial {trial.number} failed: {e.errors[0].message}")
            return math.nan
        error = 100.0 * (1.0 - result.best_acc)
        trial.set_user_attr("error", error)
        log(f"trial {trial.number}: error {error:.2f}%")
        return error

    complete = optuna.trial.TrialState.COMPLETE
    finished = lambda: sum(1 for t in study.get_trials(deepcopy=False, states=(complete,)))  # noqa: E731
    stop = optuna.study.MaxTrialsCallback(target, states=(complete,))
    if finished() < target:
        study.optimize(objective, n_trials=MAX_DRAWS_PER_TRIAL * target, callbacks=[stop], catch=())
    trials = study.get_trials(deepcopy=False)
    states = {s.name.lower(): sum(1 for t in trials if t.state == s) for s in optuna.trial.TrialState}
    if finished() < target:
        raise SweepError(f"only {finished()} of {target} trials finished after {len(trials)} draws "
                         f"({states.get('pruned', 0)} rejected before training)",
                         hint="the space's constraints or the window reject almost every point; loosen them",
                         code="E786")
    return {"study": name, "storage": url, "space": coster.name, "space_hash": coster.space.hash,
            "states": states, "best": study.best_value if states.get("complete") else None}
