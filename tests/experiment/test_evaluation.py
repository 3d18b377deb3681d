"""Evaluation episodes (`meta.rigorous_eval`): rows at the eval frequency, no exploration, an env seeded
apart from training's, the training run unchanged by them, and exact resume."""

from __future__ import annotations

import signal

import numpy as np
import pandas as pd
import pytest
import torch

from looplab.experiment import evaluation
from looplab.experiment.seeds import derived_seed, eval_seed, session_seed
from looplab.experiment.stop import STOP
from tests.experiment.test_determinism import BENCH, _no_graphs, assert_same_weights, frame, load_case, run  # noqa: F401

PPO = (BENCH / "ppo/ppo_cartpole.json", "ppo_cartpole",
       ["env.max_frame=400", "env.num_envs=4", "agent.algorithm.time_horizon=16", "agent.algorithm.minibatch_size=64",
        "agent.algorithm.training_epoch=2"])
# epsilon-greedy evaluates at the schedule's end value: its eval episodes draw random numbers
DQN = (BENCH / "dqn/dqn_cartpole.json", "dqn_epsilon_greedy_cartpole", ["env.max_frame=300"])
# a policy net with batch norm: its running statistics must not move while the nets are in eval mode
PPO_BN = (PPO[0], PPO[1], [*PPO[2], "agent.net.batch_norm=true"])
EVAL = ["meta.rigorous_eval=1", "meta.eval_frequency=75"]


def eval_frame(s) -> pd.DataFrame:
    return pd.read_csv(s.paths.session_df(0, 0, "eval")).drop(columns=["wall_t", "eval_time"])


@pytest.mark.parametrize("case", [PPO, DQN, PPO_BN], ids=["PPO", "DQN-epsilon-greedy", "PPO-batch-norm"])
def test_evaluation_leaves_the_training_run_unchanged(case, tmp_path):
    path, name, overrides = case
    plain = run(load_case(path, name, overrides), tmp_path / "plain")
    evaluated = run(load_case(path, name, [*overrides, *EVAL]), tmp_path / "eval")
    pd.testing.assert_frame_equal(frame(plain), frame(evaluated), check_exact=True)
    assert_same_weights(plain, evaluated)
    assert not plain.paths.session_df(0, 0, "eval").exists()
    assert len(eval_frame(evaluated)) >= 3


def test_rows_at_each_eval_frequency_crossing_and_the_last_frame(tmp_path):
    s = run(load_case(*PPO[:2], [*PPO[2], *EVAL]), tmp_path)
    df = eval_frame(s)
    # 4 envs step 4 frames at a time: the first step at or after each multiple of 75, then frame 400
    assert df["frame"].tolist() == [76, 152, 228, 300, 376, 400]
    assert (df["episodes"] == 4).all() and (df["episode_length"] > 0).all()
    assert df["total_reward_ma"].iloc[-1] == pytest.approx(df["total_reward"].mean())
    train = pd.read_csv(s.paths.session_df(0, 0))
    assert df["opt_step"].iloc[-1] == train["opt_step"].iloc[-1]  # the training clock at that frame
    metrics = pd.read_json(s.paths.file("info", 0, 0, "session_metrics_scalar_eval.json"), typ="series")
    assert metrics["total_reward_ma"] == pytest.approx(df["total_reward"].mean())


def test_eval_episodes_act_greedily_with_nets_in_eval_mode_and_restore_them(tmp_path, monkeypatch):
    spec = load_case(*PPO[:2], [*PPO[2], *EVAL, "env.max_frame=80"])
    seen = []
    original = None

    def spy(self, state):
        net = self.nets()["net"]
        with torch.inference_mode():
            out = self.policy_out(self.to_tensor(state))
        action = original(self, state)
        if not self.training:
            seen.append((all(not m.training for m in net.modules()), np.array_equal(action, out.argmax(-1).numpy())))
        return action

    from looplab.agent.algorithm.ppo import PPO as Algo

    original = Algo.act
    monkeypatch.setattr(Algo, "act", spy)
    s = run(spec, tmp_path)
    assert seen and all(eval_mode and greedy for eval_mode, greedy in seen)
    assert s.agent.training and all(m.training for m in s.agent.nets()["net"].modules())


def test_the_eval_env_is_seeded_apart_from_training():
    seeds = [session_seed(7, 0, k) for k in range(4)]
    evals = [eval_seed(s) for s in seeds]
    assert len(set(seeds) | set(evals)) == 8
    assert eval_seed(seeds[0]) == eval_seed(seeds[0])  # deterministic
    assert derived_seed(evals[0], 76) != derived_seed(evals[0], 152)


def test_the_eval_env_starts_apart_from_the_training_env(tmp_path):
    s = run(load_case(*PPO[:2], [*PPO[2], *EVAL, "env.max_frame=4"]), tmp_path)
    assert s.evaluator.seed == eval_seed(12345)
    train_first = s.env.__class__(s.spec, s.seed).reset()
    eval_first = s.evaluator.env.__class__(s.spec, s.evaluator.seed).reset()
    assert not np.array_equal(train_first, eval_first)


def test_a_stop_inside_an_eval_checkpoint_resumes_to_the_same_run(tmp_path, monkeypatch):
    spec = load_case(*PPO[:2], [*PPO[2], *EVAL])
    reference = run(spec, tmp_path / "ref")
    calls = [0]
    episodes = evaluation.Evaluator.episodes

    def stop_in_third_eval(self, agent, seed):
        calls[0] += 1
        if calls[0] == 3:
            STOP.signum = signal.SIGTERM  # what the handler does, while the eval episodes run
        return episodes(self, agent, seed)

    monkeypatch.setattr(evaluation.Evaluator, "episodes", stop_in_third_eval)
    STOP.signum = 0
    stopped = run(spec, tmp_path / "cut")
    assert stopped.interrupted and len(stopped.evaluator.rows) == 2
    monkeypatch.setattr(evaluation.Evaluator, "episodes", episodes)
    resumed = run(spec, tmp_path / "cut", resume=True)
    pd.testing.assert_frame_equal(eval_frame(reference), eval_frame(resumed), check_exact=True)
    pd.testing.assert_frame_equal(frame(reference), frame(resumed), check_exact=True)


def test_eval_metrics_and_graphs_reach_the_trial_files_the_report_and_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from looplab import io
    from looplab.analysis.commands import analyze_trial
    from looplab.analysis.report import write_report
    from looplab.analysis.tensorboard import event_dir

    spec = load_case(*PPO[:2], [*PPO[2], *EVAL])
    spec.meta.tensorboard = True
    s = run(spec, tmp_path)
    io.write_json(tmp_path / f"{spec.name}_spec.json", spec.model_dump(mode="json"))
    analyze_trial(s.paths, 0, 0.0)
    metrics = analyze_trial(s.paths, 0, 0.0, "eval", sessions=False)
    assert metrics["total_reward_ma"] == pytest.approx(eval_frame(s)["total_reward"].mean())
    assert io.read_json(s.paths.file("info", 0, None, "trial_metrics_scalar_eval.json")) == metrics
    assert (tmp_path / f"{spec.name}_t0_trial_graph_eval_mean_returns_vs_frames.png").exists()
    assert (tmp_path / f"{spec.name}_t0_trial_graph_mean_returns_vs_frames.png").exists()  # training's, apart
    page = write_report(s.paths).read_text()
    assert f"{spec.name}_t0 eval (trial)" in page and "evaluation episodes" in page
    ea = EventAccumulator(str(event_dir(s.paths, 0, 0)), size_guidance={"scalars": 0})
    ea.Reload()
    steps = [e.step for e in ea.Scalars("eval/total_reward")]
    assert steps == eval_frame(s)["frame"].tolist()
