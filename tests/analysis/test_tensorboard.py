"""SessionBoard: scalars, weight/gradient histograms, per-dimension action histograms, spec text; off switch."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from looplab.analysis.tensorboard import HIST_BINS, SessionBoard, open_board
from looplab.runfolder import RunPaths


def _read(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    ea.Reload()
    return ea


def test_board_logs_continuous_actions_per_dimension_and_skips_target_nets(tmp_path):
    paths = RunPaths.create(tmp_path, "sac")
    spec = SimpleNamespace(meta=SimpleNamespace(tensorboard=True, log_frequency=8, tensorboard_histogram_frequency=1),
                           model_dump=lambda mode: {"name": "sac"})
    board = open_board(paths, 0, 1, spec)
    assert isinstance(board, SessionBoard) and board.dir == paths.root / "log" / "sac_t0_s1"
    net, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    net(torch.ones(4, 3)).sum().backward()
    actions = [np.array([[0.5, -1.0], [0.25, -0.5]]), np.array([[1.0, 2.0], [0.0, 0.0]])]
    board.log({"frame": 8, "total_reward": -3.5, "loss": float("nan"), "alpha": 0.2}, 8,
              {"net": net, "target_net": target}, actions, discrete=False)
    assert actions == []  # consumed: the next checkpoint sees only its own actions
    board.close()
    ea = _read(board.dir)
    tags = ea.Tags()
    assert {"total_reward", "alpha", "frame"} <= set(tags["scalars"]) and "loss" not in tags["scalars"]  # NaN skipped
    assert ea.Scalars("total_reward")[0].value == -3.5
    hist = set(tags["histograms"])
    assert {"net/weight", "net/bias", "net.grad/weight", "net.grad/bias", "action/0", "action/1"} <= hist
    assert not any(h.startswith("target_net") for h in hist)
    a1 = ea.Histograms("action/1")[0].histogram_value
    assert (a1.num, a1.min, a1.max) == (4, -1.0, 2.0)
    w = ea.Histograms("net/weight")[0].histogram_value  # 64 equal buckets between min and max, exact moments
    values = net.weight.detach().double().numpy().ravel()
    assert (w.num, len(w.bucket), sum(w.bucket)) == (6, HIST_BINS, 6)
    assert w.min == pytest.approx(values.min()) and w.max == pytest.approx(values.max())
    assert w.sum == pytest.approx(values.sum()) and w.sum_squares == pytest.approx((values ** 2).sum())
    assert w.bucket_limit[-1] == pytest.approx(values.max())
    assert "spec/text_summary" in tags["tensors"]


def test_histograms_every_nth_log_checkpoint_and_at_the_last_frame_scalars_at_every_one(tmp_path):
    paths = RunPaths.create(tmp_path, "ppo")
    meta = SimpleNamespace(tensorboard=True, log_frequency=100, tensorboard_histogram_frequency=3)
    board = open_board(paths, 0, 0, SimpleNamespace(meta=meta, env=SimpleNamespace(max_frame=1000),
                                                    model_dump=lambda mode: {}))
    net = torch.nn.Linear(2, 1)
    actions = []
    frames = [104, 200, 304, 400, 500, 600, 704, 800, 900, 1000]  # vector steps overshoot the multiples
    for frame in frames:
        actions.append(np.array([0, 1]))
        board.log({"total_reward": float(frame)}, frame, {"net": net}, actions, discrete=True)
    board.close()
    ea = _read(board.dir)
    assert [e.step for e in ea.Scalars("total_reward")] == frames
    assert [e.step for e in ea.Histograms("net/weight")] == [304, 600, 900, 1000]
    # each action histogram holds the actions since the previous one
    assert [e.histogram_value.num for e in ea.Histograms("action")] == [6, 6, 6, 2]


def test_histograms_off_with_frequency_zero(tmp_path):
    paths = RunPaths.create(tmp_path, "ppo")
    meta = SimpleNamespace(tensorboard=True, log_frequency=100, tensorboard_histogram_frequency=0)
    board = open_board(paths, 0, 0, SimpleNamespace(meta=meta, env=SimpleNamespace(max_frame=100),
                                                    model_dump=lambda mode: {}))
    board.log({"total_reward": 1.0}, 100, {"net": torch.nn.Linear(2, 1)}, [], discrete=True)
    board.close()
    tags = _read(board.dir).Tags()
    assert tags["scalars"] == ["total_reward"] and tags["histograms"] == []


def test_board_is_off_with_meta_tensorboard_false(tmp_path):
    paths = RunPaths.create(tmp_path, "x")
    assert open_board(paths, 0, 0, SimpleNamespace(meta=SimpleNamespace(tensorboard=False))) is None
    assert not (paths.root / "log" / "x_t0_s0").exists()


def test_a_tensor_with_nan_or_inf_gets_no_histogram(tmp_path):
    paths = RunPaths.create(tmp_path, "dqn")
    spec = SimpleNamespace(meta=SimpleNamespace(tensorboard=True, log_frequency=8, tensorboard_histogram_frequency=1),
                           model_dump=lambda mode: {"name": "dqn"})
    board = open_board(paths, 0, 0, spec)
    net = torch.nn.Linear(3, 2)
    with torch.no_grad():
        net.bias[0] = float("nan")
    net(torch.ones(4, 3)).sum().backward()
    net.weight.grad[0, 0] = float("inf")
    board.log({"frame": 8}, 8, {"net": net}, [], discrete=True)
    board.close()
    hist = set(_read(board.dir).Tags()["histograms"])
    assert "net/weight" in hist and "net/bias" not in hist and "net.grad/weight" not in hist
    assert "net.grad/bias" in hist
