"""Data for the experiments: synthetic ID streams (and, in later chapters, file loaders).

See: book/ch02_collisions.md
"""

from .zipf import zipf_ids, zipf_probabilities

__all__ = ["zipf_ids", "zipf_probabilities"]
