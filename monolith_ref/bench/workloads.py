"""The benchmark's workloads: the keys, batches and gradients every contestant is fed.

Four workloads, all generated from one seed before any clock starts:

* **hits**: serving lookups of random resident keys (uniform over the resident set);
* **train**: a training-style stream. Each batch is mostly Zipf-distributed resident IDs,
  plus a slice of IDs the table has never seen (``new_fraction``) and a slice of the
  previous batch's new IDs seen for the second time (``repeat_fraction``). Without a
  filter the new IDs are the misses; with ``OccurrenceFilter(2)`` the new IDs are counted
  and the second sightings are admitted. Batches follow one another in time, so every
  contestant sees the same sequence;
* **apply**: ``apply_gradients`` with Adagrad on the stream's IDs (repeated IDs included);
* **expire**: a sweep that removes about a tenth of the resident rows (those loaded at one
  time and not seen since).

A workload is cut into ``repeats + 1`` chunks; chunk 0 warms up (JIT, caches) and is not
timed. Sizes: ``"full"`` (1M resident IDs), ``"small"`` (the lab notebook's run),
``"smoke"`` (the test suite's). See: book/ch06_numba.md
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..data import zipf_probabilities
from ..hashing import mix64

__all__ = ["TableBenchConfig", "TABLE_BENCH_CONFIGS", "Batch", "Workloads", "make_workloads", "EXPIRE_TTL",
           "LOAD_GROUPS"]

#: The TTL every contestant gets: far longer than the stream, so only the sweeps expire rows.
EXPIRE_TTL = 1_000_000
#: Resident keys are loaded at times 0..LOAD_GROUPS-1, a tenth at each.
LOAD_GROUPS = 10
#: Training batches happen at time STREAM_T0 + batch number.
STREAM_T0 = 1_000


@dataclass(frozen=True)
class TableBenchConfig:
    """How big a run is. See: book/ch06_numba.md

    ``n_resident`` IDs are loaded before timing; a hits chunk looks up ``n_hits`` of them in
    one call; ``stream`` maps a training batch size to the batches per chunk; an apply chunk
    is ``apply_batches`` stream batches of size ``apply_size`` (default: the largest);
    ``dict_table``: also run the pure-Python ``DictTable``; ``kernel_times``: measure
    first-call vs warm-call times.
    """

    n_resident: int
    n_hits: int
    stream: dict[int, int]
    apply_batches: int
    dict_table: bool
    kernel_times: bool
    apply_size: int | None = None  # batch size of the apply workload (default: the largest)
    new_fraction: float = 0.06
    repeat_fraction: float = 0.02
    zipf_alpha: float = 1.1


TABLE_BENCH_CONFIGS: dict[str, TableBenchConfig] = {
    "full": TableBenchConfig(1_000_000, 1_000_000, {4096: 64, 65536: 8}, apply_batches=8, dict_table=False,
                             kernel_times=True),
    "small": TableBenchConfig(50_000, 20_000, {4096: 3, 65536: 1}, apply_batches=3, dict_table=False,
                              kernel_times=False, apply_size=4096),
    "smoke": TableBenchConfig(2_000, 2_000, {256: 3, 1024: 2}, apply_batches=2, dict_table=True,
                              kernel_times=False),
}


@dataclass
class Batch:
    """One training batch: the IDs, their rows in the ceiling's layout, and its time. See: book/ch06_numba.md"""

    ids: np.ndarray
    rows: np.ndarray
    now: int
    new: int  # IDs never seen before
    repeats: int  # second sightings of the previous batch's new IDs


@dataclass
class Workloads:
    """Everything the contestants are fed (one seed). See: book/ch06_numba.md

    ``resident``: the resident keys, row ``i`` of the ceiling's layout holding key ``i``;
    ``load_time``: when each was last seen; ``fresh``: every new ID the streams bring, in
    the order they first appear (rows ``n_resident + j`` of the ceiling's layout).
    ``hits[c]``, ``hit_rows[c]``: chunk ``c`` of the hits workload. ``stream[b][c]``: the
    batches of chunk ``c`` at batch size ``b``. ``expire_now[c]``: the time of sweep ``c``.
    """

    config: TableBenchConfig
    repeats: int
    resident: np.ndarray
    load_time: np.ndarray
    fresh: np.ndarray
    hits: list[np.ndarray]
    hit_rows: list[np.ndarray]
    stream: dict[int, list[list[Batch]]]
    expire_now: list[int]
    seed: int
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def capacity(self) -> int:
        """Rows every arena needs: the resident keys plus every new ID of the streams."""
        return int(self.resident.shape[0] + self.fresh.shape[0])

    @property
    def apply_size(self) -> int:
        return self.config.apply_size or max(self.stream)

    def apply_chunks(self) -> list[list[Batch]]:
        """The apply workload: stream batches (of ``apply_size``) again, IDs now resident."""
        return [chunk[: self.config.apply_batches] for chunk in self.stream[self.apply_size]]

    def grads(self, dim: int) -> list[np.ndarray]:
        """One float32 gradient array per batch position of an apply chunk (same for all)."""
        rng = np.random.default_rng(self.seed + 7 * dim + 1)
        return [rng.standard_normal((self.apply_size, dim), dtype=np.float32)
                for _ in range(self.config.apply_batches)]


def make_workloads(config: TableBenchConfig, repeats: int, seed: int = 0) -> Workloads:
    """Generate every key, batch and time for a run (deterministic in ``seed``).

    See: book/ch06_numba.md
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    rng = np.random.default_rng(seed)
    n = config.n_resident
    resident = mix64(np.arange(n, dtype=np.uint64), seed)
    load_time = (np.arange(n) % LOAD_GROUPS).astype(np.int64)
    chunks = repeats + 1

    hit_rows = [rng.integers(0, n, config.n_hits).astype(np.int64) for _ in range(chunks)]
    hits = [resident[r] for r in hit_rows]

    cdf = np.cumsum(zipf_probabilities(n, config.zipf_alpha))
    cdf[-1] = 1.0
    next_fresh = 0  # fresh IDs are mix64(n + j, seed): never resident, never repeated across streams
    stream: dict[int, list[list[Batch]]] = {}
    t = STREAM_T0
    total = new_total = repeat_total = 0
    for size in sorted(config.stream):
        per_chunk = config.stream[size]
        n_new = max(1, round(config.new_fraction * size))
        n_rep = max(1, round(config.repeat_fraction * size))
        prev_new = np.empty(0, dtype=np.int64)  # fresh indices of the previous batch's new IDs
        stream[size] = []
        for _ in range(chunks):
            batches = []
            for _ in range(per_chunk):
                new_idx = np.arange(next_fresh, next_fresh + n_new, dtype=np.int64)
                next_fresh += n_new
                rep_idx = prev_new[:n_rep]
                n_zipf = size - n_new - rep_idx.size
                ranks = np.searchsorted(cdf, rng.random(n_zipf), side="right").astype(np.int64)
                rows = np.concatenate([ranks, n + new_idx, n + rep_idx])
                rows = rows[rng.permutation(rows.size)]
                ids = np.where(rows < n, resident[np.minimum(rows, n - 1)], mix64(rows.astype(np.uint64), seed))
                batches.append(Batch(ids=ids, rows=rows, now=t, new=n_new, repeats=int(rep_idx.size)))
                total += size
                new_total += n_new
                repeat_total += int(rep_idx.size)
                prev_new = new_idx
                t += 1
            stream[size].append(batches)
    fresh = mix64((n + np.arange(next_fresh)).astype(np.uint64), seed)
    expire_now = [EXPIRE_TTL + c + 1 for c in range(chunks)]  # sweep c removes load group c
    stats = {
        "new_fraction": new_total / total,
        "repeat_fraction": repeat_total / total,
        "unseen_fraction_no_filter": new_total / total,
        "miss_fraction_filter": (new_total + repeat_total) / total,
        "admitted_fraction_filter": repeat_total / total,
    }
    return Workloads(config=config, repeats=repeats, resident=resident, load_time=load_time, fresh=fresh,
                     hits=hits, hit_rows=hit_rows, stream=stream, expire_now=expire_now, seed=seed, stats=stats)
