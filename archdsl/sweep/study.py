"""Opening a sweep's Optuna study: its storage (an SQLite file under the output folder by
default, or any URL Optuna's RDB storage takes: postgresql://, mysql://), its name (the space's
name and content hash), and the checks that keep one study to one space.

Trials record heartbeats: a worker killed mid-trial leaves a trial that the next worker to start
a trial marks failed (after `grace` seconds without a beat) and retries with the same values."""
from __future__ import annotations

import os
import time
from pathlib import Path

from ..lang.errors import ArchError

HEARTBEAT_S = 10
GRACE_S = 30


class SweepError(ArchError):
    code = "E780"


def quiet_optuna() -> None:
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a trial that fails is reported by the worker itself
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _retry() -> dict:
    """The storage argument that retries a trial whose heartbeat stopped (its name changed in
    Optuna 4.9)."""
    from optuna import storages

    if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):
        return {"heartbeat_stale_trial_callback": storages.RetryHeartbeatStaleTrialCallback(max_retry=3)}
    return {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=3)}


def retried_from(trial) -> int | None:
    """The number of the killed trial this one retries, or None."""
    from optuna import storages

    callback = getattr(storages, "RetryHeartbeatStaleTrialCallback", None) or storages.RetryFailedTrialCallback
    return callback.retried_trial_number(trial)


def default_url(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


def storage(url: str, heartbeat: float = HEARTBEAT_S, grace: float = GRACE_S):
    """Optuna's RDB storage on `url`, with heartbeats and retries of trials killed mid-run.
    A URL that cannot be reached is SweepError E781 naming the cause, never a traceback."""
    quiet_optuna()
    kwargs: dict = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 120}  # several workers on one file wait for its lock
    elif url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        return _rdb_storage(url, heartbeat, grace, kwargs)
    except ImportError as e:  # no driver for the URL's database (Optuna re-raises it as ImportError)
        raise SweepError(f"cannot open the study storage `{_shown(url)}`: its database driver is not installed "
                         f"({_first_line(e)})", hint="for PostgreSQL: pip install 'psycopg[binary]' (or "
                         "psycopg2-binary with a postgresql+psycopg2:// URL); for MySQL: pip install pymysql",
                         code="E781") from None
    except Exception as e:  # sqlalchemy's OperationalError, ArgumentError, ... : one line
        raise SweepError(f"cannot open the study storage `{_shown(url)}`: {_first_line(e)}",
                         hint="check the URL (e.g. postgresql://user:pass@host:5432/db) and that the server "
                         "is running and reachable", code="E781") from None


def _rdb_storage(url: str, heartbeat: float, grace: float, kwargs: dict):
    from optuna.storages import RDBStorage

    for attempt in range(5):
        try:
            return RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=max(1, int(heartbeat)),
                              grace_period=max(2, int(grace)), **_retry())
        except ImportError:
            raise
        except Exception as e:  # workers that start together race to create the tables: one wins
            text = str(e).lower()
            if attempt < 4 and any(s in text for s in ("duplicate key", "already exists", "locked",
                                                       "unique constraint")):
                time.sleep(1 + attempt)
                continue
            raise


def _shown(url: str) -> str:
    """The URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
    return url


def _first_line(e: Exception) -> str:
    text = str(getattr(e, "orig", None) or e).strip().split("\n")[0]
    return text[:300] or type(e).__name__


def open_study(store, name: str, space_hash: str, space_path: str, sampler: str = "random",
               seed: int = 0, create: bool = True):
    """The study `name`, created if absent (and `create`); SweepError when it belongs to
    another space (its recorded content hash differs)."""
    import optuna

    samplers = {"random": lambda: optuna.samplers.RandomSampler(seed=seed),
                "tpe": lambda: optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)}
    if sampler not in samplers:
        raise SweepError(f"unknown sampler `{sampler}`", hint="samplers: random, tpe", code="E782")
    try:
        if create:
            study = optuna.create_study(storage=store, study_name=name, direction="minimize",
                                        sampler=samplers[sampler](), load_if_exists=True)
        else:
            study = optuna.load_study(storage=store, study_name=name, sampler=samplers[sampler]())
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(store)]
        raise SweepError(f"no study `{name}` in the storage",
                         hint=("studies there: " + ", ".join(names)) if names else "the storage holds no study",
                         code="E783") from None
    except Exception as e:
        raise SweepError(f"cannot open the study `{name}`: {_first_line(e)}", code="E781") from None
    recorded = study.user_attrs.get("space_hash")
    if recorded is None and create:
        study.set_user_attr("space_hash", space_hash)
        study.set_user_attr("space_path", space_path)
        study.set_user_attr("created_by", f"archdsl sweep (pid {os.getpid()})")
    elif recorded is not None and space_hash and recorded != space_hash:
        raise SweepError(f"the study `{name}` was made from another space (content {recorded}, "
                         f"`{study.user_attrs.get('space_path')}`), not this one ({space_hash})",
                         hint="a study holds the points of one space; name a new study with --study, or "
                         "sweep the space it was made from", code="E784")
    return study
