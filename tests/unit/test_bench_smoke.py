"""A tiny run of every benchmark code path (``monolith_ref.bench``), so that it cannot rot.

Benchmarks are not timed tests: nothing here asserts a speed. The run checks the structure
of the result, that every contestant produced a number for every workload it supports, that
the contestants agreed with NumbaTable bit for bit, and that the JSON, the text table and
the plot can be written. See: book/ch06_numba.md
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("pandas")

from monolith_ref.bench import TABLE_BENCH_CONFIGS, BenchResult, make_workloads, run_benchmarks  # noqa: E402
from monolith_ref.bench.peers import (  # noqa: E402
    CollisionlessEmbedding,
    DictArena,
    PandasTable,
    PeerConfig,
    TypedDictTable,
)
from monolith_ref.bench.runner import CEILING, PEER_ORDER  # noqa: E402

EXPECTED = {
    # peer -> workloads it must have a number for
    "seed_mock": "all",
    "dict_table": "all",
    "dict_arena": "all",
    "typed_dict": "all",
    "pandas": "all",
    "torch_hashed": {"hits", "train_256", "train_1024", "apply"},
    "ceiling_numpy": "all",
    "ceiling_njit": "all",
    "numba": "all",
    "sharded_1t": "all",
    "sharded_2t": "all",
}


@pytest.fixture(scope="module")
def result() -> BenchResult:
    return run_benchmarks(size="smoke", dims=(4, 8), repeats=1, progress=False, seed=3, kernel_timings=False)


def test_every_peer_produced_numbers(result: BenchResult) -> None:
    workloads = set(result.workloads)
    assert workloads == {"hits", "train_256", "train_1024", "train_filter_256", "train_filter_1024", "apply", "expire"}
    for dim in (4, 8):
        for peer, expected in EXPECTED.items():
            wanted = workloads if expected == "all" else expected
            for w in wanted:
                rate = result.rate(dim, w, peer)
                assert rate is not None and math.isfinite(rate) and rate > 0, (dim, w, peer)
        assert result.rate(dim, "expire", "torch_hashed") is None  # a fixed table does not expire
        assert result.rate(dim, "hits", CEILING) == max(result.rate(dim, "hits", "ceiling_numpy"),
                                                         result.rate(dim, "hits", "ceiling_njit"))
    assert result.peers() == PEER_ORDER


def test_contestants_agree_bit_for_bit(result: BenchResult) -> None:
    assert result.checks, "the run compares outputs"
    bad = [c for c in result.checks if not c["agree"]]
    assert not bad, bad
    peers_checked = set().union(*(c["peers"] for c in result.checks))
    assert {"numba", "dict_table", "dict_arena", "typed_dict", "pandas", "sharded_1t", "sharded_2t"} <= peers_checked


def test_table_targets_memory_and_files(result: BenchResult, tmp_path) -> None:
    text = result.table()
    for word in ("seed's mock", "NumbaTable", "pandas", "ceiling", "targets", "memory per resident ID"):
        assert word in text
    targets = result.targets()
    assert targets and all(len(t) == 4 for t in targets)
    for name, ratio, goal, met in targets:
        assert isinstance(name, str) and math.isfinite(ratio) and goal > 0 and isinstance(met, bool)
    assert any("seed's mock" in t[0] for t in targets) and any("memory" in t[0] for t in targets)
    per_id = result.memory_per_id(4, "numba")
    assert per_id is not None and per_id >= 2 * 4 * 4  # at least embedding + Adagrad state

    path = tmp_path / "tables.json"
    result.to_json(path)
    data = json.loads(path.read_text())
    assert {"meta", "measurements", "memory", "checks", "targets"} <= set(data)
    again = BenchResult.from_json(path)
    assert again.rate(8, "hits", "numba") == result.rate(8, "hits", "numba")
    both = BenchResult.combine([result, again])
    assert both.meta["runs"] == 2 and both.rate(4, "apply", "pandas") == pytest.approx(result.rate(4, "apply", "pandas"))

    import matplotlib

    matplotlib.use("Agg")
    fig = result.plot(tmp_path / "tables.png")
    assert (tmp_path / "tables.png").stat().st_size > 0
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_workloads_are_as_described() -> None:
    wl = make_workloads(TABLE_BENCH_CONFIGS["smoke"], repeats=2, seed=1)
    assert wl.resident.size == np.unique(wl.resident).size == TABLE_BENCH_CONFIGS["smoke"].n_resident
    assert not np.isin(wl.fresh, wl.resident).any()
    assert len(wl.hits) == 3 and all(np.isin(h, wl.resident).all() for h in wl.hits)
    seen = set(wl.resident.tolist())
    for size, chunks in sorted(wl.stream.items()):
        for chunk in chunks:
            for batch in chunk:
                assert batch.ids.size == size
                new = [k for k in set(batch.ids.tolist()) if k not in seen]
                assert len(new) == batch.new  # exactly the planned number of never-seen IDs
                seen.update(batch.ids.tolist())
    assert 0.05 <= wl.stats["unseen_fraction_no_filter"] <= 0.10


def test_peers_follow_the_table_semantics() -> None:
    """The filtered peers admit at the second sighting, as OccurrenceFilter(2) does."""
    keys = np.array([11, 12, 13], dtype=np.uint64)
    for cls in (DictArena, PandasTable, TypedDictTable):
        peer = cls(PeerConfig(dim=4, capacity=16, threshold=2))
        peer.load(keys, np.zeros(3, dtype=np.int64))
        out = peer.train(np.array([11, 99, 99, 98], dtype=np.uint64), now=5)
        assert np.array_equal(out[1], np.zeros(4, np.float32)), cls  # first sighting of 99: zeros
        assert out[2].any() and np.array_equal(out[3], np.zeros(4, np.float32)), cls
        assert len(peer) == 4, cls


def test_seed_mock_is_the_blog_posts() -> None:
    mock = CollisionlessEmbedding(dim=3, ttl_seconds=10)
    out = mock.lookup([5, 6, 5], now=0.0)
    assert out.shape == (3, 3) and np.array_equal(out[0], out[2])
    mock.update([5], np.ones((1, 3), dtype=np.float32), lr=0.5)
    mock.expire(now=11.0)
    assert mock.table == {} and mock.last_seen == {}
