"""monolith_ref.labs: what the labs need, tested once (gluing, timing, memory, table states)."""

from __future__ import annotations

import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest

from monolith_ref import labs
from monolith_ref.data import zipf_ids
from monolith_ref.optim import SGD
from monolith_ref.tables import CuckooTable, DictTable, TableConfig


@pytest.fixture()
def glued(monkeypatch):
    """Record what would be glued: (name, value, display) for each call of myst_nb.glue."""
    myst_nb = pytest.importorskip("myst_nb")
    calls = []
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: calls.append((name, value, display)))
    return calls


# ---- gluing ---------------------------------------------------------------------------------


def test_as_python_converts_numpy_scalars_like_the_labs_do():
    for value, want, kind in [(np.float64(0.25), 0.25, float), (np.float32(0.5), 0.5, float),
                              (np.int64(7), 7, int), (np.uint64(2**63), 2**63, int), (np.bool_(True), True, bool),
                              (np.array(3.5), 3.5, float)]:
        got = labs.as_python(value)
        assert got == want and type(got) is kind
        assert repr(got) == repr(kind(value))  # what the book shows is what int(...)/float(...) gives
    text, fig, arr = "a, b", object(), np.arange(3)
    assert labs.as_python(text) is text and labs.as_python(fig) is fig and labs.as_python(arr) is arr
    assert labs.as_python(3) == 3 and labs.as_python(0.5) == 0.5


def test_glue_many_is_the_individual_calls(glued):
    labs.glue_many(rows=np.int64(12), load=np.float64(0.375), name="ch04", ok=np.bool_(False))
    labs.glue_many({"fail_median_small": 0.5, "x-1": 2})
    assert glued == [("rows", 12, False), ("load", 0.375, False), ("name", "ch04", False), ("ok", False, False),
                     ("fail_median_small", 0.5, False), ("x-1", 2, False)]
    assert [type(v) for _, v, _ in glued[:4]] == [int, float, str, bool]


def test_glue_many_checks_every_name_first(glued):
    with pytest.raises(ValueError):
        labs.glue_many({"good": 1, "": 2})
    with pytest.raises(TypeError):
        labs.glue_many([("a", 1)])
    assert glued == []


def test_glue_fields_of_a_mapping_an_object_and_a_dataclass(glued):
    from dataclasses import dataclass

    stats = {"features_in": np.int64(10), "positives": np.int64(3), "spilled": 1.0}
    labs.glue_fields("st_", stats, cast=int)  # as `for k, v in ...: glue(f"st_{k}", int(v))`
    assert glued == [("st_features_in", 10, False), ("st_positives", 3, False), ("st_spilled", 1, False)]
    assert type(glued[-1][1]) is int

    glued.clear()

    @dataclass
    class Stream:
        num_users: int
        drift: np.float64

    s = Stream(300, np.float64(0.1))
    out = labs.glue_fields("st_", s, names={"users": "num_users", "drift": "drift"})
    assert glued == [("st_users", 300, False), ("st_drift", 0.1, False)] and type(glued[1][1]) is float
    assert out == {"st_users": 300, "st_drift": 0.1}

    glued.clear()
    labs.glue_fields("s_", s)  # a dataclass: every field
    assert [n for n, _, _ in glued] == ["s_num_users", "s_drift"]

    glued.clear()

    class Plain:
        rows = np.int64(4)

    labs.glue_fields("t_", Plain(), names=["rows"])
    assert glued == [("t_rows", 4, False)]


def test_glue_fields_reads_every_field_before_gluing(glued):
    with pytest.raises(KeyError, match="missing"):
        labs.glue_fields("a_", {"x": 1}, names=["x", "missing"])
    with pytest.raises(AttributeError, match="missing"):
        labs.glue_fields("a_", object(), names=["missing"])
    with pytest.raises(TypeError, match="names"):
        labs.glue_fields("a_", object())
    with pytest.raises(TypeError, match="one string"):
        labs.glue_fields("a_", {"x": 1}, names="x")
    assert glued == []


def test_glue_figure_displays_and_closes(glued):
    plt = pytest.importorskip("matplotlib.pyplot")
    fig, _ = plt.subplots()
    labs.glue_figure("fig_demo", fig)
    assert glued == [("fig_demo", fig, True)]
    assert not plt.fignum_exists(fig.number)


def test_the_package_imports_without_the_book_extra():
    code = ("import sys; sys.modules['myst_nb'] = None; sys.modules['IPython'] = None\n"
            "import monolith_ref.labs, monolith_ref.diagrams\n"
            "try:\n    monolith_ref.labs.glue_many(a=1)\nexcept ImportError:\n    print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "ok", out.stderr


# ---- timing ---------------------------------------------------------------------------------


def test_seconds_and_best_of():
    assert 0.009 <= labs.seconds(lambda: time.sleep(0.01)) < 1.0
    calls = []
    t = labs.best_of(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(calls) == 6 and 0 <= t < 0.1
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            labs.best_of(lambda: None, repeats=bad)
    with pytest.raises(ValueError):
        labs.best_of(lambda: None, warmup=-1)


def test_timed_rounds_take_turns_and_median_ratio():
    order = []
    t = labs.timed_rounds(3, a=lambda: order.append("a"), b=lambda: order.append("b"))
    assert order == ["a", "b"] * 3
    assert set(t) == {"a", "b"} and t["a"].shape == (3,)
    ratio = labs.median_ratio(lambda: time.sleep(0.02), lambda: time.sleep(0.005), rounds=3)
    assert 1.5 < ratio < 10
    with pytest.raises(ValueError):
        labs.timed_rounds(2)
    with pytest.raises(ValueError):
        labs.timed_rounds(0, a=lambda: None)


# ---- memory ---------------------------------------------------------------------------------


def test_traced_bytes_per_row_counts_rows_not_bookkeeping():
    keys = np.arange(2_000, dtype=np.uint64) + np.uint64(2**40)
    small = labs.traced_bytes_per_row(DictTable(TableConfig(dim=4, seed=0)), keys)
    large = labs.traced_bytes_per_row(DictTable(TableConfig(dim=256, seed=0)), keys)
    assert 16 < small < 2_000
    assert large - small > 0.8 * 4 * (256 - 4)  # the embedding (and optimizer state) grow with dim
    assert not tracemalloc.is_tracing()


def test_traced_bytes_per_row_refuses_to_disturb_a_running_trace():
    tracemalloc.start()
    try:
        with pytest.raises(RuntimeError, match="already tracing"):
            labs.traced_bytes_per_row(DictTable(TableConfig(dim=4)), np.arange(3, dtype=np.uint64))
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()
    with pytest.raises(ValueError):
        labs.traced_bytes_per_row(DictTable(TableConfig(dim=4)), np.empty(0, dtype=np.uint64))


# ---- table states ---------------------------------------------------------------------------


def test_compare_states_names_what_differs_and_by_how_much():
    a = {"ids": np.array([1, 2], dtype=np.uint64), "embeddings": np.zeros((2, 3), np.float32),
         "last_seen": np.array([5, 6])}
    b = {"ids": a["ids"].copy(), "embeddings": a["embeddings"].copy(), "opt_state": np.ones(2)}
    b["embeddings"][1, 2] = -0.5
    diff = labs.compare_states(a, b)
    assert not diff.identical
    assert diff.differ == ("embeddings",) and diff.max_abs_diff == {"embeddings": 0.5}
    assert diff.only_a == ("last_seen",) and diff.only_b == ("opt_state",)
    assert "embeddings differs (max |a - b| = 0.5)" in diff.describe()

    same = labs.compare_states(a, {k: v.copy() for k, v in a.items()})
    assert same.identical and same.describe() == "identical"
    # a dtype change is a difference even when the values are equal
    retyped = labs.compare_states(a, {**a, "last_seen": a["last_seen"].astype(np.int32)})
    assert retyped.differ == ("last_seen",) and retyped.max_abs_diff == {"last_seen": 0.0}
    # a shape change has no elementwise difference to report
    reshaped = labs.compare_states(a, {**a, "ids": np.array([1], dtype=np.uint64)})
    assert reshaped.differ == ("ids",) and reshaped.max_abs_diff == {}
    with pytest.raises(TypeError):
        labs.compare_states(a, [1, 2])


def test_compare_states_takes_tensors():
    torch = pytest.importorskip("torch")
    a = {"w": torch.zeros(3)}
    assert labs.compare_states(a, {"w": torch.zeros(3)}).identical
    assert labs.compare_states(a, {"w": torch.tensor([0.0, 0.25, 0.0])}).max_abs_diff == {"w": 0.25}


def ch03_program(seed: int = 7) -> DictTable:
    """The program of the chapter 3 lab, written out step by step (the lab now calls run_table_program)."""
    program_rng = np.random.default_rng(seed)
    stream = zipf_ids(4_000, vocab=2_000, alpha=1.1, seed=seed)
    table = DictTable(TableConfig(dim=8, seed=1, ttl=30, optimizer=SGD(lr=0.05)))
    for step, batch in enumerate(np.split(stream, 40)):
        now = 5 * step
        table.lookup(batch, now=now)
        table.lookup(batch[:10], now=now, train=False)
        grads = program_rng.normal(size=(batch.size, 8)).astype(np.float32)
        table.apply_gradients(batch, grads)
        if step % 4 == 3:
            table.expire(now)
    return table


def test_run_table_program_is_the_labs_program():
    config = TableConfig(dim=8, seed=1, ttl=30, optimizer=SGD(lr=0.05))
    ours, cuckoo = DictTable(config), CuckooTable(config, capacity=2, max_kicks=6)
    agreed = labs.run_table_program([ours, cuckoo], zipf_ids(4_000, vocab=2_000, alpha=1.1, seed=7), 40, 7,
                                    time_step=5, expire_every=4, serve=10)
    assert agreed
    assert labs.compare_states(ch03_program().export(), ours.export()).identical
    assert labs.compare_states(ours.export(), cuckoo.export()).identical


def test_run_table_program_reports_disagreeing_tables_and_bad_input():
    a, b = DictTable(TableConfig(dim=4, seed=0)), DictTable(TableConfig(dim=4, seed=1))
    assert not labs.run_table_program([a, b], np.arange(20, dtype=np.uint64), 2, 0)
    with pytest.raises(ValueError, match="dim"):
        labs.run_table_program([a, DictTable(TableConfig(dim=8))], np.arange(4, dtype=np.uint64), 1, 0)
    with pytest.raises(ValueError):
        labs.run_table_program([], np.arange(4, dtype=np.uint64), 1, 0)
    with pytest.raises(ValueError):
        labs.run_table_program([a], np.arange(4, dtype=np.uint64), 0, 0)
