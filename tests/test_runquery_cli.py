"""`fmtui runs --filter QUERY`: the runs of the 20-run folder that match, and a query that cannot be read."""

from __future__ import annotations

import json
import re

import pytest
from test_cli import fmtui
from test_runquery import QUERIES, short, write_varied

pytestmark = pytest.mark.cli


@pytest.fixture(scope="module")
def varied(tmp_path_factory):
    return write_varied(tmp_path_factory.mktemp("varied") / "runs")


def listed(output: str) -> set[str]:
    return {short(re.split(r"\s{2,}", line)[0]) for line in output.splitlines()}


@pytest.mark.parametrize("query", QUERIES)
def test_runs_filter_lists_exactly_the_matching_runs(varied, query):
    result = fmtui("--no-ui", "runs", "--filter", query, varied)
    assert result.exit_code == 0, result.output
    assert listed(result.stdout) == set(QUERIES[query].split())


def test_runs_filter_with_json_lists_the_same_runs(varied):
    result = fmtui("runs", "--json", "--filter", "norm:zscore lr>=1e-3 health:ok", varied)
    assert result.exit_code == 0, result.output
    names = {short(json.loads(line)["run"]) for line in result.stdout.splitlines()}
    assert names == set(QUERIES["norm:zscore lr>=1e-3 health:ok"].split())


def test_a_query_that_cannot_be_read_is_one_line_naming_the_column_exit_2(varied):
    result = fmtui("runs", "--filter", "norm:zscore lr>=fast", varied)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert "--filter" in result.stderr and "column 17: lr is a number; 'fast' is not one" in result.stderr


def test_a_query_no_run_matches_says_so(varied):
    result = fmtui("runs", "--filter", "model:cnn norm:none", varied)
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr == f"no runs in {varied} match model:cnn norm:none\n"
