"""Chains and trees of step specs: the roadmap table (`chain`), the paper's figures
(`paper`), the Figure-2 plot (`plot`), the table as text (`render`) and training every step
(`train`).

    rows = roadmap_rows()            # a RoadmapRow per step of specs/roadmap

May import `training`, `diff`, `api`, `report` and `lang`; never `cli`."""
from .chain import SUMMARY_PHRASES, Roadmap, RoadmapRow, order, roadmap, roadmap_rows, tree

__all__ = ["SUMMARY_PHRASES", "Roadmap", "RoadmapRow", "order", "roadmap", "roadmap_rows", "tree"]
