"""Session, trial, experiment and multi-trial graphs, drawn from the run folder's files alone.

Every graph is a list of `Panel`s rendered twice: one PNG per panel (matplotlib, headless; SLM Lab's
file names) and one interactive HTML page per level (plotly). plotly.js (~4.8 MB) is written once, to
the folder holding the run folders (`plotly_js`), and pages load it by a relative path, so that they
open offline from disk without each carrying a copy. A graph that cannot be drawn is logged as an error
naming it, never dropped silently.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from looplab import io  # noqa: E402
from looplab.analysis.metrics import METRICS_COLS, moving_average  # noqa: E402
from looplab.analysis.plotly_js import library_dir, missing_plotly_note, plotly_src  # noqa: E402
from looplab.runfolder import graph_file, kind_suffix, open_run  # noqa: E402

log = logging.getLogger("looplab")

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]
# Session-dataframe columns drawn (when present and not all NaN), in page order, with their axis labels.
SESSION_VARS = {"loss": "loss", "lr": "learning rate", "explore_var": "explore_var", "entropy_coef": "entropy_coef",
                "entropy": "policy entropy", "clip_eps": "clip_eps", "alpha": "alpha (SAC temperature)",
                "q_mean": "mean Q(s, a) of the training batches",
                "fps": "frames per second"}
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


@dataclass
class Trace:
    x: np.ndarray
    y: np.ndarray
    name: str = ""
    color: str = PALETTE[0]
    faint: bool = False
    band: tuple[np.ndarray, np.ndarray] | None = None  # (low, high) drawn shaded around y
    width: float = 2.0


@dataclass
class Panel:
    key: str  # file-name key, e.g. "mean_returns_ma"
    ylabel: str
    traces: list[Trace] = field(default_factory=list)
    xlabel: str = "frames"
    html: bool = True  # False: PNG only (kept for SLM Lab's file names, redundant on the page)


# ---- loading --------------------------------------------------------------------------------------
def read_session_df(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path)
    if "frame" not in df.columns or "total_reward" not in df.columns:
        raise ValueError(f"{path.name} has no frame/total_reward columns")
    return df


def session_indices(paths: Any, trial: int, kind: str = "train") -> list[int]:
    """The sessions of a trial that wrote a dataframe, in order."""
    pattern = paths.session_df_re(kind)
    return sorted(int(m.group(2)) for p in paths.info_dir.glob("*.csv")
                  if (m := pattern.match(p.name)) and int(m.group(1)) == trial)


def trial_session_dfs(paths: Any, trial: int, kind: str = "train") -> list[pd.DataFrame]:
    """The session dataframes of a trial in session order (every session that wrote one)."""
    return [read_session_df(paths.session_df(trial, s, kind)) for s in session_indices(paths, trial, kind)]


# ---- panels ---------------------------------------------------------------------------------------
def _ma(df: pd.DataFrame) -> np.ndarray:
    if "total_reward_ma" in df.columns:
        return df["total_reward_ma"].to_numpy(dtype=float)
    return moving_average(df["total_reward"].to_numpy(dtype=float))


def session_panels(df: pd.DataFrame) -> list[Panel]:
    """Return and its moving average, each logged variable present, and FPS, all vs frames."""
    x = df["frame"].to_numpy(dtype=float)
    ret, ma = df["total_reward"].to_numpy(dtype=float), _ma(df)
    panels = [
        Panel("mean_returns", "return", [Trace(x, ret, "return", PALETTE[0], faint=True, width=1.2),
                                         Trace(x, ma, "moving average (100 ckpts)", PALETTE[0])]),
        Panel("mean_returns_ma", "return (moving average)", [Trace(x, ma, "moving average", PALETTE[0])],
              html=False),
    ]
    for i, (col, label) in enumerate(SESSION_VARS.items()):
        if col in df.columns and df[col].notna().any():
            panels.append(Panel(col, label, [Trace(x, df[col].to_numpy(dtype=float), col,
                                                   PALETTE[(i + 1) % len(PALETTE)])]))
    return panels


def _stack(dfs: Sequence[pd.DataFrame], col_fn) -> tuple[np.ndarray, np.ndarray]:
    """Sessions cut to the shortest (an interrupted session may be shorter): frames, values[session, row]."""
    n = min(len(d) for d in dfs)
    return dfs[0]["frame"].to_numpy(dtype=float)[:n], np.stack([col_fn(d)[:n] for d in dfs])


def mean_std_traces(x: np.ndarray, mat: np.ndarray, name: str, color: str, faint: bool = True) -> list[Trace]:
    """Each session faintly, then the mean with a +-1 std band."""
    out = [Trace(x, row, "sessions", color, faint=True, width=0.9) for row in mat] if faint else []
    # checkpoints before any session finished an episode have no value: NaN, without NumPy's empty-slice warning
    has = np.isfinite(mat).any(0)
    mean, std = np.full(mat.shape[1], np.nan), np.full(mat.shape[1], np.nan)
    mean[has], std[has] = np.nanmean(mat[:, has], 0), np.nanstd(mat[:, has], 0)
    out.append(Trace(x, mean, name, color, band=(mean - std, mean + std)))
    return out


def trial_panels(dfs: Sequence[pd.DataFrame], random_baseline: float | None) -> list[Panel]:
    """Mean over sessions +-1 std of the return, its moving average and (if the baseline is known) strength."""
    if not dfs:
        raise ValueError("no session dataframe")
    label = f"mean of {len(dfs)} session{'s' if len(dfs) > 1 else ''} ±1 std"
    x, ret = _stack(dfs, lambda d: d["total_reward"].to_numpy(dtype=float))
    _, ma = _stack(dfs, _ma)
    panels = [Panel("mean_returns", "return", mean_std_traces(x, ret, label, PALETTE[0])),
              Panel("mean_returns_ma", "return (moving average)", mean_std_traces(x, ma, label, PALETTE[0]))]
    if random_baseline is not None:
        panels += [Panel("strength", "strength (return − random)", mean_std_traces(x, ret - random_baseline, label,
                                                                                   PALETTE[2])),
                   Panel("strength_ma", "strength (moving average)", mean_std_traces(x, ma - random_baseline, label,
                                                                                     PALETTE[2]))]
    return panels


# ---- rendering ------------------------------------------------------------------------------------
def _png(panel: Panel, title: str, path: Path) -> None:
    # fixed margins: a layout engine (constrained, tight) measures every label first, half the cost of a PNG
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.13, top=0.91)
    try:
        for t in panel.traces:
            if t.band is not None:
                ax.fill_between(t.x, t.band[0], t.band[1], color=t.color, alpha=0.18, lw=0)
            ax.plot(t.x, t.y, color=t.color, lw=0.8 if t.faint else t.width, alpha=0.3 if t.faint else 1.0,
                    label=None if t.faint and t.band is None and len(panel.traces) > 2 else t.name)
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        # short labels fit the margin; plain text, as mathtext tick labels (useMathText) cost half of a PNG
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 4), useMathText=False)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        if any(t.name for t in panel.traces) and len(panel.traces) > 1:
            ax.legend(loc="best", fontsize=8, frameon=False)
        # not synced to disk: a graph is drawn again from the files it shows (`looplab analyze`)
        io.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110), binary=True, sync=False)
    finally:
        plt.close(fig)


def figure(panels: Sequence[Panel], title: str, cols: int = 2) -> dict:
    """One plotly figure with a subplot per panel (only panels meant for the page), as the plain dict plotly.js
    reads: built without plotly's graph objects, whose validation of every property (the template's above all)
    cost a quarter of a second per figure. `to_html` writes it."""
    panels = [p for p in panels if p.html]
    cols = max(1, min(cols, len(panels)))
    rows = math.ceil(len(panels) / cols)
    h_space, v_space = 0.08, min(0.12, 0.5 / max(rows, 1))  # make_subplots' spacing, as fractions of the page
    width, height = (1 - (cols - 1) * h_space) / cols, (1 - (rows - 1) * v_space) / max(rows, 1)
    layout: dict[str, Any] = {"annotations": []}
    data: list[dict] = []
    shown: set[str] = set()
    for i, p in enumerate(panels):
        r, c, k = i // cols, i % cols, i + 1
        x0, y1 = c * (width + h_space), 1 - r * (height + v_space)
        xa, ya = ("x", "y") if k == 1 else (f"x{k}", f"y{k}")
        yaxis: dict[str, Any] = {"domain": [max(0.0, y1 - height), y1], "anchor": xa, "tickformat": "~g"}
        layout["xaxis" if k == 1 else f"xaxis{k}"] = {"domain": [x0, min(1.0, x0 + width)], "anchor": ya,
                                                      "title": {"text": p.xlabel}}
        layout["annotations"].append({"text": p.ylabel, "x": x0 + width / 2, "y": y1, "xref": "paper",
                                      "yref": "paper", "xanchor": "center", "yanchor": "bottom", "showarrow": False,
                                      "font": {"size": 16}})
        legend = len(p.traces) > 1  # a lone curve is named by its subplot title
        for t in p.traces:
            name = t.name
            group = f"{name}|{t.color}"
            if t.band is not None:
                data.append({"type": "scatter", "x": np.concatenate([t.x, t.x[::-1]]),
                             "y": np.concatenate([t.band[1], t.band[0][::-1]]), "mode": "lines", "fill": "toself",
                             "fillcolor": _rgba(t.color, 0.18), "line": {"width": 0}, "hoverinfo": "skip",
                             "showlegend": False, "legendgroup": group, "xaxis": xa, "yaxis": ya})
            data.append({"type": "scatter", "x": t.x, "y": t.y, "mode": "lines", "name": name, "legendgroup": group,
                         "showlegend": legend and bool(name) and name not in shown,
                         "line": {"color": _rgba(t.color, 0.35) if t.faint else t.color,
                                  "width": 1 if t.faint else t.width}, "xaxis": xa, "yaxis": ya})
            if legend:
                shown.add(name)
        finite = np.concatenate([t.y[np.isfinite(t.y)] for t in p.traces]) if p.traces else np.array([])
        if len(finite) and np.ptp(finite) == 0:  # a constant: centre it, or plotly shows it as 0 on [-1, 1]
            v = float(finite[0])
            pad = abs(v) * 0.1 or 1e-3
            yaxis["range"] = [v - pad, v + pad]
        layout["yaxis" if k == 1 else f"yaxis{k}"] = yaxis
    layout.update({"title": {"text": title, "x": 0.01}, "template": _template("plotly_white"),
                   "height": 300 * rows + 90, "margin": {"l": 60, "r": 20, "t": 80, "b": 50},
                   "hovermode": "x unified",
                   "legend": {"orientation": "h", "y": 1.02 + 0.12 / max(rows, 1), "x": 1, "xanchor": "right"}})
    return {"data": data, "layout": layout}


@functools.cache
def _template(name: str) -> dict:
    import plotly.io as pio

    return pio.templates[name].to_plotly_json()


def to_html(fig: Any, **kwargs: Any) -> str:
    """A figure (a dict from `figure`, or a plotly Figure) as HTML; dicts are written as they are (no validation)."""
    import plotly.io as pio

    return pio.to_html(fig, validate=False, config=PLOTLY_CONFIG, **kwargs)


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"


def write_html(fig: Any, path: Path, lib_dir: Path | None = None) -> None:
    """A page loading plotly.js from `lib_dir` (default: the page's own folder) by a relative path."""
    src = plotly_src(path, Path(lib_dir) if lib_dir is not None else Path(path).parent)
    html = to_html(fig, include_plotlyjs=src, full_html=True)
    io.write_text(path, html.replace("</body>", missing_plotly_note(src) + "</body>", 1), sync=False)


def _draw(name: str, fn, *args) -> Path | None:
    """Draw one graph file; a failure is an error in the log naming the graph."""
    try:
        fn(*args)
        return args[-1]
    except Exception as e:
        log.error("graph %s could not be drawn: %s: %s", name, type(e).__name__, e)
        return None


def render(panels: Sequence[Panel], title: str, png_path, html_path: Path | None,
           lib_dir: Path | None = None) -> list[Path]:
    """PNG per panel (`png_path(key)`) and one HTML page (plotly.js in `lib_dir`); returns the files written."""
    out = [_draw(Path(png_path(p.key)).name, _png, p, f"{title} {p.key}", Path(png_path(p.key))) for p in panels]
    if html_path is not None:
        out.append(_draw(html_path.name, lambda p: write_html(figure(panels, title), p, lib_dir), html_path))
    return [p for p in out if p is not None]


# ---- the four levels ------------------------------------------------------------------------------
def session_html(paths: Any, trial: int, session: int, kind: str = "train") -> Path:
    return paths.session_graph(trial, session, kind)


def trial_html(paths: Any, trial: int, kind: str = "train") -> Path:
    return paths.trial_graph(trial, kind)


def session_graphs(paths: Any, trial: int, session: int, kind: str = "train") -> list[Path]:
    """`graph/{n}_t{T}_s{S}_session_graph_{kind}_{key}_vs_frames.png` per panel and one HTML page."""
    name = f"{paths.prename(trial, session)}_session_graph_{kind}"
    try:
        df = read_session_df(paths.session_df(trial, session, kind))
        panels = session_panels(df)
    except Exception as e:
        log.error("graph %s could not be drawn: %s: %s", name, type(e).__name__, e)
        return []
    return render(panels, paths.prename(trial, session),
                  lambda key: paths.session_graph(trial, session, kind, key),
                  session_html(paths, trial, session, kind), library_dir(paths))


def trial_graphs(paths: Any, trial: int, num_sessions: int | None = None, kind: str = "train",
                 random_baseline: float | None = None) -> list[Path]:
    """`{n}_t{T}_trial_graph[_eval]_{key}_vs_frames.png` at the run root per panel and one HTML page.

    `num_sessions` is kept for callers; every session dataframe of the trial found on disk is used.
    The random baseline (for strength) comes from the argument or the trial's metrics file.
    """
    name = f"{paths.prename(trial)}_trial_graph"
    try:
        dfs = trial_session_dfs(paths, trial, kind)
        if num_sessions is not None and len(dfs) < num_sessions:
            log.warning("trial %s: %d of %d session dataframes found", paths.prename(trial), len(dfs), num_sessions)
        if random_baseline is None:
            random_baseline = saved_baseline(paths, trial)
        panels = trial_panels(dfs, random_baseline)
    except Exception as e:
        log.error("graph %s could not be drawn: %s: %s", name, type(e).__name__, e)
        return []
    return render(panels, paths.prename(trial) + kind_suffix(kind),
                  lambda key: paths.trial_graph(trial, kind, key),
                  trial_html(paths, trial, kind), library_dir(paths))


def saved_baseline(paths: Any, trial: int) -> float | None:
    try:
        v = io.read_json(paths.trial_metrics(trial)).get("random_baseline")
        return None if v is None else float(v)
    except (OSError, ValueError):
        return None


EXPERIMENT_METRICS = [c for c in METRICS_COLS if c != "frame"]


def experiment_graphs(run_root: Path, name: str, experiment_df: pd.DataFrame, searched_cols: list[str],
                      metric_cols: Sequence[str] | None = None, lib_dir: Path | None = None) -> list[Path]:
    """The experiment graph: a grid of each searched hyperparameter (columns) vs each metric (rows).

    Signature (stable): `experiment_graphs(run_root, name, experiment_df, searched_cols, metric_cols=None)`.
    - `experiment_df`: one row per trial; columns `trial`, the searched hyperparameters (e.g.
      `agent.algorithm.gamma`) and the trial metrics (`METRICS_COLS`, at least `strength`).
    - `searched_cols`: the hyperparameter columns to put on the x axes (numbers or categories).
    - `metric_cols`: y axes; default every metric of `METRICS_COLS` (but `frame`) present in the df.
    Markers are coloured by `strength` (YlGnBu). Writes `{run_root}/{name}_experiment_graph.png` and
    `.html` and returns the paths written (an error is logged, naming the graph, on failure).
    `lib_dir`: where the page finds plotly.js (default: beside it).
    """
    run_root = Path(run_root)
    metric_cols = [m for m in (metric_cols or EXPERIMENT_METRICS) if m in experiment_df.columns]
    png, html = graph_file(run_root, name, "experiment_graph"), graph_file(run_root, name, "experiment_graph", ext="html")
    out = [_draw(png.name, _experiment_png, experiment_df, searched_cols, metric_cols, name, png),
           _draw(html.name, lambda p: write_html(experiment_figure(experiment_df, searched_cols, metric_cols, name), p,
                                                 lib_dir), html)]
    return [p for p in out if p is not None]


def _axis_values(s: pd.Series) -> tuple[np.ndarray, list[str] | None, bool]:
    """Numeric x (log scale when positive over >2 decades) or category positions with their labels."""
    num = pd.to_numeric(s, errors="coerce")
    if num.notna().all():
        v = num.to_numpy(dtype=float)
        log_scale = bool((v > 0).all() and v.max() / v.min() > 100)
        return v, None, log_scale
    cats = sorted({str(v) for v in s})
    return np.array([cats.index(str(v)) for v in s], dtype=float), cats, False


def _experiment_png(df: pd.DataFrame, searched: list[str], metrics: list[str], name: str, path: Path) -> None:
    if not searched or not metrics:
        raise ValueError("no searched hyperparameter or metric column to draw")
    rows, cols = len(metrics), len(searched)
    fig, axes = plt.subplots(rows, cols, figsize=(2.8 * cols + 1.2, 2.2 * rows + 0.6), squeeze=False,
                             sharey="row", layout="constrained")
    try:
        color = pd.to_numeric(df.get("strength", pd.Series(np.zeros(len(df)))), errors="coerce").to_numpy(float)
        sc = None
        for j, hp in enumerate(searched):
            x, cats, log_scale = _axis_values(df[hp])
            for i, m in enumerate(metrics):
                ax = axes[i][j]
                sc = ax.scatter(x, pd.to_numeric(df[m], errors="coerce"), c=color, cmap="YlGnBu", s=28,
                                edgecolors="#333", linewidths=0.4)
                if log_scale:
                    ax.set_xscale("log")
                if cats is not None:
                    ax.set_xticks(range(len(cats)), cats, rotation=30, fontsize=7)
                    ax.set_xlim(-0.5, len(cats) - 0.5)
                ax.grid(alpha=0.3)
                if i == rows - 1:
                    ax.set_xlabel(hp.split(".")[-1], fontsize=8)
                if j == 0:
                    ax.set_ylabel(m, fontsize=8)
        if sc is not None:
            fig.colorbar(sc, ax=axes, shrink=0.6, label="strength")
        fig.suptitle(f"{name} experiment graph", fontsize=11)
        io.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100), binary=True, sync=False)
    finally:
        plt.close(fig)


def experiment_figure(df: pd.DataFrame, searched: list[str], metrics: list[str], name: str) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if not searched or not metrics:
        raise ValueError("no searched hyperparameter or metric column to draw")
    rows, cols = len(metrics), len(searched)
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True, horizontal_spacing=0.03,
                        vertical_spacing=min(0.06, 0.3 / rows))
    strength = pd.to_numeric(df.get("strength", pd.Series(np.zeros(len(df)))), errors="coerce")
    trials = df["trial"].astype(str) if "trial" in df.columns else pd.Series(range(len(df))).astype(str)
    for j, hp in enumerate(searched):
        x, cats, log_scale = _axis_values(df[hp])
        for i, m in enumerate(metrics):
            fig.add_trace(go.Scatter(
                x=[cats[int(v)] for v in x] if cats else x, y=pd.to_numeric(df[m], errors="coerce"), mode="markers",
                marker={"color": strength, "colorscale": "YlGnBu", "size": 9, "line": {"width": 0.5, "color": "#333"},
                        "showscale": i == 0 and j == 0, "colorbar": {"title": {"text": "strength"}}},
                text=[f"trial {t}" for t in trials], showlegend=False,
                hovertemplate=f"%{{text}}<br>{hp}=%{{x}}<br>{m}=%{{y:.4g}}<extra></extra>"), row=i + 1, col=j + 1)
            if log_scale:
                fig.update_xaxes(type="log", row=i + 1, col=j + 1)
            if i == rows - 1:
                fig.update_xaxes(title_text=hp.split(".")[-1], row=i + 1, col=j + 1)
            if j == 0:
                fig.update_yaxes(title_text=m, row=i + 1, col=j + 1)
    fig.update_layout(title={"text": f"{name} experiment graph", "x": 0.01}, template="plotly_white",
                      height=220 * rows + 120, margin={"l": 70, "r": 20, "t": 60, "b": 60})
    return fig


def multi_trial_panels(trials: Mapping[str, Sequence[pd.DataFrame]]) -> list[Panel]:
    """One mean +-1 std curve per trial (each on its own frames), raw and moving-average returns."""
    ret, ma = Panel("mean_returns", "return"), Panel("mean_returns_ma", "return (moving average)")
    for k, (label, dfs) in enumerate(trials.items()):
        if not dfs:
            log.error("multi-trial graph: %s has no session dataframe", label)
            continue
        color = PALETTE[k % len(PALETTE)]
        x, mat = _stack(dfs, lambda d: d["total_reward"].to_numpy(dtype=float))
        ret.traces += mean_std_traces(x, mat, label, color, faint=False)
        x, mat = _stack(dfs, _ma)
        ma.traces += mean_std_traces(x, mat, label, color, faint=False)
    if not ret.traces:
        raise ValueError("no trial with a session dataframe")
    return [ret, ma]


def multi_trial_graphs(run_root: Path, name: str,
                       trials: Mapping[str, Sequence[pd.DataFrame]] | Sequence[str | Path],
                       kind: str = "train", title: str | None = None, lib_dir: Path | None = None) -> list[Path]:
    """The multi-trial graph: one mean +-1 std curve per trial, labelled, raw and moving average.

    Signature (stable): `multi_trial_graphs(run_root, name, trials, kind="train", title=None)`.
    - `trials`: either a mapping `label -> [session dataframe, ...]` (e.g. `{"t0": [df_s0, df_s1]}`
      for an experiment's trials), or a sequence of run folders, each contributing every trial it holds
      (labelled by spec name, plus `t{T}` when it holds several).
    Writes `{run_root}/{name}_multi_trial_graph_mean_returns[_ma]_vs_frames.png` and
    `{run_root}/{name}_multi_trial_graph.html` (plotly.js in `lib_dir`, default beside it); returns the paths
    written.
    """
    run_root = Path(run_root)
    try:
        if not isinstance(trials, Mapping):
            trials = runs_trials(list(trials), kind)
        panels = multi_trial_panels(trials)
    except Exception as e:
        log.error("graph %s_multi_trial_graph could not be drawn: %s: %s", name, type(e).__name__, e)
        return []
    return render(panels, title or name,
                  lambda key: graph_file(run_root, name, "multi_trial_graph", key),
                  graph_file(run_root, name, "multi_trial_graph", ext="html"), lib_dir)


def runs_trials(run_dirs: Sequence[str | Path], kind: str = "train") -> dict[str, list[pd.DataFrame]]:
    """`label -> session dataframes` for every trial of every run folder; labels are unique."""
    out: dict[str, list[pd.DataFrame]] = {}
    for d in run_dirs:
        paths = open_run(d)
        trial_ids = trial_indices(paths, kind)
        for t in trial_ids:
            label = paths.name if len(trial_ids) == 1 else f"{paths.name} t{t}"
            if label in out:
                label = f"{label} ({paths.ts})"
            out[label] = trial_session_dfs(paths, t, kind)
    return out


def trial_indices(paths: Any, kind: str = "train") -> list[int]:
    pattern = paths.session_df_re(kind)
    return sorted({int(m.group(1)) for p in paths.info_dir.glob("*.csv") if (m := pattern.match(p.name))})
