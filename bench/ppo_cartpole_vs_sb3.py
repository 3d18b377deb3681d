"""PPO on CartPole-v1: LoopLab vs Stable-Baselines3 on identical hyperparameters, in one invocation.

Runs alternate (LoopLab, SB3, LoopLab, SB3, ...) so both see the same machine load; each uses one
torch thread. Prints frames per second of each run, the median ratio, and the final returns (mean of
the last 100 episodes). Usage: python bench/ppo_cartpole_vs_sb3.py [--frames 50000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HP = dict(num_envs=4, time_horizon=128, minibatch_size=128, epochs=4, lr=2.5e-3, gamma=0.99, lam=0.95,
          clip=0.2, ent=0.0, vf=0.5, max_grad_norm=0.5, hid=[64, 64])


def looplab_spec(frames: int, seed: int) -> dict:
    return {
        "agent": {
            "name": "PPO",
            "algorithm": {
                "name": "PPO", "gamma": HP["gamma"], "lam": HP["lam"],
                "clip_eps_spec": {"name": "no_decay", "start_val": HP["clip"]},
                "entropy_coef_spec": {"name": "no_decay", "start_val": HP["ent"]},
                "val_loss_coef": HP["vf"], "time_horizon": HP["time_horizon"],
                "minibatch_size": HP["minibatch_size"], "training_epoch": HP["epochs"],
            },
            "memory": {"name": "OnPolicyBatchReplay"},
            "net": {
                "type": "MLPNet", "shared": False, "hid_layers": HP["hid"], "hid_layers_activation": "tanh",
                "init_fn": "orthogonal_", "actor_init_std": 0.01, "critic_init_std": 1.0,
                "clip_grad_val": HP["max_grad_norm"], "use_same_optim": True,
                "optim_spec": {"name": "Adam", "lr": HP["lr"], "eps": 1e-5}, "gpu": False,
            },
        },
        "env": {"name": "CartPole-v1", "num_envs": HP["num_envs"], "max_frame": frames},
        "meta": {"max_session": 1, "log_frequency": 10000, "random_seed": seed, "tensorboard": False},
        "name": "bench_ppo",
    }


def run_looplab(frames: int, seed: int) -> tuple[float, float]:
    from looplab.experiment.paths import RunPaths
    from looplab.experiment.session import Session
    from looplab.spec import validate_spec

    spec = validate_spec(looplab_spec(frames, seed), "bench", "bench_ppo")
    with tempfile.TemporaryDirectory() as tmp:
        paths = RunPaths.create(Path(tmp), "bench_ppo")
        session = Session(spec, paths, 0, 0, seed)
        t0 = time.perf_counter()
        session.run()
        wall = time.perf_counter() - t0
        return frames / wall, session.env.total_reward


def run_sb3(frames: int, seed: int) -> tuple[float, float]:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env("CartPole-v1", n_envs=HP["num_envs"], seed=seed)
    model = PPO("MlpPolicy", env, n_steps=HP["time_horizon"], batch_size=HP["minibatch_size"],
                n_epochs=HP["epochs"], learning_rate=HP["lr"], gamma=HP["gamma"], gae_lambda=HP["lam"],
                clip_range=HP["clip"], ent_coef=HP["ent"], vf_coef=HP["vf"], max_grad_norm=HP["max_grad_norm"],
                policy_kwargs=dict(net_arch=dict(pi=HP["hid"], vf=HP["hid"]), activation_fn=torch.nn.Tanh),
                seed=seed, device="cpu", verbose=0)
    t0 = time.perf_counter()
    model.learn(total_timesteps=frames)
    wall = time.perf_counter() - t0
    ret = float(np.mean([e["r"] for e in model.ep_info_buffer])) if model.ep_info_buffer else float("nan")
    return frames / wall, ret


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for rep in range(args.repeats):
        ll_fps, ll_ret = run_looplab(args.frames, seed=rep)
        sb_fps, sb_ret = run_sb3(args.frames, seed=rep)
        rows.append((ll_fps, sb_fps, ll_ret, sb_ret))
        print(f"repeat {rep}: LoopLab {ll_fps:7.0f} fps (return {ll_ret:6.1f})   "
              f"SB3 {sb_fps:7.0f} fps (return {sb_ret:6.1f})   ratio {ll_fps / sb_fps:.2f}", flush=True)
    ratios = [r[0] / r[1] for r in rows]
    print(f"\nPPO CartPole-v1, {args.frames} frames x {args.repeats} repeats, 1 torch thread each")
    print(f"LoopLab median {statistics.median(r[0] for r in rows):.0f} fps, "
          f"SB3 median {statistics.median(r[1] for r in rows):.0f} fps, "
          f"median ratio LoopLab/SB3 = {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})")
    print(f"final return (mean of last 100 episodes): LoopLab {np.mean([r[2] for r in rows]):.1f}, "
          f"SB3 {np.mean([r[3] for r in rows]):.1f}")


if __name__ == "__main__":
    main()
