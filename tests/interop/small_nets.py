"""Small versions of the shipped specs for the export tests: 3x32x32, 10 classes, one or two
blocks per stage (however many stages the spec has), small widths where the spec allows them,
and Swin's windows 4x4 (7x7 windows do not tile 32x32's 8x8 first stage)."""
import archdsl
from archdsl.lang.errors import ArchError

WINDOW = {name: {"swin.wattn.kernel": 4} for name in ("swin_t", "swin_s", "swin_b")}


def small(name: str) -> dict:
    """One block per stage; two where one would leave a construct untested: Swin's second
    block shifts its windows, and a `shortcut none` residual adds only from a stage's second block."""
    kw = {"input": "3x32x32", "classes": 10, **WINDOW.get(name, {})}
    stages = len(archdsl.analyze(name, **kw).network.stages)
    kw["depths"] = ",".join(["1"] * stages)
    try:
        archdsl.check(name, **kw)
    except ArchError:  # e.g. a residual that can never apply with one block per stage
        kw["depths"] = ",".join(["2"] * stages)
    if name in WINDOW:
        kw["depths"] = ",".join(["2"] * stages)
    if stages == 4:
        try:
            archdsl.analyze(name, **kw, widths="32,64,128,256")
            kw["widths"] = "32,64,128,256"
        except ArchError:  # groups must still divide: its own widths then
            pass
    return kw
