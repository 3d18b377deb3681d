"""`RUN_DIR/index.html`: one self-contained page per run (plotly.js embedded once; works offline).

Spec, provenance (git SHA, dirty flag, seeds, versions, command), the metrics of each trial and its
sessions with what each statistic means, every graph (interactive), and links to the checkpoints.
Everything is read from the run folder's files.
"""

from __future__ import annotations

import html
import json
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from looplab import io
from looplab.analysis import graphs
from looplab.analysis.metrics import METRIC_DOCS, session_metrics
from looplab.analysis.plotly_js import library_dir, missing_plotly_note, plotly_src
from looplab.analysis.text import duration, fmt
from looplab.runfolder import model_file_kind, open_run, read_status

log = logging.getLogger("looplab")

TRIAL_COLS = ["frame", "total_reward_ma", "total_reward_ma_iqm", "total_reward_ma_ci_low", "total_reward_ma_ci_high",
              "strength", "max_strength", "final_strength", "sample_efficiency", "training_efficiency", "stability",
              "consistency"]
STATUS_COLORS = {"finished": "#2ca02c", "running": "#1f77b4", "interrupted": "#ff7f0e", "failed": "#d62728"}

CSS = """
:root { --fg:#1d2330; --muted:#5d6678; --line:#e3e7ee; --bg:#f6f8fb; --card:#fff; --accent:#1f77b4; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color:var(--fg); background:var(--bg); }
header { background:#1d2330; color:#fff; padding:22px 32px; }
header h1 { margin:0 0 4px; font-size:22px; font-weight:600; }
header .sub { color:#b9c2d3; font-size:13px; }
.badge { display:inline-block; padding:1px 9px; border-radius:10px; font-size:12px; color:#fff;
         vertical-align:middle; margin-left:8px; }
main { max-width:1280px; margin:0 auto; padding:20px 32px 48px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:16px 20px; margin:18px 0; }
h2 { font-size:17px; margin:0 0 12px; }
h3 { font-size:14px; margin:16px 0 6px; color:var(--muted); }
.cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(170px, 1fr)); gap:10px; }
.card { background:var(--bg); border-radius:6px; padding:10px 12px; }
.card .k { color:var(--muted); font-size:12px; } .card .v { font-size:18px; font-weight:600; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { padding:5px 8px; border-bottom:1px solid var(--line); text-align:right; white-space:nowrap; }
th:first-child, td:first-child { text-align:left; }
th { background:var(--bg); font-weight:600; position:sticky; top:0; }
tr.trial td { font-weight:600; background:#eef5fc; }
.scroll { overflow-x:auto; }
dl { display:grid; grid-template-columns:max-content 1fr; gap:4px 16px; margin:8px 0 0; font-size:13px; }
dt { font-family:ui-monospace, Menlo, monospace; } dd { margin:0; color:var(--muted); }
details > summary { cursor:pointer; color:var(--accent); margin:6px 0; }
pre { background:var(--bg); padding:12px; border-radius:6px; overflow:auto; max-height:520px; font-size:12px; }
code { font-family:ui-monospace, Menlo, monospace; font-size:12px; }
a { color:var(--accent); }
.graph { margin:8px 0 18px; }
.muted { color:var(--muted); }
footer { color:var(--muted); font-size:12px; text-align:center; margin-top:24px; }
"""


def _e(v: Any) -> str:
    return html.escape(fmt(v))


def _fig_div(fig: Any, div_id: str) -> str:
    return graphs.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id)


class Report:
    """Collects the run folder's files and renders the page."""

    def __init__(self, paths: Any):
        self.paths = paths
        self.status = read_status(paths.root)
        self.spec = io.read_json_object(paths.spec()) or io.read_json_object(paths.spec(0))
        self.meta = self.spec.get("meta", {}) if isinstance(self.spec.get("meta"), dict) else {}
        self.trials = graphs.trial_indices(paths)
        self.figures = 0

    # ---- sections ----------------------------------------------------------------------------
    def header(self) -> str:
        st = self.status.get("status", "unknown")
        env = self.status.get("env") or self.spec.get("env", {}).get("name", "?")
        algo = self.status.get("algorithm") or self.spec.get("agent", {}).get("algorithm", {}).get("name", "?")
        return (f"<header><h1>{html.escape(self.paths.name)}"
                f"<span class='badge' style='background:{STATUS_COLORS.get(st, '#7f7f7f')}'>{html.escape(st)}</span>"
                f"</h1><div class='sub'>{html.escape(str(algo))} on {html.escape(str(env))} · mode "
                f"{html.escape(str(self.status.get('mode', '?')))} · {html.escape(str(self.paths.root))}</div></header>")

    def summary(self) -> str:
        m = io.read_json_object(self.paths.trial_metrics(0)) if self.trials else {}
        ci = ""
        if m.get("total_reward_ma_ci_low") is not None:
            ci = f" <span class='muted' style='font-size:12px'>[{_e(m['total_reward_ma_ci_low'])}, " \
                 f"{_e(m['total_reward_ma_ci_high'])}]</span>"
        wall = self.status.get("wall_time")
        cards = [("total_reward_ma", _e(m.get("total_reward_ma", self.status.get("total_reward_ma"))) + ci),
                 ("strength", _e(m.get("strength", self.status.get("strength")))),
                 ("consistency", _e(m.get("consistency"))),
                 ("frames", _e(m.get("frame", self.status.get("frame")))),
                 ("sessions", _e(m.get("num_sessions"))),
                 ("wall time", html.escape(duration(wall)) if wall is not None else "–"),
                 ("started", _e(self.status.get("started"))),
                 ("finished", _e(self.status.get("finished")))]
        body = "".join(f"<div class='card'><div class='k'>{k}</div><div class='v'>{v}</div></div>" for k, v in cards)
        err = self.status.get("error")
        err_html = f"<p style='color:#d62728'>error: {html.escape(str(err))}</p>" if err else ""
        return f"<section><h2>Summary</h2><div class='cards'>{body}</div>{err_html}</section>"

    def metrics(self) -> str:
        rows = []
        baseline = None
        for t in self.trials:
            tm = io.read_json_object(self.paths.trial_metrics(t))
            baseline = tm.get("random_baseline", baseline)
            rows.append(("trial", f"{self.paths.prename(t)} (trial)", tm))
            for s in self._sessions(t):
                rows.append(("session", self.paths.prename(t, s), self._session_scalar(t, s, tm)))
            em = io.read_json_object(self.paths.trial_info_metrics(t, "eval", scalar=True))
            if em:  # evaluation episodes (meta.rigorous_eval)
                rows.append(("trial", f"{self.paths.prename(t)} eval (trial)", em))
                for s in graphs.session_indices(self.paths, t, "eval"):
                    rows.append(("session", f"{self.paths.prename(t, s)} eval",
                                 io.read_json_object(self.paths.session_metrics(t, s, "eval", scalar=True))))
        if not rows:
            return "<section><h2>Metrics</h2><p class='muted'>no session has logged a checkpoint yet</p></section>"
        head = "".join(f"<th title='{html.escape(METRIC_DOCS.get(c, ''))}'>{c.replace('total_reward_ma_', '')}</th>"
                       for c in TRIAL_COLS)
        body = "".join(f"<tr class='{kind}'><td>{html.escape(label)}</td>"
                       + "".join(f"<td>{_e(m.get(c))}</td>" for c in TRIAL_COLS) + "</tr>" for kind, label, m in rows)
        docs = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in METRIC_DOCS.items())
        return (f"<section><h2>Metrics</h2><div class='scroll'><table><tr><th>unit</th>{head}</tr>{body}</table></div>"
                f"<p class='muted'>Trial rows: means over sessions, plus consistency and the IQM / 95% CI of the final "
                f"total_reward_ma over sessions. Random baseline R_rand = {_e(baseline)}.</p>"
                f"<details><summary>What each statistic means</summary><dl>{docs}</dl></details></section>")

    def _sessions(self, t: int) -> list[int]:
        return graphs.session_indices(self.paths, t)

    def _session_scalar(self, t: int, s: int, tm: dict) -> dict:
        m = io.read_json_object(self.paths.session_metrics(t, s, "train", scalar=True))
        if m or tm.get("random_baseline") is None:
            return m
        try:  # a running or interrupted session has no metrics file yet: compute them from its dataframe
            return session_metrics(pd.read_csv(self.paths.session_df(t, s)), float(tm["random_baseline"]))["scalar"]
        except Exception:
            return {}

    def graphs(self) -> str:
        parts = []
        exp_csv = self.paths.experiment_df()
        if exp_csv.exists():
            parts.append(self._graph("experiment graph", lambda: self._experiment_figure(exp_csv)))
        if len(self.trials) > 1:
            parts.append(self._graph("multi-trial graph", lambda: graphs.figure(graphs.multi_trial_panels(
                {f"t{t}": graphs.trial_session_dfs(self.paths, t) for t in self.trials}), "trials")))
        for t in self.trials:
            baseline = graphs.saved_baseline(self.paths, t)
            parts.append(f"<h3>trial {t}: mean over sessions ±1 std, sessions faintly behind</h3>")
            parts.append(self._graph(f"{self.paths.prename(t)} trial graph", lambda t=t, b=baseline: graphs.figure(
                graphs.trial_panels(graphs.trial_session_dfs(self.paths, t), b), self.paths.prename(t))))
            if graphs.session_indices(self.paths, t, "eval"):
                parts.append(f"<h3>trial {t}: evaluation episodes (no exploration, an env of their own), mean over "
                             f"sessions ±1 std</h3>")
                parts.append(self._graph(f"{self.paths.prename(t)} eval trial graph", lambda t=t, b=baseline:
                                         graphs.figure(graphs.trial_panels(graphs.trial_session_dfs(self.paths, t, "eval"),
                                                                           b), f"{self.paths.prename(t)} eval")))
            for s in self._sessions(t):
                pre = self.paths.prename(t, s)
                fig = self._graph(f"{pre} session graph", lambda t=t, s=s, pre=pre: graphs.figure(
                    graphs.session_panels(graphs.read_session_df(self.paths.session_df(t, s))), pre))
                parts.append(f"<details open><summary>session {s}: learning dynamics</summary>{fig}</details>")
        if not parts:
            parts.append("<p class='muted'>no graph yet</p>")
        tb = f"tensorboard --logdir {self.paths.root}"
        return (f"<section><h2>Graphs</h2>{''.join(parts)}<p class='muted'>PNG versions are in "
                f"<a href='graph/'>graph/</a> and the run folder. TensorBoard: <code>{html.escape(tb)}</code></p>"
                f"</section>")

    def _experiment_figure(self, csv: Path) -> Any:
        df = pd.read_csv(csv)
        searched = [c for c in df.columns if c not in METRIC_DOCS and c != "trial"]  # the rest: hyperparameters
        return graphs.experiment_figure(df, searched, [m for m in graphs.EXPERIMENT_METRICS if m in df.columns],
                                        self.paths.name)

    def _graph(self, name: str, make) -> str:
        try:
            fig = make()
        except Exception as e:  # the page still renders; the missing graph is named in the log and on the page
            log.error("graph %s could not be drawn: %s: %s", name, type(e).__name__, e)
            return f"<p style='color:#d62728'>graph {html.escape(name)} could not be drawn: {html.escape(str(e))}</p>"
        self.figures += 1
        return f"<div class='graph'>{_fig_div(fig, f'graph-{self.figures}')}</div>"

    def checkpoints(self) -> str:
        files = sorted(self.paths.model_dir.glob("*")) if self.paths.model_dir.is_dir() else []
        if not files:
            return "<section><h2>Checkpoints</h2><p class='muted'>none</p></section>"
        rows = "".join(f"<tr><td><a href='model/{html.escape(p.name)}'>{html.escape(p.name)}</a></td>"
                       f"<td>{io.format_bytes(p.stat().st_size)}</td><td>{model_file_kind(p.name)}</td></tr>" for p in files if p.is_file())
        return (f"<section><h2>Checkpoints</h2><div class='scroll'><table><tr><th>file</th><th>size</th>"
                f"<th>what</th></tr>{rows}</table></div></section>")

    def provenance(self) -> str:
        m = self.meta
        sha = m.get("git_sha", "unknown")
        dirty = m.get("git_dirty")
        seeds = m.get("session_seeds") or []
        versions = m.get("versions") or {}
        items = [("git SHA", f"<code>{html.escape(str(sha))}</code>"
                  + (" <b style='color:#d62728'>dirty</b> (uncommitted changes)" if dirty else
                     " clean" if dirty is False else " (dirty flag unknown)")),
                 ("random_seed", html.escape(str(m.get("random_seed", "–")))),  # seeds: no digit grouping
                 ("session seeds", ", ".join(f"s{i}: {html.escape(str(s))}" for i, s in enumerate(seeds)) or "–"),
                 ("command", f"<code>{html.escape(str(m.get('command', '–')))}</code>"),
                 ("spec file", html.escape(str(self.status.get("spec_file", "–")))),
                 ("versions", ", ".join(f"{html.escape(k)} {html.escape(str(v))}" for k, v in versions.items()) or "–")]
        if m.get("distributed"):
            items.append(("determinism", f"not bit-reproducible: Hogwild (meta.distributed: "
                          f"{html.escape(str(m['distributed']))}), the sessions updated shared nets without locks"))
        body = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items)
        spec = html.escape(json.dumps(self.spec, indent=2))
        return (f"<section><h2>Provenance</h2><dl>{body}</dl>"
                f"<details><summary>resolved spec (as run)</summary><pre>{spec}</pre></details></section>")

    def render(self, page: Path) -> str:
        sections = [self.summary(), self.metrics(), self.graphs(), self.checkpoints(), self.provenance()]
        src = plotly_src(page, library_dir(self.paths))
        return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
                f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
                f"<title>{html.escape(self.paths.name)} · LoopLab report</title><style>{CSS}</style>"
                f"<script type='text/javascript' src='{html.escape(src)}'></script></head><body>{self.header()}<main>"
                + "".join(sections)
                + f"<footer>written by <code>looplab report</code> on {time.strftime('%Y-%m-%d %H:%M:%S')}"
                  f"</footer></main>{missing_plotly_note(src)}</body></html>")


def write_report(paths: Any) -> Path:
    """Write `RUN_DIR/index.html` and return its path; `paths` is a RunPaths or a run folder."""
    if isinstance(paths, str | Path):
        paths = open_run(paths)
    out = paths.report
    io.write_text(out, Report(paths).render(out), sync=False)  # drawn again by `looplab report`
    return out
