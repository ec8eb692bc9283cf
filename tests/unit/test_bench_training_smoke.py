"""A tiny run of the training-step benchmark (``monolith_ref.bench.training``), so it cannot rot.

Structure only: nothing here asserts a speed. See: book/ch08_deepfm.md
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from monolith_ref.bench.training import (
    CONTESTANTS,
    PHASES,
    HashedDeepFM,
    TrainingBenchResult,
    run_training_benchmark,
)


@pytest.fixture(scope="module")
def result() -> TrainingBenchResult:
    return run_training_benchmark(size="smoke", repeats=2, progress=False)


def test_every_contestant_has_timed_phases(result: TrainingBenchResult) -> None:
    assert result.contestants() == list(CONTESTANTS)
    for c in CONTESTANTS:
        reps = result.runs[c]
        assert len(reps) == 2
        for rep in reps:
            assert set(rep["seconds"]) == set(PHASES)
            assert all(s > 0 and math.isfinite(s) for s in rep["seconds"].values())
            assert rep["steps"] == result.meta["steps"] and rep["examples"] == rep["steps"] * result.meta["batch_size"]
        assert result.rate(c) > 0 and math.isfinite(result.ratio(c))
        assert sum(result.phase_shares(c).values()) == pytest.approx(1.0)
    assert result.ratio("hashed") == pytest.approx(1.0)


def test_same_work_on_every_side(result: TrainingBenchResult) -> None:
    meta = result.meta
    assert meta["torch_threads"] == 1
    assert meta["sharded_matches_numba"] is True  # same rows, same updates: same losses
    assert meta["hashed_rows"] == meta["distinct_ids"]
    assert meta["rows_after"]["numba"] == meta["distinct_ids"]  # every ID met got a row of its own
    assert 0.0 < meta["hashed_collision_rate"] < 1.0
    assert all(math.isfinite(x) for x in meta["final_loss"].values())


def test_report_json_and_plot(result: TrainingBenchResult, tmp_path) -> None:
    text = result.table()
    for word in ("NumbaTable", "nn.Embedding", "forward + backward", "sparse update", "target", "threads: 1"):
        assert word in text
    path = tmp_path / "training.json"
    result.to_json(path)
    data = json.loads(path.read_text())
    assert {"meta", "runs", "summary"} <= set(data)
    again = TrainingBenchResult.from_json(path)
    assert again.rate("numba") == result.rate("numba")
    both = TrainingBenchResult.combine([result, again])
    assert both.meta["runs"] == 2 and len(both.runs["numba"]) == 4
    assert both.rate("hashed") == pytest.approx(result.rate("hashed"))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = result.plot(tmp_path / "training.png")
    assert (tmp_path / "training.png").stat().st_size > 0
    plt.close(fig)


def test_threads_restored_and_bad_arguments() -> None:
    before = torch.get_num_threads()
    run_training_benchmark(size="smoke", steps=1, repeats=1, progress=False, contestants=("numba", "hashed"))
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="size"):
        run_training_benchmark(size="huge")
    with pytest.raises(ValueError, match="steps"):
        run_training_benchmark(size="smoke", steps=0)
    with pytest.raises(ValueError, match="contestants"):
        run_training_benchmark(size="smoke", contestants=("numba",))


def test_hashed_baseline_shares_rows() -> None:
    model = HashedDeepFM(num_rows=8, num_fields=2, dim=3)
    ids = np.arange(20, dtype=np.uint64).reshape(10, 2)
    rows = model.rows(ids)
    assert rows.shape == (10, 2) and rows.dtype == torch.int64 and int(rows.max()) < 8
    assert model(ids).shape == (10,)
