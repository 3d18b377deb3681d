"""Share runs on the HuggingFace Hub: push a run folder to a dataset repo under `data/{run}/` (SLM Lab's
layout), pull runs back into the data folder, list what a repo holds.

Everything goes through huggingface_hub, so its settings apply (`HF_ENDPOINT`, `HF_TOKEN` or its own
login, `HF_HUB_OFFLINE`). Beside the run folders the repo holds `runs.json`, one row per run (the
columns of `looplab list`), and a dataset card (README.md) made from it, both rewritten at each push.
A failure is one line naming the run and the cause (exit code 1). A push only reads the local run; a
pull downloads into a temporary folder inside the data folder and renames each run into place only
once it is complete, so no half-written run folder is ever left there.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from looplab import io
from looplab.analysis.plotly_js import plotly_src
from looplab.analysis.runs import LIST_COLS, run_row
from looplab.analysis.text import fmt
from looplab.errors import LoopLabError
from looplab.runfolder import OPTIM_PATTERNS, REPORT, data_dir, open_run, read_status, run_state
from looplab.spec.catalog import matches

REPO_TYPE = "dataset"
REMOTE_DIR = "data"
INDEX_FILE = "runs.json"
CARD_FILE = "README.md"
REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
RUN_RE = re.compile(r"^[A-Za-z0-9][\w.-]*$")
TS_RE = re.compile(r"(\d{4})_(\d{2})_(\d{2})_(\d{2})(\d{2})(\d{2})(?:_\d+)?$")


class HubError(LoopLabError):
    """The Hub could not be used (no token, refused token, missing repo, network, rate limit...)."""

    exit_code = 1


@dataclass
class Pushed:
    repo: str
    run: str
    files: int
    bytes: int
    seconds: float
    url: str

    def summary(self) -> str:
        return (f"pushed {self.run} to {self.repo}: {self.files} files, {self.bytes / 1e6:.2f} MB in "
                f"{self.seconds:.1f} s\n{self.url}")


# ---- settings -------------------------------------------------------------------------------------
def repo_id(cli_value: str | None = None) -> str:
    """The dataset repo: `--repo`, else `HF_REPO`. A missing or malformed one is a usage error."""
    repo = cli_value or os.environ.get("HF_REPO")
    if not repo:
        raise LoopLabError("no Hub repo: pass --repo OWNER/NAME or set HF_REPO")
    if not REPO_RE.match(repo):
        raise LoopLabError(f"Hub repo '{repo}' is not OWNER/NAME")
    return repo


def token() -> str | None:
    """`HF_TOKEN`, else the token of `hf auth login` (huggingface_hub's own lookup)."""
    from huggingface_hub import get_token

    return get_token()


def check_push(repo: str | None = None) -> str:
    """Before a run that pushes at its end: the repo and a token must be there (nothing is contacted)."""
    repo = repo_id(repo)
    if not token():
        raise HubError("push: no HuggingFace token: set HF_TOKEN or log in with `hf auth login`")
    return repo


def push_requested(run_dir: Path) -> bool:
    """`meta.push` of the spec a run folder saved."""
    paths = open_run(run_dir)
    try:
        return bool((io.read_json(paths.spec()).get("meta") or {}).get("push"))
    except (OSError, ValueError, AttributeError):
        return False


# ---- push -----------------------------------------------------------------------------------------
def push(run_dir: str | Path, repo: str | None = None, private: bool = False, with_optim: bool = False) -> Pushed:
    """Upload a run folder to `repo` under `data/{run}/` and update the dataset card; the local run is only read."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import filter_repo_objects

    paths = open_run(run_dir)
    root, run = paths.root, paths.root.name
    status = read_status(root)
    if run_state(status) == "running":
        raise LoopLabError(f"push {run}: the run is still running (pid {status.get('pid')}); push it once it stops")
    repo = repo_id(repo)
    tok = token()
    if not tok:
        raise HubError(f"push {run}: no HuggingFace token: set HF_TOKEN or log in with `hf auth login`")
    # optimizer states, and the full resume checkpoints that hold them (with replay memories): only with --with-optim
    ignore = [] if with_optim else list(OPTIM_PATTERNS)
    local = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    files = list(filter_repo_objects(local, ignore_patterns=ignore))
    size = sum((root / f).stat().st_size for f in files)
    row = summary_row(root)
    t0 = time.time()
    with hub_errors(f"push {run}", repo, tok):
        api = HfApi(token=tok)
        api.create_repo(repo, repo_type=REPO_TYPE, private=private, exist_ok=True)
        commit = api.upload_folder(repo_id=repo, repo_type=REPO_TYPE, folder_path=root,
                                   path_in_repo=f"{REMOTE_DIR}/{run}", ignore_patterns=ignore,
                                   commit_message=f"Add run {run}")
        _update_card(api, repo, run, row, commit.oid)
    url = f"{api.endpoint}/datasets/{repo}/tree/main/{REMOTE_DIR}/{run}"
    return Pushed(repo, run, len(files), size, time.time() - t0, url)


def summary_row(root: Path) -> dict:
    """The `looplab list` row of a run folder; what run.json lacks (a run of SLM Lab) from its spec and metrics."""
    row = {k: v for k, v in run_row(root).items() if not k.startswith("_")}
    paths = open_run(root)
    spec = io.read_json_object(paths.spec())
    trial = io.read_json_object(paths.trial_metrics(0))
    for key, metric in (("frames", "frame"), ("total_reward_ma", "total_reward_ma"), ("strength", "strength")):
        if row[key] is None:
            row[key] = trial.get(metric)
    if row["status"] == "unknown" and trial:
        row["status"] = "finished"  # SLM Lab writes the trial metrics when the trial ends
    if not row["env"]:
        row["env"] = (spec.get("env") or {}).get("name", "")
    if not row["algorithm"]:
        row["algorithm"] = ((spec.get("agent") or {}).get("algorithm") or {}).get("name", "")
    if not row["date"]:
        row["date"] = _date_of(root.name)
    row["git_sha"] = (spec.get("meta") or {}).get("git_sha")
    return row


def _update_card(api: Any, repo: str, run: str, row: dict, parent: str) -> None:
    """Add the run's row to runs.json and rewrite the card in one commit; retried if someone pushed meanwhile."""
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import HfHubHTTPError

    for attempt in range(5):
        if attempt:
            parent = api.repo_info(repo, repo_type=REPO_TYPE).sha
        index = read_index(api, repo, parent)
        index[run] = {**row, "pushed": time.strftime("%Y-%m-%d %H:%M:%S")}
        # folders pushed by other means (SLM Lab's own sync) get a line too, with what their name tells
        listed = {**{n: {"date": _date_of(n)} for n in _run_folders(api, repo, parent)}, **index}
        ops = [CommitOperationAdd(INDEX_FILE, (json.dumps({"runs": index}, indent=2) + "\n").encode()),
               CommitOperationAdd(CARD_FILE, dataset_card(repo, listed).encode())]
        try:
            api.create_commit(repo, ops, commit_message=f"Card: {run}", repo_type=REPO_TYPE, parent_commit=parent)
            return
        except HfHubHTTPError as e:
            if e.response is None or e.response.status_code != 412:  # 412: a commit landed since `parent`
                raise
    raise HubError(f"push {run}: the repo kept changing while the card was updated; push again")


def read_index(api: Any, repo: str, revision: str | None = None) -> dict[str, dict]:
    """runs.json of the repo: {run: row}; empty where the repo has none (or it does not parse)."""
    from huggingface_hub.errors import EntryNotFoundError

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = api.hf_hub_download(repo, INDEX_FILE, repo_type=REPO_TYPE, revision=revision, local_dir=tmp)
        except EntryNotFoundError:
            return {}
        try:
            runs = io.read_json(path).get("runs")
        except (OSError, ValueError, AttributeError):
            return {}
    return {k: v for k, v in runs.items() if isinstance(v, dict)} if isinstance(runs, dict) else {}


def dataset_card(repo: str, index: dict[str, dict]) -> str:
    """README.md of the repo: what it holds, how to get a run, and one line per run."""
    rows = sorted(index.items(), key=lambda kv: (str(kv[1].get("date") or ""), kv[0]), reverse=True)
    lines = [
        "---", "pretty_name: LoopLab runs", "tags:", "- reinforcement-learning", "- looplab",
        "viewer: false", "---", "", f"# LoopLab runs: {repo}", "",
        f"Run folders of LoopLab deep RL experiments, one per run under `{REMOTE_DIR}/`: the resolved spec "
        "(with the git SHA of the code and every session's seed), session dataframes, metrics, graphs, best "
        f"checkpoints and the report (`{REPORT}`).", "",
        "```bash",
        f"looplab pull RUN --repo {repo}      # into ./data",
        "looplab report data/RUN              # or analyze, plot -f, enjoy@data/RUN",
        "looplab reproduce data/RUN           # re-run it with its saved spec and seeds, and compare",
        "```", "",
        "| run | env | algorithm | frames | trial MA | status | report |",
        "|---|---|---|---|---|---|---|",
    ]
    for run, row in rows:
        report = f"[{REPORT}]({REMOTE_DIR}/{run}/{REPORT})"
        cells = [f"`{run}`", row.get("env") or "–", row.get("algorithm") or "–", fmt(row.get("frames")),
                 fmt(row.get("total_reward_ma")), row.get("status") or "–", report]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


# ---- list / pull ----------------------------------------------------------------------------------
def remote_runs(pattern: str | None = None, repo: str | None = None) -> list[dict]:
    """The runs a repo holds under `data/`, with the columns of `looplab list` (newest first)."""
    from huggingface_hub import HfApi

    repo = repo_id(repo)
    tok = token()
    with hub_errors(f"list --remote {repo}", repo, tok):
        api = HfApi(token=tok)
        sha = api.repo_info(repo, repo_type=REPO_TYPE).sha
        names = _run_folders(api, repo, sha)
        index = read_index(api, repo, sha)
    rows = []
    for name in names:
        if not matches(name, pattern):
            continue
        row = index.get(name) or {"name": name, "date": _date_of(name), "status": "–"}
        rows.append({c: row.get(c) for c in LIST_COLS} | {"name": name, "status": row.get("status") or "–"})
    return sorted(rows, key=lambda r: (str(r.get("date") or ""), r["name"]), reverse=True)


def pull(pattern: str, repo: str | None = None, data: str | None = None, force: bool = False) -> list[tuple[str, str]]:
    """Download the runs matching `pattern` into the data folder; returns (run, 'pulled' | 'skipped')."""
    from huggingface_hub import HfApi, snapshot_download

    pattern = pattern.removeprefix(f"{REMOTE_DIR}/").rstrip("/")
    repo = repo_id(repo)
    tok = token()
    with hub_errors(f"pull '{pattern}' from {repo}", repo, tok):
        api = HfApi(token=tok)
        sha = api.repo_info(repo, repo_type=REPO_TYPE).sha
        names = [n for n in _run_folders(api, repo, sha) if matches(n, pattern)]
    if not names:
        raise HubError(f"pull '{pattern}': no run matching it in {repo}")
    dest = data_dir(data)
    skipped = [n for n in names if (dest / n).exists() and not force]
    wanted = [n for n in names if n not in skipped]
    out = [(n, "skipped") for n in skipped]
    if not wanted:
        return out
    try:
        dest.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".pull-", dir=dest))
    except OSError as e:
        raise LoopLabError(f"pull: cannot write to the data folder {dest}: {e.strerror or e}") from None
    try:
        with hub_errors(f"pull {', '.join(wanted)}", repo, tok):
            snapshot_download(repo, repo_type=REPO_TYPE, revision=sha, local_dir=tmp / "download", token=tok,
                              allow_patterns=[f"{REMOTE_DIR}/{glob.escape(n)}/*" for n in wanted])
        for name in wanted:
            _move_into_place(tmp / "download" / REMOTE_DIR / name, dest / name, tmp)
            out.append((name, "pulled"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # the pages of a run load plotly.js from the data folder, which a fresh data folder may not hold yet
    plotly_src(dest / REPORT, dest)
    return out


def _move_into_place(src: Path, dst: Path, tmp: Path) -> None:
    """Rename a complete download into the data folder; a run it replaces (--force) goes only once it is there."""
    if not src.is_dir():
        raise HubError(f"pull {dst.name}: the download holds no files of it")
    old = None
    if dst.exists():
        old = tmp / f"replaced-{dst.name}"
        os.replace(dst, old)
    try:
        os.replace(src, dst)
    except OSError as e:
        if old is not None:
            os.replace(old, dst)
        raise LoopLabError(f"pull {dst.name}: cannot move it into {dst.parent}: {e.strerror or e}") from None


def _run_folders(api: Any, repo: str, revision: str) -> list[str]:
    """Folder names under data/ (names that could leave the data folder are ignored)."""
    from huggingface_hub.errors import EntryNotFoundError
    from huggingface_hub.hf_api import RepoFolder

    try:
        entries = list(api.list_repo_tree(repo, REMOTE_DIR, repo_type=REPO_TYPE, revision=revision))
    except EntryNotFoundError:
        return []
    names = [e.path.rsplit("/", 1)[-1] for e in entries if isinstance(e, RepoFolder)]
    return sorted(n for n in names if RUN_RE.match(n))


def _date_of(name: str) -> str:
    m = TS_RE.search(name)
    return f"{m[1]}-{m[2]}-{m[3]} {m[4]}:{m[5]}:{m[6]}" if m else ""


# ---- errors ---------------------------------------------------------------------------------------
@contextmanager
def hub_errors(what: str, repo: str, tok: str | None) -> Iterator[None]:
    """Quiet huggingface_hub (no progress bars, warnings or retry logs) and turn its failures into one line."""
    from huggingface_hub.utils import disable_progress_bars
    from huggingface_hub.utils import logging as hf_logging

    disable_progress_bars()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    except LoopLabError:
        raise
    except Exception as e:
        cause = describe(e, repo)
        if cause is None:
            raise
        message = f"{what}: {cause}"
        raise HubError(message.replace(tok, "***") if tok and len(tok) >= 8 else message) from None


def describe(error: BaseException, repo: str) -> str | None:
    """The cause of a Hub failure in a few words, from the innermost error that says something; None if unknown."""
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError

    transport = _transport_errors()
    chain: list[BaseException] = []
    e: BaseException | None = error
    while e is not None and e not in chain and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    endpoint = constants.ENDPOINT
    for e in reversed(chain):
        if isinstance(e, OfflineModeIsEnabled):
            return "HF_HUB_OFFLINE is set, so the Hub is not contacted"
        if isinstance(e, HfHubHTTPError) and e.response is not None:
            status = e.response.status_code
            server = (e.server_message or "").strip().splitlines()
            said = f": {server[0][:200]}" if server else ""
            if status == 401 and "Invalid credentials" in (e.response.headers.get("X-Error-Message") or str(e)):
                return "the Hub refused the token (401 Unauthorized): check HF_TOKEN or `hf auth login`"
            if isinstance(e, RepositoryNotFoundError) or status == 404:
                return f"repo {repo} not found on {endpoint} (or it is private and the token cannot see it)"
            if status == 401:
                return f"not allowed without a valid token (401 Unauthorized){said}"
            if status == 403:
                return f"the token may not write to {repo} (403 Forbidden){said}"
            if status == 429:
                return "rate limited by the Hub (429 Too Many Requests): try again later"
            if status >= 500:
                return f"the Hub failed ({status}): try again later"
            return f"the Hub answered {status}{said}"
        if transport is not None and isinstance(e, transport.ConnectError):
            return f"cannot reach the Hub at {endpoint} ({_reason(e)})"
        if transport is not None and isinstance(e, transport.TimeoutException):
            return f"the Hub at {endpoint} did not answer in time"
        if transport is not None and isinstance(e, transport.TransportError):
            return f"the connection to the Hub was lost mid-transfer ({_reason(e)}): try again"
        if isinstance(e, OSError) and "Consistency check failed" in str(e):
            return "a download was cut short (a file arrived incomplete): try again"
    return None


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:160] if text else type(e).__name__


def _transport_errors() -> Any:
    """The HTTP client module huggingface_hub uses (httpx2 in its 2.x releases, httpx before)."""
    for name in ("httpx2", "httpx"):
        try:
            return __import__(name)
        except ImportError:
            continue
    return None
