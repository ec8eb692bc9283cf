"""The on-disk store of the joiner: features that waited too long for memory, and tombstones.

Figure 5 of the paper moves features that have waited long for their action "from an
in-memory cache to an on-disk key-value store". Most requests are never clicked, so most
features wait the whole window; keeping them all in memory would cost the joiner's memory
times the window. On disk they cost a read when their action (or their deadline) comes.

Why SQLite here: it ships with Python (``sqlite3``), keeps everything in one file, and gives
transactions, an index on time (for "everything older than t") and crash safety for free, so
the code stays about the joiner and not about file formats. Production joiners have other
needs: millions of writes a second, state larger than one disk, and snapshots taken while
writing. A Flink job keeps such state in its RocksDB state backend: a log-structured merge
tree that turns random writes into sequential ones, with checkpoints the job restores from;
other systems use a remote key-value store shared by many joiner workers. The interface is
the same small one as here: put, get, delete, scan by time.

Two tables, both keyed by request ID:

* ``features(request_id, time, payload)``: waiting feature records (``time``: event time);
* ``tombstones(request_id, time, outcome)``: requests already finished, kept for a while so
  a late or duplicated action can be recognised (``outcome``: an integer the caller picks,
  e.g. 1 for "emitted as a positive", 0 for "finalized as a negative").

Request IDs are unsigned 64-bit, SQLite integers signed 64-bit: an ID is stored as its two's
complement (``id - 2**64`` when ``id >= 2**63``) and mapped back on the way out, a bijection
that keeps lookups by ID exact. The journal is in WAL mode (readers never block the writer,
and a commit is one append to the write-ahead log) with ``synchronous=NORMAL``: a crash can
lose the last few commits, never corrupt the file. The locking mode is exclusive: the
store belongs to one process, which then takes no file lock per statement (that halves the
cost of a lookup); another process can open the file only after :meth:`SQLiteStore.close`.
Every method that writes runs one
transaction, so a batch is all-or-nothing and one commit pays for many rows.

See: book/ch09_streaming.md
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType

from ..checks import INT64_END, INT64_MIN, check_bytes, check_id, check_int, check_time

__all__ = ["SQLiteStore", "to_signed", "to_unsigned"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS features (request_id INTEGER PRIMARY KEY, time INTEGER NOT NULL, payload BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS features_by_time ON features (time);
CREATE TABLE IF NOT EXISTS tombstones (request_id INTEGER PRIMARY KEY, time INTEGER NOT NULL, outcome INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tombstones_by_time ON tombstones (time);
"""

_U63 = 2**63
_U64 = 2**64


def _check_id(value: object) -> int:
    return check_id(value, "request ID")


def to_signed(request_id: int) -> int:
    """The signed 64-bit integer SQLite stores for an unsigned ID (two's complement).

    See: book/ch09_streaming.md
    """
    return request_id - _U64 if request_id >= _U63 else request_id


def to_unsigned(stored: int) -> int:
    """The inverse of :func:`to_signed`. See: book/ch09_streaming.md"""
    return stored + _U64 if stored < 0 else stored


class SQLiteStore:
    """Waiting feature records and tombstones in one SQLite file (see the module docstring).

    >>> with SQLiteStore(path) as store:            # doctest: +SKIP
    ...     store.put_many([(2**63 + 5, 100, b"features")])
    ...     store.get(2**63 + 5)
    (100, b'features')

    See: book/ch09_streaming.md
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        # isolation_level=None: we open and commit transactions ourselves (_transaction)
        try:
            self._conn: sqlite3.Connection | None = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise ValueError(f"cannot open the SQLite file {self.path!r}: {exc}") from exc
        try:
            self._conn.execute("PRAGMA locking_mode=EXCLUSIVE")  # before WAL: no shared-memory index
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            self._conn = None
            raise ValueError(f"{self.path!r} is not a usable SQLite database: {exc}") from exc

    # ---- plumbing -----------------------------------------------------------------------

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"the store {self.path!r} is closed")
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        db.execute("BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close the file (idempotent). See: book/ch09_streaming.md"""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM features").fetchone()[0])

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else f"{len(self)} features"
        return f"SQLiteStore({self.path!r}, {state})"

    # ---- features -----------------------------------------------------------------------

    def write_batch(self, put: Iterable[tuple[int, int, bytes]] = (), delete: Iterable[int] = (),
                    tombstones: Iterable[tuple[int, ...]] = ()) -> None:
        """Several kinds of writes in one transaction (RocksDB calls this a write batch).

        ``put``: ``(request_id, time, payload)`` rows, replacing a row with the same ID;
        ``delete``: request IDs (absent ones are ignored); ``tombstones``:
        ``(request_id, time)`` or ``(request_id, time, outcome)`` rows (outcome 0 if left
        out). Deletes apply before puts (a caller that buffers deletes writes them with a
        later spill). Every row is checked before anything is written.
        See: book/ch09_streaming.md
        """
        rows = []
        for row in put:
            if len(row) != 3:
                raise ValueError(f"a feature row is (request_id, time, payload), got {row!r}")
            rid, time, payload = row
            rows.append((to_signed(_check_id(rid)), check_time(time), check_bytes(payload, "payload")))
        gone = [(to_signed(_check_id(rid)),) for rid in delete]
        tombs = []
        for row in tombstones:
            if len(row) not in (2, 3):
                raise ValueError(f"a tombstone is (request_id, time) or (request_id, time, outcome), got {row!r}")
            outcome = check_int(row[2], "outcome", INT64_MIN, INT64_END) if len(row) == 3 else 0
            tombs.append((to_signed(_check_id(row[0])), check_time(row[1]), outcome))
        if not (rows or gone or tombs):
            return
        with self._transaction() as db:
            if gone:
                db.executemany("DELETE FROM features WHERE request_id = ?", gone)
            if rows:
                db.executemany("INSERT OR REPLACE INTO features VALUES (?, ?, ?)", rows)
            if tombs:
                db.executemany("INSERT OR REPLACE INTO tombstones VALUES (?, ?, ?)", tombs)

    def put_many(self, rows: Iterable[tuple[int, int, bytes]]) -> None:
        """Store ``(request_id, time, payload)`` rows in one transaction (same ID: replaced).

        See: book/ch09_streaming.md
        """
        self.write_batch(put=rows)

    def get(self, request_id: int) -> tuple[int, bytes] | None:
        """``(time, payload)`` of a stored request, or ``None``. See: book/ch09_streaming.md"""
        row = self._db.execute("SELECT time, payload FROM features WHERE request_id = ?",
                               (to_signed(_check_id(request_id)),)).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def get_many(self, request_ids: Iterable[int]) -> dict[int, tuple[int, bytes]]:
        """``{request_id: (time, payload)}`` for those of ``request_ids`` that are stored.

        See: book/ch09_streaming.md
        """
        ids = [to_signed(_check_id(r)) for r in request_ids]
        out: dict[int, tuple[int, bytes]] = {}
        for start in range(0, len(ids), 500):  # stay under SQLite's limit on parameters
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for rid, time, payload in self._db.execute(
                f"SELECT request_id, time, payload FROM features WHERE request_id IN ({marks})", chunk
            ):
                out[to_unsigned(rid)] = (int(time), bytes(payload))
        return out

    def pop(self, request_id: int) -> tuple[int, bytes] | None:
        """Remove a stored request and return its ``(time, payload)`` (``None`` if absent).

        See: book/ch09_streaming.md
        """
        key = to_signed(_check_id(request_id))
        with self._transaction() as db:
            row = db.execute("SELECT time, payload FROM features WHERE request_id = ?", (key,)).fetchone()
            if row is not None:
                db.execute("DELETE FROM features WHERE request_id = ?", (key,))
        return None if row is None else (int(row[0]), bytes(row[1]))

    def delete_many(self, request_ids: Iterable[int]) -> None:
        """Remove these requests (absent ones are ignored), in one transaction.

        See: book/ch09_streaming.md
        """
        self.write_batch(delete=request_ids)

    def pop_older_than(self, t: int) -> list[tuple[int, int, bytes]]:
        """Remove and return every row with ``time < t``, as ``(request_id, time, payload)``
        ordered by time, then request ID. See: book/ch09_streaming.md
        """
        t = check_time(t, "t")
        with self._transaction() as db:
            rows = db.execute("SELECT request_id, time, payload FROM features WHERE time < ?", (t,)).fetchall()
            if rows:
                db.execute("DELETE FROM features WHERE time < ?", (t,))
        out = [(to_unsigned(rid), int(time), bytes(payload)) for rid, time, payload in rows]
        out.sort(key=lambda row: (row[1], row[0]))
        return out

    def index(self) -> list[tuple[int, int]]:
        """``(request_id, time)`` of every stored feature record, by time then ID.

        See: book/ch09_streaming.md
        """
        rows = [(to_unsigned(rid), int(t)) for rid, t in self._db.execute("SELECT request_id, time FROM features")]
        rows.sort(key=lambda row: (row[1], row[0]))
        return rows

    def min_time(self) -> int | None:
        """The smallest stored ``time`` (``None`` if empty). See: book/ch09_streaming.md"""
        row = self._db.execute("SELECT MIN(time) FROM features").fetchone()
        return None if row[0] is None else int(row[0])

    # ---- tombstones ---------------------------------------------------------------------

    def add_tombstones(self, rows: Iterable[tuple[int, ...]]) -> None:
        """Remember finished requests: ``(request_id, time)`` or ``(request_id, time,
        outcome)`` rows, in one transaction. See: book/ch09_streaming.md
        """
        self.write_batch(tombstones=rows)

    def tombstone(self, request_id: int) -> tuple[int, int] | None:
        """``(time, outcome)`` of a tombstoned request, or ``None``. See: book/ch09_streaming.md"""
        row = self._db.execute("SELECT time, outcome FROM tombstones WHERE request_id = ?",
                               (to_signed(_check_id(request_id)),)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def is_tombstoned(self, request_id: int) -> bool:
        """True if the request has a tombstone. See: book/ch09_streaming.md"""
        return self.tombstone(request_id) is not None

    def prune_tombstones(self, before: int) -> int:
        """Forget tombstones with ``time < before``; returns how many. See: book/ch09_streaming.md"""
        before = check_time(before, "before")
        with self._transaction() as db:
            return int(db.execute("DELETE FROM tombstones WHERE time < ?", (before,)).rowcount)

    def num_tombstones(self) -> int:
        """How many tombstones are stored. See: book/ch09_streaming.md"""
        return int(self._db.execute("SELECT COUNT(*) FROM tombstones").fetchone()[0])
