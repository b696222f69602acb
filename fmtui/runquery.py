"""Run filters: a small query language over run folders, shared by the Runs pane (`f`) and `fmtui runs --filter`.

    norm:zscore lr>=1e-3 health:ok -model:cnn      all of these (terms side by side are ANDed)
    norm:zscore | norm:unit                        either (`|` binds looser than the side-by-side terms)
    -(model:mlp hidden:512)  "lecture"  mlp*       `-` negates; parentheses group; bare words and quoted
                                                   text match the folder name (case-insensitive, * and ?)

A term is FIELD OP VALUE with OP one of `:` `=` (equal), `!=`, `>`, `>=`, `<`, `<=` (numbers only). Fields:
every option by its config.json name (`batch_size`, or as typed on the command line, `batch-size`), `status`,
`health`, `name`, and the metrics `test_acc`, `val_acc`, `train_acc`, `test_loss`, `val_loss`, `train_loss`
(the last epoch's), `best_test_acc`, `best_val_acc`, `epochs_done` and `time` (seconds of training). An option
that does not apply to a run's model (hidden sizes of a softmax regression, fmtui.config.applies) and a metric
a run does not have (val_acc without a validation split) match nothing, so their negation matches.

`parse(text)` turns the text into a tree (And, Or, Not, Term, Word) or raises QueryError, whose message is one
line naming the column; `Query(text).matches(run, key)` answers for one run. The same facts of a run (its
options, metrics, start time) serve the hyperparameter view: `fact(run, field)`. No torch, no UI.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fmtui.config import OPTIONS, ConfigError, applies, format_value, parse_bool, parse_hidden
from fmtui.events import HEALTH_STATES
from fmtui.runfolder.read import BrokenRun, Run, RunRecord
from fmtui.runfolder.schema import CONFIG, STAMP_FORMAT, STAMPED, Status

# --- the facts of a run ----------------------------------------------------------------------------------


def _final(key: str) -> Callable[[RunRecord], Any]:
    return lambda r: r.metrics[-1].get(key) if r.metrics else None


def _best(key: str) -> Callable[[RunRecord], Any]:
    def best(r: RunRecord) -> Any:
        values = [row[key] for row in r.metrics if isinstance(row.get(key), (int, float))]
        return max(values) if values else None

    return best


def _seconds(r: RunRecord) -> float | None:
    """Seconds of training: summary.json's, else the epochs' own (training and evaluation)."""
    seconds = r.summary.get("seconds")
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
        return float(seconds)
    if not r.metrics:
        return None
    return sum((row.get("seconds") or 0.0) + (row.get("eval_seconds") or 0.0) for row in r.metrics)


METRICS: dict[str, Callable[[RunRecord], Any]] = {
    "test_acc": _final("test_accuracy"),
    "val_acc": _final("val_accuracy"),
    "train_acc": _final("train_accuracy"),
    "test_loss": _final("test_loss"),
    "val_loss": _final("val_loss"),
    "train_loss": _final("train_loss"),
    "best_test_acc": _best("test_accuracy"),
    "best_val_acc": _best("val_accuracy"),
    "epochs_done": lambda r: r.epochs_done,
    "time": _seconds,
}
"""Numbers a run has done, by the names a query uses: the last epoch's unless `best_`."""
ALIASES = {
    **{opt.cli: name for name, opt in OPTIONS.items() if opt.cli != name},  # batch-size -> batch_size
    **{f"{split}_accuracy": f"{split}_acc" for split in ("test", "val", "train")},
    "acc": "test_acc",
    "ep": "epochs_done",
    "epochs-done": "epochs_done",
    "seconds": "time",
}
TEXT_FIELDS = ("name", "status", "health")
FIELDS = (*OPTIONS, *TEXT_FIELDS, *METRICS)
"""Every field a query can name (ALIASES name some of them otherwise)."""
RUN_STATUSES = tuple(s.value for s in Status)
"""What a run's status can read (summary.json's, and a reader's interrupted and broken)."""


def fact(run: Run, field: str) -> Any:
    """A run's value of a field (FIELDS): None when it has none (a broken run, a metric it never recorded, an
    option that does not apply to its model)."""
    field = ALIASES.get(field, field)
    if field == "name":
        return run.name
    if field == "status":
        return run.status
    if isinstance(run, BrokenRun):
        return None
    if field == "health":
        return run.health.state
    if field in METRICS:
        return METRICS[field](run)
    c = run.config
    return getattr(c, field) if applies(field, c.model, c.optimizer) else None


def start_time(run: Run) -> float:
    """When a run started (seconds since 1970): summary.json's started_at, else the date-time its folder name
    begins with (`20261127-135429-...`), else when its config.json was written; 0 when nothing tells.

    Not the folder's name alone: `--out NAME` names a folder anything."""
    started = run.summary.get("started_at") if isinstance(run, RunRecord) else None
    if isinstance(started, str):
        try:
            return datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    match = STAMPED.match(run.name)
    if match:
        try:
            return datetime.strptime(match.group(0), STAMP_FORMAT).timestamp()
        except ValueError:
            pass
    try:
        return os.stat(run.path / CONFIG).st_mtime
    except OSError:
        return 0.0


# --- the tree -----------------------------------------------------------------------------------------


class QueryError(ValueError):
    """A query that cannot be read: str(e) is one line, `column N: what is wrong`; `position` counts from 0."""

    def __init__(self, reason: str, position: int) -> None:
        self.reason, self.position = reason, position
        super().__init__(f"column {position + 1}: {reason}")


@dataclass(frozen=True)
class Word:
    """Bare or quoted text: the run's folder name contains it (or matches it, with * or ?)."""

    text: str


@dataclass(frozen=True)
class Term:
    """FIELD OP VALUE; `value` is parsed for the field (a number, a tuple of sizes, a bool or lower-case text)."""

    field: str
    op: str
    value: Any
    text: str
    """The value as typed."""


@dataclass(frozen=True)
class Not:
    node: Node


@dataclass(frozen=True)
class And:
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    nodes: tuple[Node, ...]


Node = Word | Term | Not | And | Or

OPS = ("!=", ">=", "<=", ":", "=", ">", "<")
ORDER_OPS = (">", ">=", "<", "<=")
TERM = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)(!=|>=|<=|:|=|>|<)(.*)", re.S)


@dataclass(frozen=True)
class Token:
    kind: str
    """'word' (a term or bare word, possibly with a leading -), '|', '(', ')' or '-' (before a parenthesis)."""
    text: str
    pos: int


def tokens(text: str) -> list[Token]:
    """Split a query into tokens; quoted text ("...") stays one token with its spaces."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "|()":
            out.append(Token(ch, ch, i))
            i += 1
        elif ch == "-" and text[i + 1 : i + 2] == "(":
            out.append(Token("-", ch, i))
            i += 1
        else:
            start, word = i, []
            while i < len(text) and not text[i].isspace() and text[i] not in "|()":
                if text[i] == '"':
                    end = text.find('"', i + 1)
                    if end < 0:
                        raise QueryError('this quote is never closed (add a ")', i)
                    word.append(text[i : end + 1])
                    i = end + 1
                else:
                    word.append(text[i])
                    i += 1
            out.append(Token("word", "".join(word), start))
    return out


def parse(text: str) -> Node | None:
    """The query's tree; None for an empty query (every run matches). QueryError when it cannot be read."""
    parser = _Parser(tokens(text), len(text))
    if not parser.tokens:
        return None
    node = parser.any_of()
    if parser.i < len(parser.tokens):  # only a stray ) stops any_of early
        raise QueryError("this ) closes no (", parser.tokens[parser.i].pos)
    return node


class _Parser:
    """any_of := all_of ('|' all_of)* ; all_of := unit+ ; unit := '-'? ( '(' any_of ')' | word )."""

    def __init__(self, toks: list[Token], end: int) -> None:
        self.tokens, self.i, self.end = toks, 0, end

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def any_of(self) -> Node:
        nodes = [self.all_of()]
        while (tok := self.peek()) is not None and tok.kind == "|":
            self.i += 1
            if self.peek() is None or self.peek().kind in "|)":
                raise QueryError("nothing after |", tok.pos)
            nodes.append(self.all_of())
        return nodes[0] if len(nodes) == 1 else Or(tuple(nodes))

    def all_of(self) -> Node:
        nodes = []
        while (tok := self.peek()) is not None and tok.kind not in "|)":
            nodes.append(self.unit())
        if not nodes:
            tok = self.peek()
            raise QueryError("nothing before |" if tok and tok.kind == "|" else "an empty ( )", tok.pos if tok else 0)
        return nodes[0] if len(nodes) == 1 else And(tuple(nodes))

    def unit(self) -> Node:
        tok = self.tokens[self.i]
        self.i += 1
        if tok.kind == "-":
            return Not(self.unit())
        if tok.kind == "(":
            node = self.any_of()
            close = self.peek()
            if close is None or close.kind != ")":
                raise QueryError("this ( is never closed (add a ))", tok.pos)
            self.i += 1
            return node
        text, pos = tok.text, tok.pos
        if text.startswith("-"):
            if len(text) == 1:
                raise QueryError("nothing after -", pos)
            return Not(word(text[1:], pos + 1))
        return word(text, pos)


def _unquote(text: str) -> str:
    return text.replace('"', "")


def word(text: str, pos: int) -> Node:
    """One token without its `-`: a Term when it reads FIELD OP VALUE with a known field, else a Word."""
    match = TERM.fullmatch(text)
    if match is None or text.startswith('"'):
        return Word(_unquote(text).lower())
    name, op, raw = match.groups()
    field = ALIASES.get(name.lower(), name.lower())
    if field not in FIELDS:
        close = difflib.get_close_matches(field, [*FIELDS, *ALIASES], n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; fields: {', '.join(FIELDS)}"
        raise QueryError(f"unknown field {name!r}{hint}", pos)
    value_pos = pos + len(name) + len(op)
    raw = _unquote(raw)
    if not raw:
        raise QueryError(f"{name}{op} needs a value", value_pos)
    return Term(field, op, _value(field, op, raw, value_pos), raw)


def _numeric(field: str) -> bool:
    if field in METRICS:
        return True
    if field not in OPTIONS:
        return False
    opt = OPTIONS[field]
    return not opt.choices and not opt.flag and field != "hidden"


def _value(field: str, op: str, raw: str, pos: int) -> Any:
    """The typed value a term compares with; QueryError (at the value's column) when it is none of the field's."""
    if _numeric(field):
        text = raw[:-1] if raw.endswith("%") and field in METRICS else raw  # test_acc>=85%
        try:
            value = float(text)
        except ValueError:
            raise QueryError(f"{field} is a number; {raw!r} is not one", pos) from None
        if not text.isascii() or not math.isfinite(value):
            raise QueryError(f"{field} is a number; {raw!r} is not one", pos)
        return value
    if op in ORDER_OPS:
        raise QueryError(f"{field} is not a number: use {field}:VALUE (or !=), not {op}", pos - len(op))
    try:
        if field == "hidden":
            return parse_hidden(raw)
        if field in OPTIONS and OPTIONS[field].flag:
            return parse_bool(raw)
    except ConfigError as e:
        raise QueryError(f"{field}: {e.reason}", pos) from None
    value = raw.lower()
    choices = _choices(field)
    if field == "health":
        value = _health(value)
    if choices and not _glob(value) and value not in choices:
        raise QueryError(f"{field} has no value {raw!r}; choose from {', '.join(choices)}", pos)
    return value


def _choices(field: str) -> tuple[str, ...]:
    if field == "status":
        return RUN_STATUSES
    if field == "health":
        return HEALTH_STATES
    return OPTIONS[field].choices if field in OPTIONS else ()


def _health(text: str) -> str:
    """`at-chance`, `at_chance` and `chance` name the state `at chance`."""
    text = text.replace("-", " ").replace("_", " ")
    return "at chance" if text == "chance" else text


def _glob(text: str) -> bool:
    return "*" in text or "?" in text


# --- matching ------------------------------------------------------------------------------------------


def matches(node: Node | None, run: Run, key: str | None = None) -> bool:
    """Whether the run passes the query; `key` is the name bare words look in (default: the folder's name;
    the Runs pane and `fmtui runs` give the folder relative to the runs folder, sweep/run)."""
    if node is None:
        return True
    if isinstance(node, And):
        return all(matches(n, run, key) for n in node.nodes)
    if isinstance(node, Or):
        return any(matches(n, run, key) for n in node.nodes)
    if isinstance(node, Not):
        return not matches(node.node, run, key)
    if isinstance(node, Word):
        return _text_match((key or run.name).lower(), node.text, contains=True)
    return _term(node, run, key)


def _term(term: Term, run: Run, key: str | None) -> bool:
    value = (key or run.name) if term.field == "name" else fact(run, term.field)
    if value is None:
        return False
    if isinstance(term.value, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return False
        equal = math.isclose(value, term.value, rel_tol=1e-9, abs_tol=0.0)
        return {
            ":": equal,
            "=": equal,
            "!=": not equal,
            ">": value > term.value and not equal,
            ">=": value >= term.value or equal,
            "<": value < term.value and not equal,
            "<=": value <= term.value or equal,
        }[term.op]
    if isinstance(term.value, (bool, tuple)):
        equal = value == term.value
    else:
        equal = _text_match(str(value).lower(), term.value, contains=term.field == "name")
    return not equal if term.op == "!=" else equal


def _text_match(value: str, pattern: str, contains: bool) -> bool:
    """Equal (or containing, for names), or matching a glob pattern with * and ?."""
    if _glob(pattern):
        return fnmatch.fnmatchcase(value, pattern if not contains else f"*{pattern}*")
    return pattern in value if contains else value == pattern


class Query:
    """A parsed query: `Query("norm:zscore lr>=1e-3").matches(run, key)`; QueryError when the text is no query."""

    def __init__(self, text: str = "") -> None:
        self.text = text.strip()
        self.tree = parse(self.text)

    def __bool__(self) -> bool:
        return self.tree is not None

    def matches(self, run: Run, key: str | None = None) -> bool:
        return matches(self.tree, run, key)

    def select(self, runs: list[Run], keys: list[str] | None = None) -> list[Run]:
        """The runs that pass, in their order (keys: each run's name for bare words, as in matches)."""
        keys = keys if keys is not None else [r.name for r in runs]
        return [r for r, k in zip(runs, keys) if self.matches(r, k)]


def describe(node: Node | None) -> str:
    """The tree as text, fully bracketed (for tests and for a status line that says how a query was read)."""
    if node is None:
        return "everything"
    if isinstance(node, Word):
        return repr(node.text)
    if isinstance(node, Term):
        shown = format_value(node.value) if not isinstance(node.value, str) else node.value
        return f"{node.field}{node.op}{shown}"
    if isinstance(node, Not):
        return f"-{describe(node.node)}"
    joiner = " " if isinstance(node, And) else " | "
    return "(" + joiner.join(describe(n) for n in node.nodes) + ")"
