"""The semantic diff of two resolved networks: `compare` pairs sections, blocks and ops
(`opdiff`), `model` is its JSON schema (`DiffModel`), `render` prints it.

    d = archdsl.diff("step05", "step06")     # a `Diff`
    Diff.from_json(d.to_json()) == d

May import `archdsl.api`, `archdsl.report` and `archdsl.lang` (and through them `compiler`);
never `roadmap`, `interop`, `training` or `cli`."""
from .change import apply, between, change
from .compare import Checked, Diff, compare, compare_checked, diff, facts_of
from .model import Change, Cost, DiffModel, SpecRef

__all__ = ["apply", "between", "change", "Change", "Checked", "Cost", "Diff", "DiffModel", "SpecRef", "compare", "compare_checked", "diff",
           "facts_of"]
