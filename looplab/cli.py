"""The `looplab` command line."""

from __future__ import annotations

import os
import sys
from typing import Annotated, NoReturn

import typer

from looplab.errors import LoopLabError

app = typer.Typer(add_completion=False, no_args_is_help=False, pretty_exceptions_enable=False,
                  help="LoopLab: a modular deep RL lab. Spec file -> experiment -> analysis -> record.")

DEMO_FILE, DEMO_NAME = "demo.json", "ppo_cartpole"


@app.callback()
def _root() -> None:
    """LoopLab: a modular deep RL lab. Spec file -> experiment -> analysis -> record."""


@app.command()
def run(
    spec_file: Annotated[str, typer.Argument(help="spec file (JSON or YAML)")] = DEMO_FILE,
    spec_name: Annotated[str, typer.Argument(help="name of a spec in the file")] = DEMO_NAME,
    mode: Annotated[str, typer.Argument(help="dev | train | search | enjoy (train@RUN_DIR resumes)")] = "dev",
    set_vars: Annotated[list[str] | None, typer.Option("-s", help="fill ${var} placeholders: var=value")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="override a key: dotted.path=value")] = None,
    data: Annotated[str | None, typer.Option("--data-dir", help="data folder (default ./data or $LOOPLAB_DATA_DIR)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="search, or a train trial's sessions, on "
                                                    "this Ray cluster (search: default $RAY_ADDRESS, else a local "
                                                    "Ray)")] = None,
    keep: Annotated[int, typer.Option("--keep", help="search: keep the models of the best N trials (-1: all)")] = 3,
    render: Annotated[bool, typer.Option("--render", help="enjoy: show the env (needs a display)")] = False,
    record: Annotated[bool, typer.Option("--record", help="enjoy: write a video of the episodes")] = False,
    episodes: Annotated[int, typer.Option("--episodes", help="enjoy: episodes to replay")] = 5,
    push_run: Annotated[bool, typer.Option("--push", help="push the run folder to the Hub (HF_REPO) when it ends, "
                                           "after the report (as meta.push: true does)")] = False,
    force: Annotated[bool, typer.Option("--force", help="run even where the memory estimate exceeds what is "
                                        "available")] = False,
) -> None:
    """Run a spec: a trial (dev, train), an experiment (search) or a replay (enjoy)."""
    if mode == "train" and not ray_address:  # sessions in processes here: their server imports while this one does
        from looplab.experiment.procs import warm_up_for

        warm_up_for(spec_file, spec_name, set_vars, overrides)
    from looplab.experiment.run import MODES, prepare, run_trial

    base_mode = mode.split("@", 1)[0]
    if base_mode not in MODES:
        raise LoopLabError(f"unknown mode '{mode}': use one of {', '.join(MODES)} (train@RUN_DIR resumes)")
    target = mode.split("@", 1)[1] if "@" in mode else None
    if ray_address and base_mode in ("dev", "enjoy"):
        raise LoopLabError(f"--ray-address: mode '{base_mode}' runs on this machine; train runs its sessions and "
                           "search its trials on a Ray cluster")
    if push_run:
        from looplab.hub import check_push

        check_push()
    if base_mode == "search":
        from looplab.experiment.search import run_search

        paths, _ = run_search(spec_file, spec_name, set_vars, overrides, data, quiet, resume=target,
                              ray_address=ray_address, keep=keep)
        push_after_run(paths.root, push_run)
        return
    if base_mode == "enjoy":
        from looplab.experiment.enjoy import run_enjoy

        root = run_enjoy(spec_file, spec_name, target, set_vars, overrides, data, quiet, render, record, episodes)
        if push_run:  # a replay inherits its source's meta.push: only the flag pushes it
            push_after_run(root, True)
        return
    if target is not None:
        if base_mode != "train":
            raise LoopLabError(f"mode '{mode}': only train@RUN_DIR and enjoy@RUN_DIR take a run folder")
        from looplab.experiment.resume import run_resume

        paths, metrics = run_resume(spec_file, spec_name, target, data, quiet, force, ray_address)
        print_summary(paths, metrics)
        push_after_run(paths.root, push_run)
        return
    raw, spec, file = prepare(spec_file, spec_name, set_vars, overrides)
    if spec.meta.push and not push_run:
        from looplab.hub import check_push

        check_push()
    paths, metrics = run_trial(raw, spec, file, base_mode, data, quiet, force=force, ray_address=ray_address)
    print_summary(paths, metrics)
    push_after_run(paths.root, push_run)


def push_after_run(root, flag: bool) -> None:
    """`--push` or `meta.push: true`: upload the finished run folder (its log file closed first)."""
    from looplab.hub import push, push_requested

    if flag or push_requested(root):
        from looplab.experiment.logs import setup_logging

        setup_logging(None, console=False)
        print(push(root).summary())


def print_summary(paths, metrics: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"trial metrics: {paths.prename(0)}", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("frame", "total_reward_ma", "total_reward_ma_iqm", "strength", "max_strength", "final_strength",
                "sample_efficiency", "training_efficiency", "stability", "consistency"):
        v = metrics.get(key)
        table.add_row(key, "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v))
    console.print(table)
    print(f"run folder: {paths.root}")  # plain print: never wrapped, easy to copy
    if paths.report.exists():
        print(f"report: {paths.report}")


@app.command()
def benchmark(
    suite: Annotated[str, typer.Argument(help="suite file (YAML), or a shipped suite: slm_lab_classic, slm_lab_box2d, looplab_classic, looplab_box2d")],
    out: Annotated[str | None, typer.Option("--out", help="output folder (default DATA/benchmark/SUITE)")] = None,
    rows: Annotated[str | None, typer.Option("--rows", help="rows to run: names, envs or algorithms, comma-separated "
                                                            "globs or substrings")] = None,
    sessions: Annotated[int | None, typer.Option("--sessions", help="sessions per row instead of the suite's")] = None,
    frames: Annotated[str | None, typer.Option("--frames", help="frames per row instead of the suite's (e.g. 2e4)")] = None,
    data: Annotated[str | None, typer.Option("--data-dir", help="data folder (default ./data or $LOOPLAB_DATA_DIR)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
    publish: Annotated[str | None, typer.Option("--publish", help="also write the table into this markdown file, "
                                                                  "e.g. BENCHMARKS.md")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="run failed rows again")] = False,
    rerun: Annotated[bool, typer.Option("--rerun", help="run again the finished rows (of --rows) that were made at "
                                                        "another git SHA than this code's")] = False,
) -> None:
    """Run a benchmark suite row by row (resumable) and write its table: benchmark.md, .csv, graphs."""
    from looplab.experiment.benchmark import run_benchmark

    run_benchmark(suite, out, rows, sessions, frames, data, quiet, publish, retry_failed, rerun)


@app.command()
def report(run_dir: Annotated[str, typer.Argument(help="run folder")]) -> None:
    """Write RUN_DIR/index.html: spec, provenance, metrics, graphs and checkpoints of a run."""
    from looplab.analysis.commands import report as write

    print(write(run_dir))


@app.command()
def plot(
    folders: Annotated[str, typer.Option("-f", "--folders", help="run folders to compare: RUN1,RUN2,...")],
    title: Annotated[str | None, typer.Option("-t", "--title", help="graph title")] = None,
    out: Annotated[str | None, typer.Option("-o", "--out", help="output folder (default DATA/plots)")] = None,
) -> None:
    """One comparison graph of several runs' trial curves (mean ± std), PNG and HTML."""
    from looplab.analysis.commands import plot as draw

    for p in draw([f for f in folders.split(",") if f], title, out):
        print(p)


@app.command("list")
def list_(
    pattern: Annotated[str | None, typer.Argument(help="substring or glob of run folder names")] = None,
    data: Annotated[str | None, typer.Option("--data-dir", help="data folder (default ./data or $LOOPLAB_DATA_DIR)")] = None,
    remote: Annotated[bool, typer.Option("--remote", help="the runs of a Hub dataset repo instead")] = False,
    repo: Annotated[str | None, typer.Option("--repo", help="with --remote: OWNER/NAME (default $HF_REPO)")] = None,
) -> None:
    """A table of the runs in the data folder (or, with --remote, in a Hub dataset repo)."""
    from looplab.analysis.runs import list_runs, print_runs

    if remote:
        from looplab.hub import remote_runs, repo_id

        rows = remote_runs(pattern, repo)
        if not rows:
            print(f"no runs{f' matching {pattern!r}' if pattern else ''} in {repo_id(repo)}")
            return
        print_runs(rows)
        return
    print_runs(list_runs(pattern, data), data)


@app.command()
def specs(
    pattern: Annotated[str | None, typer.Argument(help="substring or glob of spec file paths or spec names")] = None,
) -> None:
    """A table of the shipped spec files (LoopLab's and SLM Lab's): spec, env, algorithm, frames, envs."""
    from looplab.spec.catalog import print_specs, shipped_specs

    print_specs(shipped_specs(pattern))


@app.command()
def keys(
    what: Annotated[str | None, typer.Argument(help="env, meta, or an algorithm, net type or memory name "
                                                    "(any case); none: what there is")] = None,
) -> None:
    """The keys a spec section or component accepts: type, default and what each does."""
    from looplab.agent.keys import keys_of, overview
    from looplab.spec.keys import print_keys

    if what is None:
        for title, names in overview():
            print(f"{title}: {', '.join(names)}")
        print("looplab keys NAME: the keys of one of them")
        return
    print_keys(*keys_of(what))


@app.command()
def push(
    run_dir: Annotated[str, typer.Argument(help="run folder")],
    repo: Annotated[str | None, typer.Option("--repo", help="Hub dataset repo OWNER/NAME (default $HF_REPO)")] = None,
    private: Annotated[bool, typer.Option("--private", help="create the repo private (if it does not exist)")] = False,
    with_optim: Annotated[bool, typer.Option("--with-optim", help="also upload optimizer states and resume "
                                             "checkpoints (model/*_optim.pt, model/*_ckpt.pt)")] = False,
) -> None:
    """Upload a run folder to a Hub dataset repo under data/RUN/ and update its dataset card."""
    from looplab.hub import push as upload

    print(upload(run_dir, repo, private, with_optim).summary())


@app.command()
def pull(
    pattern: Annotated[str, typer.Argument(help="run folder name, substring or glob")],
    repo: Annotated[str | None, typer.Option("--repo", help="Hub dataset repo OWNER/NAME (default $HF_REPO)")] = None,
    force: Annotated[bool, typer.Option("--force", help="replace runs already in the data folder")] = False,
    data: Annotated[str | None, typer.Option("--data-dir", help="data folder (default ./data or $LOOPLAB_DATA_DIR)")] = None,
) -> None:
    """Download the matching runs of a Hub dataset repo into the data folder."""
    from looplab.hub import pull as download
    from looplab.runfolder import data_dir

    for run, what in download(pattern, repo, data, force):
        where = data_dir(data) / run
        print(f"pulled {where}" if what == "pulled" else f"skipped {where} (already there; --force replaces it)")


@app.command()
def reproduce(
    run_dir: Annotated[str, typer.Argument(help="run folder (dev or train)")],
    sessions: Annotated[int | None, typer.Option("--sessions", help="re-run only the first N sessions")] = None,
    frames: Annotated[int | None, typer.Option("--frames", help="stop at N frames (compared up to N)")] = None,
    data: Annotated[str | None, typer.Option("--data-dir", help="data folder (default ./data or $LOOPLAB_DATA_DIR)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
) -> None:
    """Re-run a run's saved spec with its saved seeds into a new folder and compare the two."""
    from looplab.experiment.reproduce import reproduce as rerun

    result = rerun(run_dir, sessions, frames, data, quiet)
    print(result.text)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def analyze(run_dir: Annotated[str, typer.Argument(help="run folder (finished or interrupted)")]) -> None:
    """Recompute every metric and graph of a run from its files, then its report."""
    from looplab.analysis.commands import analyze as redo
    from looplab.experiment.logs import setup_logging

    setup_logging(None, console=True)
    print(redo(run_dir))


def main() -> None:
    """The `looplab` command. It leaves without the interpreter's teardown when nothing is left running
    (`leave`): the teardown of torch's modules alone costs a second or two at the end of every command."""
    try:
        run_command()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
    leave(code)


def leave(code: int) -> NoReturn:
    """Exit with `code`: at once when every output is flushed and nothing could still need the exit's
    cleanup (Ray, child processes, threads that are not daemons); by the ordinary exit otherwise. Every
    file LoopLab writes is complete on disk before it returns (atomic writes, closed TensorBoard writers)."""
    import logging
    import threading

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    ray = sys.modules.get("ray")
    multiprocessing = sys.modules.get("multiprocessing")
    busy = ((ray is not None and ray.is_initialized())
            or (multiprocessing is not None and multiprocessing.active_children())
            or any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()))
    if busy:
        sys.exit(code)
    logging.shutdown()
    os._exit(code)


def run_command() -> None:
    """The command named on the command line; exits (SystemExit) with its code where that is not 0."""
    try:
        rc = app(standalone_mode=False)
    except LoopLabError as e:
        print(f"looplab: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt as e:
        print(f"looplab: interrupted{f' ({e})' if str(e) else ''}", file=sys.stderr)
        sys.exit(getattr(e, "exit_code", 130))
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except Exception as e:  # click usage errors (typer may bring its own copy of click)
        import click

        kinds = [click.exceptions]
        try:
            from typer._click import exceptions as vendored

            kinds.append(vendored)
        except ImportError:
            pass
        if any(isinstance(e, getattr(k, "ClickException", ())) for k in kinds):
            print(f"looplab: error: {e.format_message()}".replace("\n", " "), file=sys.stderr)
            sys.exit(2)
        if any(isinstance(e, getattr(k, "Abort", ())) for k in kinds):
            sys.exit(130)
        raise
    # typer turns KeyboardInterrupt into a return code of 130; a run stopped by a signal exits 128 + signum
    stop = sys.modules.get("looplab.experiment.stop")
    if stop is not None and stop.STOP.signum:
        print(f"looplab: interrupted ({stop.signal.Signals(stop.STOP.signum).name})", file=sys.stderr)
        sys.exit(128 + stop.STOP.signum)
    if isinstance(rc, int) and rc:
        sys.exit(rc)


if __name__ == "__main__":
    main()
