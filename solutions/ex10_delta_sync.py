"""Exercise 10.1 (solution): push only what changed (a touched-key delta sync).

See exercises/ex10_delta_sync.py for the spec and book/ch10_sync.md for the idea.
"""

from __future__ import annotations

import numpy as np

from monolith_ref.tables import EmbeddingTable


def delta_sync(table: EmbeddingTable, replica: dict[int, np.ndarray]) -> int:
    """Export the touched IDs' rows, copy them in, and delete the touched IDs that are gone."""
    keys = table.pop_touched()
    state = table.export(keys)  # only the present ones among the touched keys, sorted
    present = state["ids"].tolist()
    for key, row in zip(present, state["embeddings"]):
        replica[int(key)] = np.array(row, dtype=np.float32)  # a copy of its own
    gone = set(keys.tolist()) - set(present)
    for key in gone:
        replica.pop(int(key), None)  # removed since the last sync (or inserted and expired)
    return len(present)
