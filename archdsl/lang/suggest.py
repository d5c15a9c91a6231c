"""Near-miss suggestions for hints: "did you mean `dwconv7`?"."""
from __future__ import annotations

import difflib
import re


def did_you_mean(word: str, choices: list[str], n: int = 2) -> str:
    close = difflib.get_close_matches(word, choices, n=n, cutoff=0.6)
    if not close:
        return ""
    return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?"


def suggest_op(word: str, registry: dict) -> str:
    """The hint for an unknown op word. An op is suggested only where the word is close to
    what the registry marks as that op's own spellings: its name when the name is long enough
    that one letter more or less is a typo (`dwcnv7` -> `dwconv7`), and the other names it is
    known by (`swish` -> `silu`, `batchnorm` -> `bn`). Short names are suggested only for a
    doubled key or a change of case (`lnn`, `LN` -> `ln`), not guessed at (`grn` is not a
    misspelt `gn`): then the hint says where the list is."""
    spellings: dict[str, str] = {}
    for name, op in registry.items():
        if len(name) >= 4:
            if op.kernel:
                spellings.update({f"{name}{k}": f"{name}{k}" for k in (1, 3, 5, 7)})
            else:
                spellings[name] = name
        for other in op.related:
            spellings[other] = f"{name}K" if op.kernel else name
    if word.lower() in spellings:
        return f"it is called `{spellings[word.lower()]}` here"
    undoubled = re.sub(r"(.)\1+", r"\1", word.lower())
    short = [name for name in registry if len(name) < 4 and undoubled == name]
    if short:
        return f"did you mean `{short[0]}`?"
    close = difflib.get_close_matches(word, list(spellings), n=3, cutoff=0.75)
    targets = list(dict.fromkeys(spellings[c] for c in close))[:2]
    if targets:
        return "did you mean " + " or ".join(f"`{t}`" for t in targets) + "?"
    return f"`{word}` is not an op; the ops are listed in docs/language.md"
