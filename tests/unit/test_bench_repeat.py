"""repeat_runs: the loop both benchmark scripts share."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from monolith_ref.bench.repeat import add_run_options, repeat_runs


class _Result:
    def __init__(self, value: int) -> None:
        self.value, self.meta = value, {"load_before": 0.5, "load_after": 0.7}

    def to_json(self, path) -> None:
        path.write_text(json.dumps({"value": self.value}))


def test_one_run_is_returned_as_it_is_and_not_saved(tmp_path) -> None:
    result = repeat_runs(lambda: _Result(1), 1, tmp_path, "x", combine=lambda rs: None)
    assert result.value == 1 and list(tmp_path.iterdir()) == []


def test_several_runs_are_saved_and_combined(tmp_path, capsys) -> None:
    values = iter([3, 1, 2])
    total = repeat_runs(lambda: _Result(next(values)), 3, tmp_path, "x",
                        combine=lambda rs: sorted(r.value for r in rs), note=lambda r: f"value {r.value}")
    assert total == [1, 2, 3]
    assert [json.loads((tmp_path / f"x-run{i}.json").read_text())["value"] for i in (1, 2, 3)] == [3, 1, 2]
    assert "run 2 of 3 done: value 1 (load average 0.5 -> 0.7)" in capsys.readouterr().out
    with pytest.raises(ValueError):
        repeat_runs(lambda: _Result(0), 0, tmp_path, "x", combine=list)


def test_the_scripts_share_their_run_options() -> None:
    parser = argparse.ArgumentParser()
    add_run_options(parser, Path("results"), "x.json", repeats=5, repeats_help="r", runs_help="n")
    args = parser.parse_args([])
    assert (args.repeats, args.runs, args.seed, args.out, args.quiet) == (5, 1, 0, Path("results"), False)
    args = parser.parse_args(["--runs", "3", "--quiet", "--out", "elsewhere"])
    assert (args.runs, args.quiet, args.out) == (3, True, Path("elsewhere"))
