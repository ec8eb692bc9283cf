"""Set-up of the distributed tests: PS processes on 127.0.0.1, started once and always stopped.

A process can be in one RPC group at a time, so the tests share one :class:`ClusterPool`:
``pool.get(key, **settings)`` returns the running cluster if it was started under ``key``,
and otherwise shuts that one down and starts a new one. The plain tests share the
``"shared"`` cluster (2 PS); the kill/restart tests get their own. The pool shuts down what
runs at the end of the session, whatever happened, and a cluster found with a dead PS (or
with this process out of its group) is replaced rather than reused.
"""

from __future__ import annotations

import pytest

torch_rpc = pytest.importorskip("torch.distributed.rpc")
if not torch_rpc.is_available():  # pragma: no cover - depends on the torch build
    pytest.skip("this torch build has no torch.distributed.rpc", allow_module_level=True)

from monolith_ref.distributed import Cluster  # noqa: E402
from monolith_ref.distributed.group import in_group  # noqa: E402


class ClusterPool:
    """At most one running :class:`Cluster`, started on demand under a key."""

    def __init__(self) -> None:
        self.cluster: Cluster | None = None
        self.key: str | None = None
        self.starts = 0

    def get(self, key: str, **settings) -> Cluster:
        c = self.cluster
        if c is not None and self.key == key and in_group() and all(c.alive(i) for i in range(c.num_ps)):
            return c
        self.close()
        self.cluster = Cluster(**settings)
        self.key = key
        self.starts += 1
        return self.cluster

    def close(self) -> None:
        if self.cluster is not None:
            try:
                self.cluster.shutdown()
            finally:
                self.cluster, self.key = None, None


@pytest.fixture(scope="session")
def cluster_pool():
    pool = ClusterPool()
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def cluster(cluster_pool) -> Cluster:
    """The shared 2-PS cluster (no snapshots)."""
    return cluster_pool.get("shared", num_ps=2)
