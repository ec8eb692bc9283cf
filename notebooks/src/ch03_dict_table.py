# %% [markdown]
# # Lab: the pure-Python table
#
# The companion lab of chapter 3. We run the blog post's mock `CollisionlessEmbedding`
# beside `monolith_ref`'s `DictTable`, show concretely where the mock goes wrong, check
# that `DictTable` is bit-for-bit reproducible, and measure three things: how the table
# grows on a skewed (Zipf) stream of IDs with and without a TTL, how many bytes a row
# costs in pure Python, and how fast lookups are.
#
# Every number the chapter quotes is glued from this notebook. Cells whose first line is
# `# NBVAL_CHECK_OUTPUT` print deterministic output that the notebook tests compare.

# %%
import matplotlib.pyplot as plt
import numpy as np

import monolith_ref as mr

np.random.seed(0)  # the mock draws from NumPy's global generator
rng = np.random.default_rng(0)  # everything else in this lab
print("monolith_ref", mr.__version__)

# %% [markdown]
# ## The blog post's mock, for comparison
#
# The mock is not part of the table API of `monolith_ref`. The package keeps one faithful
# copy of it, as a benchmark peer in `monolith_ref.bench.peers` (chapter 6 measures it),
# and we import that copy here, so that we can run it. The copy of the post we work from
# lost its indentation; we read the `last_seen` line as part of the "new ID" branch, next
# to the allocation it sits under (the chapter discusses the other reading).

# %%
import inspect

CollisionlessEmbedding = mr.bench.peers.CollisionlessEmbedding
print(inspect.getsource(CollisionlessEmbedding.lookup))


# %% [markdown]
# ## Problem 1: a row is not a function of its ID
#
# The mock draws each new row from NumPy's global random generator. Even with the
# generator seeded, the row an ID gets depends on how many rows were drawn before it:
# two copies of the table (say, one for training and one for serving) that meet the same
# IDs in a different order disagree. `DictTable` computes a new row from `(seed, id)`
# alone, so the order does not matter.

# %%
# NBVAL_CHECK_OUTPUT
np.random.seed(0)
copy_a, copy_b = CollisionlessEmbedding(dim=4), CollisionlessEmbedding(dim=4)
rows_a = copy_a.lookup([1, 2], now=0)
rows_b = copy_b.lookup([2, 1], now=0)
mock_same_row = bool(np.array_equal(rows_a[0], rows_b[1]))
print("mock:      ID 1 has the same row in both copies:", mock_same_row)

config = mr.TableConfig(dim=4, seed=0)
table_a, table_b = mr.DictTable(config), mr.DictTable(config)
out_a = table_a.lookup([1, 2], now=0)
out_b = table_b.lookup([2, 1], now=0)
dict_same_row = bool(np.array_equal(out_a[0], out_b[1]))
print("DictTable: ID 1 has the same row in both copies:", dict_same_row)
recipe = mr.initial_rows(0, np.array([1], dtype=np.uint64), 4, 0.01)[0]
print("DictTable row of ID 1 == initial_rows(seed=0, id=1):", bool(np.array_equal(out_a[0], recipe)))
print("initial_rows(seed=0, id=1) =", np.round(recipe, 6))
mr.labs.glue_many(mock_same_row=mock_same_row, dict_same_row=dict_same_row)

# %% [markdown]
# ## Problem 2: a serving lookup inserts rows
#
# The mock has one kind of lookup. A serving replica that used it would add a row for
# every unknown ID it is asked about. `DictTable.lookup(..., train=False)` never inserts
# and never refreshes: unknown IDs read zeros and the table is unchanged.

# %%
# NBVAL_CHECK_OUTPUT
trained_ids = list(range(100))
serving_ids = list(range(100, 150))  # IDs the trainer has never seen

mock = CollisionlessEmbedding(dim=4)
mock.lookup(trained_ids, now=0)
mock_rows_before = len(mock.table)
mock.lookup(serving_ids, now=1)  # a "serving" request: the mock has no other kind
mock_rows_after = len(mock.table)
print(f"mock:      {mock_rows_before} rows -> {mock_rows_after} rows after serving {len(serving_ids)} unknown IDs")

table = mr.DictTable(mr.TableConfig(dim=4, seed=0))
table.lookup(trained_ids, now=0)
table.pop_touched()
before = len(table)
served = table.lookup(serving_ids, now=1, train=False)
print(f"DictTable: {before} rows -> {len(table)} rows; unknown IDs read zeros: {not served.any()};"
      f" touched keys: {table.touched_ids().size}")
mr.labs.glue_many(serving_unknown=len(serving_ids), mock_rows_before_serving=mock_rows_before,
                  mock_rows_after_serving=mock_rows_after)

# %% [markdown]
# ## Problem 3: a hot ID expires
#
# With `last_seen` set only when a row is created, a row's age is counted from its birth,
# not from its last use. Below, ID 7 is looked up every 10 seconds, yet the mock expires
# it once 60 seconds have passed since its first lookup. `DictTable` refreshes the
# last-seen time on every training lookup, so a row in use stays.

# %%
# NBVAL_CHECK_OUTPUT
hot_times = list(range(0, 101, 10))  # ID 7 is looked up at t = 0, 10, ..., 100

mock = CollisionlessEmbedding(dim=4, ttl_seconds=60)
table = mr.DictTable(mr.TableConfig(dim=4, seed=0, ttl=60))
for t in hot_times:
    mock.lookup([7], now=t)
    table.lookup([7], now=t)
mock.expire(now=100)
removed = table.expire(now=100)
print(f"ID 7 looked up {len(hot_times)} times, the last at t=100; expire(now=100) with ttl=60:")
print("  mock:      ID 7 still present:", 7 in mock.table)
print("  DictTable: ID 7 still present:", 7 in table, f"(rows removed: {removed})")
mr.labs.glue_many(hot_lookups=len(hot_times))

# %% [markdown]
# ## Problem 4: repeated IDs, missing IDs, and bad input
#
# The mock's `update` takes one step per occurrence of an ID. For plain SGD that is the
# same arithmetic as one step with the summed gradient (up to rounding); for an optimizer
# with per-row state it is not. Here is Adagrad's update for one scalar weight, written
# out (the package's Adagrad arrives in chapter 6), with the gradient 1.0 seen twice:

# %%
# NBVAL_CHECK_OUTPUT
lr, acc0, g = 0.1, 1.0, 1.0  # accumulator starts at 1.0, as in Monolith's default for vectors


def adagrad_step(w, acc, grad):
    acc = acc + grad * grad
    return w - lr * grad / np.sqrt(acc), acc


w_two, acc_two = adagrad_step(*adagrad_step(0.0, acc0, g), g)  # the mock's way: two steps
w_one, acc_one = adagrad_step(0.0, acc0, 2 * g)  # summed gradient, one step
print(f"two steps:          w = {w_two:.4f}, accumulator = {acc_two:.1f}")
print(f"one summed step:    w = {w_one:.4f}, accumulator = {acc_one:.1f}")
mr.labs.glue_many(adagrad_two_steps_w=float(w_two), adagrad_one_step_w=float(w_one),
                  adagrad_two_steps_acc=float(acc_two), adagrad_one_step_acc=float(acc_one))

# %% [markdown]
# `DictTable.apply_gradients` sums the gradients of a repeated ID (in batch order) and
# takes one optimizer step; a gradient for an ID without a row is dropped. The mock raises
# `KeyError` on an ID that has no row, for instance one that just expired:

# %%
# NBVAL_CHECK_OUTPUT
g2 = rng.normal(size=(3, 4)).astype(np.float32)

mock = CollisionlessEmbedding(dim=4)
mock.lookup([5], now=0)
try:
    mock.update([5, 5, 999], g2)
except KeyError as exc:
    print("mock.update raised KeyError for ID", exc)

config = mr.TableConfig(dim=4, seed=0, optimizer=mr.SGD(lr=0.5))
t1, t2 = mr.DictTable(config), mr.DictTable(config)
t1.lookup([5], now=0)
t2.lookup([5], now=0)
t1.apply_gradients([5, 5, 999], g2)  # repeated ID 5, absent ID 999
t2.apply_gradients([5], (g2[0] + g2[1])[None, :])  # one step with the sum
print("DictTable: repeated ID == one summed step:", np.array_equal(t1.lookup([5], 0), t2.lookup([5], 0)))
print("DictTable: absent ID 999 got no row:", 999 not in t1)

# %% [markdown]
# The mock also takes any key Python can hash. Negative, fractional and NaN IDs become
# rows, and a NaN gradient silently turns a row into NaN. `DictTable` refuses each of them
# with a `ValueError` that says what is wrong, and a refused call changes nothing.

# %%
# NBVAL_CHECK_OUTPUT
mock = CollisionlessEmbedding(dim=4)
mock.lookup([-1, 2.5, float("nan")], now=0)
mock.lookup([3], now=0)
mock.update([3], np.array([[np.nan, 0.0, 0.0, 0.0]]))
print(f"mock: accepted {len(mock.table)} rows; row of ID 3 is finite: {bool(np.isfinite(mock.table[3]).all())}")

table = mr.DictTable(mr.TableConfig(dim=4, seed=0))
table.lookup([3], now=0)
before = table.export()
for call in (
    lambda: table.lookup([-1], now=0),
    lambda: table.lookup(np.array([2.5]), now=0),
    lambda: table.lookup(np.array([np.nan]), now=0),
    lambda: table.apply_gradients([3], np.array([[np.nan, 0.0, 0.0, 0.0]])),
    lambda: table.lookup([3], now=1.5),
):
    try:
        call()
    except ValueError as exc:
        print(f"DictTable: {type(exc).__name__}: {exc}")
after = table.export()
print("DictTable unchanged:", mr.labs.compare_states(before, after).identical)

# %% [markdown]
# ## DictTable, piece by piece
#
# An exported state is a dict of NumPy arrays sorted by ID: the embeddings, the optimizer
# state segment beside each row (width 0 for SGD) and the last-seen times.

# %%
# NBVAL_CHECK_OUTPUT
table = mr.DictTable(mr.TableConfig(dim=3, seed=0, ttl=100))
table.lookup([30, 10, 20], now=7)
table.lookup([20], now=9)  # refresh ID 20
state = table.export()
for key, value in state.items():
    shown = np.round(value, 6) if value.dtype.kind == "f" else value
    print(f"{key:10s} {str(value.dtype):8s} {str(value.shape):8s}", shown.tolist())

# %% [markdown]
# Touched keys: every key whose entry changed (inserted, updated, refreshed or removed)
# since the last hand-off. `pop_touched` returns them and starts a new round; this is what
# delta sync will ship to serving in chapter 10. The expiry boundary: a row unseen for
# exactly `ttl` seconds stays; one second more and it goes.

# %%
# NBVAL_CHECK_OUTPUT
table = mr.DictTable(mr.TableConfig(dim=3, seed=0, ttl=100))
table.lookup([1, 2, 3], now=1000)
print("after inserting 1, 2, 3:        ", table.pop_touched().tolist())
table.apply_gradients([2], np.ones((1, 3), dtype=np.float32))
table.lookup([3], now=1050)
print("after updating 2, refreshing 3: ", table.pop_touched().tolist())
table.lookup([1, 2, 3, 4], now=1060, train=False)
print("after a serving lookup:         ", table.pop_touched().tolist())
print("expire(1100) removes", table.expire(1100), "rows  (ID 1 unseen for exactly ttl = 100 s)")
print("expire(1101) removes", table.expire(1101), "rows  (IDs 1 and 2 unseen for 101 s)")
print("after expiry:                   ", table.pop_touched().tolist(), "| left:", table.export()["ids"].tolist())

# %% [markdown]
# ## Bit-identical by construction
#
# Two tables built from the same config and given the same operations (training and
# serving lookups on a Zipf stream, gradient steps with repeated IDs, time moving forward,
# expiry) end in exactly the same state. The conformance suite relies on this to compare
# every faster table with `DictTable`.

# %%
# NBVAL_CHECK_OUTPUT
PROGRAM_BATCHES = 40


def run_program(seed: int = 7) -> mr.DictTable:
    """A fresh table after the program: 40 steps 5 s apart, each a training lookup of a batch,
    a serving lookup of 10 of its IDs and seeded gradients, with expiry every 4th step."""
    table = mr.DictTable(mr.TableConfig(dim=8, seed=1, ttl=30, optimizer=mr.SGD(lr=0.05)))
    stream = mr.zipf_ids(4_000, vocab=2_000, alpha=1.1, seed=seed)
    mr.labs.run_table_program([table], stream, PROGRAM_BATCHES, grad_seed=seed, time_step=5, expire_every=4,
                              serve=10)
    return table


first, second = run_program(), run_program()
bit_identical = mr.labs.compare_states(first.export(), second.export()).identical
print("rows:", len(first), "| identical states:", bit_identical)
print("checksum of the embeddings:", round(float(first.export()["embeddings"].astype(np.float64).sum()), 4))
mr.labs.glue_many(determinism_equal=bit_identical, determinism_ops=PROGRAM_BATCHES)

# %% [markdown]
# ## Growth on a Zipf stream, with and without a TTL
#
# A stream of events draws IDs from a Zipf law over a large vocabulary: a few IDs are
# very frequent, most are rare. Events arrive at a steady rate of event time; every batch
# is a training lookup at the batch's time, followed by `expire`. Without a TTL the table
# keeps every ID it has ever seen; with one, it settles where the IDs seen within the last
# TTL seconds are. For a stationary stream that level can be predicted: an ID with
# probability $p$ appears among $W$ events with probability $1-(1-p)^W$.

# %%
NUM_EVENTS, VOCAB, ALPHA = 150_000, 1_000_000, 1.1
BATCH, RATE, TTL, DIM = 1_000, 100, 300, 16  # events per batch, events per second, seconds
SECONDS_PER_BATCH = BATCH // RATE

stream = mr.zipf_ids(NUM_EVENTS, VOCAB, alpha=ALPHA, seed=0)
forever = mr.DictTable(mr.TableConfig(dim=DIM, seed=0))
with_ttl = mr.DictTable(mr.TableConfig(dim=DIM, seed=0, ttl=TTL))
events_seen, rows_forever, rows_ttl = [], [], []
for step, start in enumerate(range(0, NUM_EVENTS, BATCH)):
    batch = stream[start : start + BATCH]
    now = step * SECONDS_PER_BATCH
    forever.lookup(batch, now=now)
    with_ttl.lookup(batch, now=now)
    with_ttl.expire(now)
    forever.pop_touched(), with_ttl.pop_touched()  # hand-offs, as a sync loop would
    events_seen.append(start + batch.size)
    rows_forever.append(len(forever))
    rows_ttl.append(len(with_ttl))

# Predictions from the Zipf probabilities (ranks map one-to-one to IDs).
probs = mr.zipf_probabilities(VOCAB, ALPHA)
log_miss = np.log1p(-probs)


def expected_distinct(n_events: int) -> float:
    return float(-np.expm1(n_events * log_miss).sum())


window_events = (TTL // SECONDS_PER_BATCH + 1) * BATCH  # batches with now - t <= TTL survive
plateau_measured = float(np.mean(rows_ttl[len(rows_ttl) // 2 :]))
plateau_predicted = expected_distinct(window_events)
checkpoints = events_seen[::20] + [events_seen[-1]]
predicted_forever = [expected_distinct(n) for n in checkpoints]

print(f"{NUM_EVENTS:,} events, {len(np.unique(stream)):,} distinct IDs")
print(f"no TTL:   {rows_forever[-1]:,} rows at the end (expected {predicted_forever[-1]:,.0f})")
print(f"TTL {TTL}s: {plateau_measured:,.0f} rows on average over the second half (expected {plateau_predicted:,.0f})")

mr.labs.glue_many(
    zipf_events=NUM_EVENTS, zipf_vocab=VOCAB, zipf_alpha=ALPHA, stream_rate=RATE, stream_batch=BATCH,
    stream_seconds=NUM_EVENTS // RATE, ttl_seconds=TTL, growth_dim=DIM,
    rows_no_ttl=rows_forever[-1], rows_no_ttl_predicted=predicted_forever[-1], window_events=window_events,
    rows_ttl_plateau=plateau_measured, rows_ttl_predicted=plateau_predicted,
    plateau_rel_err=abs(plateau_measured - plateau_predicted) / plateau_predicted,
)

# %%
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(events_seen, rows_forever, label="DictTable, no TTL")
ax.plot(events_seen, rows_ttl, label=f"DictTable, TTL = {TTL} s")
ax.plot(checkpoints, predicted_forever, "k:", label="expected distinct IDs seen")
ax.axhline(plateau_predicted, color="grey", linestyle="--", label="expected level with TTL")
ax.set_xlabel(f"events (at {RATE} events per second of event time)")
ax.set_ylabel("rows in the table")
ax.set_title(f"Zipf({ALPHA}) IDs from a vocabulary of {VOCAB:,}")
ax.legend(loc="upper left")
ax.grid(alpha=0.3)
fig.tight_layout()
mr.labs.glue_figure("fig_growth", fig)

# %% [markdown]
# ## What a row costs in pure Python
#
# `DictTable.memory_bytes` adds up CPython's sizes of the dict, each key, each `Entry`
# object with its attribute dict, its two NumPy arrays and its last-seen integer. As a
# second opinion we ask `tracemalloc`, which counts the bytes Python's allocator hands out
# while rows are inserted (NumPy reports its array buffers to it too). The embedding
# itself is only `dim * 4` bytes. These sizes depend on the CPython and NumPy versions,
# so the output of this cell is not checked.

# %%
def traced_bytes_per_row(dim: int, rows: int = 2_000) -> float:
    """Bytes the allocator hands out per row while a fresh table inserts ``rows`` new IDs
    (of the size real IDs have)."""
    keys = np.arange(rows, dtype=np.uint64) + np.uint64(2**40)
    return mr.labs.traced_bytes_per_row(mr.DictTable(mr.TableConfig(dim=dim, seed=0)), keys)


estimated_per_row = forever.memory_bytes() / len(forever)
raw_row = DIM * 4
traced_per_row = traced_bytes_per_row(DIM)
print(f"dim={DIM}: memory_bytes() says {estimated_per_row:.0f} bytes per row, tracemalloc measures"
      f" {traced_per_row:.0f}; the embedding is {raw_row} bytes")
mr.labs.glue_many(mem_bytes_per_row=estimated_per_row, mem_traced_per_row=traced_per_row, mem_raw_bytes=raw_row,
                  mem_overhead_ratio=traced_per_row / raw_row)

dims = [4, 16, 64, 256]
per_row = [traced_bytes_per_row(dim) for dim in dims]
for dim, b in zip(dims, per_row):
    print(f"dim {dim:4d}: {b:6.0f} bytes per row, embedding {4 * dim:5d} bytes, ratio {b / (4 * dim):5.1f}")
overheads = [b - 4 * d for d, b in zip(dims, per_row)]
mr.labs.glue_many(mem_overhead_bytes=float(np.median(overheads)), mem_dim_large=dims[-1],
                  mem_ratio_dim_large=per_row[-1] / (4 * dims[-1]))

fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(dims, per_row, "o-", label="DictTable, bytes per row (tracemalloc)")
ax.plot(dims, [4 * d for d in dims], "s--", label="the embedding alone (dim x 4 bytes)")
ax.set_xscale("log", base=2)
ax.set_yscale("log", base=2)
ax.set_xticks(dims, [str(d) for d in dims])
ax.set_yticks([16, 64, 256, 1024, 2048], ["16", "64", "256", "1024", "2048"])
ax.set_xlabel("embedding dim")
ax.set_ylabel("bytes per row")
ax.set_title("Per-row Python overhead dominates small rows")
ax.legend()
ax.grid(alpha=0.3, which="both")
fig.tight_layout()
mr.labs.glue_figure("fig_memory", fig)

# %% [markdown]
# ## Lookup speed: DictTable vs the mock
#
# Both loop over IDs in Python. We time lookups of 20,000 Zipf IDs on tables that already
# hold them (warm), and inserts of 10,000 new IDs into empty tables. The contenders take
# turns, and we keep the median of the per-round ratios. Timings vary from machine to
# machine and run to run, so only ratios go into the chapter, and no timing is checked. The
# mock gets a list of Python ints (its signature); `DictTable` gets a `uint64` array (its
# natural input).

# %%
warm_ids = mr.zipf_ids(20_000, VOCAB, alpha=ALPHA, seed=1)
warm_list = warm_ids.tolist()
np.random.seed(1)
mock = CollisionlessEmbedding(dim=DIM)
mock.lookup(warm_list, now=0)
table = mr.DictTable(mr.TableConfig(dim=DIM, seed=0, ttl=TTL))
table.lookup(warm_ids, now=0)

# The contenders take turns, so that a busy machine slows all of them alike.
warm = mr.labs.timed_rounds(7, mock=lambda: mock.lookup(warm_list, now=1),
                            train=lambda: table.lookup(warm_ids, now=1),
                            serve=lambda: table.lookup(warm_ids, now=1, train=False))
speed_train = float(np.median(warm["mock"] / warm["train"]))
speed_serve = float(np.median(warm["mock"] / warm["serve"]))

new_ids = np.arange(10_000, dtype=np.uint64) * np.uint64(7919) + np.uint64(12345)
new_list = new_ids.tolist()
insert_slowdown = mr.labs.median_ratio(lambda: mr.DictTable(mr.TableConfig(dim=DIM, seed=0)).lookup(new_ids, now=0),
                                       lambda: CollisionlessEmbedding(dim=DIM).lookup(new_list, now=0))
print(f"warm lookups, DictTable rate / mock rate: training {speed_train:.2f}, serving {speed_serve:.2f}")
print(f"inserts: DictTable takes {insert_slowdown:.1f} x the mock's time")
mr.labs.glue_many(speed_train_vs_mock=speed_train, speed_serve_vs_mock=speed_serve,
                  insert_slowdown=insert_slowdown)

# %% [markdown]
# ## Recap
#
# The numbers the chapter quotes, in one place (the timing ratios change from run to run).

# %%
print(f"Zipf stream: {NUM_EVENTS:,} events; no TTL {rows_forever[-1]:,} rows;"
      f" TTL {TTL} s: {plateau_measured:,.0f} rows (predicted {plateau_predicted:,.0f})")
print(f"bytes per row at dim {DIM}: {traced_per_row:.0f} measured, {estimated_per_row:.0f} by memory_bytes(),"
      f" embedding {raw_row}")
print(f"DictTable vs mock: warm training lookups {speed_train:.2f} x the rate,"
      f" serving {speed_serve:.2f} x, inserts {insert_slowdown:.1f} x the time")
