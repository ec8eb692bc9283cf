# %% [markdown]
# # Lab: parameter servers as processes
#
# The companion lab of chapter 12. We start two parameter-server (PS) processes on this
# machine with `Cluster`, put a `RemoteTable` on them and check that it holds exactly what
# the in-process `ShardedTable` of chapter 7 holds; train a small DeepFM whose two tables
# live on the PS, kill one PS in the middle of training, read the error, restart the PS
# from its snapshot and compare everything with an in-process twin that was told what the
# failure cost; and measure what a call across a process boundary costs, against batch size.
#
# Every number the chapter quotes is glued from this notebook. Cells whose first line is
# `# NBVAL_CHECK_OUTPUT` print deterministic output that the notebook tests compare; no
# process id, port or timing is printed in them.

# %%
import os

# torch's C++ transport logs a warning line for every connection that breaks (we break some
# on purpose below), from its own threads, into whichever cell runs at the time. Errors
# only: what a failure looks like is shown by the package's own exception.
os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")

import shutil
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython import get_ipython

import monolith_ref as mr

torch.set_num_threads(1)  # small layers; 2 busy cores (see chapter 8)
print("monolith_ref", mr.__version__)

# %% [markdown]
# ## Two PS processes and a trainer
#
# `Cluster(2, ...)` starts two processes (`python -m monolith_ref.distributed`, named `ps0`
# and `ps1`) on 127.0.0.1 and joins this kernel to their RPC group as the trainer. Each PS
# snapshots each of its tables after every `SNAPSHOT_EVERY` operations that change it, into
# its own folder under a temporary directory.
#
# A notebook has no `try/finally` around its cells, so we register a hook: if any cell
# fails, the PS processes are stopped at once. (They would stop anyway when the kernel
# exits: the package shuts down its clusters at interpreter exit, and a PS whose trainer
# disappears sees the end of its stdin and quits.) The last section checks that none is
# left.

# %%
SNAPSHOT_EVERY = 8
snap_dir = Path(tempfile.mkdtemp(prefix="ch12-snapshots-"))
t0 = time.perf_counter()
cluster = mr.Cluster(num_ps=2, snapshot_dir=snap_dir, snapshot_every=SNAPSHOT_EVERY)
start_seconds = time.perf_counter() - t0


def stop_on_error(result):
    """IPython hook: a failed cell shuts the cluster down (and nothing is left running)."""
    if result.error_in_exec is not None:
        cluster.shutdown()


ipython = get_ipython()
if ipython is not None:
    ipython.events.register("post_run_cell", stop_on_error)
print(f"started {cluster.ps_names} in {start_seconds:.1f} s")

# %% [markdown]
# ## Same routing, same rows
#
# A `RemoteTable` on the two PS and a `ShardedTable` with two shards, with the same
# configuration: Adagrad, an exact occurrence filter (an ID gets a row on its second
# sighting) and a TTL of 30 seconds of event time. Both go through the same 20 training
# steps (a lookup that inserts, then a gradient push) on a Zipf stream, then an expiry.
# Every lookup must return the same rows, and at the end the exports (IDs, embeddings,
# optimizer state, last-seen times, and each shard's filter counters) must be equal bit
# for bit.

# %%
# NBVAL_CHECK_OUTPUT
P_CFG = mr.TableConfig(dim=8, seed=3, ttl=30, optimizer=mr.Adagrad(lr=0.1), filter=mr.OccurrenceFilter(threshold=2))
P_STEPS, P_BATCH, P_VOCAB, P_EXPIRE_AT = 20, 2048, 5000, 45
remote = mr.RemoteTable(P_CFG, cluster, table_id="parity")
local = mr.ShardedTable(P_CFG, num_shards=2, threads=1)
stream = mr.zipf_ids(P_STEPS * P_BATCH, P_VOCAB, seed=1).reshape(P_STEPS, P_BATCH)
lookups_equal = True
for step, ids in enumerate(stream):
    grads = np.random.default_rng(step).normal(scale=0.1, size=(ids.size, P_CFG.dim)).astype(np.float32)
    lookups_equal &= np.array_equal(remote.lookup(ids, now=step), local.lookup(ids, now=step))
    remote.apply_gradients(ids, grads)
    local.apply_gradients(ids, grads)
expired = (remote.expire(P_EXPIRE_AT), local.expire(P_EXPIRE_AT))
ex_remote, ex_local = remote.export(), local.export()
exports_equal = mr.labs.compare_states(ex_remote, ex_local).identical
print("every lookup equal:", bool(lookups_equal))
print("rows expired (remote, local):", expired)
print("rows (remote, local):", len(remote), len(local))
print("rows per PS:", remote.shard_sizes().tolist(), " rows per shard:", local.shard_sizes().tolist())
print("export keys:", sorted(ex_remote))
print("exports bit-identical:", exports_equal)
print("touched keys equal:", np.array_equal(remote.touched_ids(), local.touched_ids()))

# %% tags=["remove-cell"]
rows_ps0, rows_ps1 = local.shard_sizes()
mr.labs.glue_many(par_steps=P_STEPS, par_batch=P_BATCH, par_vocab=P_VOCAB, par_ttl=int(P_CFG.ttl), par_rows=len(local),
                  par_rows_ps0=rows_ps0, par_rows_ps1=rows_ps1, par_expired=int(expired[0]),
                  par_equal=str(exports_equal and lookups_equal), snapshot_every=SNAPSHOT_EVERY)

# %% [markdown]
# What each PS says about its shard (`describe()`), and the snapshot folders it wrote. The
# parity table had 41 changing operations per PS (20 lookups, 20 pushes, 1 expiry), so each
# PS wrote a snapshot after operations 8, 16, 24, 32 and 40 and kept the newest two.

# %%
# NBVAL_CHECK_OUTPUT
for info in remote.describe():
    print({k: info[k] for k in ("table_id", "factory", "shard", "num_shards", "ops", "snapshots", "snapshot_error")})
for ps in cluster.ps_names:
    folder = snap_dir / ps / "parity"
    print(f"{ps}/parity/:", [p.name for p in mr.checkpoint.list_snapshots(folder)])

# %% [markdown]
# The same layout drawn from the live objects (`monolith_ref.diagrams.shard_diagram`, with
# mermaid-py): the trainer, each PS with its rank, whether its process is up, and the rows
# of the parity table it holds; each arrow carries the IDs among 0..7 that `route` sends to
# that PS.

# %%
mr.diagrams.as_markdown(mr.diagrams.shard_diagram(remote, ids=np.arange(8, dtype=np.uint64), cluster=cluster))

# %% tags=["remove-cell"]
par_info = remote.describe()
mr.labs.glue_many(par_ops=int(par_info[0]["ops"]), par_snapshots=int(par_info[0]["snapshots"]))
remote.drop()  # rows and snapshots: the DeepFM tables below have the PS to themselves
local.close()

# %% [markdown]
# ## A DeepFM whose tables live on the PS
#
# `build_deepfm_for(events, ..., table=factory)` calls `factory(config)` for its two tables (the
# vectors, `dim=16`, and the first-order weights, `dim=1`). We give it a factory that makes
# `RemoteTable`s, and build a twin whose tables are in-process `ShardedTable`s with two
# shards. The dense head stays in this process in both. A small synthetic stream of
# 20,000 events, batches of 1,024, and the package's `train_step`: forward (training
# lookups), backward, Adam on the head, then the sparse gradient push.

# %%
# NBVAL_CHECK_OUTPUT
STREAM = mr.StreamConfig(days=1, events_per_day=20_000, num_users=3000, num_items=1500, new_items_per_day=0, seed=0)
events = mr.synthetic_stream(STREAM)
BATCH, KILL_AFTER, MORE_STEPS = 1024, 11, 4
batches = [events[i:i + BATCH] for i in range(0, len(events), BATCH)]
NAMES = {16: "vectors", 1: "weights"}

model = mr.build_deepfm_for(events, mr.ModelConfig(),
                            table=lambda cfg: mr.RemoteTable(cfg, cluster, table_id=NAMES[cfg.dim]))
twin = mr.build_deepfm_for(events, mr.ModelConfig(), table=lambda cfg: mr.ShardedTable(cfg, num_shards=2, threads=1))
opt = torch.optim.Adam(model.head.parameters(), lr=1e-3)
twin_opt = torch.optim.Adam(twin.head.parameters(), lr=1e-3)
tables = {"vectors": (model.vectors.table, twin.vectors.table), "weights": (model.weights.table, twin.weights.table)}

ps1_history = {name: [] for name in tables}  # the twin's shard 1 after each step
losses = []
for k in range(KILL_AFTER):
    loss, twin_loss = mr.train_step(model, opt, batches[k]), mr.train_step(twin, twin_opt, batches[k])
    losses.append((loss, twin_loss))
    for name, (_, ref) in tables.items():
        ps1_history[name].append(ref.shards[1].export())
print(model.vectors.table, model.weights.table, sep="\n")
print("steps:", KILL_AFTER, "; every loss equal to the twin's:", all(a == b for a, b in losses))
print("loss, first and last step:", round(losses[0][0], 4), round(losses[-1][0], 4))
for name, (table, _) in tables.items():
    print(f"{name}: rows per PS {table.shard_sizes().tolist()}, "
          f"operations {[d['ops'] for d in table.describe()]}, snapshots {[d['snapshots'] for d in table.describe()]}")

# %% tags=["remove-cell"]
mr.labs.glue_many(dfm_events=len(events), dfm_batch=BATCH, dfm_kill_after=KILL_AFTER, dfm_more_steps=MORE_STEPS,
                  dfm_steps_per_snapshot=SNAPSHOT_EVERY // 2, dfm_rows_before=len(twin.vectors.table))

# %% [markdown]
# ## Kill `ps1`
#
# `cluster.kill(1)` sends SIGKILL to `ps1`: no snapshot, no goodbye. Then the trainer tries
# its next step. The forward pass looks up the vectors first; the call to `ps0` succeeds, the
# call to `ps1` fails, and `RemoteTable` raises `PSUnavailableError` naming the PS, the
# operation and the table. Nothing is retried, and `ps0` *has* done its part of the failed
# lookup (it inserted the new IDs it owns and refreshed their times): we tell the twin so,
# by making its shard 0 do the same.

# %%
before_kill = {name: table.export() for name, (table, _) in tables.items()}
cluster.kill(1)
failed = batches[KILL_AFTER]
try:
    mr.train_step(model, opt, failed)
except mr.distributed.PSUnavailableError as exc:
    error = exc
print(f"{type(error).__name__}: {error}")
print("ps_names:", error.ps_names, " op:", error.op)

flat = failed.fields.reshape(-1)
on_ps0 = mr.route(flat, 2, twin.vectors.table.config.seed) == 0
twin.vectors.table.shards[0].lookup(flat[on_ps0], now=int(failed.time[-1]))  # ps0's half of the failed call
rows_from_failed_call = int(len(twin.vectors.table.shards[0]) - np.sum(
    mr.route(before_kill["vectors"]["ids"], 2, twin.vectors.table.config.seed) == 0))

# %% [markdown]
# The diagram of the vectors table now: `ps1` is down, so no PS is asked for its size.

# %%
mr.diagrams.as_markdown(mr.diagrams.shard_diagram(model.vectors.table, cluster=cluster))

# %% tags=["remove-cell"]
mr.labs.glue_many(kill_error_type=type(error).__name__, kill_error_op=error.op, kill_error_ps=", ".join(error.ps_names),
                  kill_rows_failed_call=rows_from_failed_call)

# %% [markdown]
# ## Restart `ps1` from its snapshot
#
# `cluster.restart(1)` re-forms the RPC group on a new port: the trainer leaves, `ps0` is
# told to leave and join the new group (its process never stops, so its tables stay in
# memory), a new `ps1` process loads its newest snapshot of every table and joins, and the
# trainer joins last. The `RemoteTable` objects keep working: they hold only names.

# %%
restart_seconds = mr.labs.seconds(lambda: cluster.restart(1))
print(f"restarted ps1 in {restart_seconds:.1f} s; alive: {[cluster.alive(i) for i in range(2)]}")

# %% [markdown]
# What came back? For each table we split the export before the kill and after the
# restart by PS, with `split_state` (chapter 7; `RemoteTable.load` splits a state the same
# way). The restarted PS reports the operation count of the snapshot it loaded, and each
# training step is two operations (a lookup and a push), so that count says which step the
# snapshot was taken after. The twin's shard 1 as of that step is loaded into the
# twin; then the remote tables and the twin must agree bit for bit.

# %%
# NBVAL_CHECK_OUTPUT
def same(a, b):
    return mr.labs.compare_states(a, b).identical


recovery = {}
for name, (table, ref) in tables.items():
    seed = table.config.seed
    ops = [d["ops"] for d in table.describe()]
    snap_step = ops[1] // 2  # steps 1..snap_step are in ps1's snapshot
    old, new = mr.split_state(before_kill[name], 2, seed), mr.split_state(table.export(), 2, seed)
    mine = np.isin(new[0]["ids"], old[0]["ids"])
    kept0 = bool(mine.sum() == old[0]["ids"].size) and all(
        np.array_equal(new[0][k][mine], old[0][k]) for k in ("embeddings", "opt_state"))
    gone = np.setdiff1d(old[1]["ids"], new[1]["ids"])
    both = np.intersect1d(old[1]["ids"], new[1]["ids"])
    o_rows = old[1]["embeddings"][np.searchsorted(old[1]["ids"], both)]
    n_rows = new[1]["embeddings"][np.searchsorted(new[1]["ids"], both)]
    rolled_back = int((o_rows != n_rows).any(axis=1).sum())
    ref.shards[1].load(ps1_history[name][snap_step - 1])
    recovery[name] = dict(ops=ops, snap_step=snap_step, ps0_before=old[0]["ids"].size, ps0_after=new[0]["ids"].size,
                          ps1_before=old[1]["ids"].size, ps1_after=new[1]["ids"].size, gone=gone.size,
                          rolled_back=rolled_back, unchanged=both.size - rolled_back, kept0=bool(kept0),
                          equal=same(table.export(), ref.export()))
    r = recovery[name]
    print(f"{name}: operations per PS {ops} -> ps1's snapshot was taken after step {snap_step} of {KILL_AFTER}")
    print(f"  ps0: rows {r['ps0_before']} -> {r['ps0_after']}; every row it had is still there, embeddings and optimizer state unchanged: {r['kept0']}")
    print(f"  ps1: rows {r['ps1_before']} -> {r['ps1_after']}; gone (made after the snapshot): {r['gone']}, "
          f"back at their snapshot values: {r['rolled_back']}, untouched since the snapshot: {r['unchanged']}")
    print(f"  remote table bit-identical to the twin: {r['equal']}")

# %% tags=["remove-cell"]
v = recovery["vectors"]
lost_updates = 0
for k in range(v["snap_step"], KILL_AFTER):  # gradient rows ps1 had applied since its snapshot
    ids = np.unique(batches[k].fields)
    lost_updates += int(np.sum(mr.route(ids, 2, twin.vectors.table.config.seed) == 1))
mr.labs.glue_fields("rec_", v, names=("snap_step", "ps0_before", "ps0_after", "ps1_before", "ps1_after", "gone",
                                      "rolled_back", "unchanged"), cast=int)
mr.labs.glue_many(rec_steps_lost=int(KILL_AFTER - v["snap_step"]),
                  rec_equal=str(all(r["equal"] and r["kept0"] for r in recovery.values())),
                  rec_ops_ps0=int(v["ops"][0]), rec_ops_ps1=int(v["ops"][1]), rec_lost_updates=lost_updates,
                  restart_seconds=float(restart_seconds), start_seconds=float(start_seconds))

# %% [markdown]
# Training goes on. The trainer retries the batch that failed (a choice of the training
# loop, not of `RemoteTable`), then trains four more; the twin does the same. Losses and
# tables stay identical.

# %%
# NBVAL_CHECK_OUTPUT
after = []
for k in range(KILL_AFTER, KILL_AFTER + 1 + MORE_STEPS):
    after.append((mr.train_step(model, opt, batches[k]), mr.train_step(twin, twin_opt, batches[k])))
print("losses after the restart:", [round(a, 4) for a, _ in after])
print("every loss equal to the twin's:", all(a == b for a, b in after))
print("tables bit-identical to the twin's:", all(same(t.export(), r.export()) for t, r in tables.values()))
print("rows per PS (vectors):", model.vectors.table.shard_sizes().tolist())

# %% tags=["remove-cell"]
mr.labs.glue_many(cont_equal=str(all(a == b for a, b in after) and all(
    same(t.export(), r.export()) for t, r in tables.values())), cont_steps=len(after))

# %% [markdown]
# Done with this cluster: `shutdown()` leaves the group and stops both PS processes.

# %%
ps_pids = [cluster.pid(i) for i in range(cluster.num_ps)]
cluster.shutdown()
if ipython is not None:
    ipython.events.unregister("post_run_cell", stop_on_error)
shutil.rmtree(snap_dir, ignore_errors=True)
print("alive after shutdown:", [cluster.alive(i) for i in range(cluster.num_ps)])

# %% [markdown]
# ## What crossing a process boundary costs
#
# `run_remote_benchmark` times batched training lookups and gradient pushes through four
# tables holding the same resident IDs: `ShardedTable` with 1 and 2 shards (in this
# process) and `RemoteTable` on 1 and 2 PS processes. It checks first that all four answer
# alike, takes the median of the repeats, and ends with `rpc_overhead`: an empty RPC round
# trip and a 1-ID lookup. This run is smaller than `python benchmarks/run_remote.py`
# (50,000 resident IDs, 5 repeats). It gets a cluster of its own without snapshots, which
# would otherwise be timed too; the `with` block stops it whatever happens. Timings depend
# on the machine and on its load: the chapter reads them as shapes, not constants.

# %%
B_SIZES, B_DIM, B_RESIDENT, B_REPEATS = (256, 1024, 4096, 32768), 16, 50_000, 5
with mr.Cluster(num_ps=2) as plain:
    bench = mr.bench.remote.run_remote_benchmark(batch_sizes=B_SIZES, dim=B_DIM, resident=B_RESIDENT,
                                                 repeats=B_REPEATS, min_ids=32_768, cluster=plain, overhead_calls=200)
    ps_pids += [plain.pid(i) for i in range(plain.num_ps)]
print(bench.table())
print(f"\ncpus: {bench.meta['cpus']}, load average during the run: {bench.meta['load_average']:.1f}")

# %% [markdown]
# A simple model of one call: a fixed cost $c$ (the round trip, pickling, waking threads)
# plus a cost $b$ per ID, so a batch of $n$ IDs takes $c + nb$ and the throughput is
# $n/(c + nb)$. Fitted on the smallest and the largest batch of the 1-PS lookups, $c/b$ is
# the batch size at which the fixed cost is half of the call.

# %%
def ms(key, op, n):
    return float(bench.get(key, op, n).ms_per_batch)


def rate(key, op, n):
    return float(bench.get(key, op, n).ids_per_s)


small, large = B_SIZES[0], B_SIZES[-1]
b_ms = (ms("remote_1", "lookup", large) - ms("remote_1", "lookup", small)) / (large - small)
c_ms = ms("remote_1", "lookup", small) - small * b_ms
half_batch = c_ms / b_ms
print(f"fixed cost c = {c_ms:.3f} ms, per ID b = {1e6 * b_ms:.1f} ns, c/b = {half_batch:,.0f} IDs")
print(f"1-ID lookups one at a time: {1e3 / bench.overhead['remote_lookup_1_ms']:,.0f} IDs/s through RPC, "
      f"{1e3 / bench.overhead['local_lookup_1_ms']:,.0f} IDs/s in-process")

# %% tags=["remove-cell"]
per_call = {f"bench_{key}_{op}_{n}_{unit}": value
            for key in mr.bench.remote.CONTESTANTS for op in ("lookup", "push") for n in B_SIZES
            for unit, value in (("mids", rate(key, op, n) / 1e6), ("ms", ms(key, op, n)))}
slowdowns = {f"bench_slowdown_{nps}_{op}_{n}": ms(f"remote_{nps}", op, n) / ms(f"sharded_{nps}", op, n)
             for nps in (1, 2) for op in ("lookup", "push") for n in (small, large)}
two_vs_one = rate("remote_2", "lookup", large) / rate("remote_1", "lookup", large)
mr.labs.glue_fields("bench_", bench.overhead, cast=float)
mr.labs.glue_many(
    {**per_call, **slowdowns},
    bench_sizes=", ".join(f"{n:,}" for n in B_SIZES), bench_small=small, bench_large=large, bench_resident=B_RESIDENT,
    bench_repeats=B_REPEATS, bench_dim=B_DIM, bench_cpus=int(bench.meta["cpus"]),
    bench_load=float(bench.meta["load_average"]),
    bench_rpc_vs_local_1=float(bench.overhead["remote_lookup_1_ms"] / bench.overhead["local_lookup_1_ms"]),
    bench_one_at_a_time_rate=float(1e3 / bench.overhead["remote_lookup_1_ms"]),
    bench_c_ms=float(c_ms), bench_b_ns=float(1e6 * b_ms), bench_half_batch=float(half_batch),
    bench_local_ns_per_id=1e6 * ms("sharded_1", "lookup", large) / large,
    bench_gain_lookup_1ps=rate("remote_1", "lookup", large) / rate("remote_1", "lookup", small),
    bench_2ps_vs_1ps_large=two_vs_one,
    bench_2ps_verdict="faster than" if two_vs_one > 1.05 else ("slower than" if two_vs_one < 0.95 else
                                                                "about as fast as"))

# %% [markdown]
# Throughput against batch size, on log scales. The dotted line is the fitted model
# $n/(c + nb)$ for the 1-PS lookups.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
styles = {"sharded_1": ("C0", "-", "o"), "sharded_2": ("C0", "--", "s"),
          "remote_1": ("C3", "-", "o"), "remote_2": ("C3", "--", "s")}
for ax, op in zip(axes, ("lookup", "push")):
    for key, label in mr.bench.remote.CONTESTANTS.items():
        color, ls, marker = styles[key]
        ax.plot(B_SIZES, [rate(key, op, n) for n in B_SIZES], color=color, ls=ls, marker=marker, label=label)
    if op == "lookup":
        grid = np.geomspace(small, large, 50)
        ax.plot(grid, grid / ((c_ms + grid * b_ms) / 1e3), color="0.4", ls=":", label="model n / (c + n b), 1 PS")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size (IDs per call)")
    ax.set_title(f"training {op}s" if op == "lookup" else "gradient pushes")
    ax.grid(True, which="both", alpha=0.3)
axes[0].set_ylabel("IDs per second")
axes[0].legend(fontsize=7, loc="lower right")
fig.tight_layout()
mr.labs.glue_figure("fig_throughput", fig)

# %% [markdown]
# ## Nothing left behind
#
# Both clusters are shut down. Their PS processes (the restarted `ps1` included) no longer
# exist; the killed one was waited for by `kill` itself.

# %%
# NBVAL_CHECK_OUTPUT
def running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


print("PS processes started here that are still running:", sum(running(pid) for pid in ps_pids))
