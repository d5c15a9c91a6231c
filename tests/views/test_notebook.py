"""examples/roadmap.ipynb runs top to bottom in a real Jupyter kernel (nbclient + ipykernel),
and its cells show archdsl's views (HTML with the tables and SVG diagrams)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]


def test_roadmap_notebook_runs(tmp_path, monkeypatch):
    nb = nbformat.read(REPO / "examples" / "roadmap.ipynb", as_version=4)
    # A kernel spec of this interpreter, found first on JUPYTER_PATH: whatever a fresh venv has
    # installed (or not), the kernel is this Python with this checkout's archdsl, on one thread.
    spec = tmp_path / "kernels" / "archdsl-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f",
                                                           "{connection_file}"],
                                                  "display_name": "archdsl test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    NotebookClient(nb, kernel_name="archdsl-test", timeout=300,
                   resources={"metadata": {"path": str(REPO / "examples")}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o["data"]["text/html"] for o in outputs if o.output_type == "execute_result" and "text/html" in o["data"]]
    assert len(html) == 8  # network, report, roadmap, diff, patch, diff, summary, training result
    assert "<svg" in html[0] and "bottleneck" in html[0]
    assert "25,557,032" in html[1]                         # ResNet-50, as torchvision counts it
    assert "step06_inverted" in html[2] and "82.0" in html[2]  # Table 10: ConvNeXt-T at 82.0%
    assert "-7,909,536 (-23.4%)" in html[3]
    assert "`relu` -&gt; `gelu`" in html[4]
    assert "28,589,128" in html[6]                          # step 13 is ConvNeXt-T
    assert "val acc" in html[7] and "<svg" in html[7]
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "28,589,128 params, 4.46 GMACs per image" in printed
