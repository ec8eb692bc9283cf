"""Tests for the synthetic drifting stream (monolith_ref.data.synthetic) and the Events container
(monolith_ref.events)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monolith_ref.data import StreamConfig, SyntheticWorld, describe, synthetic_stream
from monolith_ref.events import SECONDS_PER_DAY, SECONDS_PER_HOUR, Events, field_ids

SMALL = StreamConfig(
    num_users=2_000,
    num_items=1_000,
    new_items_per_day=300,
    item_lifetime_days=3.0,
    days=4,
    events_per_day=20_000,
    num_bursts=3,
    burst_hours=4,
    seed=7,
)


@pytest.fixture(scope="module")
def world() -> SyntheticWorld:
    return SyntheticWorld(SMALL)


@pytest.fixture(scope="module")
def events(world: SyntheticWorld) -> Events:
    return world.sample()


# --------------------------------------------------------------------------- the stream


def test_same_seed_same_stream_other_seed_other_stream(events: Events) -> None:
    again = synthetic_stream(SMALL)
    for name in ("time", "request_id", "user", "item", "fields", "dense", "label", "prob"):
        assert np.array_equal(getattr(events, name), getattr(again, name)), name
    other = synthetic_stream(StreamConfig(**{**SMALL.__dict__, "seed": 8}))
    assert not np.array_equal(events.item, other.item)
    assert not np.array_equal(events.label, other.label)


def test_sizes_and_dtypes(events: Events) -> None:
    n = SMALL.num_events
    assert len(events) == n == 80_000
    assert events.time.dtype == np.int64 and events.request_id.dtype == np.uint64
    assert events.user.dtype == np.uint64 and events.item.dtype == np.uint64
    assert events.fields.shape == (n, 5) and events.fields.dtype == np.uint64
    assert events.field_names == ("user", "item", "category", "segment", "hour")
    assert events.dense.shape == (n, 2) and events.dense.dtype == np.float32
    assert np.isfinite(events.dense).all()
    assert events.label.dtype == np.float32 and set(np.unique(events.label)) <= {0.0, 1.0}
    assert events.prob.dtype == np.float32


def test_time_is_sorted_integer_seconds_in_range(events: Events) -> None:
    assert events.is_time_sorted()
    assert events.time.min() >= 0 and events.time.max() < SMALL.days * SECONDS_PER_DAY
    per_day = np.bincount(events.time // SECONDS_PER_DAY)
    assert per_day.tolist() == pytest.approx([SMALL.events_per_day] * SMALL.days, rel=0.05)


def test_request_ids_are_unique(events: Events) -> None:
    assert np.unique(events.request_id).size == len(events)


def test_ids_are_sparse_64_bit_values(world: SyntheticWorld, events: Events) -> None:
    for ids in (events.user, events.item, events.fields.ravel()):
        assert ids.dtype == np.uint64
        assert np.median(ids.astype(np.float64)) > 2.0**56  # spread over the 64-bit range
        assert (ids > 2**32).mean() > 0.99  # not small dense indices
    assert np.unique(world.user_ids).size == SMALL.num_users
    assert np.unique(world.item_ids).size == world.item_ids.size


def test_zipf_popularity_skews_traffic(events: Events) -> None:
    _, counts = np.unique(events.user, return_counts=True)
    top = np.sort(counts)[::-1]
    assert top[: len(top) // 100].sum() > 0.1 * len(events)  # the top 1% of users: > 10% of events


def test_new_items_are_born_over_time_and_live_finitely(world: SyntheticWorld, events: Events) -> None:
    index = world.item_index(events.item)
    birth, death = world.item_birth[index], world.item_death[index]
    assert (birth <= events.time).all() and (events.time < death).all()  # only live items are shown
    assert np.isfinite(death.astype(float)).all() and (death - birth <= 1.5 * 3 * SECONDS_PER_DAY + 3600).all()
    born_later = birth > 0
    share_per_day = [born_later[events.time // SECONDS_PER_DAY == d].mean() for d in range(SMALL.days)]
    assert share_per_day[0] < 0.5 < share_per_day[-1]
    assert all(a < b for a, b in zip(share_per_day, share_per_day[1:]))
    # items unseen on day 0 show up later (the ID space grows)
    day0 = set(events.item[events.time < SECONDS_PER_DAY].tolist())
    later = set(events.item[events.time >= 3 * SECONDS_PER_DAY].tolist())
    assert len(later - day0) > 0.5 * len(later)


def test_bursts_raise_an_items_share_and_click_rate(world: SyntheticWorld, events: Events) -> None:
    assert len(world.bursts) == SMALL.num_bursts
    effects = world.burst_effects(events)
    for b, e in zip(world.bursts, effects):
        assert b.end - b.start == SMALL.burst_hours * SECONDS_PER_HOUR
        assert e["share_during"] == pytest.approx(SMALL.burst_share, rel=0.5)
        assert e["share_during"] > 20 * e["share_outside"]
    # Realized clicks during bursts beat what the same events would give without the boost.
    during = np.zeros(len(events), dtype=bool)
    for b in world.bursts:
        during |= (events.item == np.uint64(b.item_id)) & (events.time >= b.start) & (events.time < b.end)
    p = events.prob[during].astype(np.float64)
    base = 1.0 / (1.0 + np.exp(-(np.log(p / (1 - p)) - SMALL.burst_boost)))
    ctr = events.label[during].mean()
    se = math.sqrt((base * (1 - base)).sum()) / during.sum()
    assert ctr > base.mean() + 4 * se


def test_default_ctr_is_moderate_and_auc_meaningful() -> None:
    cfg = StreamConfig(events_per_day=20_000)  # the default world, less traffic
    world = SyntheticWorld(cfg)
    ev = world.sample()
    stats = describe(ev, world)
    assert 0.10 <= stats["ctr"] <= 0.30
    assert 0.70 <= stats["oracle_auc"] <= 0.90
    assert 0.2 <= stats["born_later_share"] <= 0.8
    assert stats["burst_share_during"] > 100 * stats["burst_share_outside"]


def test_probabilities_are_in_range_and_labels_follow_them(events: Events) -> None:
    p = events.prob.astype(np.float64)
    assert ((p > 0) & (p < 1)).all()
    sd = math.sqrt((p * (1 - p)).sum())
    assert abs(events.label.sum() - p.sum()) < 4 * sd  # binomial bound, fixed seed
    # calibration by decile of the true probability
    edges = np.quantile(p, np.linspace(0, 1, 11))
    bins = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, 9)
    for k in range(10):
        pk, yk = p[bins == k], events.label[bins == k]
        assert abs(yk.mean() - pk.mean()) < 4 * math.sqrt((pk * (1 - pk)).sum()) / pk.size + 1e-9


def test_click_probability_is_the_truth_behind_prob(world: SyntheticWorld, events: Events) -> None:
    rng = np.random.default_rng(0)
    for i in rng.choice(len(events), 25, replace=False):
        u = world.user_index(events.user[i : i + 1])
        it = world.item_index(events.item[i : i + 1])
        p = world.click_probability(u, it, int(events.time[i]))
        assert p[0] == pytest.approx(float(events.prob[i]), rel=1e-5)
    with pytest.raises(ValueError, match="not in this world"):
        world.item_index(np.array([12345], dtype=np.uint64))


def _rank_corr(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


@pytest.mark.parametrize("drift", [0.0, 0.4])
def test_drift_changes_a_users_ranking_of_items(drift: float) -> None:
    cfg = StreamConfig(num_users=300, num_items=400, new_items_per_day=0, item_lifetime_days=math.inf,
                       days=8, events_per_day=100, num_bursts=0, freshness_boost=0.0, drift=drift, seed=3)  # fmt: skip
    world = SyntheticWorld(cfg)
    items = np.arange(400)
    corrs = []
    for user in range(20):
        p0 = world.click_probability(user, items, 3600)
        p7 = world.click_probability(user, items, 7 * SECONDS_PER_DAY + 3600)
        corrs.append(_rank_corr(p0, p7))
    if drift == 0.0:
        assert min(corrs) > 0.999  # same hour of day, no drift: the same ranking
    else:
        assert np.mean(corrs) < 0.9 and min(corrs) > 0.0  # changed, but not unrelated


def test_fields_are_salted_and_distinct_across_fields(world: SyntheticWorld, events: Events) -> None:
    assert np.array_equal(events.fields[:, 0], field_ids("user", events.user))
    assert np.array_equal(events.fields[:, 1], field_ids("item", events.item))
    sets = [set(np.unique(events.fields[:, j]).tolist()) for j in range(events.fields.shape[1])]
    for a in range(len(sets)):
        for b in range(a + 1, len(sets)):
            assert not sets[a] & sets[b], (events.field_names[a], events.field_names[b])
    assert len(sets[4]) == 24 and len(sets[2]) <= SMALL.num_categories


def test_describe_reports_the_basics(events: Events) -> None:
    stats = describe(events)
    assert stats["events"] == len(events)
    assert stats["users"] == np.unique(events.user).size
    assert stats["ctr"] == pytest.approx(float(events.label.mean()))
    assert 0 < stats["new_item_share"] < 1
    with pytest.raises(ValueError, match="at least one event"):
        describe(events[:0])


@pytest.mark.parametrize(
    ("field", "value"),
    [("num_users", 0), ("num_items", -1), ("days", 1.5), ("events_per_day", 0), ("drift", 1.5), ("drift", math.nan),
     ("burst_share", 1.0), ("item_alpha", -0.1), ("item_lifetime_days", 0.0), ("latent_dim", True),
     ("base_logit", math.inf), ("burst_hours", 24 * 10 + 1), ("seed", -1), ("diurnal", 1.0)],
)  # fmt: skip
def test_config_validation_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"StreamConfig\.{field}"):
        StreamConfig(**{field: value})


def test_items_that_live_forever() -> None:
    cfg = StreamConfig(num_users=50, num_items=40, new_items_per_day=5, item_lifetime_days=math.inf, days=2,
                       events_per_day=2000, num_bursts=1)  # fmt: skip
    world = SyntheticWorld(cfg)
    ev = world.sample()
    assert (world.item_death > 10**15).all() and (world.item_birth <= 0).sum() == 40
    assert np.unique(ev.item).size > 40  # newcomers join the old items, which stay
    assert (world.item_birth[world.item_index(ev.item)] <= ev.time).all()


def test_no_live_item_is_a_clear_error() -> None:
    cfg = StreamConfig(num_users=10, num_items=5, new_items_per_day=0, item_lifetime_days=1.0, days=3,
                       events_per_day=100, num_bursts=0)  # fmt: skip
    with pytest.raises(ValueError, match="no item is alive"):
        synthetic_stream(cfg)


# --------------------------------------------------------------------------- Events


def test_events_slicing_and_masks(events: Events) -> None:
    head = events[:100]
    assert len(head) == 100 and np.array_equal(head.item, events.item[:100])
    mask = events.label == 1
    clicks = events[mask]
    assert len(clicks) == int(mask.sum()) and (clicks.label == 1).all()
    picked = events[np.array([5, 1, 3])]
    assert picked.request_id.tolist() == events.request_id[[5, 1, 3]].tolist()
    assert len(events[[]]) == 0
    with pytest.raises(TypeError, match="slice"):
        events[3]
    with pytest.raises(IndexError, match="mask"):
        events[np.ones(3, dtype=bool)]


def test_events_time_splits(events: Events) -> None:
    t = 2 * SECONDS_PER_DAY
    before, after = events.split_by_time(t)
    assert len(before) + len(after) == len(events)
    assert before.time.max() < t <= after.time.min()
    head, tail = events.split_at_fraction(0.8)
    assert len(head) == pytest.approx(0.8 * len(events), abs=5)
    assert head.time.max() < tail.time.min()
    days = events.days()
    assert len(days) == SMALL.days and sum(map(len, days)) == len(events)
    assert all((d.time // SECONDS_PER_DAY == k).all() for k, d in enumerate(days))
    parts = events.chunks(3)
    assert [len(p) for p in parts] == [26_666, 26_667, 26_667]
    with pytest.raises(ValueError, match="fraction"):
        events.split_at_fraction(1.0)


def test_events_batches_and_concat(events: Events) -> None:
    small = events[:1000]
    batches = list(small.batches(300))
    assert [len(b) for b in batches] == [300, 300, 300, 100]
    assert [len(b) for b in small.batches(300, drop_last=True)] == [300, 300, 300]
    joined = Events.concat(batches)
    for name in ("time", "fields", "dense", "label", "prob", "user"):
        assert np.array_equal(getattr(joined, name), getattr(small, name))
    with pytest.raises(ValueError, match="batch_size"):
        next(small.batches(0))


def test_events_validate_shapes() -> None:
    n = 3
    ok = dict(time=np.arange(n), request_id=np.arange(n, dtype=np.uint64), user=None, item=None,
              fields=np.zeros((n, 2), np.uint64), field_names=("a", "b"), dense=np.zeros((n, 0), np.float32),
              label=np.zeros(n, np.float32))  # fmt: skip
    assert len(Events(**ok)) == n
    with pytest.raises(ValueError, match="label"):
        Events(**{**ok, "label": np.zeros(n + 1, np.float32)})
    with pytest.raises(ValueError, match="fields"):
        Events(**{**ok, "field_names": ("a",)})
    with pytest.raises(ValueError, match="uint64"):
        Events(**{**ok, "fields": np.zeros((n, 2), np.int64)})


def test_the_schema_is_one_module_that_data_re_exports() -> None:
    import monolith_ref.data as data
    import monolith_ref.data.synthetic as synthetic
    import monolith_ref.events as events_module

    for name in ("Events", "field_ids", "field_seed"):
        assert getattr(data, name) is getattr(events_module, name)
    assert Events.__module__ == "monolith_ref.events"
    assert not {"Events", "field_ids", "SECONDS_PER_DAY"} & set(synthetic.__all__)
