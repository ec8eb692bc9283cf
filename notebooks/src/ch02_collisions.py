# %% [markdown]
# # Lab: measuring collisions
#
# This lab is the companion of {doc}`../book/ch02_collisions`. It measures everything the
# chapter talks about: what a collision does to two IDs, why the hash function matters when
# IDs have structure, how the paper's Table 1 rates translate into table sizes, how the
# collision rate falls as the table grows, what the quotient-remainder trick shares, and how
# skewed traffic changes the picture. Every number the chapter quotes is computed here and
# handed to the chapter with `glue`.
#
# Everything is seeded, so the numbers are the same on every run. The whole notebook runs
# in a few seconds on a laptop. MD5 is computed in a Python loop (about a microsecond per
# ID), so we use it where the paper does and the fast `"mix"` hash (seeded splitmix64) for
# the larger sweeps. Cells that only hand numbers to the chapter (`glue`) are hidden in the
# book; open the notebook to see them.

# %%
import matplotlib.pyplot as plt
import numpy as np

import monolith_ref as mr

NUM_EVENTS = 200_000  # lookups in the synthetic stream
VOCAB = 100_000  # distinct IDs the stream can draw from
ALPHA = 1.1  # Zipf exponent of the main stream
SEED = 0

print("monolith_ref", mr.__version__)

# %% [markdown]
# ## 1. An embedding lookup is a row gather
#
# Multiplying a one-hot vector by the embedding matrix picks out one row. Frameworks skip
# the multiplication and index the row directly.

# %%
# NBVAL_CHECK_OUTPUT
rng = np.random.default_rng(SEED)
W = rng.standard_normal((6, 3)).round(2)  # a tiny table: 6 IDs, dimension 3
one_hot = np.zeros(6)
one_hot[4] = 1.0
print("one_hot @ W :", one_hot @ W)
print("W[4]        :", W[4])
print("identical   :", bool(np.array_equal(one_hot @ W, W[4])))

# %% [markdown]
# ## 2. What a collision does
#
# A `HashedTable` with 8 rows must send many IDs to the same row. We look for the first two
# small IDs that share a row and then train only the first one. The second one moves too:
# it *is* the same row.

# %%
# NBVAL_CHECK_OUTPUT
config = mr.TableConfig(dim=4, seed=SEED, optimizer=mr.SGD(lr=0.5))
tiny = mr.HashedTable(config, num_rows=8, method="mix")
candidates = np.arange(1, 20, dtype=np.uint64)
rows = tiny.rows_of(candidates)
j = next(j for j in range(1, rows.size) if rows[j] in rows[:j])  # first ID whose row is taken
i = int(np.flatnonzero(rows[:j] == rows[j])[0])  # the ID that took it
a, b = int(candidates[i]), int(candidates[j])
print(f"ID {a} -> row {rows[i]}, ID {b} -> row {rows[j]}")

before = tiny.lookup(np.array([a, b], dtype=np.uint64), now=0)
print("same vector before training:", bool(np.array_equal(before[0], before[1])))
tiny.apply_gradients(np.array([a], dtype=np.uint64), np.ones((1, 4), dtype=np.float32))
after = tiny.lookup(np.array([a, b], dtype=np.uint64), now=1)
print(f"ID {b} was never trained, yet it moved by:", (after[1] - before[1]).round(3))
print("same vector after training: ", bool(np.array_equal(after[0], after[1])))

# %% [markdown]
# ## 3. Structured IDs need a good mixer
#
# `bucket_of(ids, m, "mod")` is plain `id % m`. It is perfect for consecutive IDs and
# disastrous for IDs that share a stride with `m`. MD5 and splitmix64 scramble every bit,
# so they treat all three kinds of ID the same, close to what the birthday formula predicts.

# %%
# NBVAL_CHECK_OUTPUT
n_struct, m_struct, stride = 10_000, 2**16, 4096
patterns = {
    "consecutive 1..n": np.arange(1, n_struct + 1, dtype=np.uint64),
    f"multiples of {stride}": np.arange(1, n_struct + 1, dtype=np.uint64) * np.uint64(stride),
    "random 63-bit": np.random.default_rng(SEED).choice(2**62, n_struct, replace=False).astype(np.uint64),
}
struct = {}
print(f"{n_struct:,} IDs into m = {m_struct:,} rows; collision rate (IDs without a row of their own)")
print(f"{'IDs':<20}{'mod':>8}{'md5':>8}{'mix':>8}")
for label, ids in patterns.items():
    struct[label] = {meth: mr.hashing.collision_rate(ids, m_struct, meth) for meth in ("mod", "md5", "mix")}
    print(f"{label:<20}" + "".join(f"{struct[label][meth]:8.2%}" for meth in ("mod", "md5", "mix")))
struct_expected = mr.hashing.expected_collision_rate(n_struct, m_struct)
print(f"{'formula':<20}{struct_expected:>24.2%}")

stride_ids = patterns[f"multiples of {stride}"]
stride_rows_used = int(np.unique(mr.hashing.bucket_of(stride_ids, m_struct, "mod")).size)
print(f"rows used by 'mod' for the strided IDs: {stride_rows_used}")

# %% tags=["remove-cell"]
# Hand the numbers to the chapter (kept out of the checked cell above).
strided, consecutive = struct[f"multiples of {stride}"], struct["consecutive 1..n"]
mr.labs.glue_many(
    struct_n=n_struct, struct_m=m_struct, struct_stride=stride, struct_stride_rows_used=stride_rows_used,
    struct_stride_mod=strided["mod"], struct_stride_md5=strided["md5"], struct_stride_mix=strided["mix"],
    struct_consec_mod=consecutive["mod"], struct_consec_md5=consecutive["md5"],
    struct_random_md5=struct["random 63-bit"]["md5"], struct_expected=struct_expected,
)

# %% [markdown]
# ## 4. The paper's Table 1, read backwards
#
# Table 1 of the paper (section 3.2.1) gives, for MovieLens-25M, the number of distinct IDs
# and the number of distinct rows they occupy after MD5 hashing. The paper does not say how
# many buckets it used. The birthday formula lets us infer it: `buckets_for_collision_rate`
# finds the smallest `m` whose expected collision rate does not exceed the observed one.
# This is our inference, not a number from the paper.
#
# Both implied sizes come out close to one million, so we also check how plausible a single
# table of exactly $10^6$ rows is: we hash `n` IDs into $10^6$ rows with 30 differently
# seeded mixers, measure the spread of the number of occupied rows, and see how far the
# paper's counts sit from the mean. Finally we hash the small integers `1..n` with MD5 (the
# paper's hash) into $10^6$ rows.

# %%
# NBVAL_CHECK_OUTPUT
# Typed from the paper's Table 1 (section 3.2.1): distinct IDs, distinct rows after hashing.
TABLE1 = {"users": (162_541, 149_970), "movies": (59_047, 57_361)}
ONE_MILLION = 10**6

print(f"{'':<8}{'paper rate':>11}{'implied m':>11}{'m/n':>7}{'E[rate] at 1e6':>16}"
      f"{'z at 1e6':>10}{'MD5 1..n at 1e6':>17}")
table1 = {}
for name, (n_ids, rows_used) in TABLE1.items():
    rate = 1 - rows_used / n_ids  # the paper's way of counting
    m_implied = mr.hashing.buckets_for_collision_rate(n_ids, rate)
    ids = np.arange(1, n_ids + 1, dtype=np.uint64)
    occupied = np.array([np.count_nonzero(np.bincount(mr.hashing.bucket_of(ids, ONE_MILLION, "mix", seed=s)))
                         for s in range(30)])
    z = (rows_used - occupied.mean()) / occupied.std(ddof=1)
    md5_rows = int(np.unique(mr.hashing.bucket_of(ids, ONE_MILLION, "md5")).size)
    md5_rate = 1 - md5_rows / n_ids  # the same count as collision_rate(ids, ONE_MILLION, "md5")
    table1[name] = dict(  # named as the chapter's glue names end: t1_users_rate, ...
        n=n_ids, rate=rate, m=m_implied, ratio=m_implied / n_ids,
        colliding=mr.hashing.expected_colliding_fraction(n_ids, m_implied),
        rate_1e6=mr.hashing.expected_collision_rate(n_ids, ONE_MILLION),
        occ_mean_1e6=occupied.mean(), occ_sd_1e6=occupied.std(ddof=1), z_1e6=z, abs_z_1e6=abs(z),
        md5_1e6=md5_rate, md5_rows_1e6=md5_rows,
    )
    t = table1[name]
    print(f"{name:<8}{rate:>11.2%}{m_implied:>11,}{t['ratio']:>7.2f}{t['rate_1e6']:>16.2%}"
          f"{z:>10.1f}{md5_rate:>17.2%}")

# %% tags=["remove-cell"]
for name, t in table1.items():
    mr.labs.glue_fields(f"t1_{name}_", t)

# %% [markdown]
# ## 5. A skewed stream of sparse IDs
#
# `zipf_ids` draws lookups from a vocabulary whose popularity follows a Zipf law and turns
# ranks into scattered 64-bit IDs. Most of the vocabulary is never drawn, and a handful of
# IDs take a large share of the lookups.

# %%
events = mr.zipf_ids(NUM_EVENTS, VOCAB, ALPHA, SEED)
uniq, counts = np.unique(events, return_counts=True)
n = int(uniq.size)
top_share = counts.max() / NUM_EVENTS
seen_once = float(np.mean(counts == 1))
print(f"{NUM_EVENTS:,} lookups, {n:,} distinct IDs (of a vocabulary of {VOCAB:,})")
print(f"the most popular ID takes {top_share:.1%} of the lookups; {seen_once:.1%} of the IDs are seen once")
print("a few IDs:", [hex(int(x)) for x in uniq[:3]])

mr.labs.glue_many(n_events=NUM_EVENTS, vocab=VOCAB, alpha=ALPHA, n_distinct=n, top_share=top_share,
                  seen_once=seen_once)

# %% [markdown]
# ## 6. Collision rate against table size
#
# We sweep the number of rows `m` from a quarter of the number of distinct IDs to 32 times
# it, in half-octave steps. At each size we measure the collision rate with the seeded
# mixer (mean of five seeds) and, at whole octaves, with MD5 (one run), and compare with
# the formula. We also
# track the stricter count, the fraction of IDs that share their row with anyone.

# %%
ratios = 2.0 ** np.arange(-2, 5.01, 0.5)
sweep = {"ratio": [], "m": [], "formula": [], "md5": [], "mix": [], "coll_formula": [], "coll_mix": []}
for r in ratios:
    m = int(round(r * n))
    sweep["ratio"].append(float(r))
    sweep["m"].append(m)
    sweep["formula"].append(mr.hashing.expected_collision_rate(n, m))
    # MD5 loops in Python, so only at whole octaves (m/n = 1/4, 1/2, 1, ..., 32).
    sweep["md5"].append(mr.hashing.collision_rate(uniq, m, "md5") if float(np.log2(r)).is_integer() else np.nan)
    sweep["mix"].append(float(np.mean([mr.hashing.collision_rate(uniq, m, "mix", seed=s) for s in range(5)])))
    sweep["coll_formula"].append(mr.hashing.expected_colliding_fraction(n, m))
    sweep["coll_mix"].append(float(np.mean([mr.hashing.colliding_fraction(uniq, m, "mix", seed=s)
                                            for s in range(5)])))
sweep = {k: np.array(v) for k, v in sweep.items()}
max_rel_dev = float(np.nanmax(np.abs(sweep["md5"] - sweep["formula"]) / sweep["formula"]))
print(f"largest relative gap between MD5 and the formula over the sweep: {max_rel_dev:.1%}")
mr.labs.glue_many(sweep_max_rel_dev=max_rel_dev)

# %%
# NBVAL_CHECK_OUTPUT
print(f"n = {n:,} distinct IDs")
print(f"{'m/n':>6}{'m':>10}{'formula':>9}{'md5':>8}{'mix':>8}{'sharing (formula)':>19}")
quoted = [i for i, r in enumerate(sweep["ratio"]) if r in (0.25, 1.0, 4.0, 16.0)]  # the sizes the chapter quotes
for i in quoted:
    r = sweep["ratio"][i]
    print(f"{r:>6g}{sweep['m'][i]:>10,}{sweep['formula'][i]:>9.1%}{sweep['md5'][i]:>8.1%}"
          f"{sweep['mix'][i]:>8.1%}{sweep['coll_formula'][i]:>19.1%}")

# %% tags=["remove-cell"]
for i in quoted:
    key = f"{sweep['ratio'][i]:g}".replace(".", "p")
    mr.labs.glue_many({f"sweep_{name}_{key}": sweep[column][i]
                       for name, column in (("formula", "formula"), ("md5", "md5"), ("mix", "mix"),
                                            ("coll", "coll_formula"))})

# %%
fig, ax = plt.subplots(figsize=(7.5, 4.6))
grid = 2.0 ** np.linspace(-2.2, 5.2, 200)
ax.plot(grid, [mr.hashing.expected_collision_rate(n, max(1, int(round(g * n)))) for g in grid],
        color="C0", label="formula: no row of its own (Table 1 count)")
ax.plot(grid, [mr.hashing.expected_colliding_fraction(n, max(1, int(round(g * n)))) for g in grid],
        color="C0", ls="--", label="formula: shares its row with someone")
ax.plot(sweep["ratio"], sweep["md5"], "o", color="C1", label="measured, MD5")
ax.plot(sweep["ratio"], sweep["mix"], "x", color="C2", ms=8, label="measured, mix (mean of 5 seeds)")
ax.plot(sweep["ratio"], sweep["coll_mix"], "+", color="C2", ms=9, label="measured sharing, mix")
for name, marker in (("users", "*"), ("movies", "D")):
    t = table1[name]
    ax.plot([t["ratio"]], [t["rate"]], marker, color="C3", ms=12 if marker == "*" else 7,
            label=f"paper Table 1, {name} (at implied m/n)")
    ax.annotate(f"{name} {t['rate']:.2%}\nm/n = {t['ratio']:.1f}", (t["ratio"], t["rate"]),
                textcoords="offset points", xytext=(8, 6), fontsize=8, color="C3")
ax.set_xscale("log", base=2)
ax.set_yscale("log")
ax.set_xlabel("table rows per distinct ID (m / n)")
ax.set_ylabel("fraction of distinct IDs")
ax.set_title(f"Hash collisions against table size ({n:,} distinct Zipf IDs)")
ax.grid(True, which="both", alpha=0.3)
ax.legend(fontsize=8, loc="lower left")
fig.tight_layout()
mr.labs.glue_figure("fig_rate_vs_size", fig)

# %% [markdown]
# ## 7. The quotient-remainder trick shares halves
#
# `QRHashedTable` keeps two tables: a remainder table indexed by `id % 2**k` and a quotient
# table indexed by `(id >> k) % quotient_rows`. An ID's embedding is the sum of one row from
# each. Below, ID `b` has the same remainder as ID `a` but a different quotient, and ID `c`
# shares neither part. Training `a` moves `b` through the shared half only, and leaves `c`
# alone.

# %%
# NBVAL_CHECK_OUTPUT
qr_tiny = mr.QRHashedTable(config, remainder_bits=3, quotient_rows=8)
a_qr, b_qr, c_qr = 5, 5 + 8, 6 + 16  # 5 = (r 5, q 0), 13 = (r 5, q 1), 22 = (r 6, q 2)
trio = np.array([a_qr, b_qr, c_qr], dtype=np.uint64)
rem, quo = qr_tiny.parts_of(trio)
for i, x in enumerate(trio):
    print(f"ID {int(x):>2}: remainder row {rem[i]}, quotient row {quo[i]}")
before = qr_tiny.lookup(trio, now=0)
qr_tiny.apply_gradients(np.array([a_qr], dtype=np.uint64), np.ones((1, 4), dtype=np.float32))
after = qr_tiny.lookup(trio, now=1)
moved = (after - before).round(3)
for i, x in enumerate(trio):
    print(f"ID {int(x):>2} moved by {moved[i]}")
print("a and b still differ:", not bool(np.array_equal(after[0], after[1])))

# %% [markdown]
# Now the statistics over all the distinct IDs of the stream. For each `k` we build a QR
# table with $2^k$ remainder rows and $2^k$ quotient rows, and count, per ID, whether
# another ID has exactly the same pair of rows (a full collision), or shares at least one
# of its two rows (partial sharing). For comparison, a single hashed table with the same
# number of rows ($2^{k+1}$).

# %%
# NBVAL_CHECK_OUTPUT
def shared(keys: np.ndarray) -> np.ndarray:
    """True where a key occurs more than once (a tiny counting helper for this lab)."""
    _, inverse, cnt = np.unique(keys, return_inverse=True, return_counts=True)
    return cnt[inverse] > 1


print(f"n = {n:,} distinct IDs")
print(f"{'k':>3}{'rows':>9}{'single table':>14}{'QR: full pair':>15}{'QR: some part':>15}")
qr_stats = {}
for k in (12, 14, 16):
    qr = mr.QRHashedTable(mr.TableConfig(dim=1, seed=SEED), remainder_bits=k, quotient_rows=2**k)
    rem, quo = qr.parts_of(uniq)
    full = shared(rem * 2**k + quo).mean()
    partial = (shared(rem) | shared(quo)).mean()
    single = mr.hashing.colliding_fraction(uniq, 2 ** (k + 1), "mix")
    qr_stats[k] = dict(rows=len(qr), single=single, full=full, partial=partial)
    print(f"{k:>3}{len(qr):>9,}{single:>14.1%}{full:>15.2%}{partial:>15.1%}")

# %% tags=["remove-cell"]
for k, q in qr_stats.items():
    mr.labs.glue_fields(f"qr_{k}_", q)

# %% [markdown]
# ## 8. Traffic-weighted collisions under skew
#
# The per-ID rates treat every ID alike. Training sees *lookups*, so we also ask what
# fraction of lookups read a shared row (`traffic_collision_rate`). We draw a stream for
# three Zipf exponents, size each table at four rows per distinct ID (so the per-ID rate is
# the same for all three), and repeat with 20 seeds of the mixer. We also count, among IDs
# that share a row, those that get less than a tenth of their row's lookups: their row is
# trained mostly by someone else.

# %%
ALPHAS = (0.8, 1.1, 1.4)
traffic = {}
for alpha in ALPHAS:
    ev = mr.zipf_ids(NUM_EVENTS, VOCAB, alpha, SEED)
    u, c = np.unique(ev, return_counts=True)
    m = 4 * u.size
    rates, coll, drowned = [], [], []
    for s in range(20):
        rates.append(mr.hashing.traffic_collision_rate(ev, m, "mix", seed=s))
        coll.append(mr.hashing.colliding_fraction(u, m, "mix", seed=s))
        rows = mr.hashing.bucket_of(u, m, "mix", seed=s)
        ids_in_row = np.bincount(rows, minlength=m)[rows]
        row_traffic = np.bincount(rows, weights=c, minlength=m)[rows]
        sharing = ids_in_row > 1
        drowned.append(np.mean(c[sharing] / row_traffic[sharing] < 0.1))
    traffic[alpha] = dict(
        n=int(u.size), m=m, top=float(c.max() / ev.size), ids=float(np.mean(coll)),
        expected=mr.hashing.expected_colliding_fraction(u.size, m), rates=np.array(rates),
        mean=np.mean(rates), median=np.median(rates), min=np.min(rates), max=np.max(rates),
        drowned=float(np.mean(drowned)),
    )

# %%
# NBVAL_CHECK_OUTPUT
print("m = 4 rows per distinct ID; 20 seeds of the mixer")
print(f"{'alpha':>5}{'distinct':>9}{'top ID':>8}{'IDs sharing':>12}{'lookups sharing: mean':>23}"
      f"{'median':>8}{'min':>7}{'max':>7}{'drowned':>9}")
for alpha, t in traffic.items():
    print(f"{alpha:>5}{t['n']:>9,}{t['top']:>8.1%}{t['ids']:>12.1%}{t['mean']:>23.1%}"
          f"{t['median']:>8.1%}{t['min']:>7.1%}{t['max']:>7.1%}{t['drowned']:>9.1%}")

# %% tags=["remove-cell"]
for alpha, t in traffic.items():
    mr.labs.glue_fields(f"traffic_{alpha:g}_".replace(".", "p"), t,
                        names=("n", "top", "ids", "expected", "mean", "median", "min", "max", "drowned"))

# %%
fig2, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.8))
for i, (alpha, t) in enumerate(traffic.items()):
    jitter = np.random.default_rng(i).uniform(-0.12, 0.12, t["rates"].size)
    ax1.plot(i + jitter, t["rates"], "o", color=f"C{i}", alpha=0.7, ms=5)
    ax1.hlines(t["expected"], i - 0.3, i + 0.3, color="k", lw=2)
ax1.plot([], [], "k-", lw=2, label="IDs sharing a row (formula)")
ax1.plot([], [], "o", color="grey", label="lookups sharing a row (one mixer seed)")
ax1.set_xticks(range(len(ALPHAS)), [rf"$\alpha$ = {a}" for a in ALPHAS])
ax1.set_ylabel("fraction")
ax1.set_ylim(0, None)
ax1.set_title("Per ID vs per lookup (m = 4n)")
ax1.legend(fontsize=8, loc="upper left")
ax2.bar(range(len(ALPHAS)), [t["drowned"] for t in traffic.values()], color=["C0", "C1", "C2"])
ax2.set_xticks(range(len(ALPHAS)), [rf"$\alpha$ = {a}" for a in ALPHAS])
ax2.set_ylabel("fraction of IDs that share a row")
ax2.set_title("Sharing IDs with < 10% of their row's lookups")
for ax in (ax1, ax2):
    ax.grid(True, axis="y", alpha=0.3)
fig2.tight_layout()
mr.labs.glue_figure("fig_traffic", fig2)

# %% [markdown]
# ## 9. IDs keep arriving; the hashed table does not grow
#
# Reading the same stream in longer and longer prefixes shows the vocabulary growing. A
# hashed table keeps its `m` rows, so its collision rate climbs; a collisionless table would
# need one row per distinct ID instead.

# %%
# NBVAL_CHECK_OUTPUT
m_fixed = 2**15
print(f"hashed table with m = {m_fixed:,} rows (mix hash)")
print(f"{'lookups':>9}{'distinct IDs':>14}{'rate':>8}{'formula':>9}")
growth = {}
for prefix in (25_000, 50_000, 100_000, 200_000):
    part = events[:prefix]
    n_part = int(np.unique(part).size)
    growth[prefix] = dict(n=n_part, rate=mr.hashing.collision_rate(part, m_fixed, "mix"),
                          formula=mr.hashing.expected_collision_rate(n_part, m_fixed))
    print(f"{prefix:>9,}{n_part:>14,}{growth[prefix]['rate']:>8.1%}{growth[prefix]['formula']:>9.1%}")

# %% tags=["remove-cell"]
mr.labs.glue_many(growth_m=m_fixed)
for prefix, g in growth.items():
    mr.labs.glue_fields(f"growth_{prefix // 1000}k_", g, names=("n", "rate"))

# %% [markdown]
# ## What we measured
#
# - A collision is not an approximation of two embeddings: it is one embedding, and a
#   gradient for either ID moves both.
# - With a good mixer the measured rates follow the birthday formula closely; with `id % m`
#   they depend on how the IDs were made.
# - The paper's Table 1 rates correspond to tables of roughly a million rows, several times
#   more rows than IDs (our inference, not the paper's statement).
# - The quotient-remainder trick almost never gives two IDs the same pair of rows, but
#   nearly every ID shares half of its parameters.
# - Under skewed traffic the share of lookups that hit a shared row equals the per-ID share
#   on average, but varies wildly from one hash function to another, and rare IDs that share
#   a row with a popular one barely own it.
