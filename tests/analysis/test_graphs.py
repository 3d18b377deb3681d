"""Graphs from files alone: session, trial, experiment and multi-trial, as PNG and offline HTML."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from looplab import io
from looplab.analysis import graphs
from looplab.runfolder import RunPaths
from tests.analysis.checks import assert_png, plotly_figures


def _session_df(seed: int, rows: int = 12, extra: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = np.arange(1, rows + 1) * 500
    ret = np.linspace(20, 200, rows) + rng.normal(0, 10, rows)
    df = pd.DataFrame({"frame": frame, "t": frame // 4, "opt_step": frame // 100, "fps": 3000 + rng.normal(0, 50, rows),
                       "total_reward": ret, "total_reward_ma": pd.Series(ret).expanding().mean(),
                       "loss": rng.random(rows), "lr": np.full(rows, 3e-4)})
    if extra:
        df["entropy"] = np.linspace(0.69, 0.3, rows)
    return df


def _run(tmp_path, sessions: int = 3) -> RunPaths:
    paths = RunPaths.create(tmp_path, "demo")
    for s in range(sessions):
        io.write_csv(paths.session_df(0, s), _session_df(s, rows=12 - s))  # unequal lengths: cut to shortest
    io.write_json(paths.root / "demo_t0_trial_metrics_scalar.json", {"random_baseline": 22.0})
    io.write_json(paths.root / "run.json", {"spec_name": "demo", "status": "finished"})
    return paths


def test_session_graphs_png_per_variable_and_one_page(tmp_path):
    paths = _run(tmp_path, 1)
    written = graphs.session_graphs(paths, 0, 0)
    names = {p.name for p in written}
    for key in ("mean_returns", "mean_returns_ma", "loss", "lr", "entropy", "fps"):
        png = paths.root / "graph" / f"demo_t0_s0_session_graph_train_{key}_vs_frames.png"
        assert png.name in names
        assert_png(png)
    assert "demo_t0_s0_session_graph_train_explore_var_vs_frames.png" not in names  # no such column
    figs = plotly_figures(paths.root / "graph" / "demo_t0_s0_session_graph_train.html")
    traces = figs[0]["data"]
    returns = next(t for t in traces if t.get("name") == "return")
    assert len(returns["y"]) == 12 if isinstance(returns["y"], list) else True


def test_trial_graphs_mean_band_sessions_and_strength(tmp_path):
    paths = _run(tmp_path, 3)
    written = graphs.trial_graphs(paths, 0, 3)
    for key in ("mean_returns", "mean_returns_ma", "strength", "strength_ma"):
        assert_png(paths.root / f"demo_t0_trial_graph_{key}_vs_frames.png")
    assert paths.root / "demo_t0_trial_graph.html" in written
    data = plotly_figures(paths.root / "demo_t0_trial_graph.html")[0]["data"]
    assert sum(t.get("name") == "sessions" for t in data) == 3 * 4  # each session faintly, in each panel
    assert any(t.get("fill") == "toself" for t in data)  # the ±1 std band
    mean = next(t for t in data if str(t.get("name", "")).startswith("mean of 3 sessions"))
    assert len(_values(mean["x"])) == 10  # shortest session


def _values(v):
    if isinstance(v, dict):  # plotly may encode arrays as typed binary
        import base64

        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return v


def test_experiment_graphs_grid_coloured_by_strength(tmp_path):
    df = pd.DataFrame({"trial": [0, 1, 2, 3], "agent.algorithm.gamma": [0.9, 0.95, 0.99, 0.999],
                       "agent.net.optim_spec.lr": [1e-4, 1e-3, 1e-2, 3e-5],
                       "agent.net.hid_layers_activation": ["relu", "tanh", "relu", "tanh"],
                       "total_reward_ma": [50.0, 120.0, 200.0, 80.0], "strength": [30.0, 100.0, 180.0, 60.0],
                       "stability": [0.9, 0.8, 0.95, 0.7]})
    cols = ["agent.algorithm.gamma", "agent.net.optim_spec.lr", "agent.net.hid_layers_activation"]
    written = graphs.experiment_graphs(tmp_path, "exp", df, cols)
    assert [p.name for p in written] == ["exp_experiment_graph.png", "exp_experiment_graph.html"]
    assert_png(tmp_path / "exp_experiment_graph.png")
    data = plotly_figures(tmp_path / "exp_experiment_graph.html")[0]["data"]
    assert len(data) == 3 * 3  # 3 hyperparameters x 3 metrics present
    assert all(t["marker"]["colorscale"] for t in data)


def test_multi_trial_graphs_from_dataframes_and_run_folders(tmp_path):
    written = graphs.multi_trial_graphs(tmp_path, "exp", {"t0": [_session_df(0), _session_df(1)],
                                                          "t1": [_session_df(2)]})
    assert len(written) == 3
    assert_png(tmp_path / "exp_multi_trial_graph_mean_returns_ma_vs_frames.png")
    data = plotly_figures(tmp_path / "exp_multi_trial_graph.html")[0]["data"]
    assert {"t0", "t1"} <= {t.get("name") for t in data}
    run = _run(tmp_path / "runs", 2)
    written = graphs.multi_trial_graphs(tmp_path, "cmp", [run.root])
    data = plotly_figures(tmp_path / "cmp_multi_trial_graph.html")[0]["data"]
    assert "demo" in {t.get("name") for t in data}


def test_a_graph_that_cannot_be_drawn_is_an_error_naming_it(tmp_path, caplog):
    paths = RunPaths.create(tmp_path, "broken")
    paths.session_df(0, 0).write_text("frame,total_reward\nnot,numbers\n")
    with caplog.at_level(logging.ERROR, logger="looplab"):
        looplab_log = logging.getLogger("looplab")
        looplab_log.propagate = True  # the CLI's setup turns propagation off; caplog listens at the root
        assert graphs.session_graphs(paths, 0, 1) == []  # no such session
        graphs.experiment_graphs(tmp_path, "exp", pd.DataFrame({"strength": [1.0]}), ["missing"])
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "broken_t0_s1_session_graph_train" in messages
    assert "exp_experiment_graph.png" in messages and "exp_experiment_graph.html" in messages


def test_mean_band_is_nan_without_warnings_before_any_episode():
    import warnings

    from looplab.analysis.graphs import mean_std_traces

    mat = np.array([[np.nan, 1.0, 3.0], [np.nan, np.nan, 5.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's "Mean of empty slice" would raise here
        trace = mean_std_traces(np.arange(3.0), mat, "mean", "#000")[-1]
    np.testing.assert_array_equal(trace.y, [np.nan, 1.0, 4.0])
    np.testing.assert_array_equal(trace.band[1] - trace.y, [np.nan, 0.0, 1.0])


def test_plotly_js_is_written_once_beside_the_run_folders_and_loaded_by_relative_paths(tmp_path):
    from plotly.offline import get_plotlyjs_version

    paths = _run(tmp_path, 2)
    graphs.session_graphs(paths, 0, 0)
    graphs.session_graphs(paths, 0, 1)
    graphs.trial_graphs(paths, 0, 2)
    lib = tmp_path / f"plotly-{get_plotlyjs_version()}.min.js"
    assert [p.name for p in tmp_path.glob("*.js")] == [lib.name]
    assert not list(paths.root.rglob("*.js")), "the run folder carries no copy of plotly.js"
    assert f'src="../../{lib.name}"' in (paths.root / "graph" / "demo_t0_s0_session_graph_train.html").read_text()
    assert f'src="../{lib.name}"' in (paths.root / "demo_t0_trial_graph.html").read_text()
    # a missing library (a run folder moved on its own) is written again by the next page
    lib.unlink()
    graphs.trial_graphs(paths, 0, 2)
    plotly_figures(paths.root / "demo_t0_trial_graph.html")
