"""A tiny run of the RemoteTable benchmark (``monolith_ref.bench.remote``), so that it cannot rot.

Nothing here asserts a speed: the run checks that every contestant has a number for every
operation and batch size, that the overheads were measured, and that the report prints and
saves. The benchmark itself checks that the remote tables answer like the in-process ones.
"""

from __future__ import annotations

import json

from monolith_ref.bench.remote import CONTESTANTS, OPS, run_remote_benchmark


def test_remote_benchmark_smoke(cluster, tmp_path) -> None:
    result = run_remote_benchmark(batch_sizes=(32, 300), dim=4, resident=2000, repeats=2, min_ids=600,
                                  cluster=cluster, overhead_calls=5)
    for key in CONTESTANTS:
        for op in OPS:
            for batch in (32, 300):
                m = result.get(key, op, batch)
                assert m is not None and len(m.seconds_per_batch) == 2 and m.ids_per_s > 0
    assert set(result.overhead) == {"empty_rpc_ms", "remote_lookup_1_ms", "remote2_lookup_1_ms", "local_lookup_1_ms"}
    text = result.table()
    assert "RemoteTable, 2 PS (RPC)" in text and "empty RPC round trip" in text and "batch 300" in text
    result.to_json(tmp_path / "remote.json")
    saved = json.loads((tmp_path / "remote.json").read_text())
    assert len(saved["measurements"]) == len(CONTESTANTS) * len(OPS) * 2
    assert all(c.alive(i) for c in [cluster] for i in range(2)), "the given cluster is left running"
