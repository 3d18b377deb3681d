"""The benchmark table's markdown and the section `--publish` keeps in a page of its own."""

from __future__ import annotations

from looplab.analysis import benchmark as table
from looplab.spec.suite import Suite


def suite() -> Suite:
    row = {"env": "CartPole-v1", "algorithm": "PPO", "spec_file": "f.yaml", "spec_name": "ppo", "reference": 400.0,
           "target": 400, "source": "their table"}
    return Suite.model_validate({"name": "s", "description": "d", "rows": [row, {**row, "algorithm": "DQN",
                                                                                  "spec_name": "dqn"}]})


def rec(**kw) -> dict:
    out = dict.fromkeys(table.CSV_COLS)
    out.update(env="CartPole-v1", algorithm="PPO", row="ppo", status="finished", reference=400.0, target=400.0,
               reference_source="their table", frames=200000, sessions=4, git_sha="0123456789abcdef" * 2 + "01234567",
               git_dirty=False, run="ppo_2026", wall_time_s=3725.0, fps=1234.4, total_reward_ma=401.234,
               total_reward_ma_iqm=402.0, total_reward_ma_ci_low=390.0, total_reward_ma_ci_high=450.5,
               beats_reference=True, beats_target=True)
    out.update(kw)
    return out


def test_a_row_reads_as_the_published_table_does():
    md = table.table_markdown([rec(), rec(algorithm="DQN", status="failed", error="RuntimeError: a|b",
                                          total_reward_ma=None, beats_reference=None, beats_target=None)])
    lines = md.splitlines()
    assert lines[2] == ("| CartPole-v1 | PPO | 401.23 | 402.00 | [390.00, 450.50] | – | 400.00 | ✅ | > 400 | ✅ | 2e5 | 4 "
                        "| 1h 02m 05s | 1,234 | `01234567` | `ppo_2026` | finished |")
    assert "| DQN | – |" in lines[3] and lines[3].endswith("| failed: RuntimeError: a/b |")


def test_an_unfinished_row_shows_no_result_only_its_progress():
    partial = rec(algorithm="DQN", status="interrupted", total_reward_ma=-500.0, total_reward_ma_iqm=-500.0,
                  total_reward_ma_ci_low=-500.0, total_reward_ma_ci_high=-500.0, eval_total_reward_ma=-480.0,
                  beats_reference=None, beats_target=None, sessions_ended=2)
    line = table.table_markdown([partial]).splitlines()[2]
    assert line.startswith("| CartPole-v1 | DQN | – | – | – | – | 400.00 | – | > 400 | – | 2e5 | 4 |")
    assert "-500" not in line and line.endswith("| interrupted (2 of 4 sessions ended) |")
    assert partial["total_reward_ma"] == -500.0  # the record (and the CSV) keep the partial figures


def test_the_header_says_command_frames_sessions_and_sha():
    text = table.section_markdown(suite(), [rec(), rec(algorithm="DQN", git_dirty=True)], "looplab benchmark s", {})
    assert "- command: `looplab benchmark s`" in text and "- frames: 2e5 (CartPole-v1)" in text
    assert "- sessions: 4" in text and "- LoopLab git SHA: 2 different, see the table" in text
    assert "- rows finished: 2 of 2" in text and "Reference: their table." in text


def test_publish_replaces_its_own_section_and_keeps_the_rest(tmp_path):
    page = tmp_path / "BENCHMARKS.md"
    page.write_text("# Benchmarks\n\nintro\n\n<!-- looplab benchmark other: begin -->\nkeep\n"
                    "<!-- looplab benchmark other: end -->\n")
    out = tmp_path / "out"
    (out / "graphs").mkdir(parents=True)
    (out / "graphs" / "CartPole-v1_multi_trial_graph_mean_returns_ma_vs_frames.png").write_bytes(b"png")
    table.publish(suite(), [rec()], "looplab benchmark s", out, page)
    table.publish(suite(), [rec(total_reward_ma=123.456)], "looplab benchmark s", out, page)
    text = page.read_text()
    assert text.startswith("# Benchmarks\n\nintro\n") and "\nkeep\n" in text
    assert text.count("<!-- looplab benchmark s: begin -->") == 1 and "123.46" in text and "401.23" not in text
    assert (tmp_path / "BENCHMARKS_graphs" / "s_CartPole-v1.png").read_bytes() == b"png"
    assert "](BENCHMARKS_graphs/s_CartPole-v1.png)" in text


def test_a_record_reads_its_run_folder_eval_mean_included(tmp_path):
    import pandas as pd

    from looplab import io

    run = tmp_path / "ppo_2026"
    (run / "info").mkdir(parents=True)
    io.write_json(run / "run.json", {"spec_name": "ppo", "status": "finished"})
    io.write_json(run / "ppo_spec.json", {"env": {"max_frame": 1000},
                                          "meta": {"max_session": 2, "git_sha": "abc", "git_dirty": False}})
    io.write_json(run / "ppo_t0_trial_metrics_scalar.json", {"total_reward_ma": 450.0, "total_reward_ma_iqm": 451.0,
                                                             "total_reward_ma_ci_low": 380.0,
                                                             "total_reward_ma_ci_high": 480.0})
    io.write_json(run / "info" / "ppo_t0_trial_metrics_scalar_eval.json", {"total_reward_ma": 470.0})
    for s, fps in ((0, 100.0), (1, 300.0)):
        pd.DataFrame({"frame": [500, 1000], "total_reward": [1.0, 2.0], "fps": [1.0, fps]}).to_csv(
            run / "info" / f"ppo_t0_s{s}_session_df_train.csv", index=False)
    row = suite().rows[0]
    r = table.record(suite(), row, {"run": "ppo_2026", "status": "finished", "wall_time": 12.0}, tmp_path)
    assert (r["total_reward_ma"], r["total_reward_ma_ci_low"], r["eval_total_reward_ma"]) == (450.0, 380.0, 470.0)
    assert (r["frames"], r["sessions"], r["git_sha"], r["fps"], r["wall_time_s"]) == (1000, 2, "abc", 200.0, 12.0)
    assert r["beats_reference"] is True and r["beats_target"] is True  # 450 >= 400 and 450 > 400
    r = table.record(suite(), row, {"run": "ppo_2026", "status": "interrupted"}, tmp_path)
    assert r["total_reward_ma"] == 450.0 and r["beats_reference"] is None  # judged only when finished
    assert table.record(suite(), row, None, tmp_path)["status"] == "pending"


def test_a_rows_fps_counts_only_the_sessions_that_reached_its_frames(tmp_path):
    import pandas as pd

    from looplab import io

    run = tmp_path / "ppo_2026"
    (run / "info").mkdir(parents=True)
    io.write_json(run / "run.json", {"spec_name": "ppo", "status": "interrupted"})
    io.write_json(run / "ppo_spec.json", {"env": {"max_frame": 1000}, "meta": {"max_session": 3}})
    # two sessions ran their 1000 frames; the third has just started, at the speed of its first frames
    for s, (last, fps) in enumerate(((1000, 100.0), (1000, 300.0), (500, 6000.0))):
        pd.DataFrame({"frame": [500, last], "total_reward": [1.0, 2.0], "fps": [1.0, fps]}).to_csv(
            run / "info" / f"ppo_t0_s{s}_session_df_train.csv", index=False)
    entry = {"run": "ppo_2026", "status": "interrupted"}
    assert table.record(suite(), suite().rows[0], entry, tmp_path)["fps"] == 200.0
    for s in (0, 1):
        (run / "info" / f"ppo_t0_s{s}_session_df_train.csv").unlink()
    assert table.record(suite(), suite().rows[0], entry, tmp_path)["fps"] is None  # none has finished


def test_the_env_graphs_draw_finished_rows_only(tmp_path, monkeypatch):
    drawn = {}
    for run in ("ppo_2026", "dqn_2026"):
        (tmp_path / run).mkdir()
    monkeypatch.setattr(table, "_session_dfs", lambda root, name: [root.name])
    monkeypatch.setattr(table.graphs, "multi_trial_graphs", lambda out, slug, trials, title: drawn.update(trials) or [])
    table.env_graphs([rec(), rec(algorithm="DQN", run="dqn_2026", status="interrupted")], tmp_path, tmp_path / "out")
    assert drawn == {"PPO": ["ppo_2026"]}
