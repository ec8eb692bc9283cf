"""Zipf-distributed streams of sparse 64-bit IDs: the long tail of real recommender traffic.

Real ID traffic is skewed: a few IDs are seen millions of times and most only a handful
(paper section 2.1). A Zipf law with exponent ``alpha`` gives rank ``r`` a probability
proportional to ``r**-alpha``. Ranks are turned into sparse 64-bit IDs with a seeded mixer,
so the IDs look like the large, scattered values that production features carry.

See: book/ch02_collisions.md
"""

from __future__ import annotations

import numpy as np

from ..hashing import mix64

__all__ = ["zipf_probabilities", "zipf_ids"]


def zipf_probabilities(vocab: int, alpha: float) -> np.ndarray:
    """Probabilities of ranks ``1..vocab`` under a truncated Zipf law with exponent ``alpha``.

    See: book/ch02_collisions.md
    """
    if int(vocab) < 1:
        raise ValueError(f"vocab must be >= 1, got {vocab}")
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
    weights = np.arange(1, int(vocab) + 1, dtype=np.float64) ** -float(alpha)
    return weights / weights.sum()


def zipf_ids(num_events: int, vocab: int, alpha: float = 1.1, seed: int = 0) -> np.ndarray:
    """``num_events`` uint64 IDs drawn from ``vocab`` distinct IDs with Zipf(``alpha``) popularity.

    The same ``(vocab, seed)`` always maps a rank to the same ID, so streams drawn with
    different ``num_events`` share their vocabulary. See: book/ch02_collisions.md
    """
    if int(num_events) < 0:
        raise ValueError(f"num_events must be >= 0, got {num_events}")
    probs = zipf_probabilities(vocab, alpha)
    rng = np.random.default_rng(seed)
    ranks = rng.choice(int(vocab), size=int(num_events), p=probs)
    return mix64(ranks.astype(np.uint64), seed)
