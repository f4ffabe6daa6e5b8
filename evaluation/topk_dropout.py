"""Which stocks Qlib's ``TopkDropoutStrategy`` (method_sell="bottom", method_buy="top") wants to sell and buy.

All arrays run over the same instrument axis, sorted ascending by name. Ordering rule used for every ranking:
score descending, then instrument ascending, with missing scores last (in instrument order). That is what Qlib's
pandas sort gives when the sort is stable (Qlib's score series is indexed by instrument in ascending order); for
exactly tied scores among more than 16 names Qlib's default quicksort may order ties differently, which real
model scores practically never produce.

Qlib's list arithmetic is reproduced literally, including its edge cases: ``n_drop + topk - len(held)`` and
``len(sell) + topk - len(held)`` are used as Python slice ends even when they are zero or negative (so
"keep all but the last k"), and with ``only_tradable`` its "first n tradable" helper returns one name when n <= 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Selection:
    sell: np.ndarray  # indices of held stocks the strategy wants to drop (instrument order)
    buy: np.ndarray  # indices of stocks to buy, best score first; len(buy) splits the cash


def rank_by_score(idx: np.ndarray, score: np.ndarray) -> np.ndarray:
    """``idx`` ordered by score descending, ties by index (instrument) ascending, NaN scores last."""
    s = score[idx]
    missing = np.isnan(s)
    return idx[np.lexsort((idx, -np.where(missing, 0.0, s), missing))]


def _first_tradable(ordered: np.ndarray, n: int, tradable: np.ndarray) -> np.ndarray:
    ok = ordered[tradable[ordered]]
    return ok[:1] if n <= 0 else ok[:n]


def _last_tradable(ordered: np.ndarray, n: int, tradable: np.ndarray) -> np.ndarray:
    ok = ordered[tradable[ordered]]
    return ok[-1:] if n <= 0 else ok[-n:]


def select(
    score: np.ndarray,
    has_score: np.ndarray,
    held: np.ndarray,
    tradable: np.ndarray,
    topk: int,
    n_drop: int,
    only_tradable: bool,
) -> Selection:
    """One day's decision.

    ``score`` holds the previous day's scores (NaN where missing), ``has_score`` marks the names present in that
    day's score rows (a present NaN score is still a candidate, ranked last), ``held`` the current holdings and
    ``tradable`` the names neither suspended nor at either price limit today (used only with ``only_tradable``).
    """
    held_idx = np.flatnonzero(held)
    n_held = held_idx.size
    candidates = rank_by_score(np.flatnonzero(has_score & ~held), score)
    n_new = n_drop + topk - n_held
    today = _first_tradable(candidates, n_new, tradable) if only_tradable else candidates[:n_new]
    combined = rank_by_score(np.concatenate([held_idx, today]), score)
    bottom = _last_tradable(combined, n_drop, tradable) if only_tradable else combined[-n_drop:]
    sell = held_idx[np.isin(held_idx, bottom)]
    buy = today[: sell.size + topk - n_held]
    return Selection(sell=sell, buy=buy)
