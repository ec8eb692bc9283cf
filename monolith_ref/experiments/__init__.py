"""The paper's experiments as functions that the notebooks and the CLI call.

* :mod:`~monolith_ref.experiments.collisions`: E1, a collisionless table against MD5-hashed
  IDs (:func:`~monolith_ref.experiments.collisions.run_hashed_vs_collisionless`, paper
  §3.2.1, Table 1, Figure 7), and E2, a collisionless table against the quotient-remainder
  trick under drift (:func:`~monolith_ref.experiments.collisions.run_qr_vs_collisionless`,
  Figure 8).
* :mod:`~monolith_ref.experiments.online`: E3, online against batch training
  (:func:`~monolith_ref.experiments.online.run_online_vs_batch`, Table 2, Figures 9 and 10),
  and E5, what a parameter sync costs (:func:`~monolith_ref.experiments.online.run_sync_cost`).
* :mod:`~monolith_ref.experiments.faults`: E6, what parameter-server failures cost with
  snapshots every ``T`` hours (:func:`~monolith_ref.experiments.faults.run_failure_cost`).

See: book/ch13_collisions_measured.md, book/ch14_online_measured.md, book/ch11_fault_tolerance.md
"""

# The package's names are its three modules' public names (each module's ``__all__``).
from . import collisions, faults, online
from .collisions import *  # noqa: F403
from .faults import *  # noqa: F403
from .online import *  # noqa: F403

__all__ = [*collisions.__all__, *online.__all__, *faults.__all__]
