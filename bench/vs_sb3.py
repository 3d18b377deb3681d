"""LoopLab vs Stable-Baselines3 on identical hyperparameters, whole process vs whole process, alternating.

Pairs (bench/specs.json holds the LoopLab side, bench/sb3_side.py the SB3 side, one torch thread each):
  ppo    PPO CartPole-v1, RL Zoo hyperparameters, 1e5 frames (also: the size of its run folder, TensorBoard on)
  dqn    DQN CartPole-v1, RL Zoo hyperparameters, 5e4 frames
  sac    SAC Pendulum-v1, SB3 defaults, 2e4 frames
  trial  a LoopLab trial of 4 PPO sessions vs 1 session: frames per second of all sessions together
Runs alternate (LoopLab, SB3, LoopLab, SB3, ...) so that both see the same machine load; each figure is the
wall time of a whole process (start-up, training, LoopLab's analysis and report included).
Writes a Markdown table (medians, min/max, the ratio, each side's final return) to --out.

Usage: python bench/vs_sb3.py [--pairs ppo,dqn,sac,trial] [--repeats 3] [--scale 1.0] [--out bench/RESULTS.md]
(--scale multiplies the frames: one number for every pair, or per pair: --scale ppo=1,dqn=0.2,sac=0.1.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from looplab.analysis.graphs import read_session_df  # noqa: E402

SPECS = ROOT / "bench" / "specs.json"
FRAMES = {"ppo": 100_000, "dqn": 50_000, "sac": 20_000, "trial": 100_000}
SPEC_NAMES = {"ppo": "ppo_cartpole_zoo", "dqn": "dqn_cartpole_zoo", "sac": "sac_pendulum_sb3", "trial": "ppo_cartpole_zoo"}


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the process and its children, stdout) of one whole process."""
    before = os.times()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    after = os.times()
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu, proc.stdout


def looplab_cmd(pair: str, frames: int, seed: int, data: Path, sessions: int = 1) -> list[str]:
    sets = {"env.max_frame": frames, "meta.random_seed": seed, "meta.max_session": sessions}
    if SPEC_NAMES[pair] == "ppo_cartpole_zoo":  # RL Zoo's linear schedules end at the last frame
        sets |= {"agent.net.lr_scheduler_spec.frame": frames, "agent.algorithm.clip_eps_spec.end_step": frames}
    args = [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    return [sys.executable, "-m", "looplab.cli", "run", str(SPECS), SPEC_NAMES[pair], "train", "--quiet",
            "--data-dir", str(data), *args]


def final_return(run: Path) -> float | None:
    """Mean return of each session's last 100 episodes (its last `total_reward`: SB3's statistic too),
    averaged over the sessions. Not `total_reward_ma`, which averages over the last 100 log checkpoints."""
    finals = [read_session_df(p)["total_reward"].dropna() for p in sorted((run / "info").glob("*_session_df_train.csv"))]
    finals = [float(f.iloc[-1]) for f in finals if len(f)]
    return statistics.mean(finals) if finals else None


def looplab_run(pair: str, frames: int, seed: int, sessions: int = 1) -> dict:
    data = Path(tempfile.mkdtemp(prefix="looplab-bench-"))
    try:
        wall, cpu, _ = timed(looplab_cmd(pair, frames, seed, data, sessions))
        run = next(p for p in data.iterdir() if p.is_dir())
        size = sum(f.stat().st_size for f in run.rglob("*") if f.is_file())
        return {"wall": wall, "cpu": cpu, "return": final_return(run), "run_bytes": size}
    finally:
        shutil.rmtree(data, ignore_errors=True)


def sb3_run(pair: str, frames: int, seed: int) -> dict:
    wall, cpu, out = timed([sys.executable, str(ROOT / "bench" / "sb3_side.py"), SPEC_NAMES[pair],
                            "--frames", str(frames), "--seed", str(seed)])
    return {"wall": wall, "cpu": cpu, "return": json.loads(out.strip().splitlines()[-1])["final_return"]}


def summary(xs: list[float]) -> str:
    return f"{statistics.median(xs):.1f} ({min(xs):.1f}–{max(xs):.1f})"


def ret(xs: list) -> str:
    xs = [x for x in xs if x is not None]
    return f"{statistics.mean(xs):.1f}" if xs else "–"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="ppo,dqn,sac,trial")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scale", default="1.0")
    parser.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    args = parser.parse_args()
    pairs = [p.strip() for p in args.pairs.split(",") if p.strip()]
    scales = ({k: float(v) for k, v in (x.split("=") for x in args.scale.split(","))} if "=" in args.scale
              else dict.fromkeys(pairs, float(args.scale)))
    unknown = set(pairs) - set(FRAMES)
    if unknown:
        raise SystemExit(f"unknown pair(s) {sorted(unknown)}; known: {', '.join(FRAMES)}")
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    load = os.getloadavg()[0]
    rows, notes = [], []
    for pair in pairs:
        frames = max(1000, int(FRAMES[pair] * scales.get(pair, 1.0)))
        a_runs, b_runs = [], []
        for rep in range(args.repeats):
            if pair == "trial":
                a_runs.append(looplab_run(pair, frames, rep, sessions=4))
                b_runs.append(looplab_run(pair, frames, rep, sessions=1))
            else:
                a_runs.append(looplab_run(pair, frames, rep))
                b_runs.append(sb3_run(pair, frames, rep))
            print(f"{pair} repeat {rep}: {a_runs[-1]['wall']:.1f} s vs {b_runs[-1]['wall']:.1f} s", flush=True)
        a_wall, b_wall = [r["wall"] for r in a_runs], [r["wall"] for r in b_runs]
        if pair == "trial":
            # frames per second of all sessions together: 4 sessions of `frames` vs one
            ratios = [4 * b / a for a, b in zip(a_wall, b_wall, strict=True)]
            rows.append(f"| trial: 4 PPO sessions vs 1, {frames:,} frames each | {summary(a_wall)} | "
                        f"{summary(b_wall)} | **{statistics.median(ratios):.2f}x** throughput "
                        f"({min(ratios):.2f}–{max(ratios):.2f}) | {ret([r['return'] for r in a_runs])} | "
                        f"{ret([r['return'] for r in b_runs])} |")
        else:
            ratios = [b / a for a, b in zip(a_wall, b_wall, strict=True)]
            rows.append(f"| {pair}: {SPEC_NAMES[pair]}, {frames:,} frames | {summary(a_wall)} | {summary(b_wall)} | "
                        f"**{statistics.median(ratios):.2f}x** ({min(ratios):.2f}–{max(ratios):.2f}) | "
                        f"{ret([r['return'] for r in a_runs])} | {ret([r['return'] for r in b_runs])} |")
        if pair == "ppo":
            sizes = [r["run_bytes"] / 2**20 for r in a_runs]
            notes.append(f"- Run folder of one {frames:,}-frame PPO session (TensorBoard on, log every 1,000 frames): "
                         f"{summary(sizes)} MiB; plotly.js (4.6 MiB) is written once beside the run folders.")
        write(args, pairs, sha, load, rows, notes)


def write(args: argparse.Namespace, pairs: list[str], sha: str, load: float, rows: list[str], notes: list[str]) -> None:
    """bench/RESULTS.md with the pairs done so far (written after each pair: a long run keeps what it measured)."""
    header = (f"# LoopLab vs Stable-Baselines3\n\n`python bench/vs_sb3.py --pairs {','.join(pairs)} --repeats "
              f"{args.repeats} --scale {args.scale}` at git {sha}, {time.strftime('%Y-%m-%d')}, "
              f"{os.cpu_count()} cores, load average {load:.1f} at the start. Whole processes, alternating, one "
              "torch thread each; seconds as median (min–max) over the repeats; the speed-up is SB3's time over "
              "LoopLab's, pair by pair (median, min–max); returns are the mean of the last 100 episodes, "
              "averaged over the repeats. What each speed lever gave, measured before and after: "
              "[LEVERS.md](LEVERS.md).\n\n"
              "| pair | LoopLab s | SB3 s (trial: 1 session) | LoopLab speed-up | LoopLab return | SB3 return |\n"
              "|---|---|---|---|---|---|\n")
    text = header + "\n".join(rows) + "\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")
    Path(args.out).write_text(text)
    print(text, flush=True)


if __name__ == "__main__":
    main()
