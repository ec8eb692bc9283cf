# %% [markdown]
# # Lab: training DeepFM on a collisionless table
#
# The companion lab of chapter 8. We check the FM identity on numbers; build a DeepFM whose
# embeddings live in two `NumbaTable`s; run the gradient check (training through the bridge
# equals training `nn.Embedding`); train for three epochs on the synthetic stream, with a
# progress bar, a loss curve, test AUC against the ceiling set by the true click
# probabilities, and the table's growth; count sparse against dense parameters and watch
# one step change a few hundred rows but nearly every dense weight; measure what summing
# instead of averaging the loss does to the sparse side; and time a training step against
# the same model on a hashed `nn.Embedding`.
#
# Every number the chapter quotes is glued from this notebook. Cells whose first line is
# `# NBVAL_CHECK_OUTPUT` print deterministic output that the notebook tests compare; the
# training curves and the timings are not among them.

# %%
import copy
import itertools
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.std import tqdm  # the text bar (the notebook bar would need ipywidgets)

import monolith_ref as mr

# The layers are small: one PyTorch thread is faster than two on a busy 2-core machine
# (TrainConfig pins it to 1 during train() for the same reason).
torch.set_num_threads(1)
print("monolith_ref", mr.__version__)

# %% [markdown]
# ## The FM identity, on numbers
#
# The second-order FM term of an example is the sum, over all pairs of fields, of the dot
# products of their embeddings. `fm_interaction` computes it as half of (square of the sum
# minus sum of the squares). Here it is against the brute-force pairwise sum, for a batch
# of 3 examples with 5 fields of dimension 4.

# %%
# NBVAL_CHECK_OUTPUT
rng = np.random.default_rng(0)
emb = torch.from_numpy(rng.standard_normal((3, 5, 4)).astype(np.float32))
fast = mr.models.fm_interaction(emb)
brute = sum((emb[:, i] * emb[:, j]).sum(-1) for i, j in itertools.combinations(range(5), 2))
print("fm_interaction:", [round(float(x), 4) for x in fast])
print("pairwise sum:  ", [round(float(x), 4) for x in brute])
print("equal (float32 tolerance):", torch.allclose(fast, brute, atol=1e-5))

# %% [markdown]
# ## The data and the model
#
# The synthetic stream of the package: 3 days of 100,000 events, 5,000 users, 2,000 items
# at the start and 300 new ones a day. Each event has five sparse fields (user, item,
# category, segment, hour of day) and two dense features. We train on days 0 and 1 and
# test on day 2. The stream also stores each event's true click probability, so we know
# the best AUC any model could reach on the test day.

# %%
STREAM = mr.StreamConfig(days=3, events_per_day=100_000, num_users=5000, num_items=2000,
                      new_items_per_day=300, seed=0)
events = mr.synthetic_stream(STREAM)
days = events.days()
train_ev, test_ev = mr.Events.concat(days[:2]), days[2]
train_ids = np.unique(train_ev.fields)
ceiling = mr.auc(test_ev.label, test_ev.prob)
print(events)
print(f"train {len(train_ev):,} events, test {len(test_ev):,}; click rate {train_ev.label.mean():.3f}")
print(f"distinct feature IDs in training: {train_ids.size:,}; ceiling AUC on the test day: {ceiling:.3f}")

mr.labs.glue_fields("stream_", STREAM, names={"users": "num_users", "items": "num_items",
                                              "new_items": "new_items_per_day"})
mr.labs.glue_many(
    stream_events=len(events), train_events=len(train_ev), test_events=len(test_ev),
    click_rate=float(train_ev.label.mean()), train_distinct_ids=int(train_ids.size), ceiling_auc=float(ceiling),
    field_names=", ".join(events.field_names), num_fields=len(events.field_names),
    num_dense=int(events.dense.shape[1]),
)

# %% [markdown]
# `build_deepfm_for(events, config)` makes the model for the stream's fields and dense
# features (`build_deepfm(num_fields, num_dense, config)` with the sizes read from the
# events), with the package's defaults: vectors of width 16 in one
# `NumbaTable` with Adagrad (learning rate 0.1, initial accumulator 1.0), first-order
# weights in a second `NumbaTable` (`dim=1`) with FTRL, and a head with hidden layers of 64
# and 32 units. Only the head holds PyTorch parameters.

# %%
# NBVAL_CHECK_OUTPUT
CFG = mr.ModelConfig()
model = mr.build_deepfm_for(events, CFG)
print(model)
dense_params = sum(p.numel() for p in model.head.parameters())
print("dense parameters (PyTorch, in the head):", dense_params)
print("torch parameters outside the head:", [tuple(p.shape) for n, p in model.named_parameters()
                                              if not n.startswith("head.")])
print("vector table:", CFG.vector_optimizer, "state per row:", model.vectors.table.config.state_width)
print("weight table:", CFG.weight_optimizer, "state per row:", model.weights.table.config.state_width)

# %% tags=["remove-cell"]
mr.labs.glue_fields("adagrad_", CFG.vector_optimizer, names={"lr": "lr", "init": "initial_accumulator"}, cast=float)
mr.labs.glue_fields("ftrl_", CFG.weight_optimizer, names={"alpha": "alpha", "beta": "beta",
                                                          "init": "initial_accumulator"}, cast=float)
mr.labs.glue_many(
    dim=CFG.dim, hidden=" and ".join(str(h) for h in CFG.hidden), dense_params=int(dense_params),
    vec_state_width=int(model.vectors.table.config.state_width),
    w_state_width=int(model.weights.table.config.state_width),
)

# %% [markdown]
# ## The gradient check
#
# The bridge must not change the mathematics. With plain SGD on both sides and no
# collisions, a DeepFM whose embeddings live in `NumbaTable`s and the same DeepFM on two
# `nn.Embedding`s (initialised with the very rows the tables would create) must compute the
# same losses and end with the same parameters. This is the test
# `tests/unit/test_torch_bridge.py::test_training_through_the_bridge_equals_nn_embedding`,
# on a tiny case: 3 fields of 20 IDs each, width 4, 6 steps of 16 examples.

# %%
# NBVAL_CHECK_OUTPUT
FIELDS, VOCAB, DIM, SEED, LR_SPARSE, LR_DENSE = 3, 20, 4, 3, 0.2, 0.05
g_rng = np.random.default_rng(0)
steps = [((g_rng.integers(0, VOCAB, (16, FIELDS)) + np.arange(FIELDS) * VOCAB).astype(np.uint64),
          torch.from_numpy(g_rng.integers(0, 2, 16).astype(np.float32))) for _ in range(6)]

ours = mr.DeepFM(
    mr.NumbaTable(mr.TableConfig(dim=DIM, seed=SEED, init_scale=0.1, optimizer=mr.SGD(lr=LR_SPARSE))),
    mr.NumbaTable(mr.TableConfig(dim=1, seed=SEED + 1, init_scale=0.1, optimizer=mr.SGD(lr=LR_SPARSE))),
    num_fields=FIELDS, hidden=(8,), seed=1)
all_ids = np.arange(FIELDS * VOCAB, dtype=np.uint64)
ref_vec, ref_w = torch.nn.Embedding(FIELDS * VOCAB, DIM), torch.nn.Embedding(FIELDS * VOCAB, 1)
with torch.no_grad():
    ref_vec.weight.copy_(torch.from_numpy(mr.initial_rows(SEED, all_ids, DIM, 0.1)))
    ref_w.weight.copy_(torch.from_numpy(mr.initial_rows(SEED + 1, all_ids, 1, 0.1)))
ref_head = copy.deepcopy(ours.head)

opt_ours = torch.optim.SGD(ours.head.parameters(), lr=LR_DENSE)
opt_ref = torch.optim.SGD([{"params": ref_head.parameters(), "lr": LR_DENSE},
                           {"params": [ref_vec.weight, ref_w.weight], "lr": LR_SPARSE}])
loss_fn = torch.nn.BCEWithLogitsLoss()
loss_diff = 0.0
for now, (ids, labels) in enumerate(steps):
    l1 = loss_fn(ours(ids, now), labels)
    opt_ours.zero_grad()
    l1.backward()
    opt_ours.step()
    ours.apply_sparse_gradients()

    idx = torch.from_numpy(ids.astype(np.int64))
    l2 = loss_fn(ref_head(ref_vec(idx), ref_w(idx)), labels)
    opt_ref.zero_grad()
    l2.backward()
    opt_ref.step()
    loss_diff = max(loss_diff, abs(float(l1.detach()) - float(l2.detach())))

seen = np.unique(np.concatenate([ids.reshape(-1) for ids, _ in steps]))
pos = torch.from_numpy(seen.astype(np.int64))
vec_diff = np.abs(ours.vectors.table.lookup(seen, 0, train=False) - ref_vec.weight.detach()[pos].numpy()).max()
w_diff = np.abs(ours.weights.table.lookup(seen, 0, train=False) - ref_w.weight.detach()[pos].numpy()).max()
head_diff = max(float((a - b).detach().abs().max()) for a, b in zip(ours.head.parameters(), ref_head.parameters()))
worst = max(loss_diff, float(vec_diff), float(w_diff), head_diff)
print(f"rows in our vector table: {len(ours.vectors.table)} (IDs seen: {seen.size}, nn.Embedding rows: {FIELDS * VOCAB})")
print("same losses and parameters (|difference| < 1e-6):", worst < 1e-6)
print("largest difference, rounded to 6 decimals:", round(worst, 6))

# %% tags=["remove-cell"]
mr.labs.glue_many(gc_steps=len(steps), gc_ids_seen=int(seen.size), gc_vocab=FIELDS * VOCAB, gc_worst=float(worst),
                  gc_equal="yes" if worst < 1e-6 else "no")

# %% [markdown]
# ## Training for three epochs
#
# `train(model, events, TrainConfig(epochs=3), test=...)` runs this loop; we write it out to
# record every step's loss, the vector table's size after every step, and the test AUC
# every 40 steps (on the first 20,000 test events; the full test day at each epoch's end).
# The loss is summed over the batch (`train_step`'s default); the reported loss is per
# example.

# %%
BATCH, EPOCHS, EVAL_EVERY, SMOOTH = 1024, 3, 40, 20
model = mr.build_deepfm_for(events, mr.ModelConfig())
opt = torch.optim.Adam(model.head.parameters(), lr=1e-3)
probe = test_ev[:20_000]
curve = {"loss": [], "rows": [], "auc_step": [], "auc": [], "epoch_auc": [], "epoch_logloss": []}
starts = range(0, len(train_ev), BATCH)
t0 = time.perf_counter()
step = 0
# one bar for the run; it redraws at most every 10 s, and once more at the end
bar = tqdm(total=EPOCHS * len(starts), desc="training", unit="step", mininterval=10, delay=1)
for epoch in range(1, EPOCHS + 1):
    for start in starts:
        step += 1
        curve["loss"].append(mr.train_step(model, opt, train_ev[start : start + BATCH]))
        curve["rows"].append(len(model.vectors.table))
        if step % EVAL_EVERY == 0:
            curve["auc_step"].append(step)
            curve["auc"].append(mr.evaluate(model, probe)["auc"])
        bar.update(1)
    metrics = mr.evaluate(model, test_ev)
    curve["epoch_auc"].append(metrics["auc"])
    curve["epoch_logloss"].append(metrics["logloss"])
    bar.set_postfix(epoch=epoch, test_auc=f"{metrics['auc']:.4f}", refresh=False)
bar.refresh()
bar.close()
train_seconds = time.perf_counter() - t0
for e in range(EPOCHS):
    print(f"epoch {e + 1}: train loss {np.mean(curve['loss'][e * len(starts):(e + 1) * len(starts)]):.4f}, "
          f"test AUC {curve['epoch_auc'][e]:.4f}, test log loss {curve['epoch_logloss'][e]:.4f}")
print(f"{step} steps in {train_seconds:.1f} s")

# %% tags=["remove-cell"]
per_epoch = {}
for e, (a, ll) in enumerate(zip(curve["epoch_auc"], curve["epoch_logloss"]), start=1):
    per_epoch |= {f"auc_epoch{e}": float(a), f"logloss_epoch{e}": float(ll)}
mr.labs.glue_many(
    per_epoch, epochs=EPOCHS, eval_every=EVAL_EVERY, probe_events=len(probe), smooth_steps=SMOOTH,
    adam_lr=float(opt.defaults["lr"]), steps_per_epoch=len(starts), train_seconds=float(train_seconds),
    train_rate=float(EPOCHS * len(train_ev) / train_seconds), final_auc=float(curve["epoch_auc"][-1]),
    gap_to_ceiling=float(ceiling - curve["epoch_auc"][-1]), loss_first_100=float(np.mean(curve["loss"][:100])),
    loss_last_epoch=float(np.mean(curve["loss"][-len(starts):])),
)

# %% [markdown]
# The curves: the loss per step (a moving average over 20 steps; the dotted lines mark the
# epochs), the test AUC against the ceiling, and the rows of the vector table.

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3.3))
steps_x = np.arange(1, step + 1)
smooth = np.convolve(curve["loss"], np.ones(SMOOTH) / SMOOTH, mode="valid")
axes[0].plot(steps_x, curve["loss"], color="0.8", lw=0.8, label="per step")
axes[0].plot(steps_x[SMOOTH - 1:], smooth, label=f"moving average ({SMOOTH} steps)")
axes[0].set_ylim(0.3, 0.7)
axes[0].set_ylabel("training log loss per example")
axes[1].plot(curve["auc_step"], curve["auc"], marker=".", label="test AUC (20,000 events)")
axes[1].plot(np.arange(1, EPOCHS + 1) * len(starts), curve["epoch_auc"], "o", label="test AUC (whole day)")
axes[1].axhline(ceiling, color="k", ls="--", lw=1, label="ceiling (true probabilities)")
axes[1].axhline(0.5, color="0.6", lw=0.8)
axes[1].set_ylim(0.45, 0.85)
axes[1].set_ylabel("AUC")
axes[2].plot(steps_x, curve["rows"])
axes[2].axhline(train_ids.size, color="k", ls="--", lw=1, label="distinct IDs in training")
axes[2].set_ylabel("rows in the vector table")
for ax in axes:
    for e in range(1, EPOCHS):
        ax.axvline(e * len(starts), color="0.7", ls=":", lw=1)
    ax.set_xlabel("training step (1,024 events each)")
    ax.legend(fontsize=7, loc="lower right")
fig.tight_layout()
mr.labs.glue_figure("fig_training", fig)

# %% [markdown]
# The table grew to exactly the number of distinct IDs in the training data: every ID met
# in a training lookup got a row (there is no filter and no TTL here), and the first-order
# weight table holds the same IDs. The head did not grow at all.

# %%
# NBVAL_CHECK_OUTPUT
print("rows in the vector table:", len(model.vectors.table))
print("rows in the weight table:", len(model.weights.table))
print("distinct IDs in the training events:", train_ids.size)
print("one row per ID, no more, no less:", len(model.vectors.table) == train_ids.size)
sparse_floats = len(model.vectors.table) * CFG.dim + len(model.weights.table)
print("sparse parameters:", sparse_floats, "; dense parameters:", dense_params)

# %% tags=["remove-cell"]
rows_per_field = {name: int(np.unique(train_ev.fields[:, j]).size) for j, name in enumerate(events.field_names)}
mr.labs.glue_fields("rows_", rows_per_field)
mr.labs.glue_many(
    rows_after=len(model.vectors.table), sparse_params=int(sparse_floats),
    sparse_to_dense=float(sparse_floats / dense_params),
    table_mib=float((model.vectors.table.memory_bytes() + model.weights.table.memory_bytes()) / 2**20),
)

# %% [markdown]
# ## One step: a few rows, every dense weight
#
# One more step, on a copy of the trained model, with the first 1,024 events of the test
# day, split into `train_step`'s parts so we can look between them. The forward pass
# inserts a row for each ID of the batch the table has not met yet; backward queues one
# gradient per ID occurrence; Adam then moves the head's weights, and `apply_sparse_gradients`
# sends the queued gradients to the two tables, whose optimizers change only the rows of
# the batch's IDs.

# %%
nxt = test_ev[:BATCH]
demo = copy.deepcopy(model)
demo_opt = torch.optim.Adam(demo.head.parameters(), lr=1e-3)
demo_opt.load_state_dict(opt.state_dict())
head_before = [p.detach().clone() for p in demo.head.parameters()]
rows_before = len(demo.vectors.table)

demo.train()
logits = demo(nxt.fields, int(nxt.time[-1]), torch.from_numpy(nxt.dense))
loss = torch.nn.BCEWithLogitsLoss(reduction="sum")(logits, torch.from_numpy(nxt.label))
rows_inserted = len(demo.vectors.table) - rows_before
table_before = demo.vectors.table.export()
demo_opt.zero_grad()
loss.backward()
queued = demo.vectors.pending
demo_opt.step()
applied = demo.apply_sparse_gradients()
table_after = demo.vectors.table.export()

moved_dense = sum(int((p.detach() != b).sum()) for p, b in zip(demo.head.parameters(), head_before))
moved_rows = int((table_after["embeddings"] != table_before["embeddings"]).any(axis=1).sum())
moved_state = int((table_after["opt_state"] != table_before["opt_state"]).any(axis=1).sum())
print(f"IDs in the batch: {nxt.fields.size}, distinct: {np.unique(nxt.fields).size}, "
      f"new to the table: {rows_inserted}")
print(f"gradients queued by backward for the vector table: {queued}; sent to both tables: {applied}")
print(f"vector rows changed by the sparse step: {moved_rows} of {len(demo.vectors.table)} "
      f"(Adagrad state changed: {moved_state})")
print(f"dense weights changed by Adam: {moved_dense} of {dense_params}")

# %% tags=["remove-cell"]
mr.labs.glue_many(
    batch_size=BATCH, step_ids=int(nxt.fields.size), step_distinct=int(np.unique(nxt.fields).size),
    step_inserted=int(rows_inserted), step_queued=int(queued), step_rows_moved=moved_rows,
    step_table_rows=len(demo.vectors.table), step_rows_share=float(moved_rows / len(demo.vectors.table)),
    step_dense_moved=moved_dense,
)

# %% [markdown]
# ## Summed or averaged loss
#
# `train_step` sums the loss over the batch. With a mean, every gradient is divided by the
# batch size, 1,024. Adam, on the dense side, normalises each weight's step by its own
# gradient scale, so it hardly notices; the tables' Adagrad starts its accumulator at 1.0,
# so a row's first steps are about `lr * gradient`, and a 1,024 times smaller gradient
# moves the row 1,024 times less. One pass over the training days with the mean, against
# the first epoch above:

# %%
mean_model = mr.build_deepfm_for(events, mr.ModelConfig())
mean_opt = torch.optim.Adam(mean_model.head.parameters(), lr=1e-3)
mean_loss = torch.nn.BCEWithLogitsLoss(reduction="mean")
for start in starts:
    mr.train_step(mean_model, mean_opt, train_ev[start : start + BATCH], loss_fn=mean_loss)
mean_auc = mr.evaluate(mean_model, test_ev)["auc"]
print(f"test AUC after one pass: summed loss {curve['epoch_auc'][0]:.4f}, mean loss {mean_auc:.4f}")

# %% tags=["remove-cell"]
mr.labs.glue_many(auc_sum_one_pass=float(curve["epoch_auc"][0]), auc_mean_one_pass=float(mean_auc))

# %% [markdown]
# ## How fast is a training step?
#
# `mr.bench.training.run_training_benchmark(size="small")` trains the same DeepFM head on
# three kinds of tables, each on the same batches of a larger synthetic stream: two
# `NumbaTable`s, two `ShardedTable`s (two shards each), and two hashed
# `nn.Embedding(sparse=True)` tables with as many rows as there are distinct IDs, trained
# with `torch.optim.Adagrad`. Each step is timed in four phases; PyTorch runs on one thread
# for all three. The full-size run is `python benchmarks/run_training.py`.

# %%
bench = mr.bench.training.run_training_benchmark(size="small", progress=False)
print(bench.table())

# %% tags=["remove-cell"]
full = mr.bench.training.TRAINING_BENCH_CONFIGS["full"]
b = bench.summary()
per_contestant = {}
for c in ("numba", "sharded", "hashed"):
    per_contestant |= {f"bench_rate_{c}": float(b["rates"][c]), f"bench_ratio_{c}": float(b["ratios"][c]),
                       f"bench_step_ms_{c}": float(b["step_ms"][c])}
    shares = bench.phase_shares(c)
    for ph, ms in b["phases_ms"][c].items():
        per_contestant |= {f"bench_{c}_{ph}_ms": float(ms), f"bench_{c}_{ph}_share": float(shares[ph])}
mr.labs.glue_fields("full_", full, names={"batch": "batch_size", "steps": "steps", "users": "num_users"})
mr.labs.glue_fields("bench_", bench.meta, names={"batch": "batch_size", "steps": "steps", "repeats": "repeats",
                                                 "events": "events", "distinct": "distinct_ids"}, cast=int)
mr.labs.glue_many(
    per_contestant, full_examples=full.batch_size * full.steps * (bench.meta["repeats"] + 1),
    bench_target=float(b["target"]), bench_sparse_lr=float(mr.bench.training.SPARSE_LR),
    bench_init_acc=float(mr.bench.training.SPARSE_INIT_ACC),
    bench_collision_rate=float(bench.meta["hashed_collision_rate"]),
    bench_same_losses="yes" if bench.meta["sharded_matches_numba"] else "no",
)

# %%
mr.labs.glue_figure("fig_bench", bench.plot())
