"""RemoteTable on 2 PS processes against the table conformance suite and the DictTable oracle.

The same checks as ``tests/conformance`` (``checks_for``), with a factory that creates a
:class:`RemoteTable` on the shared cluster, per-shard filter state like ShardedTable
(``shared_filter=False``). The Hypothesis comparison with DictTable runs fewer programs than
for the in-process tables: every step is a few RPC round trips. Tables made by a test are
dropped after it, so the PS processes do not fill up.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from conformance.checks import TableImpl, checks_for
from conformance.stateful import FILTERS, OPTIMIZERS, STATEFUL_CONFIG, run_against_dict
from monolith_ref.distributed import RemoteTable

_state: dict = {"cluster": None, "made": []}


def _make(config, factory: str = "numba") -> RemoteTable:
    table = RemoteTable(config, _state["cluster"], factory=factory)
    _state["made"].append(table)
    return table


REMOTE = TableImpl("RemoteTable-2PS", _make, shared_filter=False)
REMOTE_DICT = TableImpl("RemoteTable-2PS-dict", lambda c: _make(c, factory="dict"), shared_filter=False)


@pytest.fixture(autouse=True)
def _on_shared_cluster(cluster):
    _state["cluster"] = cluster
    yield
    for table in _state["made"]:
        try:
            table.drop()
        except Exception:  # noqa: BLE001 - a test may have dropped it, or broken the cluster
            pass
    _state["made"].clear()


CASES = [pytest.param(impl, check, id=f"{impl.name}-{check.__name__[6:]}")
         for impl in (REMOTE,) for check in checks_for(impl)]
CASES += [pytest.param(REMOTE_DICT, check, id=f"{REMOTE_DICT.name}-{check.__name__[6:]}")
          for check in checks_for(REMOTE_DICT)[:3]]  # the dict kind: a smoke test


@pytest.mark.parametrize(("impl", "check"), CASES)
def test_conformance(impl, check) -> None:
    check(impl)


def test_stateful_against_dict_table() -> None:
    """Random operation programs, bit-identical to DictTable (fewer than in-process: RPCs cost)."""
    assert run_against_dict(REMOTE, max_examples=50, steps=25) >= 50


@pytest.mark.parametrize("filter_name", ["occurrence-3"])
def test_stateful_with_filter_against_dict_table(filter_name) -> None:
    config = replace(STATEFUL_CONFIG, filter=FILTERS[filter_name])
    assert run_against_dict(REMOTE, max_examples=20, steps=25, config=config) >= 20


def test_stateful_with_adagrad_against_dict_table() -> None:
    config = replace(STATEFUL_CONFIG, optimizer=OPTIMIZERS["adagrad"])
    assert run_against_dict(REMOTE, max_examples=20, steps=25, config=config) >= 20
