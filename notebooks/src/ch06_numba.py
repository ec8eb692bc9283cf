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
from myst_nb import glue

import monolith_ref as mr
from monolith_ref.bench import kernel_times, run_benchmarks
from monolith_ref.bench.peers import CollisionlessEmbedding
from monolith_ref.data import zipf_ids
from monolith_ref.hashing import GOLDEN_GAMMA, mix64
from monolith_ref.optim import FTRL, SGD, Adagrad
from monolith_ref.tables import CuckooInsertError, CuckooMap, DictTable, NumbaTable, TableConfig
from monolith_ref.tables import numba_table as nt

SEED = 0
print("monolith_ref", mr.__version__, "| JIT enabled:", nt.jit_enabled())

# %% [markdown]
# ## 1. Why the pure-Python table is slow
#
# Three tables get the same batch of 10,000 IDs: the seed blog post's mock (a dict of
# NumPy vectors, `monolith_ref.bench.peers.CollisionlessEmbedding`, copied from the post),
# chapter 3's `DictTable`, and `NumbaTable`. Into an empty table every ID is new (every
# lookup inserts a row, best of two fresh tables); the same batch again is all hits (best
# of three). A small warm-up call first, so that Numba's compilation is not in the timings
# (section 7 measures it).


# %%
def per_id_seconds(fn, ids, repeats=3):
    """Best of ``repeats`` timings of ``fn(ids)``, per ID."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(ids)
        best = min(best, time.perf_counter() - start)
    return best / ids.size


N_IDS, DIM = 10_000, 16
cfg = TableConfig(dim=DIM, seed=SEED, optimizer=Adagrad())
NumbaTable(cfg).lookup(np.arange(8, dtype=np.uint64), now=0)  # warm-up: compile or load the kernels
ids = mix64(np.arange(N_IDS, dtype=np.uint64), SEED)

speed = {}
for name, make in [("seed's mock", lambda: CollisionlessEmbedding(DIM)), ("DictTable", lambda: DictTable(cfg)),
                   ("NumbaTable", lambda: NumbaTable(cfg))]:
    inserts = []
    for _ in range(2):  # a fresh table each time: every lookup inserts
        table = make()
        call = (lambda t: lambda b: t.lookup(b.tolist(), 0.0))(table) if name == "seed's mock" else \
            (lambda t: lambda b: t.lookup(b, now=0))(table)
        inserts.append(per_id_seconds(call, ids, repeats=1))
    speed[name] = (min(inserts), per_id_seconds(call, ids))  # the last table again: all hits
for name, (ins, hit) in speed.items():
    print(f"{name:12s} insert {ins * 1e9:9.0f} ns/ID   hit {hit * 1e9:9.0f} ns/ID")

# %% tags=["remove-cell"]
glue("py_n_ids", N_IDS, display=False)
glue("mock_insert_us", speed["seed's mock"][0] * 1e6, display=False)
glue("mock_hit_us", speed["seed's mock"][1] * 1e6, display=False)
glue("dict_insert_us", speed["DictTable"][0] * 1e6, display=False)
glue("dict_hit_us", speed["DictTable"][1] * 1e6, display=False)
glue("numba_insert_ns", speed["NumbaTable"][0] * 1e9, display=False)
glue("numba_hit_ns", speed["NumbaTable"][1] * 1e9, display=False)
glue("dict_over_numba_hit", speed["DictTable"][1] / speed["NumbaTable"][1], display=False)
glue("dict_over_numba_insert", speed["DictTable"][0] / speed["NumbaTable"][0], display=False)
glue("mock_over_numba_hit", speed["seed's mock"][1] / speed["NumbaTable"][1], display=False)

# %% [markdown]
# Where does a microsecond per ID go? The profiler counts every Python-level function call
# (and every call into C) during 2,000 inserts and 2,000 hits of `DictTable`. Each call
# means argument parsing, object allocation and reference counting: work that has nothing to
# do with the 64 bytes of embedding being copied.

# %%
prof_ids = ids[:2_000]
table = DictTable(cfg)
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

glue("calls_per_insert", calls["insert"], display=False)
glue("calls_per_hit", calls["hit"], display=False)

# %% [markdown]
# ## 2. The layout: an index and an arena of flat arrays
#
# `NumbaTable` keeps every row in a handful of NumPy arrays (the *arena*), and a separate
# *index* maps keys to row numbers. The cell lists them for a table of dimension 16 with
# Adagrad, and what each costs per row (or per index slot).

# %%
# NBVAL_CHECK_OUTPUT
layout_table = NumbaTable(TableConfig(dim=16, seed=SEED, optimizer=Adagrad()), capacity=1024)
arena = {
    "embeddings": layout_table.embeddings, "opt_state": layout_table.opt_state,
    "last_seen": layout_table.last_seen, "row_key": layout_table.row_key, "live": layout_table.live,
    "touched": layout_table.touched, "_free (free list)": layout_table._free,
}
index = {"_index": layout_table._index}
print(f"{'arena array':18s} {'dtype':>8s} {'shape':>12s} {'bytes per row':>14s}")
for name, a in arena.items():
    print(f"{name:18s} {str(a.dtype):>8s} {str(a.shape):>12s} {a.nbytes // a.shape[0]:>14d}")
print(f"{'index array':18s} {'dtype':>8s} {'shape':>12s} {'bytes per slot':>14s}")
for name, a in index.items():
    print(f"{name:18s} {str(a.dtype):>8s} {str(a.shape):>12s} {a.nbytes // (a.shape[0] * nt.SLOTS):>14d}")
arena_row = sum(a.nbytes // a.shape[0] for a in arena.values())
payload_row = (layout_table.embeddings.nbytes + layout_table.opt_state.nbytes) // layout_table.embeddings.shape[0]
print(f"arena bytes per row: {arena_row} (embedding + optimizer state: {payload_row});"
      f" index: {nt.SLOTS} slots per bucket, {layout_table._index.shape[0]} buckets for {1024} rows,"
      f" {layout_table._index[0].nbytes} bytes per bucket")

# %% tags=["remove-cell"]
glue("arena_bytes_per_row", int(arena_row), display=False)
glue("payload_bytes_per_row", int(payload_row), display=False)
glue("overhead_bytes_per_row", int(arena_row - payload_row), display=False)
glue("slots_per_bucket", int(nt.SLOTS), display=False)
glue("index_bytes_per_slot", int(layout_table._index[0].nbytes // nt.SLOTS), display=False)
glue("bucket_key_bytes", int(nt.SLOTS * layout_table._index.itemsize), display=False)
glue("bucket_bytes", int(layout_table._index[0].nbytes), display=False)
glue("target_load_pct", 100 * nt.TARGET_LOAD, display=False)

# %% [markdown]
# ## 3. Why a bucketed index: where each design stops accepting keys
#
# Chapter 4's `CuckooMap` has two tables of one-key slots; with `auto_rehash=False` an
# insert whose kick-out chain runs past `max_kicks` raises `CuckooInsertError`.
# `NumbaTable`'s index has buckets of four slots, and its compiled `_index_insert` returns
# False in the same situation, leaving the index unchanged. We fill both, with the same
# number of slots in total, with random 64-bit keys until the first failure, for 8 seeds,
# and note the load factor (keys / slots) at that moment. The bucketed index is probed
# directly on fresh arrays, with hash offsets computed as `NumbaTable` computes them.


# %%
def bucketed_offsets(seed: int) -> tuple[np.uint64, np.uint64]:
    """The two hash offsets of generation 0 of a NumbaTable with this seed."""
    golden = int(GOLDEN_GAMMA)
    return np.uint64(((seed + 1) * golden) % 2**64), np.uint64(((seed + 2) * golden) % 2**64)


def fill_bucketed(num_buckets: int, seed: int, max_kicks: int) -> float:
    """Insert random keys into a fresh bucketed index until one fails; the load just before."""
    rng = np.random.default_rng(1000 + seed)
    index = np.empty((num_buckets, 2 * nt.SLOTS), dtype=np.uint64)
    nt._index_clear(index)  # keys 0, row numbers "empty"
    off0, off1 = bucketed_offsets(seed)
    nb = np.uint64(num_buckets)
    keys = rng.integers(0, 2**63, size=num_buckets * nt.SLOTS, dtype=np.uint64)
    for i in range(keys.size):
        if not nt._index_insert(index, off0, off1, nb, keys[i], np.int64(i), max_kicks):
            return i / (num_buckets * nt.SLOTS)
    return 1.0


def fill_one_slot(slots_per_table: int, seed: int, max_kicks: int) -> float:
    """The same with chapter 4's two-table map (one key per slot)."""
    rng = np.random.default_rng(1000 + seed)
    m = CuckooMap(capacity=slots_per_table, seed=seed, auto_rehash=False, max_load=1.0, max_kicks=max_kicks)
    while True:
        try:
            m[int(rng.integers(0, 2**63))] = None
        except CuckooInsertError:
            return m.load_factor()


LF_SEEDS, LF_SLOTS, LF_KICKS = 8, [4_096, 16_384], (64, 500)
lf = {}
for total in LF_SLOTS:
    for kicks in LF_KICKS:
        lf[("one slot", total, kicks)] = np.array([fill_one_slot(total // 2, s, kicks) for s in range(LF_SEEDS)])
        lf[("4 slots", total, kicks)] = np.array([fill_bucketed(total // nt.SLOTS, s, kicks) for s in range(LF_SEEDS)])

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
grow_table = NumbaTable(TableConfig(dim=1, seed=SEED), capacity=1 << 16)
before = grow_table.stats()
grow_keys = mix64(np.arange(1 << 19, dtype=np.uint64), 77)
for start in range(0, grow_keys.size, 512):
    grow_table.lookup(grow_keys[start : start + 512], now=0)
    now_stats = grow_table.stats()
    if now_stats["generation"] != before["generation"]:
        break
    before = now_stats
print(f"index of {before['index_slots']:,} slots: grew at load {before['load_factor']:.3f}"
      f" (within 512 keys), to {now_stats['index_slots']:,} slots")

# %% tags=["remove-cell"]
glue("lf_seeds", LF_SEEDS, display=False)
glue("lf_kicks_default", LF_KICKS[0], display=False)
glue("lf_kicks_long", LF_KICKS[1], display=False)
glue("numba_default_kicks", NumbaTable(TableConfig(dim=1)).max_kicks, display=False)
for total in LF_SLOTS:
    for kicks in LF_KICKS:
        glue(f"lf_one_{total}_{kicks}", float(np.median(lf[("one slot", total, kicks)])), display=False)
        glue(f"lf_four_{total}_{kicks}", float(np.median(lf[("4 slots", total, kicks)])), display=False)
glue("lf_slots_big", LF_SLOTS[-1], display=False)
glue("grow_load", float(before["load_factor"]), display=False)
glue("grow_slots", int(before["index_slots"]), display=False)

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
glue("fig_load_factor", fig, display=True)
plt.close(fig)

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

one = TableConfig(dim=1, seed=SEED, optimizer=SGD(lr=1.0))
grads = np.array([[1e8], [1.0], [-1e8]], dtype=np.float32)
key = np.array([7, 7, 7], dtype=np.uint64)
orders = {"1e8, 1, -1e8": grads, "1e8, -1e8, 1": grads[[0, 2, 1]]}
results = {}
for name, cls in (("DictTable", DictTable), ("NumbaTable", NumbaTable)):
    for order, g in orders.items():
        t = cls(one)
        start_row = t.lookup(key[:1], now=0)[0, 0]
        t.apply_gradients(key, g)
        results[(name, order)] = t.lookup(key[:1], now=0)[0, 0] - start_row
for (name, order), moved in results.items():
    print(f"{name:10s} ID 7 three times, gradients {order:13s}: SGD (lr 1) moved the row by {moved:+.1f}")

# %% tags=["remove-cell"]
glue("dup_move_batch", float(results[("NumbaTable", "1e8, 1, -1e8")]), display=False)
glue("dup_move_swapped", float(results[("NumbaTable", "1e8, -1e8, 1")]), display=False)

# %% [markdown]
# The same summed gradient, applied as one Adagrad step or as three steps (one per
# occurrence), gives different rows:

# %%
# NBVAL_CHECK_OUTPUT
ada = Adagrad(lr=0.5)
g3 = np.array([[0.5, -1.0], [0.5, -1.0], [1.0, 2.0]], dtype=np.float32)
row_once, acc_once = np.zeros(2, np.float32), ada.initial_state(2)
ada.step(row_once, acc_once, g3.sum(axis=0))
row_each, acc_each = np.zeros(2, np.float32), ada.initial_state(2)
for g in g3:
    ada.step(row_each, acc_each, g)
print("one step on the sum:", np.round(row_once, 4), " one step per occurrence:", np.round(row_each, 4))

# %% [markdown]
# And on a longer run: 40 batches of a Zipf stream (many repeated IDs per batch), training
# lookups, Adagrad updates and an expiry, through `DictTable` and `NumbaTable`. Every
# exported array must be identical, bit for bit.

# %%
# NBVAL_CHECK_OUTPUT
DUP_BATCHES = 40
run_cfg = TableConfig(dim=8, seed=SEED, ttl=30, optimizer=Adagrad(lr=0.3))
slow, fast = DictTable(run_cfg), NumbaTable(run_cfg, capacity=64)
rng = np.random.default_rng(SEED)
stream = zipf_ids(DUP_BATCHES * 256, 5_000, alpha=1.1, seed=SEED)
repeated = 0
for step, batch in enumerate(np.array_split(stream, DUP_BATCHES)):
    repeated += batch.size - np.unique(batch).size
    g = rng.normal(size=(batch.size, 8)).astype(np.float32)
    for t in (slow, fast):
        t.lookup(batch, now=step * 3)
        t.apply_gradients(batch, g)
        if step % 10 == 9:
            t.expire(now=step * 3)
a_state, b_state = slow.export(), fast.export()
same = all(np.array_equal(a_state[k], b_state[k]) and a_state[k].dtype == b_state[k].dtype for k in a_state)
print(f"{len(slow):,} rows; {repeated:,} repeated IDs within batches; every exported array identical: {same}")

# %% tags=["remove-cell"]
glue("dup_repeated", int(repeated), display=False)
glue("dup_batches", DUP_BATCHES, display=False)

# %% [markdown]
# ## 5. The optimizer segment beside the row
#
# Each optimizer declares how many float32 values of state it keeps per row; the arena
# holds them in `opt_state`, row for row beside `embeddings`.

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'optimizer':>9s} {'state per row':>14s} {'bytes/row dim 16':>17s} {'dim 64':>7s} {'initial state':>14s}")
for opt in (SGD(), Adagrad(), FTRL()):
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
ours = NumbaTable(TableConfig(dim=dim_t, seed=SEED, optimizer=Adagrad(lr=0.2, initial_accumulator=1.0)))
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
glue("torch_max_diff", float(diff.max()), display=False)
glue("torch_batches", TORCH_BATCHES, display=False)

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
from monolith_ref.optim import Adagrad
from monolith_ref.tables import NumbaTable, TableConfig
from monolith_ref.tables.numba_table import jit_enabled
t = NumbaTable(TableConfig(dim=4, seed=3, ttl=5, optimizer=Adagrad()), capacity=8)
rng = np.random.default_rng(0)
for step in range(6):
    ids = rng.integers(0, 40, size=32).astype(np.uint64)
    t.lookup(ids, now=step)
    t.apply_gradients(ids, rng.normal(size=(32, 4)).astype(np.float32))
t.expire(now=6)
state = t.export()
print(jit_enabled(), hashlib.sha256(b"".join(state[k].tobytes() for k in sorted(state))).hexdigest()[:16])
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
kt = kernel_times(dim=16, batch=KT_BATCH)
print(f"{'operation':28s} {'compile':>9s} {'cached':>8s} {'warm':>8s}   (milliseconds)")
for op in kt["ops"]:
    print(f"{op:28s} {kt['compile'][op]['first'] * 1e3:9.1f} {kt['cached'][op]['first'] * 1e3:8.1f}"
          f" {kt['cached'][op]['warm'] * 1e3:8.3f}")
compile_total = sum(kt["compile"][op]["first"] for op in kt["ops"])
cached_total = sum(kt["cached"][op]["first"] for op in kt["ops"])
warm_total = sum(kt["cached"][op]["warm"] for op in kt["ops"])

# %% tags=["remove-cell"]
train_op = "training lookup (insert)"
glue("kt_train_compile_s", kt["compile"][train_op]["first"], display=False)
glue("kt_train_cached_ms", kt["cached"][train_op]["first"] * 1e3, display=False)
glue("kt_train_warm_ms", kt["cached"][train_op]["warm"] * 1e3, display=False)
glue("kt_compile_total_s", compile_total, display=False)
glue("kt_cached_total_ms", cached_total * 1e3, display=False)
glue("kt_warm_total_ms", warm_total * 1e3, display=False)
glue("kt_compile_over_warm", compile_total / warm_total, display=False)
glue("kt_batch", KT_BATCH, display=False)

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
result = run_benchmarks(size="small", progress=False, seed=SEED)
print(result.table())

# %%
fig = result.plot()
glue("fig_bench", fig, display=True)
plt.close(fig)

# %% tags=["remove-cell"]
R = result.ratio
glue("b_n_resident", int(result.meta["n_resident"]), display=False)
glue("b_new_pct", 100 * result.meta["stream_stats"]["new_fraction"], display=False)
glue("b_repeat_pct", 100 * result.meta["stream_stats"]["repeat_fraction"], display=False)
glue("b_train4k_vs_mock", R(16, "train_4096", "numba", "seed_mock"), display=False)
glue("b_train64k_vs_mock", R(16, "train_65536", "numba", "seed_mock"), display=False)
glue("b_trainF4k_vs_mock", R(16, "train_filter_4096", "numba", "seed_mock"), display=False)
glue("b_filter_slowdown", result.rate(16, "train_4096", "numba") / result.rate(16, "train_filter_4096", "numba"),
     display=False)
glue("b_hits16_vs_pandas", R(16, "hits", "numba", "pandas"), display=False)
glue("b_hits64_vs_pandas", R(64, "hits", "numba", "pandas"), display=False)
glue("b_hits64_vs_ceiling", R(64, "hits", "numba", "ceiling"), display=False)
glue("b_hits16_vs_ceiling", R(16, "hits", "numba", "ceiling"), display=False)
glue("b_hits16_vs_typed", R(16, "hits", "numba", "typed_dict"), display=False)
glue("b_hits16_vs_arena", R(16, "hits", "numba", "dict_arena"), display=False)
glue("b_hits16_vs_torch", R(16, "hits", "numba", "torch_hashed"), display=False)
glue("b_apply16_vs_mock", R(16, "apply", "numba", "seed_mock"), display=False)
glue("b_apply16_vs_pandas", R(16, "apply", "numba", "pandas"), display=False)
glue("b_apply16_vs_torch", R(16, "apply", "numba", "torch_hashed"), display=False)
glue("b_expire16_vs_mock", R(16, "expire", "numba", "seed_mock"), display=False)
glue("b_sharded_hits16", R(16, "hits", "sharded_2t", "sharded_1t"), display=False)
glue("b_ceiling_vs_mock_train4k", R(16, "train_4096", "ceiling", "seed_mock"), display=False)
glue("b_mem16", result.memory_per_id(16, "numba") / 128, display=False)
glue("b_mem64", result.memory_per_id(64, "numba") / 512, display=False)
glue("b_mem16_bytes", result.memory_per_id(16, "numba"), display=False)
glue("b_targets_met", sum(t[3] for t in result.targets()), display=False)
glue("b_targets_total", len(result.targets()), display=False)
glue("b_checks", len(result.checks), display=False)
glue("b_checks_verdict", "all agreed" if all(c["agree"] for c in result.checks) else "SOME DIFFERED",
     display=False)

# %% [markdown]
# ## 9. What separates us from the ceiling
#
# The ceiling gathers rows whose positions are already known. A `NumbaTable` lookup does
# more: a Python call that validates the IDs and allocates the output, then for each ID
# the hash, the probe of one or two buckets, and the copy of the row. On 100,000 resident
# IDs (dimension 16) we time each part alone: a one-ID lookup (the fixed cost of a call),
# `_find_many` (hash and probe only), `_gather` (copy rows whose numbers are known), the
# whole serving lookup, and the ceiling's `np.take`. Best of 5 runs each.


# %%
def best_of(fn, repeats=5):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


N_PROF = 100_000
prof_table = NumbaTable(TableConfig(dim=16, seed=SEED, optimizer=Adagrad()), capacity=N_PROF)
resident = mix64(np.arange(N_PROF, dtype=np.uint64), SEED)
prof_table.lookup(resident, now=0)
query = resident[np.random.default_rng(SEED).integers(0, N_PROF, N_PROF)]
rows = np.empty(N_PROF, dtype=np.int64)
out = np.empty((N_PROF, 16), dtype=np.float32)
call_s = best_of(lambda: prof_table.lookup(query[:1], now=0, train=False), repeats=200)
find_s = best_of(lambda: nt._find_many(*prof_table._index_args(), query, rows))
gather_s = best_of(lambda: nt._gather(rows, prof_table.embeddings, out))
lookup_s = best_of(lambda: prof_table.lookup(query, now=0, train=False))
take_s = best_of(lambda: np.take(prof_table.embeddings, rows, axis=0))
parts = {"hash + probe (_find_many)": find_s, "copy rows (_gather)": gather_s,
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
glue("fig_ceiling", fig, display=True)
plt.close(fig)

# %% tags=["remove-cell"]
glue("prof_n", N_PROF, display=False)
glue("prof_find_ns", find_s / N_PROF * 1e9, display=False)
glue("prof_gather_ns", gather_s / N_PROF * 1e9, display=False)
glue("prof_lookup_ns", lookup_s / N_PROF * 1e9, display=False)
glue("prof_take_ns", take_s / N_PROF * 1e9, display=False)
glue("prof_call_us", call_s * 1e6, display=False)
glue("prof_gather_over_take", gather_s / take_s, display=False)
glue("prof_lookup_over_take", lookup_s / take_s, display=False)
glue("prof_find_share", find_s / lookup_s, display=False)

# %% [markdown]
# ### Prefetching: overlapping the cache misses
#
# Most of the probe's time is waiting for memory: the bucket of a random ID is almost never
# in the cache. The misses of different IDs are independent, so `_find_many` asks the CPU
# (LLVM's `prefetch` hint, `_prefetch` in the module) to start loading the bucket of the ID
# `ahead` positions on while it probes the current one. The cell times `_find_many` on a
# table of a million IDs (the index alone is then about 20 MB, beyond the caches that
# matter) with `ahead` = 0 (no prefetching) to 64.

# %%
N_PF = 1_000_000
pf_table = NumbaTable(TableConfig(dim=1, seed=SEED), capacity=N_PF)
pf_keys = mix64(np.arange(N_PF, dtype=np.uint64), SEED + 1)
pf_table.lookup(pf_keys, now=0)
pf_query = pf_keys[np.random.default_rng(SEED).integers(0, N_PF, 200_000)]
pf_rows = np.empty(pf_query.size, dtype=np.int64)
AHEADS = [0, 2, 4, 8, 16, 32, 64]
pf_ns = {a: best_of(lambda: nt._find_many(*pf_table._index_args(), pf_query, pf_rows, a)) / pf_query.size * 1e9
         for a in AHEADS}
for a, ns in pf_ns.items():
    print(f"ahead {a:3d}: {ns:6.1f} ns per ID" + ("   <- the table's setting" if a == nt.PREFETCH_AHEAD else ""))
del pf_table

# %% tags=["remove-cell"]
glue("pf_n", N_PF, display=False)
glue("pf_none_ns", pf_ns[0], display=False)
glue("pf_default_ns", pf_ns[nt.PREFETCH_AHEAD], display=False)
glue("pf_default", nt.PREFETCH_AHEAD, display=False)
glue("pf_speedup", pf_ns[0] / pf_ns[nt.PREFETCH_AHEAD], display=False)
glue("pf_best_ahead", min(pf_ns, key=pf_ns.get), display=False)

