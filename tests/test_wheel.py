"""`pip wheel .` gives a wheel that works outside the repository: the grammar and every
shipped spec inside the package, the commands from any directory, in a fresh venv that
reuses this environment's torch (and other dependencies) through a .pth file."""
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from archdsl.lang.specpath import SHIPPED

ROOT = Path(__file__).resolve().parents[1]


CLEAN = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}   # nothing of the checkout on the path


def run(cmd, cwd, env=None):
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env or CLEAN, timeout=300)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_wheel_installs_and_runs_from_anywhere(tmp_path):
    # --no-build-isolation: setuptools from this environment, nothing downloaded
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
         str(ROOT)], cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("archdsl-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "archdsl/lang/grammar.lark" in names
    shipped = {f"archdsl/specs/{p.relative_to(SHIPPED).as_posix()}" for p in SHIPPED.rglob("*.arch")}
    assert len(shipped) >= 24 and shipped <= names, sorted(shipped - names)

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).strip())
    # the venv sees this environment's packages (torch, lark, ...) after its own; the .pth
    # files there (an editable archdsl) are not read, so archdsl comes from the wheel only
    (site / "reuse_outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
         str(wheel)], cwd=tmp_path)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    where = run([str(python), "-c", "import archdsl, compiler; print(archdsl.__file__); print(compiler.__file__)"],
                elsewhere, env)
    assert all(line.startswith(str(site)) for line in where.split()), where
    assert "28,589,128 params" in run([str(venv / "bin" / "archdsl"), "compile", "convnext_t"], elsewhere, env)
    assert "pwconv 4x" in run([str(venv / "bin" / "archdsl"), "diff", "step05", "step06"], elsewhere, env)
    run([str(python), "-c", "import archdsl; archdsl.build('convnext_t')"],
        elsewhere, env)
    # a spec directory of one's own, by name
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "tiny_net.arch").write_text("network tiny_net extends convnext_atto\nclasses 7\n")
    assert "tiny_net" in run([str(venv / "bin" / "archdsl"), "compile", "tiny_net"], elsewhere,
                             env | {"ARCHDSL_SPEC_PATH": str(mine)})
