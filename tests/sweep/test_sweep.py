"""Sweeps on Optuna, run the way a user runs them: CLI worker processes on one study (SQLite
under the output folder, and a real PostgreSQL server), a worker killed mid-trial, bad input.
Everything tiny: a 4-point space, digits, 1 epoch."""
from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from archdsl.sweep.study import retried_from, storage  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TINY = """network tiny_space extends convnext_atto
let {
    w = choice(8, 16)
    k = choice(3, 5)
}
input   3x16x16
classes 10
block convnext {
    residual { dwconv{k}, ln, pwconv 2x, gelu, pwconv 1x }
}
stem   conv2 s2, ln
stages {
    {w}   convnext x1
    {2*w} convnext x1
}
train {
    batch 128
}
"""


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny_space.arch"
    path.write_text(TINY)
    return path


def worker(space: Path, out: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "archdsl", "sweep", str(space), "--epochs", "1",
                             "-o", str(out), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(p: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def the_study(url: str):
    summaries = optuna.get_all_study_summaries(storage(url))
    assert len(summaries) == 1
    return optuna.load_study(study_name=summaries[0].study_name, storage=storage(url))


def check_trials(study, at_least: int) -> list:
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) >= at_least
    for t in done:
        a = t.user_attrs
        assert set(a) >= {"values", "params", "macs", "error", "run"}
        assert a["params"] > 0 and a["macs"] > 0 and 0 <= a["error"] <= 100 and t.value == a["error"]
        assert (Path(a["run"]) / "metrics.jsonl").is_file() or any(Path(a["run"]).iterdir())
    assert len({t.user_attrs["run"] for t in done}) == len(done)
    return done


def test_two_workers_share_one_study(tiny, tmp_path):
    out = tmp_path / "sweep"
    out.mkdir()
    a, b = worker(tiny, out, "--trials", "3"), worker(tiny, out, "--trials", "3")
    for p in (a, b):
        rc, stdout, err = finish(p)
        assert rc == 0 and "Traceback" not in err, err[-2000:]
    study = the_study(f"sqlite:///{out / 'study.db'}")
    done = check_trials(study, 3)
    assert len(done) <= 4  # two workers may each finish the trial they started
    assert study.user_attrs["space_hash"] in study.study_name
    # the same command again: the study is complete, nothing is trained twice
    rc, stdout, err = finish(worker(tiny, out, "--trials", "3"))
    assert rc == 0 and "trial" not in stdout.split("study")[0]
    assert len(check_trials(the_study(f"sqlite:///{out / 'study.db'}"), 3)) == len(done)


def test_a_worker_killed_mid_trial_is_retried_and_nothing_finished_is_lost(tiny, tmp_path):
    out = tmp_path / "sweep"
    p = worker(tiny, out, "--trials", "1", "--heartbeat", "1", "--epochs", "20")  # seconds of training to kill
    deadline = time.time() + 120
    while not (out / "trials" / "00000").exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.1)
    p.send_signal(signal.SIGKILL)
    p.communicate()
    time.sleep(4)  # past the grace period (3 heartbeats)
    rc, stdout, err = finish(worker(tiny, out, "--trials", "1", "--heartbeat", "1"))
    assert rc == 0, err[-2000:]
    study = the_study(f"sqlite:///{out / 'study.db'}")
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    (done,) = check_trials(study, 1)
    assert [t.number for t in failed] == [0]
    assert retried_from(done) == 0 and done.params == failed[0].params


def test_bad_storage_and_a_study_of_another_space(tiny, tmp_path):
    rc, _, err = finish(worker(tiny, tmp_path / "a", "--storage", "postgresql://u:secret@127.0.0.1:9/none"))
    assert rc == 1 and "error[E781]" in err and "cannot open the study storage" in err
    assert "secret" not in err and "Traceback" not in err
    rc, _, err = finish(worker(tiny, tmp_path / "b", "--storage", "nosuchdb://x"))
    assert rc == 1 and "error[E781]" in err and "Traceback" not in err
    other = tmp_path / "other_space.arch"
    other.write_text(TINY.replace("choice(3, 5)", "choice(3, 7)"))
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(storage=storage(db), study_name="mine").set_user_attr("space_hash", "0" * 16)
    rc, _, err = finish(worker(other, tmp_path / "c", "--storage", db, "--study", "mine"))
    assert rc == 1 and "error[E784]" in err and "made from another space" in err


# ---- a real PostgreSQL server, started here as a throwaway cluster ------------------------------

def _pg_bin() -> Path | None:
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / "initdb").is_file():
            return d
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres(tmp_path):
    """A PostgreSQL cluster under tmp_path on a loopback port, run as a non-root user (initdb
    refuses root: as root the cluster runs as `postgres` or `nobody`)."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL's initdb/pg_ctl are not installed (Debian: apt-get install postgresql; "
                    ".ci/run installs it)")
    pytest.importorskip("psycopg", reason="psycopg (in the dev extra) is not installed")
    user = None
    if os.geteuid() == 0:
        import pwd
        user = next((u for u in ("postgres", "nobody") if _exists(pwd, u)), None)
        assert user, "running as root needs a `postgres` or `nobody` user to run the cluster"
    import tempfile
    data = Path(tempfile.mkdtemp(prefix="archdsl-pg-"))  # not under pytest's root-only folder
    os.chmod(data, 0o700)
    if user:
        shutil.chown(data, user)
    port = _free_port()
    def run(*cmd):
        done = subprocess.run(cmd, capture_output=True, text=True, user=user, cwd=data, timeout=120)
        assert done.returncode == 0, f"{cmd[0]}: {done.stderr[-1500:]}"

    run(str(bindir / "initdb"), "-D", str(data / "db"), "-U", "sweep", "--auth=trust", "-E", "UTF8")
    run(str(bindir / "pg_ctl"), "-D", str(data / "db"), "-l", str(data / "log"), "-w", "-o",
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={data}", "start")
    try:
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "sweep", "studies")
        yield f"postgresql://sweep@127.0.0.1:{port}/studies"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop")
        shutil.rmtree(data, ignore_errors=True)


def _exists(pwd, name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def test_workers_on_a_postgresql_server(tiny, tmp_path, postgres):
    a = worker(tiny, tmp_path / "m1", "--trials", "1", "--storage", postgres)
    b = worker(tiny, tmp_path / "m2", "--trials", "1", "--storage", postgres)  # another "machine"'s folder
    for p in (a, b):
        rc, _, err = finish(p)
        assert rc == 0 and "Traceback" not in err, err[-2000:]
    study = the_study(postgres)
    check_trials(study, 1)
    assert getpass.getuser() and not (tmp_path / "m1" / "study.db").exists()  # nothing stored locally


CTRL_C_AT = """
import os, signal, sys
# Ctrl-C live, as in a terminal: a job a script starts in the background (CI's own, say) starts
# with SIGINT ignored, and Python then keeps it ignored (the worker went on and exited 0)
signal.signal(signal.SIGINT, signal.default_int_handler)
from archdsl.training import engine, report
def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)
if sys.argv.pop(1) == "setup":  # before the trainer exists: Python's KeyboardInterrupt
    real_init = engine.Trainer.__init__
    def init_after_ctrl_c(self, *a, **k):
        ctrl_c()
        real_init(self, *a, **k)
    engine.Trainer.__init__ = init_after_ctrl_c
else:  # inside the training loop: the trainer's handler, then Interrupted at the step's end
    real_step = report.Reporter.step
    def step_with_ctrl_c(self, *a, step=None, **k):
        if step == 3:
            ctrl_c()
        return real_step(self, *a, step=step, **k)
    report.Reporter.step = step_with_ctrl_c
from archdsl.cli.main import main
sys.argv[0] = "archdsl"
main()
"""


@pytest.mark.parametrize("when, said", [("setup", "interrupted"), ("loop", "stopped by SIGINT")],
                         ids=["while-the-trial-sets-up", "inside-the-training-loop"])
def test_a_worker_interrupted_with_ctrl_c_leaves_its_trial_to_be_run_again(tiny, tmp_path, when, said):
    """Ctrl-C stops the worker with 130 and a line saying what to do, whether it lands while the
    trial sets up (KeyboardInterrupt) or inside its training loop, where the trainer turns it
    into a saved checkpoint and `Interrupted`. The objective used to take that for a failed trial
    and go on to the next one, so the worker finished with 0. The signal is sent by the worker
    itself at a chosen point, with SIGINT's handler set as in a terminal."""
    out = tmp_path / "sweep"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-c", CTRL_C_AT, when, "sweep", str(tiny), "--epochs", "3",
                          "-o", str(out), "--trials", "1"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    rc, stdout, err = finish(p)
    assert rc == 130 and "Traceback" not in err, (stdout + err)[-3000:]
    assert said in err and "run the same sweep again" in err
    rc, _, err = finish(worker(tiny, out, "--trials", "1"))
    assert rc == 0, err[-2000:]
    study = the_study(f"sqlite:///{out / 'study.db'}")
    (done,) = check_trials(study, 1)
    (failed,) = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert done.user_attrs.get("retry_of") == failed.number and done.params == failed.params


def test_a_folder_of_sampled_points_is_swept_point_by_point(tiny, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    pts = tmp_path / "pts"
    subprocess.run([sys.executable, "-m", "archdsl", "sample", str(tiny), "-n", "2", "--seed", "3", "-o", str(pts)],
                   env=env, check=True, capture_output=True, timeout=120)
    out = tmp_path / "sweep"
    rc, stdout, err = finish(worker(pts, out, "--trials", "5"))
    assert rc == 0, err[-2000:]
    listed = json.loads((pts / "points.json").read_text())["points"]
    done = check_trials(the_study(f"sqlite:///{out / 'study.db'}"), 2)
    assert sorted(str(sorted(t.user_attrs["values"].items())) for t in done) == \
        sorted(str(sorted((k, str(v)) for k, v in p["values"].items())) for p in listed)
