# %% [markdown]
# # Lab: collisions, measured
#
# This lab is the companion of {doc}`../book/ch13_collisions_measured`. It runs the two
# collision experiments of the paper at the `"small"` size: **E1** (a collisionless table
# against MD5-hashed IDs, test AUC after every epoch, like the paper's Figure 7) and **E2**
# (a collisionless table against the quotient-remainder trick, trained day by day on a
# drifting stream and scored on each next day, like Figure 8). Every number the chapter
# quotes is computed here and handed to it with `glue`.
#
# The experiments live in `mr.experiments.collisions`; this notebook only calls
# them and looks at what they return. Everything is seeded: the stream, the split, the
# initial weights and the shuffling. The small size runs in well under a minute on two
# cores; the full size (10 epochs, a larger stream) is a command, shown at the end.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

import monolith_ref as mr

SIZE = "small"
COLLISIONLESS = mr.experiments.collisions.COLLISIONLESS  # the baseline variant's name
P = mr.experiments.collision_config(SIZE)
np.random.seed(0)  # the experiments seed their own generators; this only guards stray draws

print("monolith_ref", mr.__version__, "| size:", P.name, "| seeds:", P.seeds, "| E1 epochs:", P.epochs)

# %% [markdown]
# ## 1. The paper's Table 1, and what its rates mean for a table size
#
# Table 1 counts IDs and the distinct buckets they land in. The collision rate is the
# share of IDs that did not get a bucket of their own. The paper does not say how many
# buckets its MD5 space had; the birthday formula from chapter 2 says how many it takes to
# reach those rates, which shows how *gentle* the paper's collision rates are: the space is
# several times larger than the number of IDs.

# %%
# NBVAL_CHECK_OUTPUT
table1 = {"users": (162_541, 149_970, mr.experiments.PAPER_USER_RATE),
          "movies": (59_047, 57_361, mr.experiments.PAPER_ITEM_RATE)}
t1 = {}
print(f"{'':<8}{'IDs':>10}{'buckets used':>14}{'rate':>8}{'buckets needed':>16}{'ratio':>7}")
for name, (n, used, rate) in table1.items():
    m = mr.hashing.buckets_for_collision_rate(n, rate)
    t1[name] = {"n": n, "rate": 1 - used / n, "m": m, "ratio": m / n}
    print(f"{name:<8}{n:>10,}{used:>14,}{1 - used / n:>8.2%}{m:>16,}{m / n:>7.2f}")

# %% tags=["remove-cell"]
for name, t in t1.items():
    mr.labs.glue_many({f"t1_{name}_m": int(t["m"]), f"t1_{name}_ratio": float(t["ratio"])})

# %% [markdown]
# ## 2. E1's data
#
# E1 is about capacity, so its stream has no drift, no new items and no bursts, and few
# enough users and items that each has many events: a row of its own can then be learned,
# and losing it can hurt. The split is a seeded random 80/20 (the paper does not say which
# split it used); the same split serves every variant and seed.

# %%
# NBVAL_CHECK_OUTPUT
events1 = mr.synthetic_stream(P.e1_stream)
_, per_user = np.unique(events1.fields[:, 0], return_counts=True)
_, per_item = np.unique(events1.fields[:, 1], return_counts=True)
print(f"events: {len(events1):,}   fields: {events1.field_names}")
print(f"distinct users: {per_user.size:,}   distinct items: {per_item.size:,}")
print(f"events per user: median {int(np.median(per_user))}, fewest {per_user.min()}, most {per_user.max():,}")
print(f"events per item: median {int(np.median(per_item))}, fewest {per_item.min()}, most {per_item.max():,}")
print(f"click rate: {events1.label.mean():.3f}")

# %% tags=["remove-cell"]
mr.labs.glue_many(
    e1_events=len(events1), e1_users=int(per_user.size), e1_items=int(per_item.size),
    e1_user_median_events=int(np.median(per_user)), e1_item_median_events=int(np.median(per_item)),
    e1_user_fewest_events=int(per_user.min()),
)

# %% [markdown]
# ## 3. E1: train every variant with three seeds
#
# Four variants: the collisionless table, MD5 hashing at the paper's rates (7.73% on users,
# 2.86% on items), and harsher hashing at 30% and 50% on both ID fields. The small context
# fields (category, segment, hour) are never hashed. Hashing happens *before* the table, so
# every variant trains the same table type with the same optimizers.

# %%
t0 = time.perf_counter()
res1 = mr.experiments.run_hashed_vs_collisionless(size=SIZE, progress=False)
e1_seconds = time.perf_counter() - t0
print(res1.table())

# %% [markdown]
# The collision rates each variant actually reached (deterministic: MD5 has no seed):
# `buckets` is the size of the MD5 space, `used` the rows the table ends up holding, `rate`
# the share of IDs without a row of their own, `traffic` the share of *events* whose ID
# shares its row with another ID.

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'variant':<16}{'field':>6}{'IDs':>6}{'buckets':>9}{'used':>6}{'rate':>8}{'traffic':>9}")
for v in res1.variants:
    for f in ("user", "item"):
        c = res1.collisions[v][f]
        print(f"{v:<16}{f:>6}{c['distinct']:>6}{c['rows']:>9,}{c['used']:>6}{c['measured']:>8.3f}{c['traffic']:>9.3f}")

# %% tags=["remove-cell"]
SHORT = {"md5-paper": "paper", "md5-30%": "30", "md5-50%": "50"}
for v, key in SHORT.items():
    for f in ("user", "item"):
        c = res1.collisions[v][f]
        mr.labs.glue_fields(f"e1_{key}_{f}_", c, names={"rate": "measured", "traffic": "traffic"}, cast=float)
        mr.labs.glue_fields(f"e1_{key}_{f}_", c, names={"buckets": "rows", "used": "used"}, cast=int)
mr.labs.glue_fields("e1_", res1.config, names=("train_events", "test_events"), cast=int)
mr.labs.glue_many(e1_seeds=len(res1.seeds), e1_epochs=int(res1.epochs))

# %% [markdown]
# ## 4. Our Figure 7
#
# Test AUC after each epoch; the line is the mean over seeds, the band one sample standard
# deviation either side.

# %%
fig, ax = plt.subplots(figsize=(7.5, 4.5), layout="constrained")
res1.plot(ax)
ax.set_title("E1 (small): collisionless vs MD5-hashed IDs, synthetic stream")
mr.labs.glue_figure("fig_e1", fig)

# %% [markdown]
# ## 5. How big is the gap?
#
# The gap is collisionless AUC minus hashed AUC, paired by seed (a seed fixes the initial
# weights and the shuffling for both). "Last" is the last epoch; "best" compares each run's
# best epoch. We also count the seeds, and the epochs of the mean curves, in which the
# collisionless table is ahead.

# %%
print(f"{'variant':<12}{'gap, last epoch':>22}{'gap, best epoch':>22}{'seeds ahead':>13}{'epochs ahead':>14}")
gaps = {}
for v, key in SHORT.items():
    last, best = res1.gap_stats(v, "last"), res1.gap_stats(v, "best")
    seeds_ahead = int((res1.gap(v)[:, -1] > 0).sum())
    epochs_ahead = int((res1.gap(v).mean(axis=0) > 0).sum())
    gaps[key] = (last, best, seeds_ahead, epochs_ahead)
    print(f"{v:<12}{last['mean']:>+13.4f} ± {last['std']:.4f}{best['mean']:>+13.4f} ± {best['std']:.4f}"
          f"{seeds_ahead:>9}/{len(res1.seeds)}{epochs_ahead:>10}/{res1.epochs}")
final = res1.summary()
last_cl = final[COLLISIONLESS]
print(f"\ncollisionless AUC, last epoch: {last_cl['mean'][-1]:.4f} ± {last_cl['std'][-1]:.4f}")

# %% tags=["remove-cell"]
gap_values = {}
for key, (last, best, seeds_ahead, epochs_ahead) in gaps.items():
    gap_values |= {f"e1_gap_last_{key}": float(last["mean"]), f"e1_gap_last_{key}_sd": float(last["std"]),
                   f"e1_gap_last_{key}_se": float(last["se"]), f"e1_gap_best_{key}": float(best["mean"]),
                   f"e1_gap_best_{key}_sd": float(best["std"]), f"e1_seeds_ahead_{key}": seeds_ahead,
                   f"e1_epochs_ahead_{key}": epochs_ahead}
for v, key in {COLLISIONLESS: "collisionless", **SHORT}.items():
    mean, std = final[v]["mean"], final[v]["std"]
    gap_values |= {f"e1_auc_last_{key}": float(mean[-1]), f"e1_auc_last_{key}_sd": float(std[-1]),
                   f"e1_auc_first_{key}": float(mean[0])}
mr.labs.glue_many(gap_values, e1_seed_sd_first=float(final[COLLISIONLESS]["std"][0]))

# %% [markdown]
# ## 6. E2's data and the quotient-remainder table
#
# E2's stream drifts: users' interests wander, new items are born every day and live about
# five days, and a few items go viral for some hours. The quotient-remainder (QR) table gets
# one eighth as many rows as there are distinct IDs, split into $2^k$ remainder rows and the
# rest as quotient rows. Two IDs have identical embeddings only if they share both parts.

# %%
# NBVAL_CHECK_OUTPUT
events2 = mr.synthetic_stream(P.e2_stream)
days2 = events2.days()
distinct2 = int(np.unique(events2.fields).size)
bits, quotient_rows = mr.experiments.qr_sizing(distinct2, 1 / 8)
share = mr.experiments.qr_sharing(events2.fields.reshape(-1), bits, quotient_rows)
seen: set[int] = set()
cold = []
for day in days2:
    items = day.fields[:, 1]
    cold.append(float(np.mean([int(i) not in seen for i in items])) if seen else 1.0)
    seen.update(int(i) for i in np.unique(items))
print(f"events: {len(events2):,} over {len(days2)} days; distinct IDs (all fields): {distinct2:,}")
print(f"QR table: 2^{bits} = {2**bits} remainder rows + {quotient_rows} quotient rows = {2**bits + quotient_rows} rows")
print(f"IDs sharing both parts: {share['share_both']:.3f}; sharing at least one part: {share['share_one']:.3f}")
print("share of each day's events on items not seen on earlier days:", [round(c, 3) for c in cold[1:]])

# %% tags=["remove-cell"]
mr.labs.glue_fields("e2_", share, names=("share_both", "share_one"), cast=float)
mr.labs.glue_many(
    e2_events=len(events2), e2_days_total=len(days2), e2_distinct=distinct2, e2_qr_bits=int(bits),
    e2_qr_rem_rows=int(2**bits), e2_qr_quo_rows=int(quotient_rows), e2_qr_rows=int(2**bits + quotient_rows),
    e2_cold_mean=float(np.mean(cold[1:])),
)

# %% [markdown]
# ## 7. E2: day by day, scored before training
#
# Each variant trains one pass on day 0. Then, for every next day, it is scored on that
# day with serving lookups and only then trains on it: the paper's predict-then-train.

# %%
t0 = time.perf_counter()
res2 = mr.experiments.run_qr_vs_collisionless(size=SIZE, progress=False)
e2_seconds = time.perf_counter() - t0
print(res2.table())

# %%
fig, ax = plt.subplots(figsize=(7.5, 4.5), layout="constrained")
res2.plot(ax)
ax.set_title("E2 (small): collisionless vs quotient-remainder, drifting stream")
mr.labs.glue_figure("fig_e2", fig)

# %%
gap2 = res2.gap("qr")  # (seeds, days): collisionless minus QR, paired by seed
mean_gap2 = gap2.mean(axis=0)
overall = res2.gap_stats("qr", "mean")
days_ahead = int((mean_gap2 > 0).sum())
j_min, j_max = int(np.argmin(mean_gap2)), int(np.argmax(mean_gap2))
print(f"gap averaged over days: {overall['mean']:+.4f} ± {overall['std']:.4f} (sd over seeds)")
print(f"days with the collisionless table ahead (mean over seeds): {days_ahead}/{len(res2.days)}")
print(f"smallest daily gap {mean_gap2[j_min]:+.4f} (day {res2.days[j_min]}), "
      f"largest {mean_gap2[j_max]:+.4f} (day {res2.days[j_max]})")

# %% tags=["remove-cell"]
s2 = res2.summary()
mr.labs.glue_many(
    e2_gap_mean=float(overall["mean"]), e2_gap_sd=float(overall["std"]), e2_days_ahead=days_ahead,
    e2_days_scored=len(res2.days), e2_gap_min=float(mean_gap2[j_min]), e2_gap_min_day=int(res2.days[j_min]),
    e2_gap_max=float(mean_gap2[j_max]), e2_gap_max_day=int(res2.days[j_max]),
    e2_auc_last_collisionless=float(s2[COLLISIONLESS]["mean"][-1]), e2_auc_last_qr=float(s2["qr"]["mean"][-1]),
    e2_seeds=len(res2.seeds),
)

# %% [markdown]
# ## 8. What a full run costs
#
# The small size is for reading along. The full size trains E1 for 10 epochs on a larger
# stream; on MovieLens-25M it trains on all 25 million ratings. From the speed measured
# above we can estimate what that takes on this machine (one PyTorch thread; the estimate
# counts training and per-epoch evaluation together).

# %%
e1_examples = res1.config["train_events"] * res1.epochs * len(res1.variants) * len(res1.seeds)
rate = e1_examples / e1_seconds
ml25m_examples = 0.8 * 25_000_000 * 10 * len(res1.variants) * 3  # 80% train, 10 epochs, 3 seeds
print(f"E1 (small): {e1_examples:,} training examples in {e1_seconds:.0f} s, about {rate:,.0f} per second")
print(f"E2 (small): {e2_seconds:.0f} s")
print(f"E1 on all of MovieLens-25M at that speed: about {ml25m_examples / rate / 3600:.0f} hours")

# %% tags=["remove-cell"]
mr.labs.glue_many(e1_examples_per_s=float(rate), ml25m_hours=float(ml25m_examples / rate / 3600))
