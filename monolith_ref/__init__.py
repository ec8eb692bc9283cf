"""monolith_ref: a readable reference implementation of ByteDance's Monolith.

The package grows chapter by chapter with the book: hashing and collisions (chapter 2), the
table protocol and the pure-Python collisionless table (chapter 3), and what follows.

See: book/preface.md
"""

from . import data, filters, hashing, optim, tables
from .optim import FTRL, SGD, Adagrad
from .tables import DictTable, EmbeddingTable, HashedTable, QRHashedTable, TableConfig

__version__ = "0.1.0"

__all__ = [
    "Adagrad",
    "FTRL",
    "DictTable",
    "EmbeddingTable",
    "HashedTable",
    "QRHashedTable",
    "SGD",
    "TableConfig",
    "__version__",
    "data",
    "filters",
    "hashing",
    "optim",
    "tables",
]
