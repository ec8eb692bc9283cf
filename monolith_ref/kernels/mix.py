"""splitmix64 for compiled code: the mixer every kernel hashes keys with.

:func:`monolith_ref.hashing.splitmix64` works on NumPy arrays; a kernel needs the same
finaliser on one ``np.uint64`` at a time, inlined into its loop. ``splitmix(id + offset)``,
with ``offset = seed_offset(seed)``, equals ``mix64(id, seed)``.

See: book/ch06_numba.md
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["splitmix"]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True, nogil=True, inline="always")
def splitmix(z: np.uint64) -> np.uint64:
    """The splitmix64 finaliser of one ``np.uint64`` (wrap-around arithmetic).

    See: book/ch06_numba.md
    """
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))
