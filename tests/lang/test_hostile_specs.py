"""Spec input that used to hang or raise: a FIFO on the spec path, numbers past Python's
int-conversion limit."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import archdsl
from archdsl.lang.errors import ArchError

SPEC = "network k\ninput 3x32x32\nclasses 5\nblock b {{\n    dwconv{k}\n}}\nstages {{\n    8 b x1\n}}\nhead gap, linear\n"


@pytest.mark.parametrize("digits", [31, 4_301, 10_001])
def test_a_number_too_long_for_any_value_is_E310_at_its_place(digits):
    with pytest.raises(ArchError) as e:
        archdsl.loads(SPEC.format(k="7" * digits))
    assert e.value.code == "E310" and f"{digits:,} digits" in e.value.message
    assert (e.value.span.line, e.value.span.column) == (5, 11)


def test_a_long_number_in_a_comment_is_fine():
    net = archdsl.loads(SPEC.format(k="7") + "# " + "9" * 5000 + "\n")
    assert net.name == "k"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_on_the_spec_path_is_not_read(tmp_path):
    os.mkfifo(tmp_path / "pipe.arch")
    (tmp_path / "mine.arch").write_text(SPEC.format(k="7").replace("network k", "network mine"))
    env = {**os.environ, "ARCHDSL_SPEC_PATH": str(tmp_path)}
    code = ("import archdsl, sys\n"
            "print(archdsl.load('mine').name)\n"
            "try:\n    archdsl.load('pipe')\nexcept archdsl.ArchError as e:\n    print(e.code)\n")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["mine", "E201"]
