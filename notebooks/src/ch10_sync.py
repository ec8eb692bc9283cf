# %% [markdown]
# # Lab: parameter synchronization
#
# The companion lab of chapter 10. We redo the paper's bandwidth arithmetic; watch a table
# record its touched keys; train a DeepFM on one day of the synthetic stream and sync it to
# a serving replica every 5 minutes, 30 minutes, 1 hour, 6 hours and once a day, counting
# the rows and bytes of every push against a full copy; check that the replica then equals
# the trainer bit for bit; run the paper's Algorithm 1 with the dense weights pushed every
# hour, every 6 hours or once a day; and hammer the replica with reader threads while syncs
# land, checking that no request sees half of one.
#
# Every number the chapter quotes is glued from this notebook. Cells whose first line is
# `# NBVAL_CHECK_OUTPUT` print deterministic output that the notebook tests compare; the
# AUCs, timings and thread counts are not among them.

# %%
import threading
import time

import matplotlib.pyplot as plt
from matplotlib.ticker import PercentFormatter
import numpy as np
import torch

import monolith_ref as mr

# Small layers: one PyTorch thread is faster than two on a busy 2-core machine.
torch.set_num_threads(1)
print("monolith_ref", mr.__version__)

# %% [markdown]
# ## The paper's arithmetic
#
# Section 3.2.2 of the paper sizes a minute of sparse sync: 100,000 IDs updated in a minute,
# embeddings of width 1024, 4 bytes a float. Beside it we put a full copy of one table. The
# paper gives no table size for this example, so that part is **our assumption**: a billion
# IDs of the same width, which is a table of a few terabytes, the order of size the paper
# gives for its models (section 2.2.3).

# %%
# NBVAL_CHECK_OUTPUT
IDS_PER_MIN, DIM_PAPER, FLOAT_BYTES = 100_000, 1024, 4          # the paper's example (section 3.2.2)
ASSUMED_TABLE_IDS = 1_000_000_000                                # our assumption, not the paper's
row_bytes = DIM_PAPER * FLOAT_BYTES
delta_per_min = IDS_PER_MIN * row_bytes
full_copy = ASSUMED_TABLE_IDS * row_bytes
print(f"one row: {row_bytes:,} bytes (about 4 KB)")
print(f"touched rows per minute: {delta_per_min:,} bytes = {delta_per_min / 1e6:.1f} MB "
      f"({delta_per_min / 2**20:.1f} MiB), {delta_per_min / 60 / 1e6:.2f} MB/s")
print(f"a full copy of {ASSUMED_TABLE_IDS:,} rows: {full_copy / 1e12:.3f} TB")
print(f"a full copy every minute: {full_copy / 60 / 1e9:.1f} GB/s "
      f"= {full_copy * 8 / 60 / 1e9:.0f} Gbit/s")
print(f"the minute's delta is {delta_per_min / full_copy:.2%} of a full copy "
      f"({full_copy // delta_per_min:,} times smaller)")

# %% tags=["remove-cell"]
mr.labs.glue_many(
    paper_ids_per_min=IDS_PER_MIN, paper_dim=DIM_PAPER, paper_row_bytes=int(row_bytes),
    paper_mb_per_min=float(delta_per_min / 1e6), paper_mib_per_min=float(delta_per_min / 2**20),
    paper_mb_per_s=float(delta_per_min / 60 / 1e6), assumed_table_ids=ASSUMED_TABLE_IDS,
    assumed_full_tb=float(full_copy / 1e12), full_copy_gb_per_s=float(full_copy / 60 / 1e9),
    full_copy_gbit_per_s=float(full_copy * 8 / 60 / 1e9), paper_delta_share=float(delta_per_min / full_copy),
    paper_full_over_delta=int(full_copy // delta_per_min))

# %% [markdown]
# ## Touched keys, by hand
#
# Every table records the IDs whose entry changed: a training lookup that inserts or
# refreshes a row, a gradient step, an expiry. `touched_ids()` shows them, `pop_touched()`
# hands them over and starts a new round. A serving lookup (`train=False`) changes nothing
# and records nothing. An expired ID is still reported: it is touched but no longer
# present, and that is how the sync learns that serving must drop it. `DictTable` keeps a
# Python set; `NumbaTable` keeps a flag per row plus a set of removed IDs. They agree.

# %%
# NBVAL_CHECK_OUTPUT
def touched_demo(table):
    out = []
    table.lookup([1, 2, 3], now=0)
    out.append(("train lookup of 1, 2, 3 at t=0", table.pop_touched().tolist()))
    out.append(("nothing since the last pop", table.pop_touched().tolist()))
    table.lookup([1, 4], now=5, train=False)
    out.append(("serving lookup of 1 and 4", table.pop_touched().tolist()))
    table.apply_gradients([2, 2, 9], np.ones((3, 2), dtype=np.float32))
    out.append(("gradients for 2, 2 and 9 (absent)", table.pop_touched().tolist()))
    table.lookup([3], now=100)
    removed = table.expire(100)
    keys = table.pop_touched()
    present = table.export(keys)["ids"].tolist()
    out.append((f"lookup of 3 at t=100, expire (ttl 60) removed {removed}", keys.tolist()))
    out.append(("  of which still present", present))
    return out


cfg_demo = mr.TableConfig(dim=2, seed=0, ttl=60, optimizer=mr.Adagrad(lr=0.1))
dict_log, numba_log = touched_demo(mr.DictTable(cfg_demo)), touched_demo(mr.NumbaTable(cfg_demo))
for what, keys in dict_log:
    print(f"{what:<45} -> {keys}")
print("NumbaTable reports the same:", dict_log == numba_log)

# %% [markdown]
# ## The stream, the model and the batch stage
#
# A small synthetic stream: three days of 40,000 events, 20,000 users, 4,000 items at the
# start and 400 new ones a day. The tables expire rows unseen for a day (TTL 24 hours). We
# train a DeepFM (the package defaults) on days 0 and 1, one pass in time order, as the
# batch stage, and expire at the start of day 2, the online day.

# %%
TTL_HOURS, STREAM = 24, mr.StreamConfig(num_users=20_000, num_items=4_000, new_items_per_day=400, days=3,
                                        events_per_day=40_000, seed=0)
QUIET = mr.TrainConfig(progress=False)
events = mr.synthetic_stream(STREAM)
days = events.days()
batch_ev, online_ev = mr.Events.concat(days[:2]), days[2]
day_start = int(online_ev.time[0]) // 86_400 * 86_400


def batch_model(seed: int):
    """The batch stage's DeepFM, expired at the start of the online day; returns it, its
    Adam optimizer and the number of rows expired (both tables)."""
    m, o = mr.batch_stage(batch_ev, mr.ModelConfig(ttl=TTL_HOURS * 3600), QUIET, seed=seed)
    expired = m.vectors.table.expire(day_start) + m.weights.table.expire(day_start)
    return m, o, expired


t_batch = time.perf_counter()
model, opt, expired_at_start = batch_model(seed=0)
print(events)
print(f"batch stage: {len(batch_ev):,} events in {time.perf_counter() - t_batch:.1f} s; online day: {len(online_ev):,}")

# %%
# NBVAL_CHECK_OUTPUT
rows_start = len(model.vectors.table)
print("rows expired at the start of the online day (both tables):", expired_at_start)
print("rows at the start of the online day (vector table):", rows_start)
print("dense parameters in the head:", sum(p.numel() for p in model.head.parameters()))

# %% tags=["remove-cell"]
mr.labs.glue_fields("st_", STREAM, names={"users": "num_users", "items": "num_items",
                                          "new_items": "new_items_per_day", "events_per_day": "events_per_day"})
mr.labs.glue_many(ttl_hours=TTL_HOURS, rows_start=rows_start, rows_expired_start=int(expired_at_start // 2),
                  dense_params=int(sum(p.numel() for p in model.head.parameters())))

# %% [markdown]
# ## Five sync intervals over one day
#
# The online day is cut into 5-minute windows of event time. Five copies of the
# batch-trained trainer see exactly the same windows: each window is one training step,
# then every table expires what its TTL says. They differ only in how often they sync to
# their own replica: every window (5 minutes), every 30 minutes, every hour, every 6 hours,
# once at the end of the day. Each `ParameterSync` first sends a full copy (version 1, at
# the start of the day), then touched-key deltas; the dense head goes along at every sync
# here. Each sync leaves a `SyncReport`: rows and removed IDs per table, sparse and dense
# bytes, and what a full copy would have cost at that moment.

# %%
WINDOW_MIN, INTERVALS_MIN = 5, (5, 30, 60, 360, 1440)
edges = day_start + WINDOW_MIN * 60 * np.arange(24 * 60 // WINDOW_MIN + 1)
cut = np.searchsorted(online_ev.time, edges)
windows = [online_ev[int(a):int(b)] for a, b in zip(cut[:-1], cut[1:])]
runs = {}
for minutes in INTERVALS_MIN:
    m, o = mr.fork_trainer(model, opt)
    sync = mr.ParameterSync(m, mr.replica_for(m))
    sync.sync(day_start)  # version 1: the full copy
    runs[minutes] = (m, o, sync)

t_runs = time.perf_counter()
for i, window in enumerate(windows):
    end = int(edges[i + 1])
    for minutes, (m, o, sync) in runs.items():
        mr.train_step(m, o, window)
        m.vectors.table.expire(end)
        m.weights.table.expire(end)
        if (i + 1) % (minutes // WINDOW_MIN) == 0:
            sync.sync(end)
print(f"{len(windows)} windows ({min(map(len, windows))} to {max(map(len, windows))} events) "
      f"x {len(runs)} trainers in {time.perf_counter() - t_runs:.1f} s")

# %% [markdown]
# Sync sizes do not depend on the model's numbers, only on which rows changed, so this
# table is exact and repeatable. "Rows" and "removed" are per sync, for the vector table
# (the weight table has the same IDs); the bytes count both tables and the dense head.

# %%
# NBVAL_CHECK_OUTPUT
summary = {}
print(f"{'every':>8} {'syncs':>5} {'rows':>7} {'removed':>7} {'KB/sync':>8} {'of full':>8} "
      f"{'MB/day':>7} {'full MB/day':>11}")
for minutes, (m, o, sync) in runs.items():
    reps = sync.reports[1:]  # skip the initial full copy
    s = {
        "syncs": len(reps),
        "rows": float(np.mean([r.rows["vectors"] for r in reps])),
        "removed": float(np.mean([r.removed["vectors"] for r in reps])),
        "kb": float(np.mean([r.bytes for r in reps]) / 1e3),
        "fraction": float(np.mean([r.fraction for r in reps])),
        "mb_day": float(sum(r.bytes for r in reps) / 1e6),
        "full_mb_day": float(sum(r.full_bytes for r in reps) / 1e6),
        "rows_day": int(sum(r.rows["vectors"] for r in reps)),
        "sparse_kb": float(np.mean([r.sparse_bytes for r in reps]) / 1e3),
    }
    summary[minutes] = s
    label = f"{minutes} min" if minutes < 60 else f"{minutes // 60} h"
    print(f"{label:>8} {s['syncs']:>5} {s['rows']:>7.1f} {s['removed']:>7.1f} {s['kb']:>8.1f} "
          f"{s['fraction']:>8.1%} {s['mb_day']:>7.2f} {s['full_mb_day']:>11.2f}")
last = runs[5][2].reports[-1]
dense_kb = last.dense_bytes / 1e3
print(f"rows at the end of the day (vector table): {len(runs[5][0].vectors.table)}; "
      f"a full copy: {last.full_bytes / 1e3:.1f} KB, of which the dense head {dense_kb:.1f} KB")
ends = [(m.vectors.table.export(), m.head.state_dict()) for m, _, _ in runs.values()]
same = all(np.array_equal(e[0]["embeddings"], ends[0][0]["embeddings"])
           and all(torch.equal(e[1][k], ends[0][1][k]) for k in e[1]) for e in ends)
print("the five trainers ended bit-identical (syncing never disturbs training):", same)

# %% tags=["remove-cell"]
for minutes, s in summary.items():
    mr.labs.glue_fields(f"sync_m{minutes}_", s)
mr.labs.glue_many(
    windows=len(windows), window_min_events=int(min(map(len, windows))),
    window_max_events=int(max(map(len, windows))), rows_end_of_day=len(runs[5][0].vectors.table),
    full_copy_kb=float(last.full_bytes / 1e3), dense_kb=float(dense_kb), trainers_identical="yes" if same else "no",
    resend_factor=float(summary[5]["rows_day"] / summary[1440]["rows_day"]),
    rows_growth_5_to_60=float(summary[60]["rows"] / summary[5]["rows"]),
    first_copy_rows=int(runs[5][2].reports[0].rows["vectors"]))

# %% [markdown]
# Left: every sync of the day as a share of a full copy at that moment, for three of the
# intervals (the nightly dip is the daily traffic cycle). Right: bytes per day, delta syncs
# against a full copy at every sync.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.6))
for minutes, marker in ((5, "."), (60, "o"), (360, "s")):
    reps = runs[minutes][2].reports[1:]
    hours = [(r.time - day_start) / 3600 for r in reps]
    label = f"every {minutes} min" if minutes < 60 else f"every {minutes // 60} h"
    axes[0].plot(hours, [r.fraction for r in reps], marker=marker, ls="-" if minutes == 5 else "none",
                 lw=0.6, ms=4, label=label)
axes[0].set_yscale("log")
axes[0].yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
axes[0].yaxis.set_minor_formatter(PercentFormatter(1.0, decimals=0))
axes[0].set_xlabel("hour of the online day (time of the sync)")
axes[0].set_ylabel("bytes pushed / full copy")
axes[0].legend(fontsize=8)
xs = np.array(INTERVALS_MIN)
axes[1].plot(xs, [summary[m]["mb_day"] for m in xs], "o-", label="touched-key deltas")
axes[1].plot(xs, [summary[m]["full_mb_day"] for m in xs], "s--", label="a full copy at every sync")
axes[1].set_xscale("log")
axes[1].set_yscale("log")
axes[1].set_xticks(xs, ["5 min", "30 min", "1 h", "6 h", "1 day"])
axes[1].minorticks_off()
axes[1].set_xlabel("sync interval")
axes[1].set_ylabel("MB pushed over the day")
axes[1].legend(fontsize=8)
fig.tight_layout()
mr.labs.glue_figure("fig_sync_sizes", fig)

# %% [markdown]
# ## The replica equals the trainer
#
# After the last sync of the 5-minute run, the replica's tables must hold exactly the
# trainer's rows (same IDs, same bits), and its predictions on the online day must equal
# the trainer's own serving predictions.

# %%
# NBVAL_CHECK_OUTPUT
m5, _, sync5 = runs[5]
tables_equal = True
for name, table in (("vectors", m5.vectors.table), ("weights", m5.weights.table)):
    ours, theirs = table.export(), sync5.replica.tables[name].export()
    tables_equal &= np.array_equal(ours["ids"], theirs["ids"]) and np.array_equal(ours["embeddings"],
                                                                                  theirs["embeddings"])
preds_equal = np.array_equal(mr.predict(m5, online_ev), sync5.replica.predict(online_ev))
print("replica rows == trainer rows, bit for bit:", tables_equal)
print("replica predictions == trainer predictions:", preds_equal)
print("syncs applied to the replica:", len(sync5.replica.applied), "; its version:", sync5.replica.version)

# %% tags=["remove-cell"]
mr.labs.glue_many(replica_equal="yes" if tables_equal else "no", preds_equal="yes" if preds_equal else "no")

# %% [markdown]
# ## Dense every K syncs: the paper's Algorithm 1
#
# `online_stage` runs Algorithm 1 on the online day cut into 24 hourly shards: sync the
# replica, score the shard with the replica, train on the shard. The sparse rows go at every
# sync; the dense head every `dense_every` syncs: every hour (K = 1), every 6 hours (K = 6),
# or once a day (K = 24, the first sync only, so serving keeps the batch stage's head all
# day). A run without online training (`learn=False`) shows what the online stage is worth
# at all. Three seeds (model initialisation and batch order); the AUC is over every
# prediction of the day.

# %%
SEEDS, DENSE_K = (0, 1, 2), (1, 6, 24)
hour_edges = day_start + 3600 * np.arange(25)
hcut = np.searchsorted(online_ev.time, hour_edges)
shards = [online_ev[int(a):int(b)] for a, b in zip(hcut[:-1], hcut[1:])]
dense_runs = {}
drift = {}
t_dense = time.perf_counter()
for seed in SEEDS:
    base = (model, opt) if seed == 0 else batch_model(seed)[:2]
    for k in (None, *DENSE_K):
        m, o = mr.fork_trainer(*base)
        head0 = torch.cat([p.detach().flatten().clone() for p in m.head.parameters()])
        rows0 = m.vectors.table.export()
        sync = mr.ParameterSync(m, mr.replica_for(m), dense_every=k or 1)
        dense_runs[seed, k] = mr.online_stage(m, shards, sync, o, QUIET, learn=k is not None)
        if seed == 0 and k == 1:  # how far each kind of parameter moved over the online day
            head1 = torch.cat([p.detach().flatten() for p in m.head.parameters()])
            rows1 = m.vectors.table.export(rows0["ids"])
            keep = np.isin(rows0["ids"], rows1["ids"])
            e0, e1 = rows0["embeddings"][keep], rows1["embeddings"]
            drift = {"dense": float((head1 - head0).norm() / head0.norm()),
                     "sparse": float(np.linalg.norm(e1 - e0) / np.linalg.norm(e0))}
print(f"{len(SEEDS)} seeds x {1 + len(DENSE_K)} runs in {time.perf_counter() - t_dense:.1f} s")
print(f"{'seed':>4} {'no online':>10} " + " ".join(f"{'K=' + str(k):>8}" for k in DENSE_K))
for seed in SEEDS:
    print(f"{seed:>4} {dense_runs[seed, None].auc:>10.4f} "
          + " ".join(f"{dense_runs[seed, k].auc:>8.4f}" for k in DENSE_K))
mean_auc = {k: float(np.mean([dense_runs[s, k].auc for s in SEEDS])) for k in (None, *DENSE_K)}
print(f"{'mean':>4} {mean_auc[None]:>10.4f} " + " ".join(f"{mean_auc[k]:>8.4f}" for k in DENSE_K))
print(f"relative change over the online day: head {drift['dense']:.1%}, vector rows {drift['sparse']:.1%}")

# %% tags=["remove-cell"]
per_seed_gap = [dense_runs[s, 1].auc - dense_runs[s, 24].auc for s in SEEDS]
per_seed_online = [dense_runs[s, 1].auc - dense_runs[s, None].auc for s in SEEDS]
spread_k1 = float(np.ptp([dense_runs[s, 1].auc for s in SEEDS]))
mr.labs.glue_many({f"auc_dense_k{k}": mean_auc[k] for k in DENSE_K})
mr.labs.glue_fields("drift_", drift)  # drift_dense, drift_sparse
mr.labs.glue_many(
    dense_seeds=len(SEEDS), auc_batch_only=mean_auc[None], dense_gap_k24=float(np.mean(per_seed_gap)),
    dense_gap_k24_min=float(min(per_seed_gap)), dense_gap_k24_max=float(max(per_seed_gap)),
    online_gain=float(np.mean(per_seed_online)), online_gain_min=float(min(per_seed_online)),
    seed_spread_k1=spread_k1,
    dense_verdict="smaller than the spread between seeds: with three seeds, too small to tell from noise"
    if abs(np.mean(per_seed_gap)) < spread_k1
    else "larger than the spread between seeds, though three seeds are few to be sure",
    dense_syncs_k24=int(sum(r.dense_bytes > 0 for r in dense_runs[0, 24].syncs)))

# %% [markdown]
# Per hour, averaged over the seeds: the serving AUC of each shard.

# %%
fig, ax = plt.subplots(figsize=(7.5, 3.4))
for k, style in ((None, ":"), (1, "-"), (6, "--"), (24, "-.")):
    per_hour = np.nanmean([dense_runs[s, k].shard_auc for s in SEEDS], axis=0)
    ax.plot(np.arange(len(per_hour)), per_hour, style, marker=".",
            label="no online training" if k is None else f"dense every {k} h")
ax.set_xlabel("hour of the online day (shard)")
ax.set_ylabel("serving AUC on the shard")
ax.legend(fontsize=8, ncol=2)
fig.tight_layout()
mr.labs.glue_figure("fig_dense_every", fig)

# %% [markdown]
# ## Serving while syncs land
#
# A fresh copy of the batch-trained trainer syncs to a replica every 5 minutes of the online
# day. During the first twelve hours, three reader threads keep sending requests (with a
# pause of half a millisecond between two): two look up the 256 most frequent IDs of the day
# (`ServingReplica.lookup`, which also says which version answered), one scores 512 events
# (`ServingReplica.predict`). Before each sync is applied, we note what the probe rows must
# be in the new version; a lookup is correct if its rows equal exactly the rows of the
# version it reports, never a mixture of two. We time each `ServingReplica.apply` and count
# the requests that were in flight while one ran. The last twelve hours sync with no
# readers, to time `apply` alone.

# %%
cm, co = mr.fork_trainer(model, opt)
replica = mr.replica_for(cm)
csync = mr.ParameterSync(cm, replica)
csync.sync(day_start)
ids_day, counts = np.unique(online_ev.fields, return_counts=True)
probe = ids_day[np.argsort(-counts, kind="stable")[:256]]
probe_events = online_ev[:512]
expected = {1: cm.vectors.table.lookup(probe, 0, train=False)}
stop = threading.Event()
log = {"lookup": [], "predict": []}  # (start, end, ok) per request


def lookup_reader():
    while not stop.is_set():
        t0 = time.perf_counter()
        rows, version = replica.lookup("vectors", probe)
        log["lookup"].append((t0, time.perf_counter(), bool(np.array_equal(rows, expected[version]))))
        time.sleep(0.0005)


def predict_reader():
    while not stop.is_set():
        t0 = time.perf_counter()
        replica.predict(probe_events)
        log["predict"].append((t0, time.perf_counter(), True))
        time.sleep(0.0005)


def sync_windows(first, last):
    """Train on windows first..last-1, syncing after each; returns (start, end, rows) per apply."""
    out = []
    for i in range(first, last):
        end = int(edges[i + 1])
        mr.train_step(cm, co, windows[i])
        cm.vectors.table.expire(end)
        cm.weights.table.expire(end)
        update = csync.build(end)
        expected[update.version] = cm.vectors.table.lookup(probe, 0, train=False)
        t0 = time.perf_counter()
        replica.apply(update)
        out.append((t0, time.perf_counter(), int(update.sparse["vectors"].ids.shape[0])))
    return out


half = len(windows) // 2
readers = [threading.Thread(target=f) for f in (lookup_reader, lookup_reader, predict_reader)]
for t in readers:
    t.start()
try:
    applies = sync_windows(0, half)
finally:
    stop.set()
    for t in readers:
        t.join()
quiet = sync_windows(half, len(windows))

starts = np.array([a for a, _, _ in applies])
stops = np.array([b for _, b, _ in applies])


def during_a_sync(t0, t1):
    return bool(np.any((starts < t1) & (stops > t0)))


n_lookup, n_predict = len(log["lookup"]), len(log["predict"])
mixed = sum(not ok for _, _, ok in log["lookup"])
during = sum(during_a_sync(a, b) for kind in log.values() for a, b, _ in kind)
changed = sum(not np.array_equal(expected[v], expected[v - 1]) for v in range(2, half + 2))
apply_ms = 1e3 * (stops - starts)
quiet_ms = np.array([1e3 * (b - a) for a, b, _ in quiet])
print(f"syncs applied with readers running: {len(applies)} (the probe rows changed in {changed} of them)")
print(f"requests: {n_lookup} lookups, {n_predict} predict calls; {during} were in flight during a sync")
print(f"lookups that saw rows of two versions: {mixed}")
print(f"time to apply a sync (both copies), readers running: median {np.median(apply_ms):.2f} ms, "
      f"max {apply_ms.max():.2f} ms, for a median of {int(np.median([r for _, _, r in applies]))} rows")
print(f"time to apply a sync, no readers: median {np.median(quiet_ms):.2f} ms, "
      f"for a median of {int(np.median([r for _, _, r in quiet]))} rows")

# %% tags=["remove-cell"]
mr.labs.glue_many(
    conc_syncs=len(applies), conc_probe_changed=int(changed), conc_lookups=int(n_lookup),
    conc_predicts=int(n_predict), conc_during=int(during), conc_mixed=int(mixed),
    apply_ms_median=float(np.median(apply_ms)), apply_ms_max=float(apply_ms.max()),
    apply_rows_median=int(np.median([r for _, _, r in applies])), quiet_ms_median=float(np.median(quiet_ms)),
    quiet_rows_median=int(np.median([r for _, _, r in quiet])))

# %% [markdown]
# What the double buffer costs in memory: the replica holds two copies of each serving
# table (embeddings, an index, bookkeeping), against the trainer's tables, which also keep
# the optimizer state and a last-seen time per row.

# %%
# NBVAL_CHECK_OUTPUT
both = replica.memory_bytes()
one = sum(t.memory_bytes() for t in replica.tables.values())
trainer_bytes = cm.vectors.table.memory_bytes() + cm.weights.table.memory_bytes()
print(f"serving replica, both copies: {both / 2**20:.2f} MiB; one copy: {one / 2**20:.2f} MiB "
      f"(ratio {both / one:.1f})")
print(f"trainer tables (rows, optimizer state, last-seen times, index): {trainer_bytes / 2**20:.2f} MiB")
print("rows in the replica's vector table:", len(replica.tables["vectors"]))

# %% tags=["remove-cell"]
mr.labs.glue_many(replica_mib=float(both / 2**20), replica_copy_mib=float(one / 2**20),
                  replica_ratio=float(both / one), trainer_mib=float(trainer_bytes / 2**20),
                  replica_vs_trainer=float(both / trainer_bytes))
