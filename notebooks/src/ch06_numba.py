# %% [markdown]
# # Lab: making the table fast with Numba
#
# The companion lab of chapter 6. We time the pure-Python tables per ID and count the
# interpreter work behind each lookup; we look at `NumbaTable`'s flat arrays and what each
# costs per row; we measure the load factor at which the one-slot cuckoo map of chapter 4
# and the four-slot bucketed index of `NumbaTable` stop accepting keys; we check that
# duplicates within a batch give bit for bit what `DictTable` gives, and that the table's
# Adagrad agrees with PyTorch's; we run the kernels with the JIT switched off, time their
# compilation, run a reduced benchmark against the peers, and take apart where the time
# of a lookup goes.
#
# Every number the chapter quotes is glued from this notebook. Timings vary from run to
# run and machine to machine, so they are never in cells whose output the notebook tests
# compare; cells whose first line is `# NBVAL_CHECK_OUTPUT` print deterministic output.

# %%
import cProfile
import os
import pstats
import subprocess
import sys
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch

import monolith_ref as mr

SEED = 0
print("monolith_ref", mr.__version__, "| JIT enabled:", mr.kernels.jit_enabled())

# %% [markdown]
# ## 1. Why the pure-Python table is slow
#
# Three tables get the same batch of 10,000 IDs: the seed blog post's mock (a dict of
# NumPy vectors, `mr.bench.peers.CollisionlessEmbedding`, copied from the post),
# chapter 3's `DictTable`, and `NumbaTable`. Into an empty table every ID is new (every
# lookup inserts a row, best of two fresh tables); the same batch again is all hits (best
# of three). A small warm-up call first, so that Numba's compilation is not in the timings
# (section 7 measures it).


# %%
N_IDS, DIM = 10_000, 16
cfg = mr.TableConfig(dim=DIM, seed=SEED, optimizer=mr.Adagrad())
mr.NumbaTable(cfg).lookup(np.arange(8, dtype=np.uint64), now=0)  # warm-up: compile or load the kernels
ids = mr.hashing.mix64(np.arange(N_IDS, dtype=np.uint64), SEED)
makers = {"seed's mock": lambda: mr.bench.peers.CollisionlessEmbedding(DIM),
          "DictTable": lambda: mr.DictTable(cfg), "NumbaTable": lambda: mr.NumbaTable(cfg)}


def lookup_batch(table):
    """A call that looks up the whole batch in ``table`` (the mock takes a list and a float time)."""
    if isinstance(table, mr.bench.peers.CollisionlessEmbedding):
        return lambda: table.lookup(ids.tolist(), 0.0)
    return lambda: table.lookup(ids, now=0)


speed = {}  # name -> (seconds per ID inserting, seconds per ID hitting)
for name, make in makers.items():
    inserts = []
    for _ in range(2):  # a fresh table each time: every lookup inserts
        call = lookup_batch(make())
        inserts.append(mr.labs.seconds(call))
    hit = mr.labs.best_of(call, repeats=3, warmup=0)  # the last table again: all hits
    speed[name] = (min(inserts) / N_IDS, hit / N_IDS)
for name, (ins, hit) in speed.items():
    print(f"{name:12s} insert {ins * 1e9:9.0f} ns/ID   hit {hit * 1e9:9.0f} ns/ID")

# %% tags=["remove-cell"]
mock, dict_t, numba_t = speed["seed's mock"], speed["DictTable"], speed["NumbaTable"]
mr.labs.glue_many(
    py_n_ids=N_IDS, mock_insert_us=mock[0] * 1e6, mock_hit_us=mock[1] * 1e6,
    dict_insert_us=dict_t[0] * 1e6, dict_hit_us=dict_t[1] * 1e6,
    numba_insert_ns=numba_t[0] * 1e9, numba_hit_ns=numba_t[1] * 1e9,
    dict_over_numba_hit=dict_t[1] / numba_t[1], dict_over_numba_insert=dict_t[0] / numba_t[0],
    mock_over_numba_hit=mock[1] / numba_t[1],
)

# %% [markdown]
# Where does a microsecond per ID go? The profiler counts every Python-level function call
# (and every call into C) during 2,000 inserts and 2,000 hits of `DictTable`. Each call
# means argument parsing, object allocation and reference counting: work that has nothing to
# do with the 64 bytes of embedding being copied.

# %%
prof_ids = ids[:2_000]
table = mr.DictTable(cfg)
calls = {}
for phase in ("insert", "hit"):
    profiler = cProfile.Profile()
    profiler.enable()
    table.lookup(prof_ids, now=1)
    profiler.disable()
    stats = pstats.Stats(profiler)
    calls[phase] = stats.total_calls / prof_ids.size
    if phase == "insert":
        top = sorted(stats.stats.items(), key=lambda kv: -kv[1][1])[:8]  # by number of calls
print(f"function calls per ID: insert {calls['insert']:.1f}, hit {calls['hit']:.1f}")
print("most frequent calls while inserting (calls per ID):")
for (file, line, func), (_, ncalls, *_rest) in top:
    print(f"  {ncalls / prof_ids.size:5.1f}  {func} ({os.path.basename(file)})")

mr.labs.glue_many(calls_per_insert=calls["insert"], calls_per_hit=calls["hit"])

# %% [markdown]
# ## 2. The layout: an index and an arena of flat arrays
#
# `NumbaTable` keeps every row in a handful of NumPy arrays (the *arena*), and a separate
# *index* maps keys to row numbers. The cell lists them for a table of dimension 16 with
# Adagrad, and what each costs per row (or per index slot).

# %%
# NBVAL_CHECK_OUTPUT
layout_table = mr.NumbaTable(mr.TableConfig(dim=16, seed=SEED, optimizer=mr.Adagrad()), capacity=1024)
layout = layout_table.arena
arena = {
    "embeddings": layout.embeddings, "opt_state": layout.opt_state, "last_seen": layout.last_seen,
    "row_key": layout.row_key, "live": layout.live, "touched": layout.touched, "free (free list)": layout.free,
}
index = {"index": layout_table.index}
print(f"{'arena array':18s} {'dtype':>8s} {'shape':>12s} {'bytes per row':>14s}")
for name, a in arena.items():
    print(f"{name:18s} {str(a.dtype):>8s} {str(a.shape):>12s} {a.nbytes // a.shape[0]:>14d}")
print(f"{'index array':18s} {'dtype':>8s} {'shape':>12s} {'bytes per slot':>14s}")
for name, a in index.items():
    print(f"{name:18s} {str(a.dtype):>8s} {str(a.shape):>12s} {a.nbytes // (a.shape[0] * mr.kernels.SLOTS):>14d}")
arena_row = sum(a.nbytes // a.shape[0] for a in arena.values())
payload_row = (layout.embeddings.nbytes + layout.opt_state.nbytes) // layout.capacity
print(f"arena bytes per row: {arena_row} (embedding + optimizer state: {payload_row});"
      f" index: {mr.kernels.SLOTS} slots per bucket, {layout_table.index.shape[0]} buckets for {1024} rows,"
      f" {layout_table.index[0].nbytes} bytes per bucket")

# %% tags=["remove-cell"]
bucket = layout_table.index[0]
mr.labs.glue_many(
    arena_bytes_per_row=int(arena_row), payload_bytes_per_row=int(payload_row),
    overhead_bytes_per_row=int(arena_row - payload_row), slots_per_bucket=int(mr.kernels.SLOTS),
    index_bytes_per_slot=int(bucket.nbytes // mr.kernels.SLOTS),
    bucket_key_bytes=int(mr.kernels.SLOTS * bucket.itemsize), bucket_bytes=int(bucket.nbytes),
    target_load_pct=100 * mr.kernels.TARGET_LOAD,
)

# %% [markdown]
# ## 3. Why a bucketed index: where each design stops accepting keys
#
# Chapter 4's `CuckooMap` has two tables of one-key slots; with `auto_rehash=False` an
# insert whose kick-out chain runs past `max_kicks` raises `CuckooInsertError`.
# `NumbaTable`'s index has buckets of four slots, and its compiled `index_insert` returns
# False in the same situation, leaving the index unchanged. We fill both, with the same
# number of slots in total, with random 64-bit keys until the first failure, for 8 seeds,
# and note the load factor (keys / slots) at that moment. The bucketed index is probed
# directly on fresh arrays (the public kernels of `mr.kernels`), with the hash
# offsets of generation 0 of a `NumbaTable` with the same seed (`index_offsets`).


# %%
def fill_bucketed(num_buckets: int, seed: int, max_kicks: int) -> float:
    """Insert random keys into a fresh bucketed index until one fails; the load just before."""
    rng = np.random.default_rng(1000 + seed)
    index = mr.kernels.new_index(num_buckets)  # keys 0, row numbers "empty"
    off0, off1 = mr.kernels.index_offsets(seed)
    nb = np.uint64(num_buckets)
    keys = rng.integers(0, 2**63, size=num_buckets * mr.kernels.SLOTS, dtype=np.uint64)
    for i in range(keys.size):
        if not mr.kernels.index_insert(index, off0, off1, nb, keys[i], np.int64(i), max_kicks):
            return i / (num_buckets * mr.kernels.SLOTS)
    return 1.0


def fill_one_slot(slots_per_table: int, seed: int, max_kicks: int) -> float:
    """The same with chapter 4's two-table map (one key per slot)."""
    rng = np.random.default_rng(1000 + seed)
    m = mr.CuckooMap(capacity=slots_per_table, seed=seed, auto_rehash=False, max_load=1.0, max_kicks=max_kicks)
    while True:
        try:
            m[int(rng.integers(0, 2**63))] = None
        except mr.tables.CuckooInsertError:
            return m.load_factor()


LF_SEEDS, LF_SLOTS, LF_KICKS = 8, [4_096, 16_384], (64, 500)
lf = {}
for total in LF_SLOTS:
    for kicks in LF_KICKS:
        lf[("one slot", total, kicks)] = np.array([fill_one_slot(total // 2, s, kicks) for s in range(LF_SEEDS)])
        lf[("4 slots", total, kicks)] = np.array([fill_bucketed(total // mr.kernels.SLOTS, s, kicks)
                                                  for s in range(LF_SEEDS)])

# %%
# NBVAL_CHECK_OUTPUT
print(f"load factor at the first failed insert ({LF_SEEDS} seeds each)")
print(f"{'index':>9s} {'slots':>7s} {'max_kicks':>10s} {'median':>7s} {'min':>6s} {'max':>6s}")
for (kind, total, kicks), loads in lf.items():
    print(f"{kind:>9s} {total:>7,} {kicks:>10d} {np.median(loads):>7.3f} {loads.min():>6.3f} {loads.max():>6.3f}")

# %% [markdown]
# The one-slot map gives up near half full, as chapter 4 found; the four-slot buckets take
# keys until well past 90%. The table itself never runs that close to the edge: it sizes a
# new index for 80% (`TARGET_LOAD`) and doubles it (with new hash seeds) only when an
# insert fails.
# Inserting keys into one `NumbaTable` and reading `stats()` just before its index
# generation changes shows where that happens in practice (with its default
# `max_kicks=64`).

# %%
grow_table = mr.NumbaTable(mr.TableConfig(dim=1, seed=SEED), capacity=1 << 16)
before = grow_table.stats()
grow_keys = mr.hashing.mix64(np.arange(1 << 19, dtype=np.uint64), 77)
for start in range(0, grow_keys.size, 512):
    grow_table.lookup(grow_keys[start : start + 512], now=0)
    now_stats = grow_table.stats()
    if now_stats["generation"] != before["generation"]:
        break
    before = now_stats
print(f"index of {before['index_slots']:,} slots: grew at load {before['load_factor']:.3f}"
      f" (within 512 keys), to {now_stats['index_slots']:,} slots")

# %% tags=["remove-cell"]
short = {"one slot": "one", "4 slots": "four"}
mr.labs.glue_many(
    {f"lf_{short[kind]}_{total}_{kicks}": float(np.median(loads)) for (kind, total, kicks), loads in lf.items()},
    lf_seeds=LF_SEEDS, lf_kicks_default=LF_KICKS[0], lf_kicks_long=LF_KICKS[1], lf_slots_big=LF_SLOTS[-1],
    numba_default_kicks=mr.NumbaTable(mr.TableConfig(dim=1)).max_kicks,
    grow_load=float(before["load_factor"]), grow_slots=int(before["index_slots"]),
)

# %%
fig, ax = plt.subplots(figsize=(7, 3.4))
labels, data = [], []
for (kind, total, kicks), loads in lf.items():
    labels.append(f"{kind}\n{total:,} slots\nkicks {kicks}")
    data.append(loads)
colors = ["C0" if k[0] == "one slot" else "C1" for k in lf]
for i, (loads, color) in enumerate(zip(data, colors)):
    ax.scatter(np.full(loads.size, i) + np.linspace(-0.15, 0.15, loads.size), loads, color=color, s=22, alpha=0.8)
    ax.plot([i - 0.25, i + 0.25], [np.median(loads)] * 2, color="k", lw=2)
ax.axhline(0.5, color="C0", ls="--", lw=1)
ax.set_xticks(range(len(labels)), labels, fontsize=7)
ax.set_ylabel("load at the first failure")
ax.set_ylim(0, 1.02)
ax.set_title("One key per slot (chapter 4) vs four-slot buckets (NumbaTable)")
ax.grid(axis="y", alpha=0.3)
fig.tight_layout()
mr.labs.glue_figure("fig_load_factor", fig)

# %% [markdown]
# ## 4. Duplicates within a batch
#
# A batch may hold the same ID several times (a popular ID in several examples). The table
# sums its gradients **in batch order**, then takes **one** optimizer step. Both halves
# matter. Float32 addition is not associative, so the order of the sum is part of the
# result; and a step per occurrence is a different algorithm (for Adagrad, each step would
# see a different accumulator).

# %%
# NBVAL_CHECK_OUTPUT
a, b, c = np.float32(1e8), np.float32(1.0), np.float32(-1e8)
print("(1e8 + 1) + -1e8 =", (a + b) + c, "   (1e8 + -1e8) + 1 =", (a + c) + b)

one = mr.TableConfig(dim=1, seed=SEED, optimizer=mr.SGD(lr=1.0))
grads = np.array([[1e8], [1.0], [-1e8]], dtype=np.float32)
key = np.array([7, 7, 7], dtype=np.uint64)
orders = {"1e8, 1, -1e8": grads, "1e8, -1e8, 1": grads[[0, 2, 1]]}
results = {}
for name, cls in (("DictTable", mr.DictTable), ("NumbaTable", mr.NumbaTable)):
    for order, g in orders.items():
        t = cls(one)
        start_row = t.lookup(key[:1], now=0)[0, 0]
        t.apply_gradients(key, g)
        results[(name, order)] = t.lookup(key[:1], now=0)[0, 0] - start_row
for (name, order), moved in results.items():
    print(f"{name:10s} ID 7 three times, gradients {order:13s}: SGD (lr 1) moved the row by {moved:+.1f}")

# %% tags=["remove-cell"]
mr.labs.glue_many(dup_move_batch=float(results[("NumbaTable", "1e8, 1, -1e8")]),
                  dup_move_swapped=float(results[("NumbaTable", "1e8, -1e8, 1")]))

# %% [markdown]
# The same summed gradient, applied as one Adagrad step or as three steps (one per
# occurrence), gives different rows:

# %%
# NBVAL_CHECK_OUTPUT
ada = mr.Adagrad(lr=0.5)
g3 = np.array([[0.5, -1.0], [0.5, -1.0], [1.0, 2.0]], dtype=np.float32)
row_once, acc_once = np.zeros(2, np.float32), ada.initial_state(2)
ada.step(row_once, acc_once, g3.sum(axis=0))
row_each, acc_each = np.zeros(2, np.float32), ada.initial_state(2)
for g in g3:
    ada.step(row_each, acc_each, g)
print("one step on the sum:", np.round(row_once, 4), " one step per occurrence:", np.round(row_each, 4))

# %% [markdown]
# And on a longer run: 40 batches of a Zipf stream (many repeated IDs per batch), training
# lookups, Adagrad updates and an expiry every 10 batches, through `DictTable` and
# `NumbaTable` (`mr.labs.run_table_program` drives both through the same steps). Every
# exported array must be identical, bit for bit.

# %%
# NBVAL_CHECK_OUTPUT
DUP_BATCHES = 40
run_cfg = mr.TableConfig(dim=8, seed=SEED, ttl=30, optimizer=mr.Adagrad(lr=0.3))
slow, fast = mr.DictTable(run_cfg), mr.NumbaTable(run_cfg, capacity=64)
stream = mr.zipf_ids(DUP_BATCHES * 256, 5_000, alpha=1.1, seed=SEED)
repeated = sum(batch.size - np.unique(batch).size for batch in np.array_split(stream, DUP_BATCHES))
mr.labs.run_table_program([slow, fast], stream, DUP_BATCHES, grad_seed=SEED, time_step=3, expire_every=10)
same = mr.labs.compare_states(slow.export(), fast.export()).identical
print(f"{len(slow):,} rows; {repeated:,} repeated IDs within batches; every exported array identical: {same}")

# %% tags=["remove-cell"]
mr.labs.glue_many(dup_repeated=int(repeated), dup_batches=DUP_BATCHES)

# %% [markdown]
# ## 5. The optimizer segment beside the row
#
# Each optimizer declares how many float32 values of state it keeps per row; the arena
# holds them in `opt_state`, row for row beside `embeddings`.

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'optimizer':>9s} {'state per row':>14s} {'bytes/row dim 16':>17s} {'dim 64':>7s} {'initial state':>14s}")
for opt in (mr.SGD(), mr.Adagrad(), mr.FTRL()):
    init = opt.initial_state(4)
    print(f"{opt.name:>9s} {opt.state_width(16) // 16:>10d} x dim {(16 + opt.state_width(16)) * 4:>17d}"
          f" {(64 + opt.state_width(64)) * 4:>7d}   {np.array2string(init, precision=6)}")

# %% [markdown]
# `NumbaTable`'s Adagrad against `torch.optim.Adagrad` on a dense `nn.Embedding` with the
# same starting rows (no collisions: one row per ID), over 20 batches with repeated IDs.
# PyTorch sums repeated IDs' gradients too (its sparse gradient is coalesced).

# %%
# NBVAL_CHECK_OUTPUT
n_rows, dim_t = 50, 4
keys_t = np.arange(n_rows, dtype=np.uint64)
ours = mr.NumbaTable(mr.TableConfig(dim=dim_t, seed=SEED, optimizer=mr.Adagrad(lr=0.2, initial_accumulator=1.0)))
start = ours.lookup(keys_t, now=0)
emb = torch.nn.Embedding(n_rows, dim_t, sparse=True)
with torch.no_grad():
    emb.weight.copy_(torch.from_numpy(start))
opt_t = torch.optim.Adagrad(emb.parameters(), lr=0.2, initial_accumulator_value=1.0, eps=1e-10)
rng = np.random.default_rng(SEED)
TORCH_BATCHES = 20
for _ in range(TORCH_BATCHES):
    batch = rng.integers(0, n_rows, size=64).astype(np.uint64)
    g = rng.normal(size=(64, dim_t)).astype(np.float32)
    ours.apply_gradients(batch, g)
    opt_t.zero_grad()
    emb(torch.from_numpy(batch.astype(np.int64))).backward(torch.from_numpy(g))
    with warnings.catch_warnings():  # torch's sparse Adagrad warns about skipped invariant checks
        warnings.simplefilter("ignore", UserWarning)
        opt_t.step()
diff = np.abs(ours.lookup(keys_t, now=0, train=False) - emb.weight.detach().numpy())
print(f"NumbaTable's Adagrad and torch.optim.Adagrad agree within 1e-6: {bool(diff.max() < 1e-6)}")

# %% tags=["remove-cell"]
mr.labs.glue_many(torch_max_diff=float(diff.max()), torch_batches=TORCH_BATCHES)

# %% [markdown]
# ## 6. Debugging with the JIT switched off
#
# With `NUMBA_DISABLE_JIT=1` set before `monolith_ref` is imported, every `@njit` kernel
# runs as ordinary Python: `print` and `pdb` work inside it, and so does a debugger's
# breakpoint. It is slow, but the arithmetic is the same. A separate Python process runs
# a small workload that way and prints a fingerprint of the exported state; a second process
# runs the same workload compiled.

# %%
DEBUG_SCRIPT = """
import hashlib, numpy as np
import monolith_ref as mr
t = mr.NumbaTable(mr.TableConfig(dim=4, seed=3, ttl=5, optimizer=mr.Adagrad()), capacity=8)
rng = np.random.default_rng(0)
for step in range(6):
    ids = rng.integers(0, 40, size=32).astype(np.uint64)
    t.lookup(ids, now=step)
    t.apply_gradients(ids, rng.normal(size=(32, 4)).astype(np.float32))
t.expire(now=6)
state = t.export()
print(mr.kernels.jit_enabled(), hashlib.sha256(b"".join(state[k].tobytes() for k in sorted(state))).hexdigest()[:16])
"""
runs = {}
for jit_off in (True, False):
    env = dict(os.environ)
    if jit_off:
        env["NUMBA_DISABLE_JIT"] = "1"
    else:
        env.pop("NUMBA_DISABLE_JIT", None)
    start = time.perf_counter()
    flag, digest = subprocess.run([sys.executable, "-c", DEBUG_SCRIPT], env=env, capture_output=True, text=True,
                                  check=True).stdout.split()
    runs[jit_off] = (flag, digest, time.perf_counter() - start)
for jit_off, (flag, digest, seconds) in runs.items():
    print(f"NUMBA_DISABLE_JIT={'1' if jit_off else 'unset'}: jit_enabled() = {flag}, {seconds:.1f} s in all")

# %%
# NBVAL_CHECK_OUTPUT
print("same exported state with the JIT off as compiled:", runs[True][1] == runs[False][1])
print("JIT off in the first process, on in the second:", (runs[True][0], runs[False][0]) == ("False", "True"))

# %% [markdown]
# ## 7. Compilation: first call against warm call
#
# Every kernel is compiled the first time it is called with a new combination of argument
# types, and `cache=True` writes the machine code next to the module, so the next process
# loads it instead. `kernel_times()` starts two fresh Python processes sharing a new, empty
# cache folder (`NUMBA_CACHE_DIR`): in the first every kernel compiles, the second loads them
# from the cache. Each times its first call of four operations on 4,096 IDs, then the
# median of three more calls.

# %%
KT_BATCH = 4096
kt = mr.bench.kernel_times(dim=16, batch=KT_BATCH)
print(f"{'operation':28s} {'compile':>9s} {'cached':>8s} {'warm':>8s}   (milliseconds)")
for op in kt["ops"]:
    print(f"{op:28s} {kt['compile'][op]['first'] * 1e3:9.1f} {kt['cached'][op]['first'] * 1e3:8.1f}"
          f" {kt['cached'][op]['warm'] * 1e3:8.3f}")
compile_total = sum(kt["compile"][op]["first"] for op in kt["ops"])
cached_total = sum(kt["cached"][op]["first"] for op in kt["ops"])
warm_total = sum(kt["cached"][op]["warm"] for op in kt["ops"])

# %% tags=["remove-cell"]
train_op = "training lookup (insert)"
mr.labs.glue_many(
    kt_train_compile_s=kt["compile"][train_op]["first"], kt_train_cached_ms=kt["cached"][train_op]["first"] * 1e3,
    kt_train_warm_ms=kt["cached"][train_op]["warm"] * 1e3, kt_compile_total_s=compile_total,
    kt_cached_total_ms=cached_total * 1e3, kt_warm_total_ms=warm_total * 1e3,
    kt_compile_over_warm=compile_total / warm_total, kt_batch=KT_BATCH,
)

# %% [markdown]
# ## 8. The benchmark, reduced
#
# `run_benchmarks(size="small")` is the full benchmark of `monolith-ref bench` on a tenth of
# its data: 100,000 resident IDs, the same workloads and the same peers, dims 16 and 64,
# the median of 3 timed repeats after a warm-up. It checks as it goes that every peer which
# shares our initial rows returned exactly `NumbaTable`'s rows. The numbers depend on the
# machine and on whatever else it is doing; the chapter quotes this run, and the book's
# closing note quotes the full one.

# %%
result = mr.bench.run_benchmarks(size="small", progress=False, seed=SEED)
print(result.table())

# %%
mr.labs.glue_figure("fig_bench", result.plot())

# %% tags=["remove-cell"]
RATIOS = {  # glue name: (dim, workload, the faster contestant, the one it is compared with)
    "b_train4k_vs_mock": (16, "train_4096", "numba", "seed_mock"),
    "b_train64k_vs_mock": (16, "train_65536", "numba", "seed_mock"),
    "b_trainF4k_vs_mock": (16, "train_filter_4096", "numba", "seed_mock"),
    "b_hits16_vs_pandas": (16, "hits", "numba", "pandas"),
    "b_hits64_vs_pandas": (64, "hits", "numba", "pandas"),
    "b_hits64_vs_ceiling": (64, "hits", "numba", "ceiling"),
    "b_hits16_vs_ceiling": (16, "hits", "numba", "ceiling"),
    "b_hits16_vs_typed": (16, "hits", "numba", "typed_dict"),
    "b_hits16_vs_arena": (16, "hits", "numba", "dict_arena"),
    "b_hits16_vs_torch": (16, "hits", "numba", "torch_hashed"),
    "b_apply16_vs_mock": (16, "apply", "numba", "seed_mock"),
    "b_apply16_vs_pandas": (16, "apply", "numba", "pandas"),
    "b_apply16_vs_torch": (16, "apply", "numba", "torch_hashed"),
    "b_expire16_vs_mock": (16, "expire", "numba", "seed_mock"),
    "b_sharded_hits16": (16, "hits", "sharded_2t", "sharded_1t"),
    "b_ceiling_vs_mock_train4k": (16, "train_4096", "ceiling", "seed_mock"),
}
mem16 = result.memory_per_id(16, "numba")
mr.labs.glue_many(
    {name: result.ratio(*args) for name, args in RATIOS.items()},
    b_n_resident=int(result.meta["n_resident"]),
    b_new_pct=100 * result.meta["stream_stats"]["new_fraction"],
    b_repeat_pct=100 * result.meta["stream_stats"]["repeat_fraction"],
    b_filter_slowdown=result.rate(16, "train_4096", "numba") / result.rate(16, "train_filter_4096", "numba"),
    b_mem16=mem16 / 128, b_mem64=result.memory_per_id(64, "numba") / 512, b_mem16_bytes=mem16,
    b_targets_met=sum(t[3] for t in result.targets()), b_targets_total=len(result.targets()),
    b_checks=len(result.checks),
    b_checks_verdict="all agreed" if all(c["agree"] for c in result.checks) else "SOME DIFFERED",
)

# %% [markdown]
# ## 9. What separates us from the ceiling
#
# The ceiling gathers rows whose positions are already known. A `NumbaTable` lookup does
# more: a Python call that validates the IDs and allocates the output, then for each ID
# the hash, the probe of one or two buckets, and the copy of the row. On 100,000 resident
# IDs (dimension 16) we time each part alone: a one-ID lookup (the fixed cost of a call),
# `find_many` (hash and probe only), `gather` (copy rows whose numbers are known), the
# whole serving lookup, and the ceiling's `np.take`. Best of 5 runs each.


# %%
N_PROF = 100_000
prof_table = mr.NumbaTable(mr.TableConfig(dim=16, seed=SEED, optimizer=mr.Adagrad()), capacity=N_PROF)
resident = mr.hashing.mix64(np.arange(N_PROF, dtype=np.uint64), SEED)
prof_table.lookup(resident, now=0)
query = resident[np.random.default_rng(SEED).integers(0, N_PROF, N_PROF)]
rows = np.empty(N_PROF, dtype=np.int64)
out = np.empty((N_PROF, 16), dtype=np.float32)
call_s = mr.labs.best_of(lambda: prof_table.lookup(query[:1], now=0, train=False), repeats=200)
find_s = mr.labs.best_of(lambda: mr.kernels.find_many(*prof_table.index_args(), query, rows))
gather_s = mr.labs.best_of(lambda: mr.kernels.gather(rows, prof_table.arena.embeddings, out))
lookup_s = mr.labs.best_of(lambda: prof_table.lookup(query, now=0, train=False))
take_s = mr.labs.best_of(lambda: np.take(prof_table.arena.embeddings, rows, axis=0))
parts = {"hash + probe (find_many)": find_s, "copy rows (gather)": gather_s,
         "rest: call, checks, allocation": max(lookup_s - find_s - gather_s, 0.0)}
for name, s in parts.items():
    print(f"{name:32s} {s / N_PROF * 1e9:7.1f} ns per ID")
print(f"{'whole lookup':32s} {lookup_s / N_PROF * 1e9:7.1f} ns per ID;"
      f" np.take of known rows {take_s / N_PROF * 1e9:.1f} ns per ID; one call of one ID {call_s * 1e6:.1f} us")

fig, ax = plt.subplots(figsize=(7, 2.6))
left = 0.0
for i, (name, s) in enumerate(parts.items()):
    ax.barh(1, s / N_PROF * 1e9, left=left, color=f"C{i}", label=name)
    left += s / N_PROF * 1e9
ax.barh(0, take_s / N_PROF * 1e9, color="C7", label="ceiling: np.take, rows known")
ax.set_yticks([0, 1], ["ceiling", "NumbaTable\nlookup"])
ax.set_xlabel("nanoseconds per ID (100,000 lookups, dim 16)")
ax.legend(fontsize=7, loc="lower right")
ax.grid(axis="x", alpha=0.3)
fig.tight_layout()
mr.labs.glue_figure("fig_ceiling", fig)

# %% tags=["remove-cell"]
mr.labs.glue_many(
    prof_n=N_PROF, prof_find_ns=find_s / N_PROF * 1e9, prof_gather_ns=gather_s / N_PROF * 1e9,
    prof_lookup_ns=lookup_s / N_PROF * 1e9, prof_take_ns=take_s / N_PROF * 1e9, prof_call_us=call_s * 1e6,
    prof_gather_over_take=gather_s / take_s, prof_lookup_over_take=lookup_s / take_s,
    prof_find_share=find_s / lookup_s,
)

# %% [markdown]
# ### Prefetching: overlapping the cache misses
#
# Most of the probe's time is waiting for memory: the bucket of a random ID is almost never
# in the cache. The misses of different IDs are independent, so `find_many` asks the CPU
# (LLVM's `prefetch` hint, `mr.kernels.prefetch`) to start loading the bucket of the ID
# `ahead` positions on while it probes the current one. The cell times `find_many` on a
# table of a million IDs (the index alone is then about 20 MB, beyond the caches that
# matter) with `ahead` = 0 (no prefetching) to 64.

# %%
N_PF = 1_000_000
pf_table = mr.NumbaTable(mr.TableConfig(dim=1, seed=SEED), capacity=N_PF)
pf_keys = mr.hashing.mix64(np.arange(N_PF, dtype=np.uint64), SEED + 1)
pf_table.lookup(pf_keys, now=0)
pf_query = pf_keys[np.random.default_rng(SEED).integers(0, N_PF, 200_000)]
pf_rows = np.empty(pf_query.size, dtype=np.int64)
AHEADS = [0, 2, 4, 8, 16, 32, 64]
pf_ns = {a: mr.labs.best_of(lambda: mr.kernels.find_many(*pf_table.index_args(), pf_query, pf_rows, a))
         / pf_query.size * 1e9 for a in AHEADS}
pf_default = mr.kernels.PREFETCH_AHEAD
for a, ns in pf_ns.items():
    print(f"ahead {a:3d}: {ns:6.1f} ns per ID" + ("   <- the table's setting" if a == pf_default else ""))
del pf_table

# %% tags=["remove-cell"]
mr.labs.glue_many(pf_n=N_PF, pf_none_ns=pf_ns[0], pf_default_ns=pf_ns[pf_default], pf_default=pf_default,
                  pf_speedup=pf_ns[0] / pf_ns[pf_default], pf_best_ahead=min(pf_ns, key=pf_ns.get))
