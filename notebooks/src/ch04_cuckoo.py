# %% [markdown]
# # Lab: cuckoo hashing
#
# The companion lab of chapter 4. We watch `monolith_ref`'s `CuckooMap` insert keys move by
# move, drawn from the map's own record of what it did; we measure the load factor at which
# plain two-table cuckoo hashing stops fitting keys, and how long the kick-out chains get on
# the way there; we grow a `CuckooTable` on a Zipf stream of IDs, check that it stays bit
# for bit identical to `DictTable`, attack it with keys that share both their slots, and
# compare what it costs in memory and time.
#
# Every number the chapter quotes is glued from this notebook. Cells whose first line is
# `# NBVAL_CHECK_OUTPUT` print deterministic output that the notebook tests compare.

# %%
import random

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

import monolith_ref as mr

SEED = 0
np.random.seed(SEED)
print("monolith_ref", mr.__version__)

# %% [markdown]
# ## 1. Two homes per key
#
# A `CuckooMap` has two tables of `capacity` slots each. `m.seeds()` gives the seeds of the
# two hash functions h0 and h1 of the current generation, and `m.slot(key, t)` is the one
# slot where `key` may live in table `t`. A lookup reads those two slots and nothing else.
#
# For the step-by-step picture we want a short sequence of keys, inserted into a tiny map
# (4 slots per table, chains of at most 6 writes), whose inserts show a kick-out chain of
# at least 3 kicks and then end in exactly one rehash, after a failed chain that wanders
# over at least 4 different slots and that no chain limit could have saved.
#
# When can a set of keys be placed at all? Think of the slots as the vertices of a graph
# and of each key as an edge between its two slots. Every key needs a slot of its own at
# one end of its edge, so a set of keys fits if and only if no connected piece of the
# graph has more edges (keys) than vertices (slots). A few lines of union-find check that.
# (This helper is a check for the lab, not part of the package.)

# %%
def placement_exists(m: mr.CuckooMap, keys) -> bool:
    """Can ``keys`` be placed at all under ``m``'s current h0, h1 (one key per slot)?"""
    cap = m.capacity
    parent = list(range(2 * cap))
    edges = [0] * (2 * cap)
    verts = [1] * (2 * cap)

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for k in keys:
        a, b = find(m.slot(k, 0)), find(cap + m.slot(k, 1))
        if a == b:
            edges[a] += 1
        else:
            parent[b] = a
            edges[a] += edges[b] + 1
            verts[a] += verts[b]
    return all(edges[r] <= verts[r] for r in range(2 * cap) if parent[r] == r)


# %% [markdown]
# The search: draw 5 two-digit keys from a seeded generator, insert them into a fresh map
# with `record` switched on, and keep the first sequence that behaves as wanted. This only
# *chooses* the keys; the moves we draw below are the ones the map records.

# %%
VIZ_CAPACITY, VIZ_KICKS, VIZ_SEED, VIZ_KEYS = 4, 6, 0, 5


def recorded_inserts(keys: list[int]) -> tuple[mr.CuckooMap, list[tuple[int, list]]]:
    """Insert ``keys`` into a fresh tiny map with recording on; the moves of each insert."""
    m = mr.CuckooMap(capacity=VIZ_CAPACITY, seed=VIZ_SEED, max_load=1.0, max_kicks=VIZ_KICKS)
    m.record = []
    per_insert = []
    for k in keys:
        start = len(m.record)
        m[k] = f"v{k}"
        per_insert.append((k, m.record[start:]))
    return m, per_insert


def kicks_of(moves) -> int:
    return sum(mv.kind == "kick" for mv in moves)


def failed_chain_slots(moves) -> int:
    """How many different slots the kicks of a failed insert wrote to (0 if it did not fail)."""
    if not any(mv.kind == "fail" for mv in moves):
        return 0
    end = next(i for i, mv in enumerate(moves) if mv.kind == "fail")
    return len({(mv.table, mv.slot) for mv in moves[:end] if mv.kind == "kick"})


search_rng = random.Random(SEED)
for attempt in range(1, 100_000):
    candidate = search_rng.sample(range(10, 100), VIZ_KEYS)
    m_try, per_try = recorded_inserts(candidate)
    rehashes_before_last = sum(mv.kind == "rehash" for _, moves in per_try[:-1] for mv in moves)
    last_rehashes = sum(mv.kind == "rehash" for mv in per_try[-1][1])
    if (rehashes_before_last == 0 and last_rehashes == 1 and m_try.capacity == VIZ_CAPACITY
            and max(kicks_of(moves) for _, moves in per_try[:-1]) >= 3
            and failed_chain_slots(per_try[-1][1]) >= 4
            and not placement_exists(mr.CuckooMap(capacity=VIZ_CAPACITY, seed=VIZ_SEED), candidate)):
        break
viz_keys = candidate
print(f"found after {attempt} candidate sequences: keys {viz_keys}")

# %%
# NBVAL_CHECK_OUTPUT
fresh = mr.CuckooMap(capacity=VIZ_CAPACITY, seed=VIZ_SEED, max_load=1.0, max_kicks=VIZ_KICKS)
seeds_before = fresh.seeds()
print(f"seeds of h0, h1: {seeds_before}; {VIZ_CAPACITY} slots per table")
print(f"{'key':>4} {'T0 slot h0(key)':>16} {'T1 slot h1(key)':>16}")
for k in viz_keys:
    print(f"{k:>4} {fresh.slot(k, 0):>16} {fresh.slot(k, 1):>16}")
print(f"a placement exists for the first {len(viz_keys) - 1} keys: {placement_exists(fresh, viz_keys[:-1])},"
      f" for all {len(viz_keys)}: {placement_exists(fresh, viz_keys)}")

# %% [markdown]
# Now the real inserts, with the map's record of every move. A `Move` is `place` (a key put
# into an empty slot), `kick` (a key put into an occupied slot, whose occupant must move on
# to its other home), `fail` (the chain reached `max_kicks` writes) or `rehash` (new seeds,
# every key inserted again).

# %%
# NBVAL_CHECK_OUTPUT
viz_map, viz_per_insert = recorded_inserts(viz_keys)


def describe(mv) -> str:
    if mv.kind == "place":
        return f"place {mv.key} in T{mv.table}[{mv.slot}]"
    if mv.kind == "kick":
        return f"put {mv.key} in T{mv.table}[{mv.slot}], evicting {mv.evicted}"
    if mv.kind == "fail":
        return f"fail: {mv.key} is left without a slot"
    return f"rehash: new seeds, {mv.capacity} slots per table"


for key, moves in viz_per_insert:
    print(f"insert {key}: {len(moves)} moves")
    for mv in moves:
        print("   ", describe(mv))
print("seeds after:", viz_map.seeds(), "| rehashes:", viz_map.rehashes, "| keys:", sorted(viz_map))
print("every key readable:", all(viz_map[k] == f"v{k}" for k in viz_keys))

# %% [markdown]
# ### The map itself, drawn live
#
# `monolith_ref.diagrams.cuckoo_diagram` draws a `CuckooMap` as it is: both tables slot by
# slot, read from `m.slots()`, and the kick-out chain of one insert, read from the moves it
# recorded (thick arrows, each labelled with the key that travels it). Here is the map right
# after the insert with the longest chain before the failure: the same keys, inserted again
# into a fresh map, up to that one. `as_markdown` hands the diagram to the book as a
# `{mermaid}` directive, drawn like every other diagram in it.

# %%
drawn_at = max(range(len(viz_keys) - 1), key=lambda i: kicks_of(viz_per_insert[i][1]))
drawn_map, drawn_inserts = recorded_inserts(viz_keys[: drawn_at + 1])
assert drawn_inserts[-1][1] == viz_per_insert[drawn_at][1], "the same moves as in the run above"
mr.diagrams.as_markdown(mr.diagrams.cuckoo_diagram(drawn_map, drawn_inserts[-1][1]))

# %% [markdown]
# ### Frame by frame
#
# We rebuild the two tables from the record alone, the way the unit test
# `test_recorded_moves_replay_to_the_same_slots` does: `place` and `kick` write their key
# into their slot, `rehash` starts over with empty tables. One frame per move up to the
# rehash; the reinsertion after it is shown as one final frame. The replayed final state
# must equal the map's real slots.

# %%
def replay_frames(record, capacity):
    """(tables, move, next_move) after each recorded move; tables rebuilt from the record."""
    tables = [[None] * capacity, [None] * capacity]
    frames = []
    for i, mv in enumerate(record):
        if mv.kind == "rehash":
            tables = [[None] * mv.capacity, [None] * mv.capacity]
        elif mv.kind in ("place", "kick"):
            tables[mv.table][mv.slot] = mv.key
        nxt = record[i + 1] if i + 1 < len(record) else None
        frames.append(([list(t) for t in tables], mv, nxt))
    return frames


frames = replay_frames(viz_map.record, VIZ_CAPACITY)
assert frames[-1][0] == viz_map.slots(), "the replayed record must rebuild the map's slots"
rehash_at = next(i for i, (_, mv, _) in enumerate(frames) if mv.kind == "rehash")
shown = frames[:rehash_at] + [frames[-1]]
insert_of = {}  # frame index -> the key being inserted
i = 0
for key, moves in viz_per_insert:
    for _ in moves:
        insert_of[i] = key
        i += 1
print(f"{len(viz_map.record)} recorded moves; {len(shown)} frames drawn; replay matches the map's slots")

# %%
COLORS = {"place": "#b7e4c7", "kick": "#ffd6a5", "rehash": "#cfe1ff"}
ROW_Y = {0: 1.5, 1: 0.0}  # T0 on top, T1 below, with room between them for the arrows
BOX = 0.8


def draw_frame(ax, tables, mv, nxt, title, after_rehash=False):
    """Draw both tables; colour the slot the move wrote; arrow the evicted key to its next slot."""
    cap = len(tables[0])
    for t in (0, 1):
        y = ROW_Y[t]
        ax.text(-0.2, y + BOX / 2, f"T{t}", ha="right", va="center", fontsize=10, fontweight="bold")
        for s in range(cap):
            key = tables[t][s]
            hot = mv.kind in ("place", "kick") and mv.table == t and mv.slot == s and not after_rehash
            if hot:
                face = COLORS[mv.kind]
            elif after_rehash and key is not None:
                face = COLORS["rehash"]
            else:
                face = "#f2f2f2" if key is None else "white"
            ax.add_patch(Rectangle((s, y), 0.9, BOX, facecolor=face, edgecolor="#333", lw=1.6 if hot else 0.8))
            if key is not None:
                ax.text(s + 0.45, y + BOX / 2, str(key), ha="center", va="center", fontsize=11,
                        fontweight="bold" if hot else "normal")
            if t == 1:
                ax.text(s + 0.45, -0.22, str(s), ha="center", va="center", fontsize=7, color="#777")
    if mv.kind == "kick" and nxt is not None and nxt.kind in ("place", "kick") and not after_rehash:
        # the evicted key travels to its slot in the other table: the next recorded move
        x0, x1 = mv.slot + 0.45, nxt.slot + 0.45
        y0 = ROW_Y[mv.table] + (0.0 if mv.table == 0 else BOX)
        y1 = ROW_Y[nxt.table] + (BOX if nxt.table == 1 else 0.0)
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "-|>", "color": "#c1121f", "lw": 1.8})
        ax.text((x0 + x1) / 2 + 0.1, (y0 + y1) / 2, str(mv.evicted), color="#c1121f", fontsize=10,
                fontweight="bold", ha="left", va="center",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
    if mv.kind == "fail":
        ax.text(cap + 0.15, (ROW_Y[0] + BOX) / 2 + 0.1, str(mv.key), color="white", fontsize=10,
                fontweight="bold", ha="left", va="center",
                bbox={"boxstyle": "round,pad=0.25", "fc": "#c1121f", "ec": "none"})
    ax.set_xlim(-0.6, cap + 0.75)
    ax.set_ylim(-0.4, ROW_Y[0] + BOX + 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=8.5, pad=3, color="#c1121f" if mv.kind == "fail" else "black")


def frame_title(n, mv):
    head = f"{n + 1}. inserting {insert_of[n]}"
    if mv.kind == "place":
        return f"{head}\n{mv.key} -> T{mv.table}[{mv.slot}] (empty)"
    if mv.kind == "kick":
        return f"{head}\n{mv.key} -> T{mv.table}[{mv.slot}], evicts {mv.evicted}"
    return f"{n + 1}. {VIZ_KICKS} writes, no free slot:\n{mv.key} is homeless"


ncols = 4
nrows = -(-len(shown) // ncols)
fig, axes = plt.subplots(nrows, ncols, figsize=(8.6, 1.75 * nrows))
for n, ax in enumerate(axes.flat):
    if n >= len(shown):
        ax.axis("off")
        continue
    tables, mv, nxt = shown[n]
    if n == len(shown) - 1:
        title = f"{n + 1}. rehash, seeds {viz_map.seeds()}:\nall {len(viz_map)} keys placed again"
        draw_frame(ax, tables, mv, nxt, title, after_rehash=True)
    else:
        draw_frame(ax, tables, mv, nxt, frame_title(n, mv))
fig.suptitle(f"Inserting {', '.join(map(str, viz_keys))}: {VIZ_CAPACITY} slots per table,"
             f" max_kicks = {VIZ_KICKS}", fontsize=11)
fig.tight_layout()
mr.labs.glue_figure("fig_steps", fig)

# %% tags=["remove-cell"]
# Hand the example's facts to the chapter: keys, the longest chain before the failure, the failure.
chain_key, chain_moves = max(viz_per_insert[:-1], key=lambda km: kicks_of(km[1]))
fail_key, fail_moves = viz_per_insert[-1]
fail_chain = fail_moves[: next(i for i, mv in enumerate(fail_moves) if mv.kind == "rehash")]


def story(moves) -> str:
    parts = []
    for mv in moves:
        if mv.kind == "kick":
            parts.append(f"{mv.key} takes T{mv.table}[{mv.slot}] from {mv.evicted}")
        elif mv.kind == "place":
            parts.append(f"{mv.key} lands in T{mv.table}[{mv.slot}], which was empty")
    return "; ".join(parts)


homes = {(0, fresh.slot(k, 0)) for k in viz_keys} | {(1, fresh.slot(k, 1)) for k in viz_keys}
mr.labs.glue_many(
    viz_capacity=VIZ_CAPACITY, viz_slots=2 * VIZ_CAPACITY, viz_max_kicks=VIZ_KICKS,
    viz_keys=", ".join(map(str, viz_keys)), viz_num_keys=len(viz_keys), viz_frames=len(shown),
    viz_moves=len(viz_map.record), viz_chain_key=chain_key, viz_chain_kicks=kicks_of(chain_moves),
    viz_chain_story=story(chain_moves), viz_fail_key=fail_key, viz_fail_keys_before=len(viz_keys) - 1,
    viz_fail_load=(len(viz_keys) - 1) / (2 * VIZ_CAPACITY), viz_fail_story=story(fail_chain),
    viz_fail_distinct_slots=failed_chain_slots(fail_moves), viz_fail_homeless=fail_chain[-1].key,
    viz_component_slots=len(homes), viz_seeds_before=str(seeds_before), viz_seeds_after=str(viz_map.seeds()),
    viz_rehash_moves=len(viz_map.record) - rehash_at - 1, viz_final_load=viz_map.load_factor(),
)
print("chain:", story(chain_moves))
print("failure:", story(fail_chain))

# %% [markdown]
# ## 2. Where plain cuckoo hashing stops: the load factor limit
#
# With `auto_rehash=False` and `max_load=1.0` the map never grows and never rehashes: when a
# chain hits `max_kicks`, the insert is undone and `CuckooInsertError` is raised. We fill
# maps of several sizes with random 64-bit keys until the first failure, for 8 seeds each,
# and note the load factor (keys / all slots) at that moment.
#
# Is a failure *genuine* (no placement of those keys exists at all), or did the chain just
# give up too early? `placement_exists` from section 1 answers that for the keys in the map
# plus the one that failed.

# %%
def fill_until_failure(capacity: int, seed: int, max_kicks: int, record_chains: bool = False):
    """Insert random keys until the first failed chain; (load at failure, genuine?, kicks per insert)."""
    key_rng = random.Random(1000 + seed)
    m = mr.CuckooMap(capacity=capacity, seed=seed, auto_rehash=False, max_load=1.0, max_kicks=max_kicks)
    if record_chains:
        m.record = []
    chains = []  # (load before the insert, kicks it took)
    while True:
        key = key_rng.getrandbits(64)
        load = m.load_factor()
        try:
            m[key] = None
        except mr.tables.CuckooInsertError:
            return m.load_factor(), placement_exists(m, list(m) + [key]), chains
        if record_chains:
            chains.append((load, kicks_of(m.record)))
            m.record.clear()


FAIL_SEEDS, FAIL_KICKS = 8, 500
CAPACITIES = [1_000, 5_000, 25_000]
fail_loads, fail_genuine = {}, {}
for cap in CAPACITIES:
    runs = [fill_until_failure(cap, s, FAIL_KICKS) for s in range(FAIL_SEEDS)]
    fail_loads[cap] = np.array([r[0] for r in runs])
    fail_genuine[cap] = sum(not r[1] for r in runs)

# %%
# NBVAL_CHECK_OUTPUT
print(f"first failed insert, {FAIL_SEEDS} seeds per size, max_kicks = {FAIL_KICKS}")
print(f"{'slots per table':>16} {'median load':>12} {'min':>7} {'max':>7} {'no placement existed':>22}")
for cap, lo in fail_loads.items():
    print(f"{cap:>16,} {np.median(lo):>12.3f} {lo.min():>7.3f} {lo.max():>7.3f}"
          f" {fail_genuine[cap]:>17} of {FAIL_SEEDS}")

# %% [markdown]
# Theory says that as the tables grow, two-table cuckoo hashing with one key per slot
# succeeds (with high probability) below a load of 1/2 and fails above it. Small tables
# scatter around that line; larger ones close in on it.

# %%
fig, ax = plt.subplots(figsize=(7, 3.6))
for i, cap in enumerate(CAPACITIES):
    lo = fail_loads[cap]
    ax.scatter(np.full(lo.size, i) + np.linspace(-0.12, 0.12, lo.size), lo, s=28, alpha=0.8,
               label="one seed" if i == 0 else None, color="C0")
    ax.plot([i - 0.22, i + 0.22], [np.median(lo)] * 2, color="C1", lw=2.5, label="median" if i == 0 else None)
ax.axhline(0.5, color="k", ls="--", lw=1, label="load 1/2 (large-table limit)")
ax.set_xticks(range(len(CAPACITIES)), [f"{c:,}" for c in CAPACITIES])
ax.set_xlabel("slots per table (two tables)")
ax.set_ylabel("load factor at the first failure")
ax.set_title(f"Two-table cuckoo hashing, one key per slot (max_kicks = {FAIL_KICKS})")
ax.legend(fontsize=8, loc="upper right")
ax.grid(alpha=0.3)
fig.tight_layout()
mr.labs.glue_figure("fig_failure_load", fig)

# %% [markdown]
# How much does the chain limit matter? With a short limit the map gives up on chains that
# would have found a free slot; the failure is then *not* genuine. Same experiment on
# 1,000 slots per table, varying `max_kicks`.

# %%
# NBVAL_CHECK_OUTPUT
SWEEP_CAP, SWEEP_KICKS = 1_000, [4, 16, 64, 256, 1024]
sweep = {}
print(f"{SWEEP_CAP:,} slots per table, {FAIL_SEEDS} seeds each")
print(f"{'max_kicks':>10} {'median load at failure':>23} {'no placement existed':>22}")
for kicks in SWEEP_KICKS:
    runs = [fill_until_failure(SWEEP_CAP, s, kicks) for s in range(FAIL_SEEDS)]
    sweep[kicks] = (float(np.median([r[0] for r in runs])), sum(not r[1] for r in runs))
    print(f"{kicks:>10} {sweep[kicks][0]:>23.3f} {sweep[kicks][1]:>17} of {FAIL_SEEDS}")

# %% [markdown]
# ### Chain length as the map fills
#
# The same fill, on 10,000 slots per table, now counting the kicks of every insert (from the
# record, cleared after each insert) and averaging them in bins of load factor.

# %%
CHAIN_CAP, CHAIN_SEEDS = 10_000, 4
chain_data = []
for s in range(CHAIN_SEEDS):
    chain_data += fill_until_failure(CHAIN_CAP, s, FAIL_KICKS, record_chains=True)[2]
loads_at = np.array([c[0] for c in chain_data])
kicks_at = np.array([c[1] for c in chain_data])
edges = np.arange(0.0, 0.5 + 1e-9, 0.025)
centers, mean_kicks, max_kicks_bin = [], [], []
for lo_edge, hi_edge in zip(edges[:-1], edges[1:]):
    sel = (loads_at >= lo_edge) & (loads_at < hi_edge)
    if sel.sum() >= 50:
        centers.append((lo_edge + hi_edge) / 2)
        mean_kicks.append(float(kicks_at[sel].mean()))
        max_kicks_bin.append(int(kicks_at[sel].max()))


def mean_kicks_between(lo: float, hi: float) -> float:
    sel = (loads_at >= lo) & (loads_at < hi)
    return float(kicks_at[sel].mean())


LOW, MID, HIGH = (0.0, 0.25), (0.40, 0.425), (0.475, 0.5)  # load ranges the chapter quotes
chain_low, chain_mid, chain_high = (mean_kicks_between(*r) for r in (LOW, MID, HIGH))
print(f"{kicks_at.size:,} inserts; mean kicks per insert: loads below {LOW[1]}: {chain_low:.2f},"
      f" {MID[0]}-{MID[1]}: {chain_mid:.2f}, {HIGH[0]}-{HIGH[1]}: {chain_high:.2f}")

fig, ax = plt.subplots(figsize=(7, 3.6))
ax.plot(centers, mean_kicks, "o-", label="mean kicks per insert")
ax.plot(centers, max_kicks_bin, "s:", color="C3", label="longest chain in the bin")
ax.axvline(0.45, color="grey", ls=":", lw=1)
ax.text(0.445, 0.03, "max_load = 0.45\n(the default)", ha="right", fontsize=8, color="grey")
ax.set_yscale("log")
ax.set_xlabel("load factor before the insert")
ax.set_ylabel("kicks")
ax.set_title(f"Kick-out chains as a map of {CHAIN_CAP:,} slots per table fills ({CHAIN_SEEDS} seeds)")
ax.legend(fontsize=8, loc="upper left")
ax.grid(alpha=0.3, which="both")
fig.tight_layout()
mr.labs.glue_figure("fig_chains", fig)

# %% tags=["remove-cell"]
mr.labs.glue_many(fail_seeds=FAIL_SEEDS, fail_kicks=FAIL_KICKS, sweep_cap=SWEEP_CAP)
for cap, name in zip(CAPACITIES, ["small", "mid", "large"]):
    loads = fail_loads[cap]
    mr.labs.glue_many({f"fail_cap_{name}": cap, f"fail_median_{name}": np.median(loads),
                       f"fail_min_{name}": loads.min(), f"fail_max_{name}": loads.max(),
                       f"fail_genuine_{name}": fail_genuine[cap]})
for kicks, (median_load, genuine) in sweep.items():
    mr.labs.glue_many({f"sweep_k{kicks}": kicks, f"sweep_median_k{kicks}": median_load,
                       f"sweep_genuine_k{kicks}": genuine})
mr.labs.glue_many(
    chain_cap=CHAIN_CAP, chain_seeds=CHAIN_SEEDS, chain_inserts=kicks_at.size, chain_longest=kicks_at.max(),
    chain_low=chain_low, chain_mid=chain_mid, chain_high=chain_high,
    chain_low_hi=LOW[1], chain_mid_lo=MID[0], chain_mid_hi=MID[1], chain_high_lo=HIGH[0],
)

# %% [markdown]
# ## 3. A `CuckooTable` growing on a Zipf stream
#
# `CuckooTable` is chapter 3's table with a `CuckooMap` in place of the dict. It starts with
# 64 slots per table and `max_load = 0.45`: before an insert would push the load above
# 0.45, the map doubles and rehashes. We feed it training lookups from a Zipf stream and
# read `stats()` as it grows. Every rehash either doubles the tables or keeps their size
# (only a failed chain at low load keeps it), so the number of doublings is
# log2(final slots / initial slots) and the rest of the rehashes kept the size.

# %%
STREAM_EVENTS, STREAM_VOCAB, STREAM_ALPHA, STREAM_BATCH, DIM = 50_000, 1_000_000, 1.1, 1_000, 16
stream = mr.zipf_ids(STREAM_EVENTS, STREAM_VOCAB, alpha=STREAM_ALPHA, seed=SEED)
config = mr.TableConfig(dim=DIM, seed=SEED)
cuckoo_table, dict_table = mr.CuckooTable(config), mr.DictTable(config)
initial_slots = cuckoo_table.stats()["capacity"]
history = []
for step, start in enumerate(range(0, STREAM_EVENTS, STREAM_BATCH)):
    batch = stream[start : start + STREAM_BATCH]
    cuckoo_table.lookup(batch, now=step)
    dict_table.lookup(batch, now=step)
    history.append(dict(cuckoo_table.stats(), events=start + batch.size))

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'events':>7} {'rows':>7} {'slots':>7} {'load':>6} {'rehashes':>9} {'longest chain':>14}")
for h in history[9::10]:
    print(f"{h['events']:>7,} {h['size']:>7,} {h['capacity']:>7,} {h['load_factor']:>6.3f}"
          f" {h['rehashes']:>9} {h['longest_chain']:>14}")
final = cuckoo_table.stats()
doublings = int(np.log2(final["capacity"] / initial_slots))
print(f"rehashes: {final['rehashes']} = {doublings} doublings + {final['rehashes'] - doublings} at the same size")
print("same rows as DictTable:", np.array_equal(cuckoo_table.export()["ids"], dict_table.export()["ids"]))

# %%
fig, ax = plt.subplots(figsize=(7, 3.6))
sizes = [h["size"] for h in history]
ax.plot(sizes, [h["load_factor"] for h in history], "o-", ms=3, label="load factor after each batch")
grew = [i for i in range(1, len(history)) if history[i]["capacity"] > history[i - 1]["capacity"]]
ax.plot([sizes[i] for i in grew], [history[i]["load_factor"] for i in grew], "v", color="C3", ms=8,
        label="a batch that doubled the tables")
ax.axhline(0.45, color="grey", ls="--", lw=1, label="max_load = 0.45")
ax.set_xscale("log")
ax.set_xlabel("rows in the table")
ax.set_ylabel("keys / slots")
ax.set_ylim(0, 0.5)
ax.set_title(f"CuckooTable on {STREAM_EVENTS:,} Zipf({STREAM_ALPHA}) events")
ax.legend(fontsize=8, loc="lower right")
ax.grid(alpha=0.3, which="both")
fig.tight_layout()
mr.labs.glue_figure("fig_growth", fig)

mr.labs.glue_many(stream_events=STREAM_EVENTS, stream_alpha=STREAM_ALPHA, stream_vocab=STREAM_VOCAB,
                  stream_initial_slots=initial_slots, stream_doublings=doublings,
                  stream_same_size_rehashes=final["rehashes"] - doublings)
mr.labs.glue_fields("stream_", final, names={"rows": "size", "slots": "capacity", "load": "load_factor",
                                             "rehashes": "rehashes", "longest_chain": "longest_chain"})

# %% [markdown]
# ### Bit-identical to `DictTable`
#
# The storage changed; the table must not. The same program (training and serving lookups
# on a Zipf stream, gradient steps with repeated IDs, time moving on, expiry) runs through
# a `DictTable` and a `CuckooTable` that starts tiny (2 slots per table, chains of at most
# 6 writes) so that it rehashes often. Every exported array must be equal.

# %%
# NBVAL_CHECK_OUTPUT
program_config = mr.TableConfig(dim=8, seed=1, ttl=40, optimizer=mr.SGD(lr=0.05))
oracle, tiny_cuckoo = mr.DictTable(program_config), mr.CuckooTable(program_config, capacity=2, max_kicks=6)
mr.labs.run_table_program([oracle, tiny_cuckoo], mr.zipf_ids(6_000, vocab=3_000, alpha=1.1, seed=7), 60,
                          grad_seed=7, time_step=5, expire_every=4, serve=10)
identical = mr.labs.compare_states(oracle.export(), tiny_cuckoo.export()).identical
print("rows:", len(oracle), "| cuckoo stats:", {k: round(v, 3) for k, v in tiny_cuckoo.stats().items()})
print("bit-identical exports:", identical)
mr.labs.glue_many(identical=identical, identical_rehashes=tiny_cuckoo.stats()["rehashes"],
                  identical_rows=len(oracle))

# %% [markdown]
# ## 4. Adversarial keys
#
# Three keys that share *both* slots have only two places to go between them: no placement
# exists, whatever the order of kicks. Anyone who knows the seeds can find such keys by
# trying keys until three land on the same pair `(h0(k), h1(k))`. The map's defence is the
# rehash: new seeds make new hash functions, under which the three keys are almost surely
# spread out.

# %%
# NBVAL_CHECK_OUTPUT
ADV_CAPACITY = 8
strict = mr.CuckooMap(capacity=ADV_CAPACITY, seed=1, max_load=1.0, auto_rehash=False)
adv_keys = mr.tables.cuckoo_table.colliding_keys(strict, 3)  # the package's brute-force search
adv_tried = adv_keys[-1] + 1  # keys 0, 1, 2, ... were tried until the third match
print(f"tried {adv_tried} keys; {adv_keys} all map to T0[{strict.slot(adv_keys[0], 0)}]"
      f" and T1[{strict.slot(adv_keys[0], 1)}]")

strict[adv_keys[0]], strict[adv_keys[1]] = "a", "b"
before = strict.slots()
try:
    strict[adv_keys[2]] = "c"
except mr.tables.CuckooInsertError as err:
    print("auto_rehash=False:", err)
print("  slots unchanged:", strict.slots() == before, "| keys:", sorted(strict))

m_adv = mr.CuckooMap(capacity=ADV_CAPACITY, seed=1, max_load=1.0)
m_adv.record = []
adv_seeds_before = m_adv.seeds()
for k, v in zip(adv_keys, "abc"):
    m_adv[k] = v
print("auto_rehash=True: seeds", adv_seeds_before, "->", m_adv.seeds(), "| rehashes:", m_adv.rehashes,
      "| slots per table:", m_adv.capacity)
print("  all three present with their values:", [m_adv[k] for k in adv_keys] == ["a", "b", "c"], "| len:", len(m_adv))
now_slots = m_adv.slots()
print("  where they live now:", {k: f"T{t}[{s}]" for t in (0, 1) for s, k in enumerate(now_slots[t]) if k is not None})

# %% tags=["remove-cell"]
mr.labs.glue_many(adv_keys=", ".join(map(str, adv_keys)), adv_tried=adv_tried, adv_capacity=ADV_CAPACITY,
                  adv_rehashes=m_adv.rehashes, adv_max_kicks=strict.max_kicks)

# %% [markdown]
# ## 5. What it costs: memory and speed
#
# `memory_bytes()` of both tables grown on the Zipf stream above, per row; and, as a second
# opinion, the bytes Python's allocator hands out while rows are inserted (`tracemalloc`).
# Sizes depend on the CPython and NumPy versions, so this output is not checked.

# %%
TRACED_ROWS = 6_000
traced_keys = np.arange(TRACED_ROWS, dtype=np.uint64) * np.uint64(7919) + np.uint64(2**40)
mem_cuckoo = cuckoo_table.memory_bytes() / len(cuckoo_table)
mem_dict = dict_table.memory_bytes() / len(dict_table)
traced_cuckoo = mr.labs.traced_bytes_per_row(mr.CuckooTable(config), traced_keys)
traced_dict = mr.labs.traced_bytes_per_row(mr.DictTable(config), traced_keys)
print(f"memory_bytes() per row: CuckooTable {mem_cuckoo:.0f}, DictTable {mem_dict:.0f}"
      f" (load factor of the cuckoo map: {cuckoo_table.load_factor():.3f})")
print(f"tracemalloc per row:    CuckooTable {traced_cuckoo:.0f}, DictTable {traced_dict:.0f}")
print(f"the embedding itself:   {DIM * 4} bytes")
mr.labs.glue_many(mem_cuckoo=mem_cuckoo, mem_dict=mem_dict, mem_traced_cuckoo=traced_cuckoo,
                  mem_traced_dict=traced_dict, mem_raw=DIM * 4, mem_dim=DIM, mem_traced_rows=TRACED_ROWS)

# %% [markdown]
# Most of a row is the same in both tables: the `Entry` object, its two NumPy arrays, its
# key. What differs is the index that finds the entries. For the cuckoo map that is two
# lists (keys and values) per table, 8 bytes per pointer, so 16 bytes per slot pair;
# CPython's dict, itself an open-addressing hash table, has its own compact layout and its
# own growth steps. Here both indexes are filled with the same random keys; we count the
# map's `memory_bytes()` without the key objects, and `sys.getsizeof` of the dict.

# %%
import sys

index_rng = random.Random(SEED)
index_map, index_dict = mr.CuckooMap(), {}
key_bytes, sizes_at, cuckoo_per_key, dict_per_key = 0, [], [], []
for n in range(1, 30_001):
    key = index_rng.getrandbits(64)
    index_map[key] = None
    index_dict[key] = None
    key_bytes += sys.getsizeof(key)
    if n % 100 == 0:
        sizes_at.append(n)
        cuckoo_per_key.append((index_map.memory_bytes() - key_bytes) / n)
        dict_per_key.append(sys.getsizeof(index_dict) / n)
cuckoo_per_key, dict_per_key = np.array(cuckoo_per_key), np.array(dict_per_key)
INDEX_FROM, INDEX_TO = 1_000, sizes_at[-1]
big = np.array(sizes_at) >= INDEX_FROM
print(f"index bytes per key for {INDEX_FROM:,} to {INDEX_TO:,} keys: CuckooMap {cuckoo_per_key[big].min():.0f}"
      f" to {cuckoo_per_key[big].max():.0f} (mean {cuckoo_per_key[big].mean():.0f}),"
      f" dict {dict_per_key[big].min():.0f} to {dict_per_key[big].max():.0f} (mean {dict_per_key[big].mean():.0f})")

fig, ax = plt.subplots(figsize=(7, 3.6))
ax.plot(sizes_at, cuckoo_per_key, label="CuckooMap slots (max_load 0.45)")
ax.plot(sizes_at, dict_per_key, label="CPython dict")
ax.set_xscale("log")
ax.set_xlabel("keys")
ax.set_ylabel("index bytes per key")
ax.set_title("The index alone, without keys and rows")
ax.legend(fontsize=8)
ax.grid(alpha=0.3, which="both")
fig.tight_layout()
mr.labs.glue_figure("fig_index_bytes", fig)
mr.labs.glue_many(index_from=INDEX_FROM, index_to=INDEX_TO)
for name, per_key in (("cuckoo", cuckoo_per_key[big]), ("dict", dict_per_key[big])):
    mr.labs.glue_many({f"index_{name}_min": per_key.min(), f"index_{name}_max": per_key.max(),
                       f"index_{name}_mean": per_key.mean()})

# %% [markdown]
# Speed of the bare maps: inserting and then reading the stream's distinct keys, `CuckooMap`
# against a plain `dict`, and training lookups of the whole stream on the two warm tables.
# Timings vary from run to run; only ratios (medians of a few rounds) go into the chapter,
# and no timing is checked.

# %%
distinct_keys = [int(k) for k in np.unique(stream)]


def fill_cuckoo():
    m = mr.CuckooMap()
    for k in distinct_keys:
        m[k] = k
    return m


def fill_dict():
    d = {}
    for k in distinct_keys:
        d[k] = k
    return d


filled_cuckoo, filled_dict = fill_cuckoo(), fill_dict()


def read_all(mapping):
    for k in distinct_keys:
        mapping[k]


slow_insert = mr.labs.median_ratio(fill_cuckoo, fill_dict)
slow_get = mr.labs.median_ratio(lambda: read_all(filled_cuckoo), lambda: read_all(filled_dict))
slow_table = mr.labs.median_ratio(lambda: cuckoo_table.lookup(stream, now=100),
                                  lambda: dict_table.lookup(stream, now=100))
print(f"CuckooMap vs dict, {len(distinct_keys):,} keys: inserts take {slow_insert:.0f} x the time,"
      f" reads {slow_get:.0f} x")
print(f"warm training lookups of {STREAM_EVENTS:,} IDs: CuckooTable takes {slow_table:.1f} x DictTable's time")
mr.labs.glue_many(speed_keys=len(distinct_keys), slow_insert=slow_insert, slow_get=slow_get, slow_table=slow_table)

# %% [markdown]
# ## Recap
#
# The numbers the chapter quotes, in one place (the timing ratios change from run to run).

# %%
print(f"step-by-step example: keys {viz_keys}, {len(viz_map.record)} moves, 1 rehash")
for cap in CAPACITIES:
    print(f"failure load, {cap:,} slots per table: median {np.median(fail_loads[cap]):.3f}"
          f" (range {fail_loads[cap].min():.3f}-{fail_loads[cap].max():.3f})")
print(f"Zipf stream: {final['size']:,} rows, {final['capacity']:,} slots, {final['rehashes']} rehashes,"
      f" longest chain {final['longest_chain']}")
print(f"bytes per row: CuckooTable {traced_cuckoo:.0f}, DictTable {traced_dict:.0f} (tracemalloc)")
print(f"CuckooMap vs dict: inserts {slow_insert:.0f} x slower, reads {slow_get:.0f} x slower")
