"""The Stable-Baselines3 side of a speed pair: one training run as a whole process, one torch thread.

Hyperparameters match the LoopLab specs of the same name in bench/specs.json. Prints one JSON line:
{"frames": ..., "final_return": mean return of the last 100 episodes}.
Usage: python bench/sb3_side.py {ppo_cartpole_zoo,dqn_cartpole_zoo,sac_pendulum_sb3} --frames N --seed S
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch


def ppo_cartpole_zoo(frames: int, seed: int):
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    def linear(start: float):
        return lambda progress: progress * start  # progress goes 1 -> 0 (RL Zoo's lin_X)

    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    return PPO("MlpPolicy", env, n_steps=32, batch_size=256, n_epochs=20, gamma=0.98, gae_lambda=0.8,
               learning_rate=linear(0.001), clip_range=linear(0.2), ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5,
               policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}, "activation_fn": torch.nn.Tanh,
                              "optimizer_kwargs": {"eps": 1e-5}},
               seed=seed, device="cpu", verbose=0)


def dqn_cartpole_zoo(frames: int, seed: int):
    from stable_baselines3 import DQN

    return DQN("MlpPolicy", "CartPole-v1", learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
               learning_starts=1000, gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128,
               exploration_fraction=8000 / frames, exploration_final_eps=0.04, max_grad_norm=10,
               policy_kwargs={"net_arch": [256, 256]}, seed=seed, device="cpu", verbose=0)


def sac_pendulum_sb3(frames: int, seed: int):
    from stable_baselines3 import SAC

    return SAC("MlpPolicy", "Pendulum-v1", learning_rate=3e-4, buffer_size=1_000_000, learning_starts=100,
               batch_size=256, tau=0.005, gamma=0.99, train_freq=1, gradient_steps=1,
               policy_kwargs={"net_arch": [256, 256]}, seed=seed, device="cpu", verbose=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=["ppo_cartpole_zoo", "dqn_cartpole_zoo", "sac_pendulum_sb3"])
    parser.add_argument("--frames", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = globals()[args.name](args.frames, args.seed)
    model.learn(total_timesteps=args.frames)
    returns = [e["r"] for e in model.ep_info_buffer]
    print(json.dumps({"frames": args.frames, "final_return": float(np.mean(returns)) if returns else None}))


if __name__ == "__main__":
    main()
