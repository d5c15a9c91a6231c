"""`archdsl sweep SPACE|DIR ...` (train points of a space on Optuna) and
`archdsl sweep report STUDY ...` (EDFs, marginals, best points, HTML)."""
# No `from __future__ import annotations`: typer reads the real annotations of the commands.

from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from ..lang.errors import ArchError
from .common import SetOpt, fail, failed, overrides, say, shout, usage


class _RunByDefault(TyperGroup):
    """`archdsl sweep SPACE ...` is `archdsl sweep run SPACE ...`; `archdsl sweep report ...` reports."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


sweep_app = typer.Typer(cls=_RunByDefault, no_args_is_help=True, add_completion=False,
                        help="Train points of a design space on Optuna (`sweep SPACE`), then compare studies "
                        "(`sweep report STUDY`).")

StorageOpt = Annotated[Optional[str], typer.Option("--storage", help="Optuna storage URL shared by the workers, e.g. "
                                                   "postgresql://user:pass@host/db (default: an SQLite file "
                                                   "OUT/study.db).")]


@sweep_app.command("run")
def run_cmd(spec: Annotated[str, typer.Argument(help="A space (name or .arch path) or a folder written by "
                                                "`archdsl sample`.")],
            trials: Annotated[int, typer.Option("--trials", help="Finished trainings the study should hold.",
                                                min=1, max=100_000)] = 8,
            epochs: Annotated[int, typer.Option("--epochs", help="Epochs per trial.", min=1, max=10_000)] = 2,
            data: Annotated[str, typer.Option("--data", help="digits or an ImageFolder directory.")] = "digits",
            out: Annotated[Path, typer.Option("-o", "--out", help="Folder for the study and the runs.")] = Path("sweeps"),
            storage: StorageOpt = None,
            study: Annotated[Optional[str], typer.Option("--study", help="Study name (default: SPACE-HASH).")] = None,
            sampler: Annotated[str, typer.Option("--sampler", help="random or tpe.")] = "random",
            seed: Annotated[int, typer.Option("--seed", min=0, max=2**31 - 1)] = 0,
            macs: Annotated[Optional[str], typer.Option("--macs", help="Train only points in this MACs "
                                                        "window, e.g. 1G:2G.")] = None,
            params: Annotated[Optional[str], typer.Option("--params", help="... and this params window.")] = None,
            heartbeat: Annotated[float, typer.Option("--heartbeat", help="Seconds between a trial's heartbeats; "
                                                     "a trial silent for 3x this is failed and retried.",
                                                     min=1, max=3600)] = 10,
            set_: SetOpt = None) -> None:
    """Train points of SPACE (or the points in DIR), one short recipe each, recording values,
    params, MACs, error and run path on an Optuna study. Run it again (or on several machines
    with one --storage) to resume or add workers."""
    from ..spaces.sample import parse_window
    from ..sweep.run import SweepConfig, run_sweep
    from ..training.engine import Interrupted

    if sampler not in ("random", "tpe"):
        usage(f"--sampler takes random or tpe, not `{sampler}`")
    if data != "digits" and not Path(data).exists():  # else every trial fails on it, 200 draws long
        from ..lang.errors import DataError

        fail(DataError(f"data directory {data} does not exist", code="E701",
                       hint="--data digits, or an ImageFolder directory with train/ and val/"))
    if out.exists() and not out.is_dir():  # else the mkdir's OSError reads as "cannot write the output"
        failed(f"-o `{out}` is a file; the study and its runs need a folder")
    try:
        cfg = SweepConfig(spec=spec, trials=trials, epochs=epochs, data=data, out=out, storage=storage, study=study,
                          sampler=sampler, seed=seed, macs=parse_window(macs, "macs") if macs else None,
                          params=parse_window(params, "params") if params else None, overrides=overrides(set_),
                          heartbeat=heartbeat, grace=3 * heartbeat)
        summary = run_sweep(cfg, log=lambda line: say(line))
    except (Interrupted, KeyboardInterrupt) as e:  # exit as the signal says, like `train`
        stopped = e.message if isinstance(e, Interrupted) else "interrupted"
        shout(f"{stopped}\nhelp: the trial it was running is failed; run the same sweep again to run it again")
        raise typer.Exit(e.exit_code if isinstance(e, Interrupted) else 130)
    except ArchError as e:
        fail(e)
    states = ", ".join(f"{n} {k}" for k, n in summary["states"].items() if n)
    say(f"study {summary['study']} ({summary['storage']}): {states}; best error {summary['best']:.2f}%"
        if summary["best"] is not None else f"study {summary['study']}: {states}")


def register(app: typer.Typer) -> None:
    app.add_typer(sweep_app, name="sweep")


@sweep_app.command("report")
def report_cmd(study: Annotated[str, typer.Argument(help="A sweep's output folder, or a study name with --storage.")],
               out: Annotated[Path, typer.Option("-o", "--out", help="Folder for index.html, edf.png, "
                                                 "report.json and the best points' specs.")],
               compare: Annotated[Optional[list[str]], typer.Option("--compare", help="Another study to draw on "
                                                                    "the same plots (repeatable).")] = None,
               storage: StorageOpt = None,
               json_: Annotated[bool, typer.Option("--json", help="Print the report's JSON.")] = False) -> None:
    """Compare studies: error EDFs (plain and complexity-normalized), per-value marginals with
    bootstrap intervals, the best points as specs, one HTML page."""
    import json

    from ..sweep.report import load, write_report

    if out.exists() and not out.is_dir():  # said first: loading the studies can fail for another reason
        failed(f"-o `{out}` is a file; the report needs a folder")
    try:
        studies = [load(s, url=storage) for s in [study, *(compare or [])]]
        empty = [s.name for s in studies if not s.points]
        if empty:
            usage(f"the study {empty[0]} has no finished trial to report")
        data = write_report(studies, out)
    except ArchError as e:
        fail(e)
    except OSError as e:
        failed(f"cannot write the report to `{out}`: {e.strerror or e}")
    if json_:
        print(json.dumps(data, indent=2))
        return
    for s in data["studies"]:
        say(f"{s['study']}: {s['points']} points, error min {s['error']['min']:.2f}% median "
            f"{s['error']['median']:.2f}% max {s['error']['max']:.2f}%; best as {', '.join(s['best_specs'])}")
    say(f"report: {out / 'index.html'}")
