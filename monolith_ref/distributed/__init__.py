"""Parameter servers as processes: the table protocol over ``torch.distributed.rpc``.

Monolith's workers keep no embeddings: the tables are sharded over parameter servers (PS),
and a batch's IDs travel to the PS that own them (paper §2, Figure 2). A failed PS comes
back from its last snapshot while the others keep their state (§2.3). This package builds
that on one machine (or several):

* :mod:`~monolith_ref.distributed.ps`: a PS process, holding table shards by table id;
* :class:`RemoteTable`: the trainer's view, routing like :class:`~monolith_ref.tables.ShardedTable`;
* :class:`Cluster`: start PS processes here, kill one, restart it from its snapshots;
* :mod:`~monolith_ref.distributed.group`: joining the RPC group on the right interface;
* :mod:`~monolith_ref.distributed.snapshots`: what each PS writes to come back.

See: book/ch12_distributed.md
"""

from .cluster import Cluster, connect_trainer, disconnect_trainer
from .errors import PSUnavailableError, RemoteError, TableNotFoundError
from .group import TRAINER, ps_names
from .ps import PSServer, main_ps, run_ps
from .remote_table import RemoteTable

__all__ = [
    "Cluster",
    "PSServer",
    "PSUnavailableError",
    "RemoteError",
    "RemoteTable",
    "TRAINER",
    "TableNotFoundError",
    "connect_trainer",
    "disconnect_trainer",
    "main_ps",
    "ps_names",
    "run_ps",
]
