"""'Did you mean ...?' for a misspelt key or group option, found with difflib."""

import difflib


def did_you_mean(word, candidates):
    """' (did you mean 'lr_schedule.lr'?)' for the candidate closest to ``word``, else ''.

    A dotted candidate also matches by its last part, so that ``lr`` finds ``lr_schedule.lr``
    (difflib alone scores the two 0.25 apart)."""
    candidates = sorted(set(map(str, candidates)))
    by_leaf = {}
    for c in candidates:
        by_leaf.setdefault(c.rsplit(".", 1)[-1], []).append(c)
    word = str(word)
    if word in by_leaf and word not in candidates:
        return f" (did you mean {' or '.join(repr(c) for c in by_leaf[word])}?)"
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if not close:
        leaf = difflib.get_close_matches(word.rsplit(".", 1)[-1], list(by_leaf), n=1, cutoff=0.75)
        close = by_leaf[leaf[0]] if leaf else []
    return f" (did you mean {close[0]!r}?)" if close else ""
