"""Milliseconds per `train()` call of a spec's algorithm, in one process with one torch thread.

Usage: python bench/update_time.py SPEC_FILE SPEC_NAME [--calls 100] [--steps 300] [--set KEY=VALUE ...]

The agent steps its env as a session does (training starts at once, whatever `training_start_step` says),
and each `train()` call that makes a gradient step is timed, the first 10 as a warm-up excluded: an
off-policy agent trains on its replay, an on-policy one on each batch it collects. `--steps` env steps come
first, to fill a replay. To compare two versions of the
code, run it from a checkout of each, in turn, on a quiet machine; to compare two settings of a key, give
each with `--set`, as `looplab run` takes it.
"""

from __future__ import annotations

import argparse
import time

import torch

from looplab.agent.algorithm import ALGORITHMS
from looplab.agent.validate import validate_spec
from looplab.env import Clock, Env
from looplab.experiment.session import step
from looplab.spec import load_spec
from looplab.spec.load import parse_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec_file")
    parser.add_argument("spec_name")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    torch.set_num_threads(1)
    raw, file = load_spec(args.spec_file, args.spec_name, overrides=parse_set(args.set))
    spec = validate_spec(raw, file, spec_name=args.spec_name)
    env = Env(spec, 0)
    clock = Clock(num_envs=env.num_envs)
    agent = ALGORITHMS.get(spec.algorithm.name)(spec, env.info, clock, 0)
    if hasattr(agent, "training_start_step"):
        agent.training_start_step = 0
    times: list[float] = []
    train = agent.train

    def timed_train():
        before = clock.opt_step
        t0 = time.perf_counter()
        loss = train()
        if clock.opt_step != before:
            times.append(time.perf_counter() - t0)
        return loss

    state = env.reset()
    for _ in range(args.steps):
        state = step(agent, env, clock, state)
    agent.train = timed_train
    for _ in range(1_000_000):
        if len(times) >= 10 + args.calls:
            break
        state = step(agent, env, clock, state)
    else:
        raise SystemExit(f"{args.spec_name}: {len(times)} gradient steps in a million env steps: it does not train")
    ms = sum(times[10:]) / args.calls * 1e3
    env.close()
    print(f"{args.spec_name}: {ms:.2f} ms per train() ({args.calls} calls)")


if __name__ == "__main__":
    main()
