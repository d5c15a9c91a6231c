"""Near-miss suggestions for hints: "did you mean `dwconv7`?"."""
from __future__ import annotations

import difflib


def did_you_mean(word: str, choices: list[str], n: int = 2) -> str:
    close = difflib.get_close_matches(word, choices, n=n, cutoff=0.6)
    if not close:
        return ""
    return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
