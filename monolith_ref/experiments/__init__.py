"""The paper's experiments as functions that the notebooks and the CLI call.

* :mod:`~monolith_ref.experiments.collisions`: E1 (collisionless vs MD5-hashed IDs, paper
  §3.2.1, Table 1, Figure 7) and E2 (collisionless vs the quotient-remainder trick under
  drift, Figure 8).

See: book/ch13_collisions_measured.md
"""

from .collisions import (
    E1Result,
    E2Result,
    PAPER_ITEM_RATE,
    PAPER_USER_RATE,
    Preset,
    hash_field_ids,
    main_collisions,
    preset,
    qr_sharing,
    qr_sizing,
    run_e1,
    run_e2,
    split_e1,
)

__all__ = [
    "E1Result",
    "E2Result",
    "PAPER_ITEM_RATE",
    "PAPER_USER_RATE",
    "Preset",
    "hash_field_ids",
    "main_collisions",
    "preset",
    "qr_sharing",
    "qr_sizing",
    "run_e1",
    "run_e2",
    "split_e1",
]
