"""Run every shipped SLM Lab spec for a few hundred frames: does it validate, act and train?

Usage: python bench/spec_sweep.py [PATTERN] [--all]

Each spec is validated as `looplab run` does, then stepped in this process for 400 frames (640 with 8 or
more envs) with its warm-up and on-policy horizons capped (training_start_step 64, training_frequency 16,
time_horizon 32) so that training starts within the run. One line per spec: OK (trained), NOTRAIN (acted
without training), SPECERR (stopped at validation, with its one line), CRASH or TIMEOUT (60 s). Without
--all, the Atari and MuJoCo files are left out (their envs are slow to make, and MuJoCo's with many
processes). A summary line counts each outcome.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from looplab.errors import SpecError  # noqa: E402
from looplab.experiment.run import prepare  # noqa: E402
from tests.agent.loop import make_agent, step  # noqa: E402
from tests.conftest import SLM_SPECS, placeholder_values  # noqa: E402

HEAVY = ("mujoco", "atari", "pong", "qbert", "breakout", "humanoid", "playground", "pybullet", "bipedal", "walker",
         "cheetah", "hopper", "ant")
CAPS = (("training_start_step", 64), ("training_frequency", 16), ("time_horizon", 32))


class Timeout(Exception):
    pass


def _alarm(*_: object) -> None:
    raise Timeout


def sweep_one(path: Path, name: str) -> str:
    try:
        _, spec, _ = prepare(str(path), name, placeholder_values(path), ["env.max_frame=400"])
    except SpecError as e:
        return f"SPECERR {e}"
    cfg = spec.algorithm
    for key, cap in CAPS:
        if getattr(cfg, key, None):
            setattr(cfg, key, min(getattr(cfg, key), cap))
    signal.alarm(60)
    try:
        agent, env = make_agent(spec, 0)
        state = env.reset()
        frames = 400 if spec.env.num_envs < 8 else 640
        while agent.clock.frame < frames:
            state = step(agent, env, state)
        env.close()
    except Timeout:
        return "TIMEOUT"
    except Exception as e:  # a crash is what this looks for
        return f"CRASH {type(e).__name__}: {str(e)[:200]}"
    finally:
        signal.alarm(0)
    trained = agent.clock.opt_step > 0 and (agent.loss is None or np.isfinite(agent.loss))
    return f"OK opt_step {agent.clock.opt_step}" if trained else "NOTRAIN"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pattern", nargs="?", default="")
    parser.add_argument("--all", action="store_true", help="the Atari and MuJoCo files too")
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, _alarm)
    counts: Counter[str] = Counter()
    for path in sorted(p for p in SLM_SPECS.rglob("*") if p.suffix in (".json", ".yaml") and not p.name.startswith("_")):
        rel = str(path.relative_to(SLM_SPECS))
        if args.pattern not in rel or (not args.all and any(w in rel for w in HEAVY)):
            continue
        for name in yaml.safe_load(path.read_text()):
            if name.startswith("_"):
                continue
            t0 = time.time()
            outcome = sweep_one(path, name)
            counts[outcome.split()[0]] += 1
            print(f"{outcome.split()[0]:8s} {rel}:{name} ({time.time() - t0:.1f} s) {outcome.partition(' ')[2]}",
                  flush=True)
    print(" ".join(f"{k} {v}" for k, v in sorted(counts.items())), f"of {sum(counts.values())} specs")


if __name__ == "__main__":  # env workers started with `spawn` import this file again
    main()
