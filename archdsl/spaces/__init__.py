"""Design spaces above the language: drawing points (`sampler`), costing them fast and without
torch (`cost`), and sampling points inside a complexity window and writing them as specs
(`sample`). The syntax of spaces (`let`, `require`, open words) is `lang/`'s.

May import `lang`, `report` and `api` (whose `analyze` is the one check-and-count), nothing above: the sweeps
(`archdsl/sweep`) and the CLI import this room, never the other way round."""
