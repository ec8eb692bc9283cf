# %% [markdown]
# # Lab: sharding and the worker/parameter-server split
#
# The companion lab of chapter 7. We route IDs to shards with `mr.route` and split a batch
# with `mr.tables.routing.split_by_shard`; check why the routing hash is salted; measure how evenly rows and
# traffic spread over 2 to 16 shards under Zipf traffic, and what worker-side dedup,
# replication and caching do to the hot shard; check that a `ShardedTable` is bit-identical
# to one `NumbaTable`; time shard-parallel batches on two threads; watch per-shard filters;
# and count the bytes a training step moves under all-reduce, a parameter server, and an
# all-to-all exchange.
#
# Every number the chapter quotes is glued from this notebook. Cells whose first line is
# `# NBVAL_CHECK_OUTPUT` print deterministic output that the notebook tests compare; the
# timing cell is not one of them.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import monolith_ref as mr

CPUS = os.cpu_count() or 1
mr.labs.glue_many(cpus=int(CPUS))
print("monolith_ref", mr.__version__)

# %% [markdown]
# ## Routing a batch
#
# Ten IDs (the second and the last repeat the first) go to three shards. `route` gives each
# ID its shard; `split_by_shard` gives, for each shard, the positions of the batch that go
# there, in batch order. Each shard answers its part, and the answers are written back at
# those positions. The sharded lookup must equal a lookup in one table.

# %%
# NBVAL_CHECK_OUTPUT
ids = np.array([101, 101, 7, 42, 99, 1234, 5, 77, 300, 101], dtype=np.uint64)
shards = mr.route(ids, 3, seed=0)
parts = mr.tables.routing.split_by_shard(shards, 3)
print("shard of each ID:   ", shards.tolist())
for s, pos in enumerate(parts):
    print(f"shard {s}: positions {pos.tolist()}, IDs {ids[pos].tolist()}")

cfg_small = mr.TableConfig(dim=4, seed=0)
single = mr.NumbaTable(cfg_small)
sharded = mr.ShardedTable(cfg_small, num_shards=3, threads=1)
same = np.array_equal(single.lookup(ids, now=1), sharded.lookup(ids, now=1))
print("sharded lookup == single-table lookup:", same)
print("rows per shard:", sharded.shard_sizes().tolist(), "total", len(sharded))

# %% [markdown]
# ## Why the routing hash is salted
#
# Inside a shard, `NumbaTable` puts a key in the bucket `mix64(key, seed) & mask` (or in
# a second one, under another seed). Suppose the router used the very same hash:
# `mix64(key, seed) % N`. With `N` a power of two, `% N` keeps the low bits of the hash, and
# `& mask` keeps the low bits too. Every key on shard 0 would have its low bits equal to 0,
# so it could only reach one bucket in `N` by its first hash. `route` mixes the ID with a
# salted seed instead, so the shard tells nothing about the bucket. We count the share of
# shard 0's buckets that its keys reach by their first hash, under both routers.

# %%
# NBVAL_CHECK_OUTPUT
SALT_N, SALT_BUCKETS, SALT_SEED = 4, 4096, 0
salt_keys = np.random.default_rng(11).integers(0, 2**63, size=100_000, dtype=np.int64).astype(np.uint64)
index_hash = mr.hashing.mix64(salt_keys, SALT_SEED)  # the index's first bucket hash, before the mask
bucket = index_hash & np.uint64(SALT_BUCKETS - 1)
routers = {
    "same hash as the index": (index_hash % np.uint64(SALT_N)).astype(np.int64),
    "salted (route)": mr.route(salt_keys, SALT_N, SALT_SEED),
}
reach = {}
for name, shard_of in routers.items():
    on0 = shard_of == 0
    reach[name] = np.unique(bucket[on0]).size / SALT_BUCKETS
    print(f"{name:>24}: {on0.sum():>6,} keys on shard 0 reach {reach[name]:.3f} of its buckets")

# %% tags=["remove-cell"]
mr.labs.glue_many(salt_shards=SALT_N, salt_buckets=SALT_BUCKETS,
                  salt_reach_same=float(reach["same hash as the index"]),
                  salt_reach_salted=float(reach["salted (route)"]))

# %% [markdown]
# ## Load balance under Zipf traffic
#
# For three Zipf exponents we draw a stream of 500,000 events over a vocabulary of a million
# ranks. A `ShardedTable` with 2, 4, 8 and 16 shards looks up every distinct ID once; its
# `shard_sizes()` are the **rows** each shard holds. The **traffic** of a shard is the number
# of lookups the stream sends to it. For each we report the imbalance, the largest shard
# divided by the mean shard (1.0 is perfect balance). The last column is a floor for the
# traffic imbalance: the hottest ID's share of the stream times `N`, since one shard takes
# all of that ID's lookups.

# %%
BAL_EVENTS, BAL_VOCAB, BAL_SEED = 500_000, 1_000_000, 7
ALPHAS = (0.8, 1.1, 1.4)
NS = (2, 4, 8, 16)
streams, balance = {}, {}
for alpha in ALPHAS:
    stream = mr.zipf_ids(BAL_EVENTS, BAL_VOCAB, alpha, seed=BAL_SEED)
    streams[alpha] = stream
    uniq = np.unique(stream)
    top_share = float(mr.zipf_probabilities(BAL_VOCAB, alpha)[0])
    for n in NS:
        table = mr.ShardedTable(mr.TableConfig(dim=4, seed=0), num_shards=n, threads=1)
        table.lookup(uniq, now=1)
        rows = table.shard_sizes()
        assert np.array_equal(rows, np.bincount(mr.route(uniq, n, 0), minlength=n))
        traffic = np.bincount(mr.route(stream, n, 0), minlength=n)
        balance[alpha, n] = dict(rows=rows, traffic=traffic, distinct=uniq.size, top=top_share,
                                 rows_imb=float(rows.max() / rows.mean()),
                                 traffic_imb=float(traffic.max() / traffic.mean()))

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'alpha':>5} {'N':>3} {'distinct IDs':>12} {'rows max/mean':>14} "
      f"{'traffic max/mean':>17} {'N x top share':>14}")
for (alpha, n), b in balance.items():
    print(f"{alpha:>5} {n:>3} {b['distinct']:>12,} {b['rows_imb']:>14.2f} "
          f"{b['traffic_imb']:>17.2f} {n * b['top']:>14.2f}")

# %% tags=["remove-cell"]
def listed(values):
    """``0.8, 1.1 and 1.4``: values as the prose lists them."""
    return ", ".join(str(v) for v in values[:-1]) + f" and {values[-1]}"


def alpha_key(alpha):
    """``a14`` for ``alpha = 1.4``: the part of a glue name that says which stream."""
    return f"a{int(round(alpha * 10)):02d}"


per_stream = {}
for (alpha, n), b in balance.items():
    a = alpha_key(alpha)
    per_stream |= {f"bal_traffic_{a}_n{n}": b["traffic_imb"], f"bal_rows_{a}_n{n}": b["rows_imb"]}
    if n == 16:
        per_stream |= {f"bal_distinct_{a}": int(b["distinct"]), f"bal_top_{a}": float(b["top"])}
hot = balance[1.4, 16]
mr.labs.glue_many(
    per_stream, bal_events=BAL_EVENTS, bal_alphas=listed(ALPHAS), bal_ns=listed(NS), bal_vocab=BAL_VOCAB,
    bal_rows_worst=max(b["rows_imb"] for b in balance.values()), bal_floor_a14_n16=16 * hot["top"],
    bal_hot_shard_share=float(hot["traffic"].max() / BAL_EVENTS), bal_mean_shard_share=1 / 16,
)

# %% [markdown]
# The plot: on the left the imbalance of traffic (solid) and of rows (dashed) against the
# number of shards; on the right, each of 16 shards' share of the traffic at `alpha = 1.4`,
# with the hottest ID's part of its shard drawn darker.

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
for i, alpha in enumerate(ALPHAS):
    ax1.plot(NS, [balance[alpha, n]["traffic_imb"] for n in NS], "o-", color=f"C{i}",
             label=f"traffic, alpha {alpha}")
    ax1.plot(NS, [balance[alpha, n]["rows_imb"] for n in NS], "s--", color=f"C{i}", alpha=0.6,
             label=f"rows, alpha {alpha}")
ax1.axhline(1.0, color="grey", lw=0.8)
ax1.set_xscale("log", base=2)
ax1.set_xticks(NS, [str(n) for n in NS])
ax1.set_xlabel("number of shards N")
ax1.set_ylabel("largest shard / mean shard")
ax1.set_title("Rows balance, traffic does not")
ax1.legend(fontsize=8)

n16 = balance[1.4, 16]
hot_id = np.unique(streams[1.4], return_counts=True)
hot_key = hot_id[0][np.argmax(hot_id[1])]
hot_shard = mr.tables.routing.route_key(hot_key, 16, 0)
share = n16["traffic"] / BAL_EVENTS
hot_part = np.zeros(16)
hot_part[hot_shard] = hot_id[1].max() / BAL_EVENTS
ax2.bar(range(16), share - hot_part, color="C2", label="other IDs")
ax2.bar(range(16), hot_part, bottom=share - hot_part, color="C3", label="the hottest ID")
ax2.axhline(1 / 16, color="black", ls=":", label="perfect balance (1/16)")
ax2.set_xlabel("shard")
ax2.set_ylabel("share of lookups")
ax2.set_title("16 shards, alpha 1.4")
ax2.legend(fontsize=8)
fig.tight_layout()
mr.labs.glue_figure("fig_balance", fig)

# %% [markdown]
# ### Remedies for the hot shard
#
# Same stream (`alpha = 1.4`), 16 shards. Three remedies, each measured as the traffic
# imbalance it leaves:
#
# * **dedup at the worker**: each batch of 4,096 lookups sends each distinct ID once, so a
#   hot ID costs its shard one request per batch, not one per occurrence;
# * **replicate the hottest IDs** on every shard and spread their lookups evenly;
# * **cache the hottest IDs at the workers**, so their lookups never reach a shard (we also
#   report the share of the traffic the cache absorbs).
#
# The hottest IDs are taken from the stream's own counts, an oracle; a real system would
# estimate them, for example with a sketch as in chapter 5.

# %%
REM_N, REM_BATCH, REM_ALPHA = 16, 4096, 1.4
stream = streams[REM_ALPHA]
keys, counts = np.unique(stream, return_counts=True)
order = np.argsort(-counts, kind="stable")
base_traffic = np.bincount(mr.route(stream, REM_N, 0), minlength=REM_N)

dedup_traffic = np.zeros(REM_N, dtype=np.int64)
for start in range(0, stream.size, REM_BATCH):
    dedup_traffic += np.bincount(mr.route(np.unique(stream[start:start + REM_BATCH]), REM_N, 0), minlength=REM_N)

remedies = {"none": (base_traffic.max() / base_traffic.mean(), 0.0),
            "dedup per batch": (dedup_traffic.max() / dedup_traffic.mean(), 0.0)}
for k in (1, 16, 256):
    hot_keys, hot_counts = keys[order[:k]], counts[order[:k]]
    rest = base_traffic - np.bincount(mr.route(hot_keys, REM_N, 0), weights=hot_counts, minlength=REM_N)
    replicated = rest + hot_counts.sum() / REM_N
    remedies[f"replicate top {k}"] = (replicated.max() / replicated.mean(), 0.0)
    remedies[f"cache top {k} at workers"] = (rest.max() / rest.mean(), hot_counts.sum() / stream.size)

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'remedy':>24} {'traffic max/mean':>17} {'absorbed by cache':>18}")
for name, (imb, absorbed) in remedies.items():
    print(f"{name:>24} {imb:>17.2f} {absorbed:>18.1%}")

# %% tags=["remove-cell"]
per_k = {}
for k in (1, 16, 256):
    cache_imb, absorbed = remedies[f"cache top {k} at workers"]
    per_k |= {f"rem_replicate_{k}": float(remedies[f"replicate top {k}"][0]), f"rem_cache_{k}": float(cache_imb),
              f"rem_cache_{k}_absorbed": float(absorbed)}
mr.labs.glue_many(per_k, rem_batch=REM_BATCH, rem_dedup=float(remedies["dedup per batch"][0]))

# %% [markdown]
# ## A sharded table is one table, bit for bit
#
# A `NumbaTable` and a `ShardedTable` of four `NumbaTable` shards on two threads, both with
# Adagrad and an exact occurrence filter (threshold 2), go through the same 25 training
# steps on a Zipf stream: a training lookup, then seeded gradients
# (`mr.labs.run_table_program` drives both). Then we compare every exported array,
# exactly. Last, `split_state` cuts the single table's export by shard:
# each part must hold exactly the rows of that shard, and `merge_states` must put the parts
# back together as they were.

# %%
# NBVAL_CHECK_OUTPUT
EQ_STEPS = 25
cfg_eq = mr.TableConfig(dim=8, seed=3, optimizer=mr.Adagrad(lr=0.05), filter=mr.OccurrenceFilter(2))
one = mr.NumbaTable(cfg_eq)
four = mr.ShardedTable(cfg_eq, num_shards=4, threads=2)
eq_stream = mr.zipf_ids(EQ_STEPS * 2000, 200_000, 1.1, seed=21)
lookups_equal = mr.labs.run_table_program([one, four], eq_stream, EQ_STEPS, grad_seed=22)
ea, eb = one.export(), four.export()
row_keys = ("ids", "embeddings", "opt_state", "last_seen")
print("every training lookup equal:", lookups_equal)
for key in row_keys:
    print(f"{key:>10} identical: {np.array_equal(ea[key], eb[key])}")
print("rows:", len(one), len(four), "per shard:", four.shard_sizes().tolist())
by_shard = mr.split_state(ea, 4, cfg_eq.seed)
split_equal = all(np.array_equal(part[k], shard.export()[k])
                  for part, shard in zip(by_shard, four.shards) for k in row_keys)
merged = mr.merge_states(by_shard)
print("one table's rows split by shard == each shard's rows:", split_equal)
print("split, then merged == the table's rows:", all(np.array_equal(merged[k], ea[k]) for k in row_keys))
four.close()

# %% tags=["remove-cell"]
mr.labs.glue_many(eq_rows=len(one), eq_steps=EQ_STEPS)

# %% [markdown]
# ## Shard-parallel batches
#
# `NumbaTable`'s kernels are compiled with `nogil=True`: while one thread runs a kernel,
# another thread can run Python or its own kernel. `ShardedTable(threads=2)` hands the
# shards' parts of a batch to a pool of two threads; `threads=1` runs them one after
# another. Both tables have two shards and the same 200,000 resident IDs, at dim 16, with
# Adagrad. We time a training lookup and an `apply_gradients` of one batch of 500,000 IDs,
# alternating the two tables, and keep the median of several runs of each. A single
# `NumbaTable` is timed too. Timings depend on the machine and on what else runs on it, so
# only ratios are glued, with one diagnostic: how many cores this process kept busy
# (CPU seconds per wall-clock second) during the threaded runs. If another program holds
# one of the two cores, no thread pool can go faster than one core.

# %%
SPD_DIM, SPD_RESIDENT, SPD_BATCH, SPD_REPEATS = 16, 200_000, 500_000, 9
cfg_spd = mr.TableConfig(dim=SPD_DIM, seed=0, optimizer=mr.Adagrad())
rng = np.random.default_rng(5)
resident = rng.integers(0, 2**63, size=SPD_RESIDENT, dtype=np.int64).astype(np.uint64)
big = resident[rng.integers(0, SPD_RESIDENT, size=SPD_BATCH)]
big_grads = rng.standard_normal((SPD_BATCH, SPD_DIM)).astype(np.float32)
tables = {"one NumbaTable": mr.NumbaTable(cfg_spd, capacity=1 << 18),
          "2 shards, threads=1": mr.ShardedTable(cfg_spd, num_shards=2, threads=1),
          "2 shards, threads=2": mr.ShardedTable(cfg_spd, num_shards=2, threads=2)}
for t in tables.values():
    t.lookup(resident, now=1)
    t.apply_gradients(big[:1000], big_grads[:1000])  # warm every code path once

ops = {"lookup": lambda t: t.lookup(big, now=2),
       "apply_gradients": lambda t: t.apply_gradients(big, big_grads)}
times = {(op, name): [] for op in ops for name in tables}
busy = []  # CPU seconds per wall second of this process during the threaded runs
for _ in range(SPD_REPEATS):
    for op, fn in ops.items():
        for name, t in tables.items():
            cpu, start = time.process_time(), time.perf_counter()
            fn(t)
            wall = time.perf_counter() - start
            times[op, name].append(wall)
            if name.endswith("threads=2"):
                busy.append((time.process_time() - cpu) / wall)
med = {k: float(np.median(v)) for k, v in times.items()}
cores_busy = float(np.median(busy))
for op in ops:
    for name in tables:
        print(f"{op:>16} {name:>20}: {med[op, name] * 1e3:8.1f} ms "
              f"({SPD_BATCH / med[op, name] / 1e6:5.1f} M IDs/s)")
for t in tables.values():
    if isinstance(t, mr.ShardedTable):
        t.close()

speedup_lookup = med["lookup", "2 shards, threads=1"] / med["lookup", "2 shards, threads=2"]
speedup_apply = med["apply_gradients", "2 shards, threads=1"] / med["apply_gradients", "2 shards, threads=2"]
vs_one_lookup = med["lookup", "one NumbaTable"] / med["lookup", "2 shards, threads=2"]
vs_one_apply = med["apply_gradients", "one NumbaTable"] / med["apply_gradients", "2 shards, threads=2"]
overhead_lookup = med["lookup", "2 shards, threads=1"] / med["lookup", "one NumbaTable"]
print(f"cores kept busy by the threaded runs (median): {cores_busy:.2f} of {CPUS}")
print(f"threads=2 over threads=1: lookup {speedup_lookup:.2f}x, apply_gradients {speedup_apply:.2f}x")
print(f"threads=2 over one table: lookup {vs_one_lookup:.2f}x, apply_gradients {vs_one_apply:.2f}x")

# The routing and splitting that run in the calling thread, before any shard starts.
split_times = mr.labs.timed_rounds(
    SPD_REPEATS, split=lambda: mr.tables.routing.split_by_shard(mr.route(big, 2, 0), 2))["split"]
split_share = float(np.median(split_times)) / med["lookup", "2 shards, threads=2"]
print(f"route + split_by_shard: {np.median(split_times) * 1e3:.1f} ms, "
      f"{split_share:.0%} of the threaded lookup")

# %% tags=["remove-cell"]
if cores_busy >= 1.5:
    verdict = "both cores were ours for most of the threaded runs, so the ratios show what the design gives"
else:
    verdict = ("another program held a core for much of the threaded runs, so the ratios show the machine's load "
               "more than the design; rerun the lab on an idle machine")
mr.labs.glue_many(
    spd_dim=SPD_DIM, spd_resident=SPD_RESIDENT, spd_batch=SPD_BATCH, spd_repeats=SPD_REPEATS,
    spd_speedup_lookup=float(speedup_lookup), spd_speedup_apply=float(speedup_apply),
    spd_vs_one_lookup=float(vs_one_lookup), spd_vs_one_apply=float(vs_one_apply),
    spd_overhead_lookup=float(overhead_lookup), spd_split_share=float(split_share), spd_cores_busy=cores_busy,
    spd_verdict=verdict,
)

# %% [markdown]
# ## Filters per shard
#
# Each shard builds its own admission filter from the table's settings. An exact occurrence
# count of an ID depends only on that ID's own traffic, and all of it meets the same shard,
# so the admissions cannot change. A count-min sketch shares counters between IDs: per
# shard, it shares them only with IDs of the same shard. A probabilistic filter draws from a
# counter of its draws, and each shard has its own. We stream 60,000 Zipf events through
# one `NumbaTable` and through 8 shards, threshold 3 for every filter, and count the rows
# and the **false admissions** (rows of IDs seen fewer than 3 times). The count-min filter
# is run twice per shard: with the single table's width (8 times the memory in all), and
# with an eighth of it (the same memory in all).

# %%
FLT_EVENTS, FLT_SHARDS, FLT_T, FLT_WIDTH = 60_000, 8, 3, 8192
flt_stream = mr.zipf_ids(FLT_EVENTS, 1_000_000, 1.1, seed=31)
flt_keys, flt_counts = np.unique(flt_stream, return_counts=True)
true_count = dict(zip(flt_keys.tolist(), flt_counts.tolist()))


def run_filter(filter_cfg, num_shards=None):
    """The IDs that got a row, streaming ``flt_stream`` through one table (or ``num_shards`` shards)."""
    cfg = mr.TableConfig(dim=4, seed=9, filter=filter_cfg)
    table = mr.NumbaTable(cfg) if num_shards is None else mr.ShardedTable(cfg, num_shards=num_shards, threads=1)
    for step, batch in enumerate(np.split(flt_stream, 30)):
        table.lookup(batch, now=step)
    return set(table.export()["ids"].tolist())


cases = [
    ("exact count", mr.OccurrenceFilter(FLT_T), mr.OccurrenceFilter(FLT_T)),
    ("count-min, same width", mr.CountMinFilter(FLT_T, width=FLT_WIDTH, depth=2),
     mr.CountMinFilter(FLT_T, width=FLT_WIDTH, depth=2)),
    ("count-min, width / 8", mr.CountMinFilter(FLT_T, width=FLT_WIDTH, depth=2),
     mr.CountMinFilter(FLT_T, width=FLT_WIDTH // FLT_SHARDS, depth=2)),
    ("probabilistic (equal)", mr.ProbabilisticFilter(FLT_T), mr.ProbabilisticFilter(FLT_T)),
]
filter_rows = {}
for name, one_cfg, shard_cfg in cases:
    a, b = run_filter(one_cfg), run_filter(shard_cfg, FLT_SHARDS)
    false_a = sum(true_count[k] < FLT_T for k in a)
    false_b = sum(true_count[k] < FLT_T for k in b)
    filter_rows[name] = (len(a), len(b), len(a & b), a == b, false_a, false_b)

# %%
# NBVAL_CHECK_OUTPUT
print(f"{FLT_EVENTS:,} events, {flt_keys.size:,} distinct IDs, "
      f"{int((flt_counts >= FLT_T).sum()):,} seen at least {FLT_T} times")
print(f"{'filter':>22} {'rows 1 table':>12} {'rows 8 shards':>13} {'in both':>8} {'same set':>8} "
      f"{'false adm. 1':>12} {'false adm. 8':>12}")
for name, (ra, rb, both, same_set, fa, fb) in filter_rows.items():
    print(f"{name:>22} {ra:>12,} {rb:>13,} {both:>8,} {str(same_set):>8} {fa:>12,} {fb:>12,}")

# %% tags=["remove-cell"]
counts = {}
for key, name in (("cm_same", "count-min, same width"), ("cm_eighth", "count-min, width / 8"),
                  ("prob", "probabilistic (equal)")):
    ra, rb, both, _, fa, fb = filter_rows[name]
    counts |= {f"flt_{key}_{suffix}": int(v) for suffix, v in
               (("rows_one", ra), ("rows_sharded", rb), ("both", both), ("false_one", fa), ("false_sharded", fb))}
mr.labs.glue_many(
    counts, flt_events=FLT_EVENTS, flt_shards=FLT_SHARDS, flt_threshold=FLT_T, flt_width=FLT_WIDTH,
    flt_distinct=int(flt_keys.size), flt_exact_same=bool(filter_rows["exact count"][3]),
    flt_exact_rows=int(filter_rows["exact count"][0]),
)

# %% [markdown]
# ## Why a parameter server and not all-reduce
#
# Dense data parallelism keeps a full copy of every parameter on every worker and averages
# the gradients after each step with an all-reduce. For an embedding table that means the
# whole table. Yet a batch touches few rows. We measure it on the `alpha = 1.1` stream of
# the balance section: the table that stream builds has one row per distinct ID, and we cut
# the stream into batches and count the distinct IDs per batch.

# %%
PS_ALPHA = 1.1
ps_stream = streams[PS_ALPHA]
table_rows = int(np.unique(ps_stream).size)
touched = {}
for bs in (1024, 4096, 16384):
    per_batch = [np.unique(ps_stream[s:s + bs]).size for s in range(0, ps_stream.size - bs + 1, bs)]
    touched[bs] = float(np.mean(per_batch))

# %%
# NBVAL_CHECK_OUTPUT
print(f"table rows after the stream: {table_rows:,}")
print(f"{'batch':>6} {'distinct IDs per batch':>23} {'share of batch':>15} {'share of table rows':>20}")
for bs, u in touched.items():
    print(f"{bs:>6,} {u:>23,.0f} {u / bs:>15.1%} {u / table_rows:>20.2%}")

# %% [markdown]
# Bytes each worker sends and receives in one step, for `W = 8` workers, each with a batch
# of 4,096 IDs, rows of dim 64 in float32, IDs of 8 bytes:
#
# * **all-reduce of the whole table** (ring): about `2 (W - 1) / W x R x dim x 4` bytes,
#   whatever the batch;
# * **parameter server**: pull (send `u` IDs, receive `u` rows), then push (send `u` IDs and
#   `u` gradient rows): `2 u (8 + 4 dim)`, with `u` the batch's distinct IDs;
# * **all-to-all** (the shards live on the workers themselves, as in TorchRec's model-parallel
#   embeddings): the same exchange, except that the `1/W` of the IDs a worker owns stay
#   local: `(W - 1) / W x 2 u (8 + 4 dim)`.

# %%
W, PS_DIM, PS_BATCH = 8, 64, 4096
u = touched[PS_BATCH]
bytes_allreduce = 2 * (W - 1) / W * table_rows * PS_DIM * 4
bytes_ps = 2 * u * (8 + 4 * PS_DIM)
bytes_a2a = (W - 1) / W * bytes_ps
bytes_table = table_rows * PS_DIM * 4
for name, value in (("all-reduce", bytes_allreduce), ("parameter server", bytes_ps), ("all-to-all", bytes_a2a)):
    print(f"{name:>17}: {value / 2**20:8.2f} MiB per worker per step")
print(f"all-reduce / parameter server: {bytes_allreduce / bytes_ps:.0f}x")
print(f"all-reduce of a table of 10**9 rows: {2 * (W - 1) / W * 10**9 * PS_DIM * 4 / 2**30:,.0f} GiB per worker per step")

# %% tags=["remove-cell"]
per_batch_size = {}
for bs, val in touched.items():
    per_batch_size |= {f"ps_touched_{bs}": int(round(val)), f"ps_touched_frac_{bs}": float(val / table_rows),
                       f"ps_batch_frac_{bs}": float(val / bs)}
mr.labs.glue_many(
    per_batch_size, ps_table_rows=table_rows, ps_workers=W, ps_dim=PS_DIM, ps_batch=PS_BATCH,
    ps_bs_small=min(touched), ps_bs_large=max(touched), ps_table_mib=float(bytes_table / 2**20),
    ps_allreduce_mib=float(bytes_allreduce / 2**20), ps_ps_mib=float(bytes_ps / 2**20),
    ps_a2a_mib=float(bytes_a2a / 2**20), ps_ratio=float(bytes_allreduce / bytes_ps),
    ps_allreduce_gib_1b=float(2 * (W - 1) / W * 10**9 * PS_DIM * 4 / 2**30),
)

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
bss = list(touched)
ax1.bar([f"{bs:,}" for bs in bss], [touched[bs] / table_rows * 100 for bs in bss], color="C0")
for i, bs in enumerate(bss):
    ax1.text(i, touched[bs] / table_rows * 100, f"{touched[bs]:,.0f} IDs", ha="center", va="bottom", fontsize=8)
ax1.set_xlabel("batch size")
ax1.set_ylabel("rows touched per batch (% of table)")
ax1.set_title(f"A batch touches few of the {table_rows:,} rows")
names = ["all-reduce\nwhole table", "parameter server\npull + push", "all-to-all\n(TorchRec-style)"]
vals = [bytes_allreduce / 2**20, bytes_ps / 2**20, bytes_a2a / 2**20]
ax2.bar(names, vals, color=["C3", "C2", "C1"])
ax2.set_yscale("log")
for i, v in enumerate(vals):
    ax2.text(i, v, f"{v:.2f} MiB", ha="center", va="bottom", fontsize=8)
ax2.set_ylabel("MiB per worker per step (log)")
ax2.set_title(f"W = {W} workers, batch {PS_BATCH:,}, dim {PS_DIM}")
fig.tight_layout()
mr.labs.glue_figure("fig_traffic", fig)
