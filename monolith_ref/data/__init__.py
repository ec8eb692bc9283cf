"""Data for the experiments: synthetic ID streams, the drifting synthetic event stream, and
loaders for MovieLens and Criteo files. Every event source returns an
:class:`~monolith_ref.events.Events` (the schema lives in :mod:`monolith_ref.events`, re-exported
here for readers).

See: book/ch02_collisions.md, book/ch08_deepfm.md
"""

from ..events import Events, field_ids, field_seed
from .criteo import count_lines, day_of_line, iter_criteo, load_criteo
from .movielens import RATING_THRESHOLD, detect_format, load_movielens, read_ratings
from .synthetic import Burst, StreamConfig, SyntheticWorld, describe, synthetic_stream
from .zipf import zipf_ids, zipf_probabilities

__all__ = [
    "zipf_ids",
    "zipf_probabilities",
    "Burst",
    "Events",
    "StreamConfig",
    "SyntheticWorld",
    "describe",
    "field_ids",
    "field_seed",
    "synthetic_stream",
    "RATING_THRESHOLD",
    "detect_format",
    "load_movielens",
    "read_ratings",
    "count_lines",
    "day_of_line",
    "iter_criteo",
    "load_criteo",
]
