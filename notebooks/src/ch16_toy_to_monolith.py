# %% [markdown]
# # Lab: from a toy recommender to Monolith
#
# The companion lab of chapter 16. We train the toy first: a two-tower model on
# `torch.nn.Embedding`, on a few hundred users whose IDs we number 0 to N-1 ourselves. Then
# we let the world grow, as the package's synthetic stream does, and measure what breaks,
# one problem at a time, and what the package's pieces do about it:
#
# 1. new IDs: the share of traffic the toy's fixed vocabulary cannot place; hashing into a
#    fixed table and its collisions; a DeepFM on a hashed table against the collisionless
#    `NumbaTable` at a quarter of the memory;
# 2. memory: rows kept by a table without and with an admission filter and expiry;
# 3. speed and size: the Numba table against the pure-Python one, bytes per row, rows per
#    shard;
# 4. drift and bursts: a frozen model against one trained online and synced to serving;
# 5. failures: a snapshot round trip, and the paper's failure arithmetic.
#
# Every number the chapter quotes is glued from this notebook. Everything is seeded and
# PyTorch runs on one thread. Cells whose first line is `# NBVAL_CHECK_OUTPUT` print
# deterministic output that the notebook tests compare; timings appear only in other cells.

# %%
import time

T_START = time.perf_counter()

import math
import tempfile
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import torch

import monolith_ref as mr

torch.set_num_threads(1)  # small layers: one thread is faster on a busy machine, and deterministic
print("monolith_ref", mr.__version__)

# %% [markdown]
# ## 0. The toy
#
# A few hundred users, a hundred items, three days, no new items and no viral bursts: the
# "simple case". The toy numbers the IDs it saw in training 0, 1, 2, ... and keeps one
# `nn.Embedding` row per user and per item. **This model is the toy, not package code**: a
# two-tower scorer (user vector dot item vector, plus a bias for each), the smallest thing
# that does lookalike recommendation. Row 0 of each table is reserved for "unknown" and
# never trained, so an unknown ID reads zeros, as the package's serving tables do.

# %%
class ToyTwoTower(torch.nn.Module):
    """THE TOY: a two-tower recommender on fixed-size nn.Embedding tables (row 0 = unknown)."""

    def __init__(self, num_users: int, num_items: int, dim: int = 8) -> None:
        super().__init__()
        self.user, self.item = torch.nn.Embedding(num_users + 1, dim), torch.nn.Embedding(num_items + 1, dim)
        self.user_bias, self.item_bias = torch.nn.Embedding(num_users + 1, 1), torch.nn.Embedding(num_items + 1, 1)
        self.bias = torch.nn.Parameter(torch.zeros(1))
        with torch.no_grad():
            for emb in (self.user, self.item):
                emb.weight.normal_(0.0, 0.1)
            for emb in (self.user, self.item, self.user_bias, self.item_bias):
                emb.weight[0] = 0.0  # the "unknown" row

    def forward(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return ((self.user(u) * self.item(i)).sum(-1) + self.user_bias(u).squeeze(-1)
                + self.item_bias(i).squeeze(-1) + self.bias)


def toy_vocab(ids: np.ndarray) -> dict[int, int]:
    """The toy's fixed ID range: each ID seen in training gets the next index (from 1)."""
    return {int(x): k + 1 for k, x in enumerate(np.unique(ids))}


def toy_index(vocab: dict[int, int], ids: np.ndarray) -> torch.Tensor:
    return torch.tensor([vocab.get(int(x), 0) for x in ids])


def toy_fit(train_ev: mr.Events, epochs: int = 3, seed: int = 0):
    """Train the toy with Adam on shuffled mini-batches; return (model, user vocab, item vocab)."""
    torch.manual_seed(seed)
    uv, iv = toy_vocab(train_ev.user), toy_vocab(train_ev.item)
    model = ToyTwoTower(len(uv), len(iv))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    u, i, y = toy_index(uv, train_ev.user), toy_index(iv, train_ev.item), torch.from_numpy(train_ev.label)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=gen)
        for s in range(0, len(y), 256):
            b = perm[s : s + 256]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(u[b], i[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model, uv, iv


@torch.no_grad()
def toy_predict(fit, ev: mr.Events) -> np.ndarray:
    model, uv, iv = fit
    return torch.sigmoid(model(toy_index(uv, ev.user), toy_index(iv, ev.item))).numpy()


# %%
TOY = mr.StreamConfig(num_users=300, num_items=100, new_items_per_day=0, item_lifetime_days=math.inf,
                   days=3, events_per_day=5000, num_bursts=0, seed=0)
toy_world = mr.data.SyntheticWorld(TOY)
toy_days = toy_world.sample().days()
toy_train, toy_test = mr.Events.concat(toy_days[:2]), toy_days[2]
toy = toy_fit(toy_train)
toy_auc = mr.auc(toy_test.label, toy_predict(toy, toy_test))
toy_ceiling = mr.auc(toy_test.label, toy_test.prob)
toy_params = sum(p.numel() for p in toy[0].parameters())
print(f"toy: {len(toy[1])} users, {len(toy[2])} items, {len(toy_train):,} training events, "
      f"{toy_params:,} parameters")
print(f"toy AUC on day 3: {toy_auc:.3f} (the true probabilities reach {toy_ceiling:.3f})")

# %% tags=["remove-cell"]
mr.labs.glue_fields("toy_", TOY, names={"users": "num_users", "items": "num_items", "days": "days",
                                       "events_per_day": "events_per_day"})
mr.labs.glue_many(toy_train_events=len(toy_train), toy_params=int(toy_params), toy_auc=float(toy_auc),
                  toy_ceiling=float(toy_ceiling))

# %% [markdown]
# The toy's ID range is fixed when its tables are made. The synthetic stream's IDs are
# 64-bit values, so the toy cannot even use them as row numbers: it needs its own
# vocabulary. And an index past the end of the table is an error, not a new row.

# %%
# NBVAL_CHECK_OUTPUT
print("a raw user ID:", int(toy_train.user[0]))
print("user table rows:", toy[0].user.num_embeddings)
try:
    toy[0].user(torch.tensor([toy[0].user.num_embeddings]))
except IndexError as exc:
    print("IndexError:", exc)

# %% [markdown]
# ## 1. The world grows: new IDs
#
# A larger world from the same generator: thousands of users, items born every day and
# living about three days, a daily cycle, drifting interests and viral bursts. Day by day
# we count the share of events whose user or item the toy's launch vocabulary (day 0) does
# not hold, the distinct IDs seen so far (all five fields), and the collision rate if
# those IDs were hashed into a fixed table sized for day 0's IDs.

# %%
WORLD = mr.StreamConfig(num_users=4000, num_items=1500, new_items_per_day=500, item_lifetime_days=3.0, days=5,
                     events_per_day=30_000, num_bursts=10, burst_hours=4, burst_share=0.05, burst_boost=2.0,
                     seed=0)
world = mr.data.SyntheticWorld(WORLD)
events = world.sample()
days = events.days()
launch_users, launch_items = np.unique(days[0].user), np.unique(days[0].item)
launch_rows = int(np.unique(days[0].fields).size)  # a hashed table sized at launch

growth = []
for k, day in enumerate(days):
    new_user = ~np.isin(day.user, launch_users)
    new_item = ~np.isin(day.item, launch_items)
    seen = np.unique(mr.Events.concat(days[: k + 1]).fields)
    growth.append({"day": k, "unseen": float((new_user | new_item).mean()), "unseen_item": float(new_item.mean()),
                   "distinct": int(seen.size), "collision": mr.hashing.collision_rate(seen, launch_rows)})

# %%
# NBVAL_CHECK_OUTPUT
print(f"hashed table sized at launch: {launch_rows:,} rows")
print(f"{'day':>3} {'events w/ unseen ID':>20} {'unseen item':>12} {'distinct IDs':>13} {'collision rate':>15}")
for g in growth:
    print(f"{g['day']:>3} {g['unseen']:>20.1%} {g['unseen_item']:>12.1%} {g['distinct']:>13,} {g['collision']:>15.1%}")

# %% tags=["remove-cell"]
mr.labs.glue_fields("w_", WORLD, names={"users": "num_users", "items": "num_items", "new_items": "new_items_per_day",
                                       "days": "days", "events_per_day": "events_per_day", "bursts": "num_bursts",
                                       "burst_hours": "burst_hours"})
mr.labs.glue_many({f"{k}_d{g['day']}": g[k] for g in growth
                   for k in ("unseen", "unseen_item", "distinct", "collision")},
                  w_lifetime=float(WORLD.item_lifetime_days), launch_rows=launch_rows)

# %% [markdown]
# ### The toy on the growing world
#
# Trained on days 0 to 2 and scored on day 3. Events whose user or item the toy never saw
# are scored with the zero "unknown" row.

# %%
w_train, w_test = mr.Events.concat(days[:3]), days[3]
oracle = mr.auc(w_test.label, w_test.prob)
toy_w = toy_fit(w_train)
p_toy = toy_predict(toy_w, w_test)
known = np.isin(w_test.user, np.array(list(toy_w[1]), dtype=np.uint64)) & np.isin(
    w_test.item, np.array(list(toy_w[2]), dtype=np.uint64))
toy_w_auc = mr.auc(w_test.label, p_toy)
print(f"toy on day 3: AUC {toy_w_auc:.3f}; {1 - known.mean():.1%} of events hold an ID it never saw; "
      f"true probabilities reach {oracle:.3f}")

# %% tags=["remove-cell"]
mr.labs.glue_many(w_train_events=len(w_train), toy_w_auc=float(toy_w_auc), toy_w_unknown=float(1 - known.mean()),
                  w_oracle=float(oracle))

# %% [markdown]
# ### Hashed against collisionless, at a quarter of the memory
#
# The usual fix for unknown IDs is to hash every ID into a fixed table. We train the
# package's DeepFM (five fields, two dense features) twice on days 0 to 2, in one pass,
# changing only the table: a `HashedTable` with a quarter as many rows as there are
# distinct training IDs, and the collisionless `NumbaTable`.

# %%
w_ids = np.unique(w_train.fields)
HASH_ROWS = int(w_ids.size // 4)
MODEL = mr.ModelConfig()
TRAIN = mr.TrainConfig(batch_size=512, progress=False)


def hashed(c: mr.TableConfig) -> mr.HashedTable:
    return mr.HashedTable(replace(c, ttl=None, filter=None), num_rows=HASH_ROWS)


dfm, dfm_opt = mr.batch_stage(w_train, MODEL, TRAIN, table=mr.NumbaTable)
dfm_hashed, _ = mr.batch_stage(w_train, MODEL, TRAIN, table=hashed)
cl_auc, h_auc = mr.evaluate(dfm, w_test)["auc"], mr.evaluate(dfm_hashed, w_test)["auc"]
cl_rows, h_rows = len(dfm.vectors.table), len(dfm_hashed.vectors.table)
print(f"distinct training IDs {w_ids.size:,}; hashed rows {HASH_ROWS:,}, "
      f"collision rate {mr.hashing.collision_rate(w_ids, HASH_ROWS):.1%}")
print(f"collisionless: AUC {cl_auc:.4f} with {cl_rows:,} rows")
print(f"hashed:        AUC {h_auc:.4f} with {h_rows:,} rows")

# %% tags=["remove-cell"]
mr.labs.glue_many(w_train_ids=int(w_ids.size), hash_rows=HASH_ROWS,
                  hash_collision=float(mr.hashing.collision_rate(w_ids, HASH_ROWS)), cl_auc=float(cl_auc),
                  h_auc=float(h_auc), cl_minus_h=float(cl_auc - h_auc), cl_rows=int(cl_rows), deepfm_dim=MODEL.dim)

# %% [markdown]
# ## 2. Memory keeps growing: filters and expiry
#
# We push every day's IDs through three `NumbaTable`s as training lookups, in time order,
# and expire each at the end of every day: one that keeps everything, one whose rows expire
# after a day without a lookup, and one that in addition admits an ID only at its third
# occurrence (`OccurrenceFilter(3)`). The rows each holds at the end of each day:

# %%
TTL = mr.SECONDS_PER_DAY
KEEP = {"keep all": mr.TableConfig(dim=MODEL.dim),
        "TTL 1 day": mr.TableConfig(dim=MODEL.dim, ttl=TTL),
        "filter 3 + TTL": mr.TableConfig(dim=MODEL.dim, ttl=TTL, filter=mr.OccurrenceFilter(3))}
tables = {name: mr.NumbaTable(cfg) for name, cfg in KEEP.items()}
rows_by_day = {name: [] for name in KEEP}
for k, day in enumerate(days):
    for batch in day.batches(512):
        for t in tables.values():
            t.lookup(batch.fields.ravel(), int(batch.time[-1]), train=True)
    for name, t in tables.items():
        t.expire((k + 1) * mr.SECONDS_PER_DAY)
        rows_by_day[name].append(len(t))

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'rows at the end of day':<22}" + "".join(f"{k:>8}" for k in range(len(days))))
for name, rows in rows_by_day.items():
    print(f"{name:<22}" + "".join(f"{r:>8,}" for r in rows))

# %% [markdown]
# Does the smaller table cost accuracy? A DeepFM with a one-day TTL and the filter, trained
# on days 0 to 2 a day at a time (expiring after each day), scored on day 3:

# %%
LEAN = replace(MODEL, ttl=TTL, filter=mr.OccurrenceFilter(3))
lean = mr.build_deepfm_for(w_train, LEAN)
lean_opt = torch.optim.Adam(lean.head.parameters(), lr=TRAIN.lr)
for k in range(3):
    mr.train(lean, days[k], TRAIN, optimizer=lean_opt)
    lean.vectors.table.expire((k + 1) * mr.SECONDS_PER_DAY)
    lean.weights.table.expire((k + 1) * mr.SECONDS_PER_DAY)
lean_auc = mr.evaluate(lean, w_test)["auc"]
print(f"filter + TTL: AUC {lean_auc:.4f} with {len(lean.vectors.table):,} rows; "
      f"keep all: AUC {cl_auc:.4f} with {cl_rows:,} rows")

# %% tags=["remove-cell"]
mr.labs.glue_many(ttl_days=TTL // mr.SECONDS_PER_DAY, filter_threshold=KEEP["filter 3 + TTL"].filter.threshold,
                  rows_keep_last=rows_by_day["keep all"][-1], rows_ttl_last=rows_by_day["TTL 1 day"][-1],
                  rows_filter_last=rows_by_day["filter 3 + TTL"][-1],
                  rows_filter_share=rows_by_day["filter 3 + TTL"][-1] / rows_by_day["keep all"][-1],
                  lean_auc=float(lean_auc), lean_rows=len(lean.vectors.table),
                  lean_row_share=len(lean.vectors.table) / cl_rows)

# %% [markdown]
# ## 3. Speed and size
#
# The same training lookups (days 0 to 2, batches of 512) through the pure-Python
# `DictTable` of chapter 3 and the compiled `NumbaTable` of chapter 6. Timings depend on the
# machine and its load; the first Numba call compiles, so we warm it up first.

# %%
batches = [(b.fields.ravel(), int(b.time[-1])) for b in w_train.batches(512)]
mr.NumbaTable(mr.TableConfig(dim=MODEL.dim)).lookup(batches[0][0], batches[0][1])  # compile


def lookup_seconds(cls):
    """Seconds all the training lookups take in a new table of class `cls`."""
    table = cls(mr.TableConfig(dim=MODEL.dim))

    def lookups():
        for ids, now in batches:
            table.lookup(ids, now, train=True)

    return mr.labs.seconds(lookups)


speed = {cls.__name__: lookup_seconds(cls) for cls in (mr.DictTable, mr.NumbaTable)}
n_lookups = sum(len(ids) for ids, _ in batches)
speedup = speed["DictTable"] / speed["NumbaTable"]
print(f"{n_lookups:,} lookups: DictTable {speed['DictTable']:.2f} s, NumbaTable {speed['NumbaTable']:.3f} s "
      f"({speedup:.0f}x)")

# %% tags=["remove-cell"]
mr.labs.glue_many(n_lookups=int(n_lookups), speedup=float(speedup))

# %% [markdown]
# Size: the bytes per row of the trained collisionless table (vector, Adagrad state,
# last-seen time, index, spare capacity), scaled to a billion IDs; and how evenly the
# package's router spreads this run's IDs over 8 parameter-server shards.

# %%
# NBVAL_CHECK_OUTPUT
bytes_per_row = dfm.vectors.table.memory_bytes() / len(dfm.vectors.table)
billion_tib = bytes_per_row * 1e9 / 2**40
NUM_SHARDS = 8
per_shard = np.bincount(mr.route(w_ids, NUM_SHARDS), minlength=NUM_SHARDS)
print(f"bytes per row (dim {MODEL.dim}): {bytes_per_row:.0f}; a billion IDs: {billion_tib:.2f} TiB")
print(f"rows per shard over {NUM_SHARDS} shards: {per_shard.tolist()}; "
      f"largest / mean = {per_shard.max() / per_shard.mean():.3f}")

# %% tags=["remove-cell"]
mr.labs.glue_many(bytes_per_row=float(bytes_per_row), billion_tib=float(billion_tib), num_shards=NUM_SHARDS,
                  shard_imbalance=float(per_shard.max() / per_shard.mean()))

# %% [markdown]
# ## 4. Drift and bursts: frozen against online
#
# A small version of the paper's online-training experiment (chapter 14). The collisionless
# DeepFM of step 1 is the batch model. Days 3 and 4 are cut into 24 two-hour shards. The
# *frozen* model serves the batch model throughout; the *online* one, before each shard,
# syncs the training model's touched rows to a serving replica (`ParameterSync`), is scored
# on the shard, then trains on it (`online_stage`, the paper's Algorithm 1). Each starts
# from its own copy of the batch model (`fork_trainer`).

# %%
online_ev = mr.Events.concat(days[3:])
N_SHARDS = 24
shards = mr.experiments.online.time_shards(online_ev, 3 * mr.SECONDS_PER_DAY, WORLD.days * mr.SECONDS_PER_DAY,
                                           N_SHARDS)
m_on, o_on = mr.fork_trainer(dfm, dfm_opt)
r_on = mr.online_stage(m_on, shards, mr.ParameterSync(m_on, mr.replica_for(m_on)), o_on, TRAIN)
m_off, o_off = mr.fork_trainer(dfm, dfm_opt)
r_off = mr.online_stage(m_off, shards, mr.ParameterSync(m_off, mr.replica_for(m_off)), o_off, TRAIN, learn=False)
sync_rows = [s.rows["vectors"] for s in r_on.syncs[1:]]
print(f"pooled AUC over days 3-4: frozen {r_off.auc:.4f}, online {r_on.auc:.4f}")
print(f"rows per sync after the first: mean {np.mean(sync_rows):,.0f} of {len(m_on.vectors.table):,}")

# %% [markdown]
# The viral bursts of days 3 and 4: the true click rate during each burst, and the mean
# probability each model predicted for those events.

# %%
during = np.zeros(len(online_ev), dtype=bool)
for b in world.bursts:
    during |= (online_ev.item == np.uint64(b.item_id)) & (online_ev.time >= b.start) & (online_ev.time < b.end)
burst_ctr, burst_frozen, burst_online = (float(online_ev.label[during].mean()), float(r_off.probs[during].mean()),
                                         float(r_on.probs[during].mean()))
print(f"{int(during.sum()):,} burst events: click rate {burst_ctr:.3f}; "
      f"frozen predicts {burst_frozen:.3f}, online {burst_online:.3f}")

fig, ax = plt.subplots(figsize=(6.5, 3.2))
hours = [(s - 3 * mr.SECONDS_PER_DAY) / 3600 for s in r_on.shard_start]
ax.plot(hours, r_off.shard_auc, "o-", ms=3, label="frozen (batch model)")
ax.plot(hours, r_on.shard_auc, "o-", ms=3, label=f"online (train + sync every {48 // N_SHARDS} h)")
ax.set_xlabel("hours after the batch model was trained")
ax.set_ylabel("AUC on the shard")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
mr.labs.glue_figure("fig_frozen_online", fig)

# %% tags=["remove-cell"]
mr.labs.glue_many(n_shards=N_SHARDS, interval_h=float(48 / N_SHARDS), frozen_auc=float(r_off.auc),
                  online_auc=float(r_on.auc), online_gain=float(r_on.auc - r_off.auc),
                  frozen_last=float(r_off.shard_auc[-1]), online_last=float(r_on.shard_auc[-1]),
                  sync_rows_mean=float(np.mean(sync_rows)),
                  sync_share=float(np.mean(sync_rows) / len(m_on.vectors.table)),
                  burst_events=int(during.sum()), burst_ctr=burst_ctr, burst_frozen=burst_frozen,
                  burst_online=burst_online)

# %% [markdown]
# ## 5. Failures
#
# A trainer that runs forever must survive a crash. We snapshot the online trainer with
# `save_trainer`, restore it into a freshly built model with `restore_trainer`, and check
# that both predict the same on day 4. Then the paper's failure arithmetic (§3.2.2) with
# its own numbers: 1000 parameter servers, a failure rate of 0.01% per server per day,
# daily snapshots.

# %%
# NBVAL_CHECK_OUTPUT
with tempfile.TemporaryDirectory() as d:
    path = mr.save_trainer(d, 1, m_on, o_on, offsets={("examples", 0): len(online_ev)})
    fresh = mr.build_deepfm_for(w_train, MODEL)
    fresh_opt = torch.optim.Adam(fresh.head.parameters(), lr=TRAIN.lr)
    info = mr.restore_trainer(path, fresh, fresh_opt)
same = np.array_equal(mr.predict(m_on, days[4]), mr.predict(fresh, days[4]))
print("restored rows:", len(fresh.vectors.table), "| offsets:", info["offsets"], "| same predictions:", same)
fa = mr.experiments.faults.failure_arithmetic()
print(fa.text())

# %% tags=["remove-cell"]
mr.labs.glue_fields("fa_", fa, names={"days_between": "days_between_failures", "share": "share_per_failure",
                                      "lost_share": "lost_update_share"}, cast=float)
mr.labs.glue_many(restore_same=bool(same))

# %% [markdown]
# ## Run time

# %%
total = time.perf_counter() - T_START
print(f"notebook run time: {total:.1f} s")
mr.labs.glue_many(run_seconds=float(total))
