# %% [markdown]
# # Lab: filters and expiry
#
# The companion lab of chapter 5. On a seeded Zipf stream of IDs we count the long tail
# and what it would cost to give every ID a row; then we measure each admission filter in
# `monolith_ref.filters`: the exact occurrence threshold (rows kept and traffic served at
# thresholds 1, 2, 5 and 10), the count-min filter (false admissions against memory) and
# the probabilistic filter (admission curves against their formula). Last, on a stream
# whose vocabulary drifts over event time, we watch a table grow without a TTL and stay
# flat with one.
#
# Every number the chapter quotes is glued from this notebook. Cells whose first line is
# `# NBVAL_CHECK_OUTPUT` print deterministic output that the notebook tests compare.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

import monolith_ref as mr

print("monolith_ref", mr.__version__)

# %% [markdown]
# ## The long tail
#
# A stream of 200,000 events whose IDs follow a Zipf law with exponent 1.1 over a
# vocabulary of a million ranks (`zipf_ids` turns ranks into scattered 64-bit IDs). We
# count how often each distinct ID occurs, and how much of the *traffic* (events) each
# group of IDs accounts for.

# %%
TAIL_EVENTS, TAIL_VOCAB, TAIL_ALPHA, TAIL_SEED = 200_000, 1_000_000, 1.1, 5
stream = mr.zipf_ids(TAIL_EVENTS, TAIL_VOCAB, TAIL_ALPHA, seed=TAIL_SEED)
uniq, counts = np.unique(stream, return_counts=True)
true_count = dict(zip(uniq.tolist(), counts.tolist()))
distinct = uniq.size

mr.labs.glue_many(tail_events=TAIL_EVENTS, tail_vocab=TAIL_VOCAB, tail_alpha=TAIL_ALPHA, tail_distinct=distinct)

# %%
# NBVAL_CHECK_OUTPUT
buckets = [(1, 1), (2, 2), (3, 4), (5, 9), (10, 99), (100, 10**9)]
print(f"{distinct:,} distinct IDs in {TAIL_EVENTS:,} events")
print(f"{'seen':>10} {'IDs':>8} {'% of IDs':>9} {'% of traffic':>13}")
for lo, hi in buckets:
    mask = (counts >= lo) & (counts <= hi)
    label = f"{lo}" if lo == hi else (f"{lo}-{hi}" if hi < 10**9 else f">={lo}")
    print(f"{label:>10} {mask.sum():>8,} {mask.mean():>9.1%} {counts[mask].sum() / TAIL_EVENTS:>13.1%}")

once = counts == 1
mr.labs.glue_many(
    tail_once_ids=once.sum(), tail_once_share=once.mean(), tail_once_traffic=counts[once].sum() / TAIL_EVENTS,
    tail_lt5_share=(counts < 5).mean(), tail_lt5_traffic=counts[counts < 5].sum() / TAIL_EVENTS,
    tail_top_count=counts.max(), tail_ge100_ids=(counts >= 100).sum(),
    tail_ge100_traffic=counts[counts >= 100].sum() / TAIL_EVENTS,
)

# %% [markdown]
# What does the tail cost? A row's payload is its embedding plus its optimizer state:
# `rows x (dim + state width) x 4` bytes. For a production-like row we take `dim = 64`
# and an Adagrad accumulator of the same width (Adagrad arrives in chapter 6), so 512
# bytes a row, before any key, timestamp or hash-table overhead.

# %%
PAYLOAD_DIM, PAYLOAD_STATE = 64, 64
row_bytes = (PAYLOAD_DIM + PAYLOAD_STATE) * 4
payload_mib = {t: int((counts >= t).sum()) * row_bytes / 2**20 for t in (1, 2, 5, 10)}
mr.labs.glue_many({f"payload_mib_t{t}": mib for t, mib in payload_mib.items()},
                  payload_dim=PAYLOAD_DIM, payload_row_bytes=row_bytes)
print({t: round(m, 2) for t, m in payload_mib.items()}, "MiB of payload for the IDs seen >= t times")

# %%
fig, ax = plt.subplots(figsize=(6.4, 3.6))
xs = np.arange(len(buckets))
labels = [f"{lo}" if lo == hi else (f"{lo}-{hi}" if hi < 10**9 else f"≥{lo}") for lo, hi in buckets]
id_share = [((counts >= lo) & (counts <= hi)).mean() for lo, hi in buckets]
traffic_share = [counts[(counts >= lo) & (counts <= hi)].sum() / TAIL_EVENTS for lo, hi in buckets]
ax.bar(xs - 0.2, id_share, width=0.4, label="share of distinct IDs")
ax.bar(xs + 0.2, traffic_share, width=0.4, label="share of traffic (events)")
ax.set_xticks(xs, labels)
ax.set_xlabel("times an ID occurs in the stream")
ax.set_ylabel("share")
ax.set_title("The long tail: most IDs are rare, most traffic is not")
ax.legend()
fig.tight_layout()
mr.labs.glue_figure("fig_tail", fig)

# %% [markdown]
# ## The occurrence threshold
#
# Four `DictTable`s, each built with `TableConfig(filter=OccurrenceFilter(t))` for
# `t` = 1, 2, 5 and 10, read the same stream in batches of 1,000 training lookups (no
# TTL, plain SGD, `dim = 16`). A lookup that returns a zero row is an ID not admitted yet;
# the others are served by a real row.

# %%
THRESHOLDS = (1, 2, 5, 10)
TABLE_DIM, BATCH = 16, 1_000
occ = {}
for t in THRESHOLDS:
    table = mr.DictTable(mr.TableConfig(dim=TABLE_DIM, seed=0, filter=mr.OccurrenceFilter(t)))
    served = 0
    for step, start in enumerate(range(0, TAIL_EVENTS, BATCH)):
        rows = table.lookup(stream[start:start + BATCH], now=step)
        served += int(rows.any(axis=1).sum())
    expected_rows = int((counts >= t).sum())
    expected_served = int(np.maximum(counts - t + 1, 0).sum())  # an ID seen c >= t times reads c-t+1 rows
    assert len(table) == expected_rows and served == expected_served
    occ[t] = {"rows": len(table), "rows_share": len(table) / distinct, "served": served / TAIL_EVENTS,
              "zeros": 1 - served / TAIL_EVENTS, "pending": int(((counts >= 1) & (counts < t)).sum()),
              "mem": table.memory_bytes(), "mem_mib": table.memory_bytes() / 2**20}
mr.labs.glue_many(table_dim=TABLE_DIM, dict_bytes_per_row=occ[1]["mem"] / occ[1]["rows"])

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'threshold':>9} {'rows':>7} {'% of IDs':>9} {'traffic served':>15} {'pending IDs':>12}")
for t in THRESHOLDS:
    r = occ[t]
    print(f"{t:>9} {r['rows']:>7,} {r['rows'] / distinct:>9.1%} {r['served']:>15.1%} {r['pending']:>12,}")
mr.labs.glue_many({f"occ_{field}_t{t}": occ[t][field] for t in THRESHOLDS
                   for field in ("rows", "rows_share", "served", "zeros", "pending", "mem_mib")})

# %% [markdown]
# The `assert` above checks each table against what exact counting predicts: with
# threshold `t`, the rows are the IDs seen at least `t` times, and an ID seen `c >= t`
# times is served by a real row on `c - t + 1` of its lookups. The table's memory
# (`memory_bytes()`, which depends on CPython's object sizes, so it is not checked here)
# includes the filter's pending counts, which in pure Python are not cheap.

# %%
for t in THRESHOLDS:
    print(f"threshold {t:>2}: table memory {occ[t]['mem'] / 2**20:.1f} MiB for {occ[t]['rows']:,} rows"
          f" and {occ[t]['pending']:,} pending IDs")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
ax1.bar([str(t) for t in THRESHOLDS], [occ[t]["rows"] for t in THRESHOLDS], color="C0")
ax1.set_xlabel("occurrence threshold")
ax1.set_ylabel("rows in the table")
ax1.set_title("Rows kept")
served = [occ[t]["served"] for t in THRESHOLDS]
ax2.bar([str(t) for t in THRESHOLDS], served, color="C2", label="real row")
ax2.bar([str(t) for t in THRESHOLDS], [1 - s for s in served], bottom=served, color="C7", label="zeros")
ax2.set_xlabel("occurrence threshold")
ax2.set_ylabel("share of lookups")
ax2.set_title("Traffic served")
ax2.legend(loc="lower left")
fig.tight_layout()
mr.labs.glue_figure("fig_occurrence", fig)

# %% [markdown]
# ## How a table uses a filter
#
# A tiny example with `OccurrenceFilter(3)`: ID 7 reads zeros on its first two training
# lookups, and the gradients sent for it then are dropped (there is no row to update).
# The third lookup admits it with its initial row, untouched by those dropped gradients.
# A serving lookup never counts as an occurrence.

# %%
# NBVAL_CHECK_OUTPUT
tiny = mr.DictTable(mr.TableConfig(dim=2, seed=0, filter=mr.OccurrenceFilter(3)))
ones = np.ones((1, 2), dtype=np.float32)
print("serving lookup, t=0:", tiny.lookup([7], now=0, train=False), "rows:", len(tiny))
for now in (1, 2):
    row = tiny.lookup([7], now=now)
    tiny.apply_gradients([7], ones)
    print(f"training lookup, t={now}:", row, "in table:", 7 in tiny)
row = tiny.lookup([7], now=3)
fresh = mr.initial_rows(0, np.array([7], dtype=np.uint64), 2, 0.01)[0]
print("training lookup, t=3:", np.round(row, 5), "in table:", 7 in tiny)
print("the admitted row is the initial row (earlier gradients dropped):", bool(np.array_equal(row[0], fresh)))

# %% [markdown]
# ## The count-min filter: false admissions against memory
#
# A table asks its filter about each occurrence of an ID that has no row yet, and stops
# asking once the ID is admitted (`DictTable.lookup`). The helper below replays the
# stream through a filter in exactly that way, without building rows, and records each
# admitted ID's true occurrence number at the moment of admission. An admission while the
# true count is still below the threshold is a *false admission*.

# %%
# occurrence number of each event for its ID (1 for the first sighting, 2 for the second...)
order = np.argsort(stream, kind="stable")
sorted_ids = stream[order]
group_start = np.r_[0, np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1]
run_lengths = np.diff(np.r_[group_start, sorted_ids.size])
occurrence = np.empty(stream.size, dtype=np.int64)
occurrence[order] = np.arange(stream.size) - np.repeat(group_start, run_lengths) + 1


def replay(filter_config, ids, seed=0):
    """Ask a fresh filter about each occurrence of a not-yet-admitted ID, as a table does.

    Returns the filter's state and ``{id: true occurrence number when admitted}``.
    """
    state = filter_config.build(seed)
    admitted = {}
    for i, key in enumerate(ids.tolist()):
        if key in admitted:
            continue
        if state.admit(key, 0):
            admitted[key] = int(occurrence[i])
    return state, admitted


CM_THRESHOLD, CM_DEPTH = 5, 4
CM_WIDTHS = (2**10, 2**12, 2**14, 2**16)
never_reach = uniq[counts < CM_THRESHOLD]  # IDs an exact filter never admits
exact_state, exact_admitted = replay(mr.OccurrenceFilter(CM_THRESHOLD), stream)
assert set(exact_admitted) == set(uniq[counts >= CM_THRESHOLD].tolist())
assert all(c == CM_THRESHOLD for c in exact_admitted.values())

cm = {}
for width in CM_WIDTHS:
    sketch, admitted = replay(mr.CountMinFilter(CM_THRESHOLD, width=width, depth=CM_DEPTH), stream)
    early = sum(1 for c in admitted.values() if c < CM_THRESHOLD)
    false_tail = sum(1 for k in never_reach.tolist() if k in admitted)
    assert min(admitted.values()) >= 1 and all(  # never late: admitted by its threshold-th sighting
        admitted[k] <= CM_THRESHOLD for k in uniq[counts >= CM_THRESHOLD].tolist())
    # never under-counts: the IDs never admitted had every sighting counted
    rest = np.array([k for k in uniq.tolist() if k not in admitted], dtype=np.uint64)
    over = sketch.estimate_many(rest) - np.array([true_count[k] for k in rest.tolist()])
    assert (over >= 0).all()
    cm[width] = {"mem": int(sketch.counters.nbytes), "mem_kib": sketch.counters.nbytes / 1024, "rows": len(admitted),
                 "early": early,
                 "far": false_tail / never_reach.size, "early_share": early / len(admitted)}

# %%
# NBVAL_CHECK_OUTPUT
print(f"threshold {CM_THRESHOLD}, depth {CM_DEPTH}; {never_reach.size:,} IDs are seen fewer than {CM_THRESHOLD} times")
print(f"{'filter':>16} {'memory (bytes)':>15} {'rows':>7} {'false-admission rate':>21} {'early admissions':>17}")
for width in CM_WIDTHS:
    r = cm[width]
    print(f"{'count-min 2^' + str(int(math.log2(width))):>16} {r['mem']:>15,} {r['rows']:>7,} {r['far']:>21.2%}"
          f" {r['early']:>17,}")
print(f"{'exact counts':>16} {'(see below)':>15} {len(exact_admitted):>7,} {0:>21.2%} {0:>17,}")

mr.labs.glue_many(cm_threshold=CM_THRESHOLD, cm_depth=CM_DEPTH, cm_counter_max=int(mr.filters.CountMinSketch.MAX),
                  cm_never_reach=never_reach.size, cm_exact_rows=len(exact_admitted))
for width in CM_WIDTHS:
    k = int(math.log2(width))
    mr.labs.glue_many({f"cm_{field}_w{k}": cm[width][field] for field in ("far", "mem", "mem_kib", "rows")})
mr.labs.glue_many(
    exact_filter_bytes=exact_state.memory_bytes(), exact_filter_mib=exact_state.memory_bytes() / 2**20,
    exact_pending=len(exact_state), exact_vs_cm16=exact_state.memory_bytes() / cm[2**16]["mem"],
    exact_key_kib=len(exact_state) * 8 / 1024,  # 8-byte keys alone, no counts or index
)

# %%
print(f"exact filter: {exact_state.memory_bytes():,} bytes (memory_bytes(), CPython object sizes)"
      f" for {len(exact_state):,} pending IDs")

# %% [markdown]
# The asserts check the sketch's two promises on this stream: it never admits an ID later
# than its threshold-th sighting, and for the IDs it never admitted (every sighting was
# counted), `estimate_many` is never below the true count.

# %%
fig, ax = plt.subplots(figsize=(6.4, 3.8))
mems = [cm[w]["mem"] for w in CM_WIDTHS]
ax.plot(mems, [cm[w]["far"] for w in CM_WIDTHS], "o-", label=f"count-min, depth {CM_DEPTH}")
for w in CM_WIDTHS:
    ax.annotate(f"width $2^{{{int(math.log2(w))}}}$", (cm[w]["mem"], cm[w]["far"]), textcoords="offset points",
                xytext=(8, 2), fontsize=8)
ax.axvline(exact_state.memory_bytes(), color="C3", ls="--", label="exact counts (Python dict): 0 false admissions")
ax.set_xscale("log")
ax.set_xlabel("filter memory (bytes)")
ax.set_ylabel("false-admission rate")
ax.set_ylim(-0.05, 1.1)
ax.set_title(f"Count-min filter, threshold {CM_THRESHOLD}: false admissions vs memory")
ax.legend(fontsize=8, loc="upper right")
fig.tight_layout()
mr.labs.glue_figure("fig_countmin", fig)

# %% [markdown]
# ## The probabilistic filter: admission curves
#
# `ProbabilisticFilter` keeps no per-ID state: each sighting of a new ID is admitted with
# a fixed probability `p`, so after `c` sightings an ID is in with probability
# `1 - (1 - p)**c`. We show 4,000 IDs to each filter up to 20 times each (stopping once an
# ID is admitted, as a table would) and compare the admitted fraction after `c` sightings
# with that formula, in the two modes.

# %%
PROB_IDS, PROB_MAX_SIGHTINGS = 4_000, 20
PROB_THRESHOLDS = (2, 5, 10)
curves = {}
for mode in ("equal", "proportional"):
    for t in PROB_THRESHOLDS:
        spec = mr.ProbabilisticFilter(t, mode=mode)
        admitter = spec.build(seed=2024)
        admitted_after = np.full(PROB_IDS, PROB_MAX_SIGHTINGS + 1)
        for key in range(PROB_IDS):
            for c in range(1, PROB_MAX_SIGHTINGS + 1):
                if admitter.admit(key, 0):
                    admitted_after[key] = c
                    break
        c_axis = np.arange(1, PROB_MAX_SIGHTINGS + 1)
        measured = (admitted_after[None, :] <= c_axis[:, None]).mean(axis=1)
        formula = 1 - (1 - spec.probability) ** c_axis
        curves[mode, t] = (spec.probability, measured, formula, admitter.memory_bytes())
mr.labs.glue_many(prob_ids=PROB_IDS, prob_max_sightings=PROB_MAX_SIGHTINGS, prob_state_bytes=curves["equal", 5][3])

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'mode':>12} {'T':>3} {'p':>6} {'admitted by c=T':>16} {'formula':>8} {'max |meas-formula|':>19}")
for (mode, t), (p, measured, formula, _) in curves.items():
    gap = np.abs(measured - formula).max()
    print(f"{mode:>12} {t:>3} {p:>6.3f} {measured[t - 1]:>16.3f} {formula[t - 1]:>8.3f} {gap:>19.3f}")
for (mode, t), (p, measured, formula, _) in curves.items():
    mr.labs.glue_many({f"prob_p_{mode}_t{t}": p, f"prob_meas_{mode}_t{t}": measured[t - 1],
                       f"prob_formula_{mode}_t{t}": formula[t - 1]})
prob_gap = max(np.abs(m - f).max() for _, m, f, _ in curves.values())
mr.labs.glue_many(prob_max_gap=prob_gap)
assert all(abs(mr.filters.equal_probability(t) - curves["equal", t][0]) == 0 for t in PROB_THRESHOLDS)

# %%
fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8), sharey=True)
for ax, mode in zip(axes, ("equal", "proportional")):
    for i, t in enumerate(PROB_THRESHOLDS):
        p, measured, formula, _ = curves[mode, t]
        c_axis = np.arange(1, PROB_MAX_SIGHTINGS + 1)
        ax.plot(c_axis, formula, color=f"C{i}", lw=1.5, label=f"T={t}: 1-(1-p)^c, p={p:.3f}")
        ax.plot(c_axis, measured, "o", color=f"C{i}", ms=3.5)
        ax.plot([t], [formula[t - 1]], "kx", ms=7)
    ax.axhline(0.95, color="grey", ls=":", lw=1)
    ax.set_xlabel("sightings c")
    ax.set_title(f'mode="{mode}"')
    ax.legend(fontsize=8, loc="lower right")
axes[0].set_ylabel("share of IDs admitted")
fig.suptitle("Probabilistic filter: measured (dots) vs formula (lines); x marks c = T")
fig.tight_layout()
mr.labs.glue_figure("fig_probabilistic", fig)

# %% [markdown]
# ## Expiry on a churning stream
#
# Popularity in a real stream drifts: new items appear, are popular for a while, and
# fade. We build such a stream from a Zipf law over a *window* of 20,000 items that slides
# forward in event time: at time `s` the item of rank `r` is item number
# `10 * s + 20,000 - r`, so the newest item is the most popular and each item sinks
# through the ranks until it leaves the window. Items become sparse 64-bit IDs with
# `mix64`. 100,000 events arrive at 20 per second of event time (about 83 minutes), read
# in batches of 2,000 (100 seconds each), with `expire(now)` after every batch.

# %%
CHURN_EVENTS, CHURN_RATE, CHURN_WINDOW, CHURN_ALPHA = 100_000, 20, 20_000, 1.1
CHURN_DRIFT, CHURN_SEED, CHURN_BATCH = 10, 11, 2_000
rng = np.random.default_rng(CHURN_SEED)
ranks = rng.choice(CHURN_WINDOW, size=CHURN_EVENTS, p=mr.zipf_probabilities(CHURN_WINDOW, CHURN_ALPHA))
seconds = np.arange(CHURN_EVENTS) // CHURN_RATE
item = seconds * CHURN_DRIFT + CHURN_WINDOW - 1 - ranks  # rank 0 is the newest item
churn = mr.hashing.mix64(item.astype(np.uint64), CHURN_SEED)
churn_distinct = int(np.unique(churn).size)
print(f"{churn_distinct:,} distinct IDs over {seconds[-1] + 1:,} s of event time")

# %%
TTL_SHORT, TTL_LONG, LRU_CAPACITY = 300, 900, 6_000
setups = {"no TTL": (None, None), f"TTL {TTL_SHORT} s": (TTL_SHORT, None),
          f"TTL {TTL_LONG} s": (TTL_LONG, None), f"LRU cap {LRU_CAPACITY:,}": (None, LRU_CAPACITY)}
batch_times = seconds[::CHURN_BATCH]
sizes = {}
for name, (ttl, cap) in setups.items():
    table = mr.DictTable(mr.TableConfig(dim=TABLE_DIM, seed=0, ttl=ttl))
    trace = []
    for start, now in zip(range(0, CHURN_EVENTS, CHURN_BATCH), batch_times.tolist()):
        table.lookup(churn[start:start + CHURN_BATCH], now=now)
        table.expire(now)
        if cap is not None:
            table.evict_lru(cap)
        trace.append(len(table))
        if ttl is not None:  # the table holds exactly the IDs seen in the last `ttl` seconds
            first = np.searchsorted(seconds, batch_times[batch_times >= now - ttl][0])
            assert len(table) == np.unique(churn[first:start + CHURN_BATCH]).size
    sizes[name] = np.array(trace)

# %%
# NBVAL_CHECK_OUTPUT
checkpoints = [len(batch_times) // 4 - 1, len(batch_times) // 2 - 1, len(batch_times) - 1]
print(f"{'table':>16} " + " ".join(f"{'t=' + str(batch_times[i] // 60) + ' min':>10}" for i in checkpoints))
for name, trace in sizes.items():
    print(f"{name:>16} " + " ".join(f"{trace[i]:>10,}" for i in checkpoints))
half = len(batch_times) // 2
for key, name in (("nottl", "no TTL"), ("ttl_short", f"TTL {TTL_SHORT} s"), ("ttl_long", f"TTL {TTL_LONG} s"),
                  ("lru", f"LRU cap {LRU_CAPACITY:,}")):
    trace = sizes[name]
    mr.labs.glue_many({f"churn_rows_{key}_end": trace[-1], f"churn_rows_{key}_half": trace[half - 1],
                       f"churn_rows_{key}_mean2": trace[half:].mean()})
ttl_flat = sizes[f"TTL {TTL_LONG} s"][half:]
mr.labs.glue_many(
    churn_events=CHURN_EVENTS, churn_rate=CHURN_RATE, churn_window=CHURN_WINDOW, churn_drift=CHURN_DRIFT,
    churn_batch=CHURN_BATCH, churn_batch_seconds=CHURN_BATCH // CHURN_RATE,
    churn_minutes=int(CHURN_EVENTS / CHURN_RATE / 60), churn_distinct=churn_distinct,
    ttl_short=TTL_SHORT, ttl_long=TTL_LONG, lru_capacity=LRU_CAPACITY,
    churn_half_minutes=batch_times[half - 1] // 60, churn_end_minutes=batch_times[-1] // 60,
    churn_ttl_long_spread=(ttl_flat.max() - ttl_flat.min()) / ttl_flat.mean(),
)

# %%
fig, ax = plt.subplots(figsize=(6.8, 4))
minutes = batch_times / 60
for (name, trace), style in zip(sizes.items(), ("-", "-", "-", "--")):
    label = name + (" (extension, not in the paper)" if name.startswith("LRU") else "")
    ax.plot(minutes, trace, style, label=label)
ax.set(xlabel="event time (minutes)", ylabel="rows in the table",
       title="A churning stream: table size with and without expiry")
ax.legend(fontsize=8)
fig.tight_layout()
mr.labs.glue_figure("fig_churn", fig)

# %% [markdown]
# The assert inside the loop checks the TTL tables exactly: after `expire(now)`, a table
# holds precisely the distinct IDs of the batches looked up in the last `ttl` seconds.
#
# ## The numbers at a glance
#
# The headline measurements of this lab, in one table.

# %%
# NBVAL_CHECK_OUTPUT
print("Occurrence threshold on the Zipf stream")
for t in THRESHOLDS:
    print(f"  threshold {t:>2}: {occ[t]['rows']:>6,} rows ({occ[t]['rows'] / distinct:.1%} of IDs),"
          f" {occ[t]['served']:.1%} of lookups served by a row")
print(f"Count-min filter (threshold {CM_THRESHOLD}, depth {CM_DEPTH}): false-admission rate")
for width in CM_WIDTHS:
    print(f"  width 2^{int(math.log2(width)):<2} ({cm[width]['mem']:>7,} bytes): {cm[width]['far']:.2%}")
print("  exact counts: 0.00%")
print("Table size on the churning stream (rows)")
for name, trace in sizes.items():
    print(f"  {name:>14}: at {batch_times[half - 1] // 60} min {trace[half - 1]:>6,}, at {batch_times[-1] // 60} min"
          f" {trace[-1]:>6,}")
