"""monolith_ref.diagrams: mermaid-py diagrams drawn from small live objects name what is there."""

from __future__ import annotations

import re

import numpy as np
import pytest
from mermaid.flowchart import FlowChart

from monolith_ref.diagrams import (as_markdown, cuckoo_diagram, mermaid_directive, mermaid_source, pipeline_diagram,
                                   shard_diagram)
from monolith_ref.streaming.log import Consumer, Log
from monolith_ref.tables import CuckooInsertError, CuckooMap, DictTable, ShardedTable, TableConfig
from monolith_ref.tables.cuckoo_table import colliding_keys
from monolith_ref.tables.routing import route


def recorded(keys, capacity=4, seed=0, max_kicks=6):
    """A tiny map with ``keys`` inserted, and the moves of the last insert."""
    m = CuckooMap(capacity=capacity, seed=seed, max_load=1.0, max_kicks=max_kicks)
    m.record = []
    start = 0
    for k in keys:
        start = len(m.record)
        m[k] = k
    return m, m.record[start:]


def a_kick_chain():
    """Keys whose last insert kicks at least once and does not rehash (searched, like the lab)."""
    rng = np.random.default_rng(0)
    for _ in range(10_000):
        keys = [int(k) for k in rng.choice(np.arange(10, 100), 4, replace=False)]
        m, moves = recorded(keys)
        if any(mv.kind == "kick" for mv in moves) and not any(mv.kind == "rehash" for mv in m.record):
            return m, moves
    raise AssertionError("no chain found")


def links(text):
    """(from, to, label) of every arrow in a flowchart's text."""
    return re.findall(r"^\s*(\w+) [=.-]+>?(?:\|\"([^\"]*)\"\|)? (\w+)$", text, re.M)


# ---- the cuckoo map -------------------------------------------------------------------------


def test_cuckoo_slots_name_every_key_where_it_sits():
    m, _ = recorded([11, 25, 37])
    d = cuckoo_diagram(m)
    assert isinstance(d, FlowChart)
    text = mermaid_source(d)
    assert text.startswith("flowchart LR\n")
    for t, table in enumerate(m.slots()):
        for s, key in enumerate(table):
            label = f"T{t}[{s}] · {'empty' if key is None else key}"
            assert f't{t}_{s}["{label}"]' in text
    assert "insert" not in text  # no chain given, none drawn


def test_cuckoo_chain_follows_the_recorded_moves():
    m, moves = a_kick_chain()
    text = mermaid_source(cuckoo_diagram(m, moves))
    arrows = [(a, label, b) for a, label, b in links(text)]
    expected_targets = [f"t{mv.table}_{mv.slot}" for mv in moves if mv.kind in ("place", "kick")]
    assert [b for _, _, b in arrows] == expected_targets
    assert arrows[0][0] == "insert" and arrows[0][1] == str(moves[0].key)
    # each later hop carries the key the previous write evicted
    evicted = [mv.evicted for mv in moves if mv.kind == "kick"]
    assert [label for _, label, _ in arrows[1:]] == [str(k) for k in evicted]
    assert f'insert(["insert {moves[0].key}"])' in text
    assert "==>" in text  # the chain is drawn thick


def test_cuckoo_failed_chain_ends_with_the_homeless_key():
    strict = CuckooMap(capacity=8, seed=1, max_load=1.0, max_kicks=5)
    a, b, c = colliding_keys(strict, 3)
    strict[a], strict[b] = "a", "b"
    strict.record = []
    strict.auto_rehash = False
    with pytest.raises(CuckooInsertError):
        strict[c] = "c"
    moves = strict.record
    assert moves[-1].kind == "fail"
    text = mermaid_source(cuckoo_diagram(strict, moves))
    assert f"{moves[-1].key} has no slot after 5 writes" in text
    assert links(text)[-1][2] == "homeless"


def test_cuckoo_diagram_rejects_what_it_cannot_draw():
    m, _ = recorded([11, 25, 37, 48, 59, 61, 72, 83, 94], max_kicks=6)
    with pytest.raises(ValueError, match="rehash"):
        cuckoo_diagram(m, m.record)
    with pytest.raises(TypeError):
        cuckoo_diagram({1: 2})
    with pytest.raises(ValueError, match="max_slots"):
        cuckoo_diagram(CuckooMap(capacity=100))
    m2, moves = a_kick_chain()
    with pytest.raises(ValueError, match="ends with a kick"):
        cuckoo_diagram(m2, moves[:-1])


# ---- the pipeline ---------------------------------------------------------------------------


def small_log():
    log = Log()
    log.create_topic("features", 2)
    log.create_topic("actions", 2)
    log.create_topic("examples", 1)
    log.append_many("features", [b"a", b"b", b"c", b"d"], keys=[b"1", b"2", b"3", b"4"])
    log.append_many("actions", [b"x"], keys=[b"1"])
    log.append_many("examples", [b"e1", b"e2"])
    Consumer(log, "joiner", ["features", "actions"]).commit({("features", 0): log.end_offset("features", 0)})
    log.commit("trainer", {("examples", 0): 1})
    return log


def test_pipeline_names_topics_partitions_and_groups():
    log = small_log()
    text = mermaid_source(pipeline_diagram(log))
    for i, (name, count) in enumerate(log.topics().items()):
        assert f'subgraph topic{i} ["topic {name}"]' in text
        for p in range(count):
            assert f'topic{i}_p{p}["partition {p} · {log.end_offset(name, p):,} records"]' in text
    assert 'group0(["consumer group joiner"])' in text and 'group1(["consumer group trainer"])' in text
    arrows = links(text)
    # committed offsets, from the partitions each group has committed
    assert ("topic0_p0", f"committed {log.end_offset('features', 0)}", "group0") in arrows
    assert ("topic2_p0", "committed 1", "group1") in arrows
    assert not any(a.startswith("topic1") for a, _, _ in arrows)  # nobody committed on actions
    # writers: serving appends features and actions; the joiner group appends examples
    assert ("writer0", "appends", "topic0") in arrows and ("writer0", "appends", "topic1") in arrows
    assert ("group0", "appends", "topic2") in arrows


def test_pipeline_after_a_real_run():
    from monolith_ref.data.synthetic import StreamConfig, synthetic_stream
    from monolith_ref.streaming import ArrivalConfig, JoinerConfig, OnlineJoiner, arrivals, run_pipeline

    events = synthetic_stream(StreamConfig(num_users=50, num_items=40, new_items_per_day=5, days=1,
                                           events_per_day=300, seed=0))
    log = Log()
    with OnlineJoiner(JoinerConfig(window=3600)) as joiner:
        run_pipeline(events, arrivals(events, ArrivalConfig(seed=0)), joiner, log, partitions=2)
    text = mermaid_source(pipeline_diagram(log))
    for topic in ("features", "actions", "examples"):
        assert f'["topic {topic}"]' in text
    arrows = links(text)
    joiner_reads = {a for a, _, b in arrows if b == "group0"}
    assert joiner_reads == {"topic0_p0", "topic0_p1", "topic1_p0", "topic1_p1"}
    assert ("topic2_p0", f"committed {log.end_offset('examples', 0):,}", "group1") in arrows


def test_pipeline_rejects_bad_input():
    log = small_log()
    with pytest.raises(TypeError):
        pipeline_diagram({"features": 2})
    with pytest.raises(ValueError, match="groups"):
        pipeline_diagram(log, groups="joiner")
    with pytest.raises(ValueError, match="clicks"):
        pipeline_diagram(log, writers={"serving": ["clicks"]})


# ---- shards ---------------------------------------------------------------------------------


def test_shards_show_sizes_and_routing():
    table = ShardedTable(TableConfig(dim=4, seed=3), num_shards=3, shard_factory=DictTable, threads=1)
    table.lookup(np.arange(40, dtype=np.uint64), now=0)
    ids = [1, 2, 3, 4, 5, 6]
    text = mermaid_source(shard_diagram(table, ids=ids))
    sizes = table.shard_sizes().tolist()
    where = route(np.array(ids, dtype=np.uint64), 3, 3).tolist()
    for s in range(3):
        assert f'shard{s}[("shard {s} · DictTable · {sizes[s]:,} rows")]' in text
        mine = [k for k, w in zip(ids, where) if w == s]
        label = "IDs " + ", ".join(map(str, mine)) if mine else "no IDs"
        assert ("source", label, f"shard{s}") in links(text)
    assert "ShardedTable · 3 shards" in text
    table.close()


class FakeRemote:
    """What shard_diagram reads of a RemoteTable (the real one needs PS processes)."""

    num_shards = 2
    ps_names = ("ps0", "ps1")
    config = TableConfig(dim=4, seed=0)

    def __init__(self, down=()):
        self.down = set(down)

    def shard_sizes(self):
        if self.down:
            raise RuntimeError("a PS is unavailable")  # what the real one raises: PSUnavailableError
        return np.array([5, 7])


class FakeCluster:
    ps_names = ["ps0", "ps1"]

    def __init__(self, down=()):
        self.down = set(down)

    def alive(self, index):
        return index not in self.down


def test_parameter_servers_show_names_ranks_and_state():
    text = mermaid_source(shard_diagram(FakeRemote(), ids=[1, 2, 3], cluster=FakeCluster()))
    assert 'source(["trainer · rank 0"])' in text
    assert "ps0 · rank 1, up · shard 0 · 5 rows" in text
    assert "ps1 · rank 2, up · shard 1 · 7 rows" in text
    assert [b for _, _, b in links(text)] == ["shard0", "shard1"]
    where = route(np.array([1, 2, 3], dtype=np.uint64), 2, 0).tolist()
    for s in range(2):
        mine = [k for k, w in zip([1, 2, 3], where) if w == s]
        assert ("source", "IDs " + ", ".join(map(str, mine)) if mine else "no IDs", f"shard{s}") in links(text)
    # without a cluster: names and rows, no ranks or states
    assert "ps1 · shard 1 · 7 rows" in mermaid_source(shard_diagram(FakeRemote()))


def test_a_dead_parameter_server_is_drawn_without_asking_anyone():
    d = shard_diagram(FakeRemote(down={1}), cluster=FakeCluster(down={1}))
    text = mermaid_source(d)
    assert "ps0 · rank 1, up · shard 0 · rows unknown" in text
    assert "ps1 · rank 2, down · shard 1 · rows unknown" in text
    assert d.title.startswith("1 of 2 parameter servers down")


def test_shard_diagram_rejects_bad_input():
    table = ShardedTable(TableConfig(dim=4), num_shards=2, shard_factory=DictTable, threads=1)
    with pytest.raises(TypeError):
        shard_diagram(DictTable(TableConfig(dim=4)))
    with pytest.raises(ValueError, match="max_ids"):
        shard_diagram(table, ids=np.arange(30))
    with pytest.raises(ValueError, match="RemoteTable"):
        shard_diagram(table, cluster=FakeCluster())
    other = FakeCluster()
    other.ps_names = ["ps0", "ps9"]  # shadows the class attribute
    with pytest.raises(ValueError, match="cluster"):
        shard_diagram(FakeRemote(), cluster=other)
    table.close()


# ---- what a notebook displays -------------------------------------------------------------------


def test_directive_drops_the_front_matter_and_captions_the_title():
    m, moves = a_kick_chain()
    d = cuckoo_diagram(m, moves, title='A "quoted" title')
    assert d.script.startswith("---\ntitle:")  # mermaid-py's own script
    block = mermaid_directive(d)
    assert block.startswith("```{mermaid}\n:caption: A \"quoted\" title\n\nflowchart LR\n")
    assert block.endswith("\n```\n") and "---" not in block
    assert mermaid_directive(d, caption=False).startswith("```{mermaid}\nflowchart LR\n")
    with pytest.raises(TypeError):
        mermaid_source("flowchart LR\n  A --> B")


def test_as_markdown_is_what_ipython_displays():
    pytest.importorskip("IPython")
    m, moves = a_kick_chain()
    d = cuckoo_diagram(m, moves)
    md = as_markdown(d)
    assert md._repr_markdown_() == mermaid_directive(d)


def test_labels_cannot_break_the_quoting():
    m = CuckooMap(capacity=2)
    text = mermaid_source(pipeline_diagram(small_log(), writers={'say "hi"': ["features"]}))
    assert 'writer0[["say #quot;hi#quot;"]]' in text
    assert isinstance(cuckoo_diagram(m), FlowChart)
