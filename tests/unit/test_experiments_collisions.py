"""The collision experiments E1 and E2 (chapter 13): structure, measured collision rates,
determinism per seed, JSON round trips, and the MovieLens path, on tiny data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monolith_ref.data.synthetic import synthetic_stream
from monolith_ref.events import field_ids
from monolith_ref.experiments.collisions import (
    COLLISIONLESS,
    PAPER_ITEM_RATE,
    PAPER_USER_RATE,
    HashedVsCollisionlessResult,
    QRVsCollisionlessResult,
    collision_config,
    hash_field_ids,
    main_collisions,
    qr_sharing,
    qr_sizing,
    run_hashed_vs_collisionless,
    run_qr_vs_collisionless,
    split_train_test,
)
from monolith_ref.hashing import bucket_of, collision_rate
from monolith_ref.tables import QRHashedTable, TableConfig

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "movielens" / "ratings.csv"


@pytest.fixture(scope="module")
def e1() -> HashedVsCollisionlessResult:
    return run_hashed_vs_collisionless(size="smoke", progress=False)


@pytest.fixture(scope="module")
def e2() -> QRVsCollisionlessResult:
    return run_qr_vs_collisionless(size="smoke", progress=False)


# --------------------------------------------------------------------------- hashing IDs


def test_hash_field_ids_reaches_the_target_rates_and_keeps_fields_apart() -> None:
    events = synthetic_stream(collision_config("smoke").e1_stream)
    n = 20_000  # enough distinct IDs for the measured rate to sit near its target
    rng = np.random.default_rng(0)
    events = events[rng.integers(0, len(events), n)]
    events.fields[:, 0] = field_ids("user", np.arange(n, dtype=np.uint64))
    rates = {"user": 0.30, "item": PAPER_ITEM_RATE}
    hashed, info = hash_field_ids(events, rates)
    u = info["user"]
    assert u["distinct"] == n and abs(u["measured"] - 0.30) < 0.01
    assert u["measured"] == pytest.approx(collision_rate(events.fields[:, 0], u["rows"], "md5"))
    assert u["measured"] == pytest.approx(1 - u["used"] / u["distinct"])
    assert len(np.unique(hashed.fields[:, 0])) == u["used"]
    # IDs in one bucket become one key; the key is the bucket salted by the field's name.
    b = bucket_of(events.fields[:, 0], u["rows"], "md5").astype(np.uint64)
    assert np.array_equal(hashed.fields[:, 0], field_ids("user", b))
    # Unhashed fields are untouched; hashed fields stay disjoint from each other.
    assert np.array_equal(hashed.fields[:, 2:], events.fields[:, 2:])
    assert not set(hashed.fields[:, 0].tolist()) & set(hashed.fields[:, 1].tolist())
    assert np.array_equal(hashed.label, events.label) and np.array_equal(hashed.time, events.time)
    with pytest.raises(ValueError, match="no field"):
        hash_field_ids(events, {"nope": 0.1})


def test_split_is_seeded_and_covers_everything() -> None:
    events = synthetic_stream(collision_config("smoke").e1_stream)
    a_train, a_test = split_train_test(events, 0.2, "random", seed=3)
    b_train, b_test = split_train_test(events, 0.2, "random", seed=3)
    assert np.array_equal(a_test.request_id, b_test.request_id)
    assert len(a_train) + len(a_test) == len(events) and abs(len(a_test) - 0.2 * len(events)) <= 1
    assert a_train.is_time_sorted() and a_test.is_time_sorted()
    t_train, t_test = split_train_test(events, 0.2, "time")
    assert t_train.time.max() < t_test.time.min()
    with pytest.raises(ValueError):
        split_train_test(events, 0.2, "sideways")


# --------------------------------------------------------------------------- E1


def test_e1_structure_and_measured_collisions(e1: HashedVsCollisionlessResult) -> None:
    p = collision_config("smoke")
    assert e1.variants == [COLLISIONLESS, "md5-paper", "md5-30%", "md5-50%"]
    assert e1.seeds == list(p.seeds) and e1.epochs == p.epochs
    for v in e1.variants:
        assert len(e1.runs[v]) == len(p.seeds)
        for run in e1.runs[v]:
            assert len(run["auc"]) == len(run["logloss"]) == len(run["train_loss"]) == p.epochs
            assert all(0.0 < a < 1.0 for a in run["auc"])
    # The collisionless variant has no collisions anywhere.
    assert all(c["measured"] == 0.0 and c["used"] == c["distinct"] for c in e1.collisions[COLLISIONLESS].values())
    # Hashed variants reach their targets on the ID fields (small n: loose), and only there.
    targets = {"md5-paper": (PAPER_USER_RATE, PAPER_ITEM_RATE), "md5-30%": (0.30, 0.30), "md5-50%": (0.50, 0.50)}
    for v, (tu, ti) in targets.items():
        c = e1.collisions[v]
        assert abs(c["user"]["measured"] - tu) < 0.06 and abs(c["item"]["measured"] - ti) < 0.08
        assert c["user"]["target"] == tu and c["item"]["target"] == ti
        assert c["category"]["measured"] == 0.0 and c["hour"]["measured"] == 0.0
    s = e1.summary()
    assert set(s) == set(e1.variants) and len(s[COLLISIONLESS]["mean"]) == p.epochs
    gap = e1.gap("md5-50%")
    assert gap.shape == (len(p.seeds), p.epochs)
    g = e1.gap_stats("md5-50%", "last")
    assert g["n"] == len(p.seeds) and g["mean"] == pytest.approx(gap[:, -1].mean())
    assert e1.gap_stats("md5-50%", "best")["n"] == len(p.seeds)
    text = e1.table()
    assert "md5-paper" in text and "gap @ best" in text


def test_e1_is_deterministic_per_seed() -> None:
    runs = [run_hashed_vs_collisionless(size="smoke", rates=(0.5,), seeds=(7,), epochs=1, progress=False)
            for _ in range(2)]
    assert runs[0].runs == runs[1].runs and runs[0].collisions == runs[1].collisions
    other = run_hashed_vs_collisionless(size="smoke", rates=(0.5,), seeds=(8,), epochs=1, progress=False)
    assert other.runs[COLLISIONLESS] != runs[0].runs[COLLISIONLESS]


def test_e1_json_round_trip_and_plot(e1: HashedVsCollisionlessResult, tmp_path: Path) -> None:
    path = e1.to_json(tmp_path / "e1.json")
    assert HashedVsCollisionlessResult.from_json(path) == e1
    with pytest.raises(ValueError, match="HashedVsCollisionlessResult"):
        QRVsCollisionlessResult.from_json(path)
    png = tmp_path / "e1.png"
    fig = e1.plot(png)
    assert png.stat().st_size > 1000 and len(fig.axes[0].lines) == len(e1.variants)


def test_rate_specs_are_checked() -> None:
    with pytest.raises(ValueError):
        run_hashed_vs_collisionless(size="smoke", rates=(1.5,), progress=False)
    with pytest.raises(ValueError):
        run_hashed_vs_collisionless(size="smoke", rates=("harsh",), progress=False)
    with pytest.raises(ValueError, match="unknown size"):
        collision_config("huge")


# --------------------------------------------------------------------------- E2


def test_qr_sizing_and_sharing_match_the_table() -> None:
    bits, q = qr_sizing(80_000, 1 / 8)
    assert 2**bits + q == 10_000 and abs(2**bits - q) <= 2**bits
    ids = field_ids("item", np.arange(5_000, dtype=np.uint64))
    bits, q = qr_sizing(ids.size, 1 / 8)
    table = QRHashedTable(TableConfig(dim=2), remainder_bits=bits, quotient_rows=q)
    rem, quo = table.parts_of(ids)
    pairs = rem * q + quo
    share = qr_sharing(ids, bits, q)
    assert share["collision_rate"] == pytest.approx(1 - np.unique(pairs).size / ids.size)
    assert 0.0 < share["share_both"] < share["share_one"] <= 1.0
    assert qr_sharing(np.arange(4, dtype=np.uint64), 8, 256)["share_both"] == 0.0


def test_e2_structure_and_determinism(e2: QRVsCollisionlessResult, tmp_path: Path) -> None:
    p = collision_config("smoke")
    assert e2.variants == [COLLISIONLESS, "qr"]
    assert e2.days == list(range(1, p.e2_stream.days))
    for v in e2.variants:
        assert len(e2.runs[v]) == len(p.seeds)
        assert all(len(run["auc"]) == len(e2.days) for run in e2.runs[v])
    q = e2.qr
    assert q["rows"] == q["remainder_rows"] + q["quotient_rows"] == 2 ** q["remainder_bits"] + q["quotient_rows"]
    assert q["rows"] == pytest.approx(q["distinct"] / 8, abs=1)
    assert 0.0 <= q["share_both"] <= q["share_one"] <= 1.0
    assert e2.gap_stats("qr", "mean")["n"] == len(p.seeds)
    again = run_qr_vs_collisionless(size="smoke", seeds=(p.seeds[0],), progress=False)
    assert again.runs[COLLISIONLESS][0] == e2.runs[COLLISIONLESS][0] and again.runs["qr"][0] == e2.runs["qr"][0]
    path = e2.to_json(tmp_path / "e2.json")
    assert QRVsCollisionlessResult.from_json(path) == e2
    assert "QR table" in e2.table()
    fig = e2.plot()
    assert len(fig.axes[0].lines) == 2


# --------------------------------------------------------------------------- CLI entry, MovieLens


def test_main_collisions_on_the_movielens_fixture(tmp_path: Path) -> None:
    text = main_collisions("both", "smoke", movielens=FIXTURE, out=tmp_path, seeds=1, progress=False)
    assert "E1 on movielens" in text and "E2 on movielens" in text
    for name in ("collisions_e1_movielens", "collisions_e2_movielens"):
        assert (tmp_path / f"{name}.json").exists() and (tmp_path / f"{name}.png").exists()
    r1 = HashedVsCollisionlessResult.from_json(tmp_path / "collisions_e1_movielens.json")
    assert r1.config["fields"] == ["user", "movie"] and r1.seeds == [0]
    assert r1.collisions["md5-paper"]["movie"]["target"] == PAPER_ITEM_RATE
    with pytest.raises(ValueError, match="which"):
        main_collisions("e3", "smoke", out=tmp_path)
