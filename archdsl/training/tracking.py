"""Where a run's numbers go besides metrics.jsonl: trackers.

- TensorBoard: event files in OUT itself (beside metrics.jsonl), for every run, so
  `tensorboard --logdir runs` lists each run under its directory's name. Written with
  `torch.utils.tensorboard` when the `tensorboard` package is installed (`archdsl[tensorboard]`);
  without it the run goes on and says once that it writes no event files.
- Weights & Biases (`archdsl[wandb]`) and MLflow (`archdsl[mlflow]`): only when the recipe asks
  (`--set train.track=wandb,mlflow`). Asked for and not installed, or refusing to start (no
  login, an unusable tracking URI), is a `TrainError` before the first step, never a silent run
  without the tracker. W&B takes its project from WANDB_PROJECT (default `archdsl`) and its
  mode from WANDB_MODE (`offline` writes OUT/wandb/ without a network); MLflow takes the store
  from MLFLOW_TRACKING_URI and the experiment from MLFLOW_EXPERIMENT_NAME (default `archdsl`).

A resumed run continues the same tracker run: TensorBoard drops the events a killed run wrote
past the checkpoint (`purge_step`), W&B and MLflow reopen the run whose id OUT/tracking.json
keeps.

Every tracker has the same four methods: `scalars(values, step)`, `text(name, text, step)`,
`flush()` (the engine's epoch end: what is written survives a kill) and `close()`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Protocol

from ..lang.errors import TrainError

EXTRAS = ("wandb", "mlflow")  # trackers a recipe can ask for; TensorBoard is always on
IDS = "tracking.json"  # OUT/tracking.json: {"wandb": id, "mlflow": id} to resume the same runs


class Tracker(Protocol):
    def scalars(self, values: dict[str, float], step: int) -> None: ...

    def text(self, name: str, text: str, step: int = 0) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def requested(track: Iterable[str] | str | None) -> tuple[str, ...]:
    """The extra trackers asked for, as a tuple of known names (a comma string is split)."""
    if not track:
        return ()
    names = [t.strip().lower() for t in (track.split(",") if isinstance(track, str) else track)]
    names = [n for n in names if n]
    for name in names:
        if name not in EXTRAS:
            raise TrainError(f"unknown tracker `{name}`", code="E771",
                             hint="trackers: wandb, mlflow (TensorBoard event files are always written)")
    return tuple(dict.fromkeys(names))


def open_trackers(out: Path, track: Iterable[str] | str | None, *, name: str, config: dict,
                  step: int = 0, warn=None) -> list[Tracker]:
    """TensorBoard (when installed; otherwise `warn` is told once) and the extra trackers asked
    for, opened on OUT. `step` > 0 continues a run from that step."""
    out = Path(out)
    extras = requested(track)
    trackers: list[Tracker] = []
    tb = TensorBoard.open(out, step)
    if tb is not None:
        trackers.append(tb)
    elif warn is not None:
        warn("tensorboard is not installed, so this run writes no event files "
             "(pip install 'archdsl[tensorboard]')")
    ids = _read_ids(out)
    try:
        for extra in extras:
            opened = {"wandb": WandB, "mlflow": MLflow}[extra](out, name, config, ids.get(extra))
            ids[extra] = opened.run_id
            trackers.append(opened)
    except BaseException:
        for t in trackers:
            t.close()
        raise
    if extras:
        _write_ids(out, ids)
    return trackers


def _read_ids(out: Path) -> dict[str, str]:
    try:
        ids = json.loads((out / IDS).read_text())
        return {k: v for k, v in ids.items() if isinstance(v, str)} if isinstance(ids, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_ids(out: Path, ids: dict[str, str]) -> None:
    from .checkpoint import atomic_write

    text = json.dumps(ids, indent=1, sort_keys=True).encode()
    atomic_write(out / IDS, lambda f: f.write(text))


def _missing(package: str, extra: str) -> TrainError:
    return TrainError(f"the recipe asks for {extra} tracking, but `{package}` is not installed",
                      hint=f"pip install 'archdsl[{extra}]', or leave `{extra}` out of train.track",
                      code="E772")


def _refused(what: str, e: BaseException, hint: str) -> TrainError:
    detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return TrainError(f"{what} did not start: {detail}"[:300], hint=hint, code="E773")


def markdown_code(text: str) -> str:
    """Text shown verbatim by TensorBoard's markdown text panel: every line indented 4 spaces."""
    return "\n".join("    " + line for line in text.splitlines()) or "    (empty)"


class TensorBoard:
    def __init__(self, writer):
        self.writer = writer

    @classmethod
    def open(cls, out: Path, step: int = 0) -> "TensorBoard | None":
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        # purge_step: events a killed run wrote at or after the resumed step are dropped on read
        return cls(SummaryWriter(log_dir=str(out), purge_step=step if step > 0 else None,
                                 flush_secs=30))

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, global_step=step)

    def text(self, name: str, text: str, step: int = 0) -> None:
        self.writer.add_text(name, markdown_code(text), global_step=step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandB:
    def __init__(self, out: Path, name: str, config: dict, run_id: str | None):
        try:
            import wandb
        except ImportError:
            raise _missing("wandb", "wandb") from None
        try:
            self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "archdsl"), name=name,
                                  dir=str(out), config=config, id=run_id,
                                  resume="allow" if run_id else None, reinit="finish_previous")
        except Exception as e:  # noqa: BLE001 - wandb raises its own kinds (no login, no network)
            raise _refused("W&B", e, "run `wandb login`, or set WANDB_MODE=offline to write "
                                     "OUT/wandb/ and `wandb sync` it later") from None
        self.run_id = self.run.id

    def scalars(self, values: dict[str, float], step: int) -> None:
        self.run.log(dict(values), step=step)

    def text(self, name: str, text: str, step: int = 0) -> None:
        self.run.config.update({name: text}, allow_val_change=True)

    def flush(self) -> None:
        pass  # W&B's service writes as it goes

    def close(self) -> None:
        self.run.finish()


class MLflow:
    def __init__(self, out: Path, name: str, config: dict, run_id: str | None):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise _missing("mlflow", "mlflow") from None
        hint = ("set MLFLOW_TRACKING_URI to a server or store you can write (e.g. http://host:5000 "
                "or sqlite:///mlflow.db)")
        try:
            self.client = MlflowClient()
            experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", "archdsl")
            found = self.client.get_experiment_by_name(experiment)
            exp_id = found.experiment_id if found is not None else self.client.create_experiment(experiment)
            if run_id is not None:
                self.client.update_run(run_id, status="RUNNING")
                self.run_id = run_id
            else:
                self.run_id = self.client.create_run(exp_id, run_name=name).info.run_id
                for key, value in _flat(config).items():
                    self.client.log_param(self.run_id, key, value)
        except Exception as e:  # noqa: BLE001 - MlflowException, connection errors
            raise _refused("MLflow", e, hint) from None

    def scalars(self, values: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in values.items()])

    def text(self, name: str, text: str, step: int = 0) -> None:
        self.client.log_text(self.run_id, text, f"{name}.txt")

    def flush(self) -> None:
        pass  # every call above is written when it returns

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def _flat(config: dict, prefix: str = "") -> dict[str, str]:
    """Nested config as MLflow params: `train.lr` -> "0.001" (values as text, at most 500 chars)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)[:500]
    return out
