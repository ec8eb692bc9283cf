"""Diagrams drawn from live objects with mermaid-py's model classes, rendered offline by the book.

The book's hand-written diagrams show what a design *is meant* to look like; these show what
an object *is*, right now: a :class:`~monolith_ref.tables.cuckoo_table.CuckooMap`'s slots and
the kick-out chain of an insert (:func:`cuckoo_diagram`), a pipeline's topics, partitions and
consumer groups as built (:func:`pipeline_diagram`), a sharded table's shards or parameter
servers and how IDs are routed to them (:func:`shard_diagram`). Each returns mermaid-py's
diagram object (``mermaid.flowchart.FlowChart``).

In a notebook, :func:`as_markdown` turns a diagram into a ``{mermaid}`` directive that the
book renders like every other diagram (sphinxcontrib-mermaid and the bundled Mermaid script,
no network). mermaid-py's own renderer, which calls a web service, is never used.

See: book/preface.md
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Without IPython (no book extra), importing mermaid-py prints a warning that its notebook
# magic is unavailable; that magic calls the online renderer, which this module never uses.
with contextlib.redirect_stdout(io.StringIO()):
    from mermaid.flowchart import FlowChart, Link, Node
    from mermaid.graph import Graph

from .streaming.log import Log
from .streaming.pipeline import ACTIONS, EXAMPLES, FEATURES
from .tables.base import check_ids
from .tables.cuckoo_table import CuckooMap, Move
from .tables.routing import route

__all__ = ["cuckoo_diagram", "pipeline_diagram", "shard_diagram", "mermaid_source", "mermaid_directive",
           "as_markdown"]


def _text(value: object) -> str:
    """Label text that cannot end mermaid-py's ``"..."`` quoting early."""
    return str(value).replace('"', "#quot;")


# ---- what a notebook displays -----------------------------------------------------------------


def mermaid_source(diagram: Graph) -> str:
    """The Mermaid text of a mermaid-py diagram, without its ``title`` front matter.

    mermaid-py starts every script with ``---\\ntitle: ...\\n---``; in a MyST directive such a
    block would be read as the directive's options, so it is dropped here (the title becomes
    the caption in :func:`mermaid_directive`). See: book/preface.md
    """
    if not isinstance(diagram, Graph):
        raise TypeError(f"expected a mermaid-py diagram (mermaid.graph.Graph), got {type(diagram).__name__}")
    lines = diagram.script.strip("\n").split("\n")
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is None:
            raise ValueError("the diagram's script opens a front matter block that never closes")
        lines = lines[end + 1:]
    return "\n".join(line.rstrip() for line in lines).strip("\n") + "\n"


def mermaid_directive(diagram: Graph, caption: bool = True) -> str:
    """A MyST ``{mermaid}`` directive holding the diagram (its title as caption if ``caption``).

    See: book/preface.md
    """
    head = f":caption: {_one_line(diagram.title)}\n\n" if caption and diagram.title else ""
    return f"```{{mermaid}}\n{head}{mermaid_source(diagram)}```\n"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def as_markdown(diagram: Graph, caption: bool = True) -> Any:
    """What a notebook cell returns (or displays) so the built book renders the diagram.

    An ``IPython.display.Markdown`` of :func:`mermaid_directive`; the book's configuration
    (``nb_render_markdown_format: myst``) parses it as MyST, so it becomes a ``{mermaid}``
    directive drawn offline. IPython is imported here (it comes with the book extra).
    See: book/preface.md
    """
    from IPython.display import Markdown

    return Markdown(mermaid_directive(diagram, caption))


# ---- a cuckoo map -------------------------------------------------------------------------------


def _check_chain(m: CuckooMap, moves: Sequence[Move]) -> list[Move]:
    chain = list(moves)
    for mv in chain:
        if not isinstance(mv, Move):
            raise TypeError(f"moves must be CuckooMap Move records (from m.record), got {mv!r}")
        if mv.kind == "rehash":
            raise ValueError("these moves include a rehash: the slots they wrote are not the map's any more; "
                             "draw the moves of one insert that did not rehash")
        if mv.kind in ("place", "kick") and not (mv.table in (0, 1) and 0 <= (mv.slot or 0) < m.capacity):
            raise ValueError(f"move {mv} does not fit this map ({m.capacity} slots per table)")
    for mv in chain[:-1]:
        if mv.kind != "kick":
            raise ValueError(f"only the last move of one insert may be a {mv.kind!r}: the moves are not one chain")
    if chain and chain[-1].kind == "kick":
        raise ValueError("the chain ends with a kick: give every move of the insert (it ends with place or fail)")
    return chain


def cuckoo_diagram(m: CuckooMap, moves: Sequence[Move] = (), title: str | None = None,
                   max_slots: int = 64) -> FlowChart:
    """A cuckoo map's two tables, slot by slot, and (if given) the kick-out chain of one insert.

    ``moves``: the :class:`~monolith_ref.tables.cuckoo_table.Move` records of one insert
    into ``m`` that did not rehash (switch recording on with ``m.record = []`` and take what
    the insert appended), drawn as thick arrows: the new key into its first slot, then each
    evicted key to its slot in the other table, ending in an empty slot (``place``) or with
    a homeless key (``fail``). ``max_slots`` bounds the slots per table worth drawing.
    See: book/ch04_cuckoo.md
    """
    if not isinstance(m, CuckooMap):
        raise TypeError(f"expected a CuckooMap, got {type(m).__name__}")
    if m.capacity > max_slots:
        raise ValueError(f"the map has {m.capacity} slots per table, more than max_slots={max_slots} worth drawing")
    chain = _check_chain(m, moves)
    slots = m.slots()
    tables = []
    for t in (0, 1):
        cells = [Node(f"t{t}_{s}", f"T{t}[{s}] · {'empty' if key is None else _text(key)}")
                 for s, key in enumerate(slots[t])]
        tables.append(Node(f"t{t}", f"table T{t}", sub_nodes=cells, direction="TB"))
    nodes, links = list(tables), []
    by_id = {cell.id_: cell for table in tables for cell in table.sub_nodes}
    if chain:
        start = Node("insert", f"insert {_text(chain[0].key)}", shape="stadium-shape")
        nodes.insert(0, start)
        here = start
        for mv in chain:
            if mv.kind == "fail":
                homeless = Node("homeless", f"{_text(mv.key)} has no slot after {m.max_kicks} writes",
                                shape="hexagon")
                nodes.append(homeless)
                links.append(Link(here, homeless, shape="thick", message=f"{_text(mv.key)}"))
                break
            target = by_id[f"t{mv.table}_{mv.slot}"]
            links.append(Link(here, target, shape="thick", message=_text(mv.key)))
            here = target
    if title is None:
        title = f"CuckooMap with {len(m)} keys in 2 x {m.capacity} slots"
        if chain:
            kicks = sum(mv.kind == "kick" for mv in chain)
            title += f", inserting {chain[0].key} ({kicks} kick{'s' if kicks != 1 else ''})"
    return FlowChart(title, nodes, links, orientation="LR")


# ---- a streaming pipeline -------------------------------------------------------------------------


def pipeline_diagram(log: Log, groups: Sequence[str] = ("joiner", "trainer"),
                     writers: Mapping[str, Sequence[str]] | None = None, title: str | None = None) -> FlowChart:
    """A log's topics and partitions as built, and what each consumer group has committed.

    Each topic is a box of its partitions with their record counts (end offsets); each
    consumer group in ``groups`` is linked from every partition it has committed an offset
    for, labelled with that offset. ``writers`` maps a writer's name to the topics it appends
    to (a writer with a group's name is that group's node); by default the pipeline of
    chapter 9: ``serving`` writes ``features`` and ``actions``, the ``joiner`` writes
    ``examples`` (topics the log does not have are left out). See: book/ch09_streaming.md
    """
    if not isinstance(log, Log):
        raise TypeError(f"expected a Log, got {type(log).__name__}")
    if isinstance(groups, str) or not all(isinstance(g, str) and g for g in groups):
        raise ValueError(f"groups must be a sequence of non-empty group names, got {groups!r}")
    topics = log.topics()
    if writers is None:
        defaults = {"serving": (FEATURES, ACTIONS), "joiner": (EXAMPLES,)}
        writers = {w: tuple(t for t in ts if t in topics) for w, ts in defaults.items()}
    else:
        unknown = sorted({t for ts in writers.values() for t in ts if t not in topics})
        if unknown:
            raise ValueError(f"writers name topics the log does not have: {unknown} (it has {sorted(topics)})")

    topic_nodes, partition_nodes = {}, {}
    for i, (name, count) in enumerate(topics.items()):
        parts = []
        for p in range(count):
            node = Node(f"topic{i}_p{p}", f"partition {p} · {log.end_offset(name, p):,} records")
            partition_nodes[name, p] = node
            parts.append(node)
        topic_nodes[name] = Node(f"topic{i}", f"topic {_text(name)}", sub_nodes=parts, direction="LR")

    group_nodes = {g: Node(f"group{i}", f"consumer group {_text(g)}", shape="stadium-shape")
                   for i, g in enumerate(dict.fromkeys(groups))}
    writer_nodes = {w: group_nodes.get(w) or Node(f"writer{i}", _text(w), shape="subroutine-shape")
                    for i, w in enumerate(writers) if writers[w]}
    links = []
    for w, node in writer_nodes.items():
        links.extend(Link(node, topic_nodes[t], message="appends") for t in writers[w])
    for g, node in group_nodes.items():
        for (name, p), part in partition_nodes.items():
            offset = log.committed(g, name, p)
            if offset is not None:
                links.append(Link(part, node, shape="dotted", message=f"committed {offset:,}"))
    nodes = [n for w, n in writer_nodes.items() if w not in group_nodes]
    nodes += list(topic_nodes.values()) + list(group_nodes.values())
    if title is None:
        title = f"Log with {len(topics)} topics and {sum(topics.values())} partitions"
    return FlowChart(title, nodes, links, orientation="TB")


# ---- shards and parameter servers -----------------------------------------------------------------


def shard_diagram(table: Any, ids: Any = None, cluster: Any = None, title: str | None = None,
                  max_ids: int = 24) -> FlowChart:
    """Which shards a table has, how many rows each holds, and where some IDs are routed.

    ``table``: a :class:`~monolith_ref.tables.ShardedTable` (shards in this process) or a
    :class:`~monolith_ref.distributed.RemoteTable` (one shard per parameter server, asked
    for its size over RPC). ``ids`` (at most ``max_ids``): each arrow from the trainer to a
    shard is labelled with the IDs that :func:`~monolith_ref.tables.routing.route`
    sends there. ``cluster``: the :class:`~monolith_ref.distributed.Cluster` of a
    RemoteTable, to show each PS's rank and whether its process is up (with one down, no
    PS is asked for its size: the diagram says "rows unknown"). See: book/ch12_distributed.md
    """
    if not all(hasattr(table, a) for a in ("num_shards", "config", "shard_sizes")):
        raise TypeError(f"expected a ShardedTable or a RemoteTable, got {type(table).__name__}")
    n = int(table.num_shards)
    names = getattr(table, "ps_names", None)
    if cluster is not None:
        if names is None:
            raise ValueError("a cluster goes with a RemoteTable (a ShardedTable's shards are in this process)")
        if tuple(cluster.ps_names) != tuple(names):
            raise ValueError(f"the table's PS {list(names)} are not the cluster's {list(cluster.ps_names)}")
    routed: dict[int, list[int]] = {}
    if ids is not None:
        keys = check_ids(ids)
        if keys.size > max_ids:
            raise ValueError(f"{keys.size} IDs are too many to label arrows with (max_ids={max_ids})")
        for key, s in zip(keys.tolist(), route(keys, n, table.config.seed).tolist()):
            routed.setdefault(int(s), []).append(key)
    up = [cluster.alive(s) for s in range(n)] if cluster is not None else [True] * n
    # Sizes are asked of every PS at once; with one down that call would fail, so skip it.
    sizes = np.asarray(table.shard_sizes()).tolist() if all(up) else None

    def rows(s: int) -> str:
        return "rows unknown" if sizes is None else f"{sizes[s]:,} rows"

    if names is None:
        kinds = [type(s).__name__ for s in getattr(table, "shards", [])] or ["table"] * n
        source = Node("source", f"{type(table).__name__} · {n} shards in this process", shape="stadium-shape")
        shards = [Node(f"shard{s}", f"shard {s} · {kinds[s]} · {rows(s)}", shape="cylindrical")
                  for s in range(n)]
    else:
        source = Node("source", "trainer · rank 0", shape="stadium-shape")
        shards = []
        for s, ps in enumerate(names):
            state = ""
            if cluster is not None:
                state = f" · rank {s + 1}, {'up' if up[s] else 'down'}"
            shards.append(Node(f"shard{s}", f"{_text(ps)}{state} · shard {s} · {rows(s)}",
                               shape="cylindrical"))
    links = []
    for s, node in enumerate(shards):
        message = "" if ids is None else ("IDs " + ", ".join(map(str, routed[s])) if s in routed else "no IDs")
        links.append(Link(source, node, message=message))
    if title is None:
        where = "parameter servers" if names is not None else "shards"
        held = f"{n - sum(up)} of {n} {where} down" if sizes is None else f"{sum(sizes):,} rows on {n} {where}"
        title = f"{held}, routed by route(id, {n}, seed={table.config.seed})"
    return FlowChart(title, [source, *shards], links, orientation="LR")
