"""The run filter's language (fmtui.runquery): how a query reads, what it matches in a folder of 20 varied runs,
its errors (one line with the column), and the start times the Runs pane sorts by."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from runfolders import make_broken, write_run

from fmtui.runfolder.read import list_runs
from fmtui.runquery import Query, QueryError, describe, fact, parse, start_time

pytestmark = pytest.mark.engine

# name: (options, health, status, final test accuracy, val split); started a minute apart, in this order
VARIED = {
    "20261101-100000-a": (dict(norm="zscore", lr=0.01), "ok", "completed", 84.1, 0),
    "20261101-100100-b": (dict(norm="zscore", lr=1e-3, model="mlp", hidden=[512, 256]), "ok", "completed", 88.0, 0),
    "20261101-100200-c": (dict(norm="zscore", lr=1e-5), "at chance", "completed", 11.0, 0),
    "20261101-100300-d": (dict(norm="zscore", lr=0.1, model="cnn"), "ok", "completed", 90.5, 0),
    "20261101-100400-e": (dict(norm="zscore", lr=0.01, model="cnn"), "unstable", "completed", 85.0, 0),
    "20261101-100500-f": (dict(norm="zscore", lr=1e-3), "ok", "stopped", 83.0, 0.1),
    "20261101-100600-g": (dict(norm="unit", lr=0.01), "ok", "completed", 83.5, 0),
    "20261101-100700-h": (dict(norm="unit", lr=1e-5, model="mlp"), "at chance", "completed", 12.5, 0),
    "20261101-100800-i": (dict(norm="none", lr=0.01), "exploding", "completed", 76.4, 0),
    "20261101-100900-j": (dict(norm="none", lr=1e-5, model="mlp", hidden=[256]), "ok", "completed", 80.1, 0),
    "20261101-101000-k": (dict(norm="symmetric", lr=0.01, model="mlp"), "ok", "completed", 86.9, 0.1),
    "20261101-101100-l": (dict(norm="symmetric", lr=0.5, model="mlp"), "diverged", "diverged", 10.0, 0),
    "20261101-101200-m": (dict(norm="symmetric", lr=1e-3, optimizer="adam"), "ok", "completed", 84.0, 0),
    "20261101-101300-n": (dict(norm="per-image", lr=1e-3, model="cnn"), "ok", "completed", 91.2, 0),
    "20261101-101400-o": (dict(norm="zscore", lr=1e-3, dataset="mnist"), "ok", "completed", 92.6, 0),
    "my-best": (dict(norm="zscore", lr=3e-3, model="mlp"), "ok", "completed", 89.0, 0.1),  # --out my-best
    "sweep-20261101-110000/01-zscore": (dict(norm="zscore", lr=0.03), "ok", "completed", 84.8, 0),
    "sweep-20261101-110000/02-unit": (dict(norm="unit", lr=0.03), "ok", "completed", 84.2, 0),
    "20261101-101600-q": (dict(norm="zscore", lr=0.05, model="cnn", weight_decay=1e-4), "ok", "completed", 91.0, 0),
}
BROKEN_NAME = "20261101-101700-r-broken"
QUERIES = {
    "norm:zscore lr>=1e-3 health:ok": "a b d f o my-best 01-zscore q",
    "norm:zscore lr>=1e-3 health:ok -model:cnn": "a b f o my-best 01-zscore",
    "model:mlp | norm:none": "b h i j k l my-best",
    "test_acc>=90 | status:stopped": "d f n o q",
    "health:at-chance": "c h",
    "hidden:256": "h j k l my-best",  # the default hidden size, but only MLPs have hidden layers
    "hidden:512,256": "b",
    "val_acc>0 norm:zscore": "f my-best",  # the runs with a validation split
    "sweep": "01-zscore 02-unit",  # a bare word: in the folder's name (sweep/run)
    '"my-"': "my-best",
    "lr<1e-3 -(model:mlp)": "c",
    "optimizer:adam | dataset:mnist": "m o",
    "weight-decay>0": "q",
    "norm:z* lr:0.03": "01-zscore",
    "status:broken": "r-broken",
}
"""Each query and the runs it must list (their short names)."""


def short(key: str) -> str:
    """A run's short name: its letter (20261101-100000-a -> a), else its folder's name (my-best, r-broken)."""
    name = key.split("/")[-1]
    return name[16:] if name.startswith("2026") else name


def write_varied(base: Path) -> Path:
    """The 20 runs of VARIED (and a broken one) under base, each with its health, status and accuracy."""
    for i, (name, (options, health, status, acc, val)) in enumerate(VARIED.items()):
        path = write_run(base / name, epochs=3, status=status, **options, val_split=val)
        rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
        for row in rows:
            row["test_accuracy"] = acc - (3 - row["epoch"])
            if val:
                row.update(val_loss=0.5, val_accuracy=acc - 1)
        (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        started = f"2026-11-01T10:{i:02d}:00+01:00"
        summary = {"status": status, "started_at": started, "health": {"state": health, "hint": f"{health}!"}}
        (path / "summary.json").write_text(json.dumps(summary))
    make_broken(base, "config-list").rename(base / BROKEN_NAME)
    return base


@pytest.fixture
def varied(tmp_path) -> Path:
    return write_varied(tmp_path / "runs")


def matching(base: Path, query: str) -> set[str]:
    runs = list_runs(base)
    keys = [str(r.path.relative_to(base)) for r in runs]
    return {short(k) for r, k in zip(runs, keys) if Query(query).matches(r, k)}


def test_a_folder_of_20_varied_runs(varied):
    runs = list_runs(varied)
    assert len(runs) == 20 and sum(r.status == "broken" for r in runs) == 1


@pytest.mark.parametrize("query", QUERIES)
def test_each_query_matches_exactly_its_runs(varied, query):
    assert matching(varied, query) == set(QUERIES[query].split())


@pytest.mark.parametrize(
    "text,tree",
    [
        ("norm:zscore lr>=1e-3 health:ok -model:cnn", "(norm:zscore lr>=0.001 health:ok -model:cnn)"),
        ("a b | c", "(('a' 'b') | 'c')"),
        ("a (b | c)", "('a' ('b' | 'c'))"),
        ("-(model:mlp hidden:512)", "-(model:mlp hidden:512)"),
        ('name:"two words" Batch-Size:64', "(name:two words batch_size:64)"),
        ("test_accuracy>=85% health:chance", "(test_acc>=85 health:at chance)"),
        ("", "everything"),
    ],
)
def test_how_a_query_reads(text, tree):
    assert describe(parse(text)) == tree


@pytest.mark.parametrize(
    "text,column,words",
    [
        ("lrr>=1e-3", 1, "unknown field 'lrr'; did you mean lr?"),
        ("norm:zscore model:rnn", 19, "model has no value 'rnn'; choose from softmax, mlp, cnn"),
        ("lr>=fast", 5, "lr is a number; 'fast' is not one"),
        ("norm>unit", 5, "norm is not a number: use norm:VALUE (or !=), not >"),
        ('name:"open', 6, "this quote is never closed"),
        ("(a | b", 1, "this ( is never closed"),
        ("a )", 3, "this ) closes no ("),
        ("a |", 3, "nothing after |"),
        ("| a", 1, "nothing before |"),
        ("a -", 3, "nothing after -"),
        ("lr>=", 5, "lr>= needs a value"),
        ("hidden:0", 8, "hidden: '0' is not a positive integer"),
        ("health:sick", 8, "health has no value 'sick'"),
    ],
)
def test_a_query_that_cannot_be_read_says_where_in_one_line(text, column, words):
    with pytest.raises(QueryError) as e:
        Query(text)
    assert str(e.value).startswith(f"column {column}: {words}") and "\n" not in str(e.value)
    assert e.value.position == column - 1


def test_facts_leave_out_what_does_not_apply(varied):
    runs = {r.name: r for r in list_runs(varied)}
    softmax, mlp = runs["20261101-100000-a"], runs["20261101-100900-j"]
    assert fact(softmax, "hidden") is None and fact(softmax, "activation") is None  # softmax: no hidden layers
    assert fact(mlp, "hidden") == (256,) and fact(mlp, "activation") == "relu"
    assert fact(runs["20261101-101200-m"], "momentum") is None  # adam has no SGD momentum
    assert fact(softmax, "val_acc") is None and fact(runs["my-best"], "best_val_acc") == 88.0
    assert fact(softmax, "test_acc") == 84.1 and fact(softmax, "best_test_acc") == 84.1
    assert fact(runs[BROKEN_NAME], "norm") is None and fact(runs[BROKEN_NAME], "status") == "broken"


def test_start_time_comes_from_the_summary_then_the_name_then_config_json(tmp_path):
    """`--out NAME` names a folder anything: its start time is read, not guessed from the name."""
    named = write_run(tmp_path / "zz-named-by-out")
    summary = json.loads((named / "summary.json").read_text())
    (named / "summary.json").write_text(json.dumps({**summary, "started_at": "2026-11-02T09:00:00+00:00"}))
    write_run(tmp_path / "20261101-120000-x")
    bare = write_run(tmp_path / "no-date")
    os.utime(bare / "config.json", (1_700_000_000, 1_700_000_000))
    runs = {r.name: r for r in list_runs(tmp_path)}
    assert start_time(runs["zz-named-by-out"]) == datetime(2026, 11, 2, 9, tzinfo=timezone.utc).timestamp()
    assert start_time(runs["20261101-120000-x"]) > start_time(runs["no-date"]) == 1_700_000_000
    assert start_time(runs["zz-named-by-out"]) > start_time(runs["20261101-120000-x"])
