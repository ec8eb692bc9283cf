"""Embedding tables that share one protocol (see :mod:`monolith_ref.tables.base`).

See: book/ch03_dict_table.md
"""

from .base import (
    AdmissionFilter,
    EmbeddingTable,
    FilterConfig,
    InvalidGradientsError,
    InvalidIdsError,
    InvalidTimeError,
    StateMismatchError,
    TableBase,
    TableConfig,
    TableError,
    initial_rows,
)
from .cuckoo_table import CuckooInsertError, CuckooMap, CuckooTable
from .dict_table import DictTable, Entry
from .hashed_table import HashedTable, QRHashedTable
from .numba_table import NumbaTable
from .sharded_table import ShardedTable

__all__ = [
    "AdmissionFilter",
    "CuckooInsertError",
    "CuckooMap",
    "CuckooTable",
    "DictTable",
    "EmbeddingTable",
    "Entry",
    "FilterConfig",
    "HashedTable",
    "InvalidGradientsError",
    "InvalidIdsError",
    "InvalidTimeError",
    "NumbaTable",
    "QRHashedTable",
    "ShardedTable",
    "StateMismatchError",
    "TableBase",
    "TableConfig",
    "TableError",
    "initial_rows",
]
