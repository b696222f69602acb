"""Command line: `fmtui` opens the TUI; `fmtui --no-ui train|eval|sweep` does the same jobs headless.

Only click and fmtui.config are imported at start-up, so `fmtui --help` answers without torch (and without
the run folders' and reports' modules). A headless command that trains starts importing the engine (torch)
in a background thread at once and reads the data meanwhile (`warm_up`). Every user error ends in one line
on stderr and exit code 2 (see `main`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from click.shell_completion import CompletionItem

from fmtui import __version__, signals
from fmtui.config import (
    OPTIONS,
    ConfigError,
    Option,
    RunConfig,
    format_value,
    number,
)
from fmtui.errors import ExitCode, FmtuiError, RunError, UsageError, print_error
from fmtui.resources import available_cores
from fmtui.streams import guarded_output, guarded_terminal


class FieldType(click.ParamType):
    """A click type that parses with the option's own parser, the one the TUI form uses."""

    def __init__(self, option: Option):
        self.option, self.name = option, option.name

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return self.option.metavar

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self.option.parse(value)  # the option's own parser, the one parse_field uses
        except ConfigError as e:
            self.fail(e.reason, param, ctx)  # click names the option itself

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        """The choices that start with what is typed."""
        return [CompletionItem(c) for c in self.option.choices if c.startswith(incomplete.lower())]


class ListType(FieldType):
    """A sweep's list of the option's values, kept as text (fmtui.sweep.split_list parses it)."""

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return f"{self.option.metavar}[,...]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return value

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        """After a separator, the next value: unit,s -> unit,symmetric."""
        done, sep, last = incomplete.rpartition(self.option.sep)
        return [CompletionItem(done + sep + c.value) for c in super().shell_complete(ctx, param, last)]


class YesNo(click.types.BoolParamType):
    """A flag's environment variable (FMTUI_NO_DOWNLOAD=1): click's own message lists "" among the values."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            self.fail(f"{value!r} is neither yes nor no: 1, true, yes, on, or 0, false, no, off", param, ctx)


D = RunConfig()
DIR = click.Path(file_okay=False, path_type=Path)
YES_NO = YesNo()


def run_options(multiple: bool = False, listed: str = "a list to sweep") -> Callable:
    """Decorate a command with every RunConfig option (as lists for sweeps when multiple=True; `listed` says
    what a list is for in --help).

    A yes/no option reads the same in `train` and `sweep`: --batch-norm (yes), --batch-norm no and
    --no-batch-norm (no); a sweep also takes a list, --batch-norm yes,no. See `fold_negations`."""

    def decorate(f: Callable) -> Callable:
        for opt in reversed(OPTIONS.values()):
            kind: dict[str, Any] = {"type": FieldType(opt)}
            helptext, metavar = opt.help, opt.metavar
            if opt.flag:  # the value is optional: --x alone is yes; --no-x (not listed) is no
                f = click.option(f"--no-{opt.cli}", f"no_{opt.name}", is_flag=True, hidden=True)(f)
                kind |= {"is_flag": False, "flag_value": "yes"}
                helptext, metavar = f"{helptext}; --{opt.cli} alone = yes, --no-{opt.cli} = no", f"[{metavar}]"
            helptext = f"{helptext} [{format_value(getattr(D, opt.name))}]"
            if multiple:
                more = f"; repeat the option or separate the values with '{opt.sep}'" if opt.sep != "," else ""
                kind |= {"type": ListType(opt), "multiple": True}
                helptext, metavar = f"{helptext} ({listed}{more})", f"{metavar}[,...]"
            f = click.option(f"--{opt.cli}", opt.name, metavar=metavar, help=helptext, **kind)(f)
        return click.option(
            "--data-dir",
            type=DIR,
            help="Folder with the dataset files [as fmtui --data-dir: $FMTUI_DATA_DIR or the user cache]",
        )(f)

    return decorate


def fold_negations(values: dict[str, Any]) -> dict[str, Any]:
    """Turn each --no-x into x = no (for a sweep: one more value in x's list); both for one run is an error."""
    for opt in OPTIONS.values():
        if not values.pop(f"no_{opt.name}", False):
            continue
        given = values.get(opt.name)
        if isinstance(given, tuple):
            values[opt.name] = (*given, "no")
        elif given is not None:
            raise click.UsageError(f"--{opt.cli} and --no-{opt.cli} contradict each other; give one")
        else:
            values[opt.name] = False
    return values


def config_from(values: dict[str, Any], base: RunConfig | None = None) -> RunConfig:
    """A RunConfig from parsed options over `base` (the lecture's defaults unless --config names a run's)."""
    fields = {k: v for k, v in values.items() if k in OPTIONS and v is not None}
    if values.get("data_dir") is not None:
        fields["data_dir"] = str(values["data_dir"])
    cfg = (base or RunConfig()).replace(**fields)
    if "momentum" in fields and cfg.momentum > 0 and cfg.optimizer != "sgd":
        raise ConfigError(f"--momentum applies to --optimizer sgd only ({cfg.optimizer} ignores it)")
    return cfg.validate()


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--no-ui", is_flag=True, help="Train headless (scripts, nohup, CI): no dashboard.")
@click.option(
    "--data-dir",
    type=DIR,
    envvar="FMTUI_DATA_DIR",
    show_envvar=True,
    help="Folder with the dataset files [the user cache: ~/.cache/fmtui/data]",
)
@click.option("--runs-dir", type=DIR, envvar="FMTUI_RUNS_DIR", show_envvar=True, help="Where run folders go [./runs]")
@click.option(
    "--no-download",
    is_flag=True,
    type=YES_NO,
    envvar="FMTUI_NO_DOWNLOAD",
    show_envvar=True,
    help="Never download a dataset: missing files are an error.",
)
@click.option(
    "--debug",
    is_flag=True,
    type=YES_NO,
    envvar="FMTUI_DEBUG",
    show_envvar=True,
    help="Show the traceback of an unexpected error.",
)
@click.version_option(__version__, prog_name="fmtui")
@click.pass_context
def cli(ctx: click.Context, no_ui: bool, data_dir: Path | None, runs_dir: Path | None, **flags: bool) -> None:
    """fmtui: train small networks on Fashion-MNIST and watch them learn, in the terminal.

    \b
    fmtui                            open the dashboard
    fmtui train [OPTIONS]            train in the dashboard (headless with --no-ui, --json, --out
                                     or without a terminal; defaults = the lecture's MLP)
    fmtui eval RUN_DIR               re-evaluate a saved run on the test split
    fmtui sweep [OPTIONS]            train a grid of configs and compare them
    fmtui tune [OPTIONS]             search lists and ranges of options with Optuna (the tune extra)
    fmtui runs [RUNS_DIR]            list the runs: status, epochs, accuracy
    fmtui lr-find [OPTIONS]          suggest a learning rate (the LR range test)
    fmtui watch [RUN_DIR]            open the dashboard on a run another process trains
    fmtui export --csv FILE RUN...   runs as one CSV table (--tensorboard DIR: event files, --follow: live)

    Options of fmtui itself (--data-dir, --runs-dir) also apply to its commands; a command's own wins.
    Shell completion: eval "$(_FMTUI_COMPLETE=bash_source fmtui)" (zsh_source, fish_source).
    """
    ctx.obj = Common(no_ui=no_ui, data_dir=typed(ctx, "data_dir"), runs_dir=typed(ctx, "runs_dir"))
    for name, on in flags.items():  # the library reads these from the environment, in every thread
        os.environ.pop(f"FMTUI_{name.upper()}", None)
        if on:
            os.environ[f"FMTUI_{name.upper()}"] = "1"
    if ctx.invoked_subcommand is None:
        if no_ui:
            raise click.UsageError("--no-ui needs a command: train, eval, sweep, tune, runs, lr-find or export")
        given = ctx.obj.data_dir
        launch_tui(RunConfig(data_dir=str(given) if given else None), runs_dir=ctx.obj.runs_dir)


@dataclass(frozen=True)
class Common:
    """fmtui's own options that its commands take too (a command's own value wins)."""

    no_ui: bool = False
    data_dir: Path | None = None
    """Given on the command line; None = the command's own, else $FMTUI_DATA_DIR, else the user cache."""
    runs_dir: Path | None = None
    """Given on the command line; None = the command's own, else $FMTUI_RUNS_DIR, else ./runs."""


def typed(ctx: click.Context, name: str) -> Any:
    """An option's value when typed on the command line; None when it came from the environment or default
    (the environment is read where the value is used, so each command keeps its own fallback)."""
    return ctx.params[name] if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE else None


def common(ctx: click.Context) -> Common:
    return ctx.find_object(Common) or Common()


def no_ui_option(f: Callable) -> Callable:
    """`--no-ui` where users type it: commands that never open the dashboard accept it and need no other."""
    return click.option("--no-ui", is_flag=True, hidden=True, help="Accepted; this command has no dashboard.")(f)


def _into_common(field: str) -> Callable:
    """An option callback that hands a value typed after a command's name to it as fmtui's own (Common)."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value:
            ctx.obj = dataclasses.replace(common(ctx), **{field: value})

    return callback


def _into_environment(name: str) -> Callable:
    """An option callback for a flag that fmtui passes on through the environment (read in every thread)."""

    def callback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        if value:
            os.environ[name] = "1"

    return callback


SHARED_OPTIONS: dict[str, dict[str, Any]] = {
    "--data-dir": {
        "type": DIR,
        "callback": _into_common("data_dir"),
        "help": "Folder with the dataset files [as fmtui --data-dir: $FMTUI_DATA_DIR or the user cache]",
    },
    "--runs-dir": {
        "type": DIR,
        "callback": _into_common("runs_dir"),
        "help": "Where run folders go [as fmtui --runs-dir: $FMTUI_RUNS_DIR or ./runs]",
    },
    "--no-download": {
        "is_flag": True,
        "callback": _into_environment("FMTUI_NO_DOWNLOAD"),
        "help": "Never download a dataset: missing files are an error (as fmtui --no-download).",
    },
    "--debug": {
        "is_flag": True,
        "callback": _into_environment("FMTUI_DEBUG"),
        "help": "Show the traceback of an unexpected error (as fmtui --debug).",
    },
    "--no-ui": {"is_flag": True, "callback": _into_common("no_ui"), "hidden": True},
}
"""fmtui's own options, as every command takes them after its name (see shared_options)."""


def shared_options(*unused: str) -> Callable:
    """Give a command each of fmtui's own options it does not declare itself, so that `fmtui CMD --runs-dir X`
    means `fmtui --runs-dir X CMD`: the value reaches the command the same way (Common for the folders and
    --no-ui, the environment for the flags). Those in `unused` (`--data-dir` for `runs`) have no use in the
    command: accepted and hidden from its help, as fmtui takes them before any command. Put it right under
    @cli.command, so that it sees the command's own options."""

    def decorate(f: Callable) -> Callable:
        params = f.__dict__.setdefault("__click_params__", [])
        declared = {opt for p in params for opt in p.opts}
        for flag, kind in SHARED_OPTIONS.items():
            if flag not in declared:
                name = "shared_" + flag.removeprefix("--").replace("-", "_")
                option = click.Option([flag, name], expose_value=False, **{"hidden": flag in unused, **kind})
                params.insert(0, option)  # listed after the command's own options
        return f

    return decorate


def launch_tui(
    cfg: RunConfig, autostart: bool = False, runs_dir: Path | None = None, watch: Path | None = None
) -> None:
    """The dashboard, in this terminal or under a driver of Textual's own choosing (textual serve, textual run)."""
    if not sys.stdout.isatty() and not os.environ.get("TEXTUAL_DRIVER"):
        raise click.UsageError("the dashboard needs a terminal; use fmtui --no-ui train ... for scripts")
    from fmtui.app import make_app

    # Ctrl+C is a key in the dashboard; SIGTERM, SIGHUP, SIGQUIT and a SIGINT from outside stop it as `q` does
    app = make_app(cfg, runs_dir=runs_dir, autostart=autostart, watch=watch, signals=True)
    with guarded_terminal():  # a terminal that hangs up must not stop the app from leaving (or training on)
        app.run()
    signals.install()  # the app's event loop gave the signals back to their default action as it closed
    leave(app.return_code or 0)


def leave(code: int) -> None:
    """Exit now: once torch is loaded, interpreter teardown takes 1-2 s more (measured), which made
    quitting the dashboard feel stuck. By now the app's workers have ended and the run folders are
    written; any other thread still running is given time to finish first."""
    if "torch" in sys.modules:
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join(timeout=10)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


@cli.command()
@shared_options()
@run_options()
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    metavar="CONFIG_JSON",
    help="Start from a run's config.json (or its folder); the options given change it.",
)
@click.option("--no-ui", is_flag=True, help="Train headless, as fmtui --no-ui train.")
@click.option("--out", type=DIR, help="Run folder to write (headless) [RUNS_DIR/<date>-<config>]")
@click.option("--runs-dir", type=DIR, help="Where new run folders go [$FMTUI_RUNS_DIR or ./runs]")
@click.option("--json", "json_mode", is_flag=True, help="Print one JSON object per event instead of text (headless).")
@click.option(
    "--resume",
    type=DIR,
    metavar="RUN_DIR",
    help="Go on training an interrupted, stopped or completed run in its folder (headless; --epochs: more).",
)
@click.option(
    "--take-over",
    is_flag=True,
    help="With --resume: go on with a run that another host's process was writing and never ended (it is gone).",
)
@click.option(
    "--progress-interval",
    type=FieldType(Option("", number(float, low=0.0, high=3600.0), "SECONDS", name="progress_interval")),
    default="0.1",
    help="Seconds between progress events (--json lines, the progress bar) [0.1]",
)
@click.pass_context
def train(
    ctx: click.Context,
    config_file: Path | None,
    no_ui: bool,
    out: Path | None,
    runs_dir: Path | None,
    json_mode: bool,
    resume: Path | None,
    take_over: bool,
    progress_interval: float,
    **values: Any,
) -> None:
    """Train one model: in the dashboard when run in a terminal; headless with --no-ui, --json, --out or
    --resume, or when the output is no terminal."""
    shared = common(ctx)
    runs_dir = runs_dir or shared.runs_dir
    values = fold_negations(values)
    values["data_dir"] = values["data_dir"] or shared.data_dir
    if resume is not None:
        if config_file is not None:
            raise click.UsageError("--resume goes on with the run's own config; --config cannot change it")
        warm_up([])
        return ctx.exit(resume_run(resume, out, runs_dir, json_mode, values, progress_interval, take_over))
    if take_over:
        raise click.UsageError("--take-over goes with --resume RUN_DIR")
    cfg = config_from(values, read_config(config_file) if config_file is not None else None)
    if not (no_ui or shared.no_ui or json_mode or out is not None or not sys.stdout.isatty()):
        return launch_tui(cfg, autostart=True, runs_dir=runs_dir)
    warm_up([])  # torch from now on, beside the checks below and the data
    from fmtui.headless import check_out, run_training

    check_out(out, runs_dir)  # before the data is loaded
    note_threads([cfg])
    warm_up([cfg])
    code = run_training(cfg, out=out, runs_dir=runs_dir, json_mode=json_mode, progress_interval=progress_interval)
    ctx.exit(code)


def read_config(path: Path) -> RunConfig:
    """--config: a run's config.json, checked as the run readers check it; a bad one is one line, exit 2."""
    from fmtui.runfolder.read import read_run_config

    try:
        return read_run_config(path)
    except RunError as e:
        raise UsageError(f"--config {e}") from None


RESUME_CHANGES = ("epochs", "device", "threads", "data_dir")
"""What --resume may change: the epochs to reach, and where it trains; the rest is the run's own config."""


def resume_run(
    run_dir: Path,
    out: Path | None,
    runs_dir: Path | None,
    json_mode: bool,
    values: dict,
    progress_interval: float,
    take_over: bool = False,
) -> int:
    """`train --resume RUN_DIR`: always headless, in the run's own folder, with its own config."""
    given = [k.replace("_", "-") for k, v in values.items() if v is not None and k not in RESUME_CHANGES]
    given += [name for name, v in (("out", out), ("runs-dir", runs_dir)) if v is not None]
    if given:
        others = ", ".join(f"--{name}" for name in given)
        raise click.UsageError(f"--resume goes on with the run's own config and folder; {others} cannot change them")
    from fmtui.headless import resume_training

    changes = {k: values[k] for k in RESUME_CHANGES if k != "epochs"}
    if changes["data_dir"] is not None:
        changes["data_dir"] = str(changes["data_dir"])
    return resume_training(
        run_dir,
        epochs=values["epochs"],
        json_mode=json_mode,
        progress_interval=progress_interval,
        take_over=take_over,
        **changes,
    )


@cli.command(name="eval")
@shared_options("--runs-dir")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--device", type=FieldType(OPTIONS["device"]), help="Device [auto]")
@click.option("--data-dir", type=DIR, help="Dataset folder [as trained]")
@click.option("--json", "json_mode", is_flag=True, help="Print the result as one JSON object.")
@no_ui_option
@click.pass_context
def eval_cmd(
    ctx: click.Context, run_dir: Path, device: str | None, data_dir: Path | None, json_mode: bool, no_ui: bool
) -> None:
    """Re-evaluate the saved model of RUN_DIR on the test split."""
    warm_up([])
    from fmtui.headless import run_eval

    data_dir = data_dir or common(ctx).data_dir
    ctx.exit(run_eval(run_dir, device=device, data_dir=data_dir, json_mode=json_mode))


@cli.command(name="runs")
@shared_options("--data-dir", "--no-download")
@click.argument("runs_dir", required=False, type=click.Path(path_type=Path))
@click.option("--json", "json_mode", is_flag=True, help="Print one JSON object per run.")
@click.option(
    "--filter",
    "query",
    metavar="QUERY",
    callback=lambda ctx, param, text: parse_query(text),
    help="Only the runs that match, e.g. 'norm:zscore lr>=1e-3 health:ok -model:cnn' ('|' for or; bare words "
    "match the folder name; fields: every option, status, health, name, test_acc, val_acc, best_test_acc, ...).",
)
@no_ui_option
@click.pass_context
def runs_cmd(ctx: click.Context, runs_dir: Path | None, json_mode: bool, query: Any, no_ui: bool) -> None:
    """List the runs in RUNS_DIR [fmtui --runs-dir, $FMTUI_RUNS_DIR or ./runs]: status (interrupted, broken),
    epochs, accuracy."""
    from fmtui.headless import run_list
    from fmtui.runfolder.read import default_runs_dir

    base = runs_dir or common(ctx).runs_dir or default_runs_dir()
    ctx.exit(run_list(base, json_mode=json_mode, query=query))


def parse_query(text: str | None) -> Any:
    """--filter's text as a fmtui.runquery.Query (None when not given); a query that cannot be read is one line
    naming the column, exit 2."""
    if text is None:
        return None
    from fmtui.runquery import Query, QueryError

    try:
        return Query(text)
    except QueryError as e:
        raise click.BadParameter(str(e)) from None


@cli.command(name="watch")
@shared_options()
@click.argument("run_dir", required=False, type=DIR)
@click.option(
    "--runs-dir",
    type=DIR,
    help="Where to look for the newest running run, and what the Runs pane lists [$FMTUI_RUNS_DIR or ./runs]",
)
@click.option("--data-dir", type=DIR, help="Dataset folder [as trained]")
@click.pass_context
def watch_cmd(ctx: click.Context, run_dir: Path | None, runs_dir: Path | None, data_dir: Path | None) -> None:
    """Open the dashboard on RUN_DIR [the newest running run in RUNS_DIR], followed live in the Train pane.

    The run goes on in its own process (headless, or another dashboard); x asks it to stop after its batch.
    """
    shared = common(ctx)
    if shared.no_ui:
        raise click.UsageError("watch opens the dashboard; for a look without it: fmtui runs")
    from fmtui.runfolder.read import default_runs_dir, read_run
    from fmtui.watch import newest_running

    runs_dir, data_dir = runs_dir or shared.runs_dir, data_dir or shared.data_dir
    base = runs_dir or default_runs_dir()
    if run_dir is None:
        record = newest_running(base)
        if record is None:
            listing = "fmtui runs" + (f" {base}" if base != default_runs_dir() else "")
            raise UsageError(
                f"no run is training in {base} (a run shows there a few seconds after it starts, once its data is"
                f" loaded; {listing} lists the others; or give RUN_DIR)"
            )
        run_dir = record.path
    else:
        read_run(run_dir)  # RunError: one line naming the file, exit 2
    launch_tui(RunConfig(data_dir=str(data_dir) if data_dir else None), runs_dir=runs_dir, watch=run_dir)


@cli.command()
@shared_options()
@run_options(multiple=True)
@click.option("--out", type=DIR, help="Sweep folder [RUNS_DIR/sweep-<date>]")
@click.option("--runs-dir", type=DIR, help="Where the sweep folder goes [$FMTUI_RUNS_DIR or ./runs]")
@click.option("--json", "json_mode", is_flag=True, help="Print one JSON object per finished run, then the summary.")
@click.option(
    "--stacked/--sequential",
    default=None,
    help="Train the runs that can be stacked as one model, or one by one [as measured faster: stacked on a GPU; "
    "on a CPU only softmax regressions at batch sizes up to 64]",
)
@no_ui_option
@click.pass_context
def sweep(
    ctx: click.Context,
    out: Path | None,
    runs_dir: Path | None,
    json_mode: bool,
    stacked: bool | None,
    no_ui: bool,
    **values: Any,
) -> None:
    """Train every combination of the listed values and compare them.

    \b
    fmtui sweep --model softmax --norm none,unit,symmetric,zscore --lr 0.01,1e-5
    fmtui sweep --hidden 256 --hidden 512,256 --val-split 0.1 --batch-norm yes,no
    """
    warm_up([])
    from fmtui.sweep import expand_grid, split_list

    shared = common(ctx)
    data_dir = values.pop("data_dir") or shared.data_dir
    values = fold_negations(values)
    lists = {f: [item for text in texts for item in split_list(f, text)] for f, texts in values.items() if texts}
    base = RunConfig(data_dir=str(data_dir) if data_dir else None)
    configs = expand_grid(base, lists)
    ignored = sorted({c.optimizer for c in configs if c.momentum > 0 and c.optimizer != "sgd"})
    if ignored:
        click.echo(
            f"Note: --momentum applies to --optimizer sgd only; the {', '.join(ignored)} runs ignore it", err=True
        )
    note_threads(configs)
    warm_up(configs)
    from fmtui.headless import run_sweep_cli

    runs_dir = runs_dir or shared.runs_dir
    ctx.exit(run_sweep_cli(configs, out=out, runs_dir=runs_dir, json_mode=json_mode, stacked=stacked))


@cli.command()
@shared_options()
@run_options(multiple=True, listed="a list to choose from, or a range a..b")
@click.option(
    "--trials", type=click.IntRange(1, 100_000), help="Trials of the study, over all its workers [20; grid: all]"
)
@click.option("--sampler", type=click.Choice(("tpe", "random", "grid")), help="How trials are chosen [tpe]")
@click.option("--pruner", type=click.Choice(("asha", "median", "none")), help="How trials are stopped early [asha]")
@click.option("--study", metavar="NAME", help="The study to create, or to join as one more worker [tune-<date>]")
@click.option(
    "--storage",
    metavar="URL",
    help="Where the study lives: sqlite:///FILE, postgresql://..., or a journal file [RUNS_DIR/NAME/journal.log]",
)
@click.option(
    "--workers", type=click.IntRange(1, 1024), help="Worker processes to start here [one per visible GPU, else 1]"
)
@click.option("--runs-dir", type=DIR, help="Where the study's folder goes [$FMTUI_RUNS_DIR or ./runs]")
@click.option("--json", "json_mode", is_flag=True, help="Print one JSON object per finished trial, then the study's.")
@no_ui_option
@click.pass_context
def tune(
    ctx: click.Context,
    trials: int | None,
    sampler: str | None,
    pruner: str | None,
    study: str | None,
    storage: str | None,
    workers: int | None,
    runs_dir: Path | None,
    json_mode: bool,
    no_ui: bool,
    **values: Any,
) -> None:
    """Search hyperparameters with Optuna: lists (--norm unit,zscore) and ranges (--lr 1e-5..1, log scale for lr,
    weight decay, hidden sizes and batch size) of any option; each trial is a run folder in RUNS_DIR/NAME, ranked on
    its validation accuracy (--val-split, 0.1 unless given), with its test accuracy beside it.

    \b
    fmtui tune --lr 1e-4..1 --weight-decay 1e-6..1e-2 --hidden 64..1024 --dropout 0..0.5 --trials 32
    fmtui tune --study NAME      join a study as one more worker (here, or on a machine that sees its folder)
    """
    from fmtui.tune.headless import run_tune
    from fmtui.tune.space import split_items

    shared = common(ctx)
    data_dir = values.pop("data_dir") or shared.data_dir
    values = fold_negations(values)
    texts = {f: [item for text in texts for item in split_items(f, text)] for f, texts in values.items() if texts}
    options = {"trials": trials, "sampler": sampler, "pruner": pruner, "study": study, "storage": storage}
    runs_dir = runs_dir or shared.runs_dir
    data = str(data_dir) if data_dir else None
    ctx.exit(run_tune(texts, data_dir=data, workers=workers, runs_dir=runs_dir, json_mode=json_mode, **options))


@cli.command(name="lr-find")
@shared_options()
@run_options()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV file for the curve [RUNS_DIR/lr-find/<date>-...]",
)
@click.option(
    "--start-lr", type=click.FloatRange(min=0, min_open=True), metavar="LR", help="First learning rate [1e-07]"
)
@click.option("--end-lr", type=click.FloatRange(min=0, min_open=True), metavar="LR", help="Last learning rate [10]")
@click.option(
    "--steps", type=click.IntRange(min=20, max=100_000), metavar="N", help="Most steps, first lr to last (20+) [300]"
)
@click.option(
    "--json", "json_mode", is_flag=True, help="Print the result, curve included, as one JSON line (docs/events.md)."
)
@no_ui_option
@click.pass_context
def lr_find(ctx: click.Context, out: Path | None, json_mode: bool, no_ui: bool, **values: Any) -> None:
    """Suggest a learning rate: train fresh weights of this config for a few hundred steps while the learning
    rate grows exponentially, and find where the smoothed loss falls fastest (no run is written or touched).

    \b
    fmtui lr-find                                    the lecture's MLP
    fmtui lr-find --model softmax --norm none        raw pixels want a far smaller lr
    """
    search = {k: values.pop(k) for k in ("start_lr", "end_lr", "steps") if values.get(k) is not None}
    shared = common(ctx)
    values = fold_negations(values)
    values["data_dir"] = values["data_dir"] or shared.data_dir
    cfg = config_from(values)
    warm_up([cfg])
    from fmtui.headless import run_lr_find

    note_threads([cfg])
    ctx.exit(run_lr_find(cfg, out=out, runs_dir=shared.runs_dir, json_mode=json_mode, **search))


def warm_up(configs: list[RunConfig]) -> None:
    """Start importing the engine (torch: 1-2 s) in a background thread, once, and read the configs' data
    in this one meanwhile (fmtui.idx: numpy and the decoded-data cache, torch-free). The command's own
    `import` of the engine then waits for the thread; errors are left to that import and to the data's
    real load, which say them as usual."""
    from fmtui import idx  # numpy, before the thread starts: the two never import one module at once

    global _engine_import
    if _engine_import is None and "fmtui.engine" not in sys.modules:
        _engine_import = threading.Thread(target=_import_engine, name="fmtui-import-engine", daemon=True)
        _engine_import.start()
    for dataset, data_dir in dict.fromkeys((c.dataset, c.data_dir) for c in configs):
        idx.preload(dataset, data_dir)


_engine_import: threading.Thread | None = None


def _import_engine() -> None:
    """The engine, then torch._dynamo: every torch.optim step imports it (about as long as torch itself,
    measured), so it comes here too rather than in the middle of the first training step."""
    import importlib

    try:
        for module in ("fmtui.engine", "torch._dynamo"):
            importlib.import_module(module)
    except BaseException:  # noqa: BLE001 - the command's own import raises it again, where it is reported
        pass


def note_threads(configs: list[RunConfig]) -> None:
    """--threads above the cores fmtui may use is capped (fmtui.resources.usable_threads): say so, once."""
    asked, cores = max(c.threads for c in configs), available_cores()
    if asked > cores:
        click.echo(f"Note: --threads {asked} is more than the {cores} cores here; CPU training uses {cores}", err=True)


@cli.command()
@shared_options("--data-dir", "--runs-dir", "--no-download")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(allow_dash=True, path_type=Path),
    metavar="FILE",
    help="Write one CSV table here: a row per run and epoch, the Runs pane's columns; - = stdout.",
)
@click.option(
    "--tensorboard",
    "tensorboard_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write TensorBoard event files here, one sub-folder per run (needs tensorboardX).",
)
@click.option(
    "--follow",
    is_flag=True,
    help="With --tensorboard: go on writing each run's new epochs (and a folder's new runs) as they train; "
    "end when all have ended (a --csv is written then).",
)
@no_ui_option
@click.pass_context
def export(
    ctx: click.Context,
    runs: tuple[Path, ...],
    csv_file: Path | None,
    tensorboard_dir: Path | None,
    follow: bool,
    no_ui: bool,
) -> None:
    """Export run folders (or sweep and runs folders) as a CSV table, TensorBoard event files, or both.

    --csv: every run's epochs, one row each, with the run's options and status (the columns of the Runs
    pane's e export; pandas.read_csv reads it). --tensorboard: each run's epochs as scalars, and its options
    with its final and best metrics for TensorBoard's HParams view; W&B (wandb sync --sync-tensorboard) and
    Aim (aim convert tensorboard, scalars only) import these files.

    \b
    fmtui export --csv sweep.csv runs/sweep-20261126-101500
    fmtui export --tensorboard tb runs/sweep-20261126-101500 && tensorboard --logdir tb
    fmtui export --tensorboard tb --follow runs/20261126-101500-fashion-mnist-mlp-symmetric-lr0.01
    """
    if csv_file is None and tensorboard_dir is None:
        raise click.UsageError("export needs a format: --csv FILE, --tensorboard DIR, or both")
    if follow and tensorboard_dir is None:
        raise click.UsageError("--follow needs --tensorboard DIR (a CSV is written once)")
    from fmtui.headless.export import run_export

    ctx.exit(run_export(list(runs), tensorboard_dir, follow=follow, csv_file=csv_file))


def main(argv: list[str] | None = None) -> None:
    """Entry point: run click without its own error printing, so every error is one line (fmtui.errors).

    The stop signals are taken first, before anything heavy is imported (fmtui.signals): until a command has
    something to keep, Ctrl+C, SIGTERM, SIGHUP and SIGQUIT end fmtui at once with 128 + the signal; a
    closed stdout never ends it (see fmtui.streams)."""
    signals.install()
    try:
        with guarded_output():
            code = run_cli(argv)
    finally:
        signals.uninstall()
    sys.exit(code or 0)


def run_cli(argv: list[str] | None) -> int:
    try:
        return cli.main(args=argv, prog_name="fmtui", standalone_mode=False) or 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return ExitCode.INTERRUPTED
    except click.ClickException as e:
        hint = f" (see {e.ctx.command_path} --help)" if isinstance(e, click.UsageError) and e.ctx else ""
        print_error(f"{e.format_message()}{hint}")
        return e.exit_code
    except FmtuiError as e:  # bad input, a folder that cannot be used, a run that failed: one line
        print_error(e)
        return e.exit_code


if __name__ == "__main__":  # pragma: no cover
    main()
