"""LoopLab vs Stable-Baselines3 on identical hyperparameters, whole process vs whole process, alternating.

Pairs (bench/specs.json holds the LoopLab side, bench/sb3_side.py the SB3 side, one torch thread each):
  ppo    PPO CartPole-v1, RL Zoo hyperparameters, 1e5 frames (also: the size of its run folder, TensorBoard on)
  dqn    DQN CartPole-v1, RL Zoo hyperparameters, 5e4 frames
  sac    SAC Pendulum-v1, SB3 defaults, 2e4 frames
  trial  a LoopLab trial of 4 PPO sessions vs 1 session: frames per second of all sessions together
  search a search of 4 PPO trials (one at a time, grid over lr) vs the same 4 trials run by hand, one after
         another: the seconds a trial costs in the search on top of a hand-run one
  slm    SLM Lab's ppo_cartpole, a2c_gae_cartpole, dqn_boltzmann_cartpole and sac_pendulum, one session each:
         LoopLab's frames per second against SLM Lab's on this machine (recorded figures, see SLM_FPS)
  checkpoint  a session checkpoint of a full 1e6-transition replay: only the rows added since the last one
         (what sessions write) vs the whole buffer (bench/checkpoint_cost.py)
Runs alternate (LoopLab, SB3, LoopLab, SB3, ...) so that both see the same machine load; each figure is the
wall time of a whole process (start-up, training, LoopLab's analysis and report included).
Writes a Markdown table (medians, min/max, the ratio, each side's final return) to --out.

Usage: python bench/vs_sb3.py [--pairs ppo,dqn,sac,trial,search,slm,checkpoint] [--repeats 3] [--scale 1.0] [--out bench/RESULTS.md]
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

from looplab import io  # noqa: E402
from looplab.analysis.graphs import read_session_df  # noqa: E402

SPECS = ROOT / "bench" / "specs.json"
FRAMES = {"ppo": 100_000, "dqn": 50_000, "sac": 20_000, "trial": 100_000, "search": 4_000, "slm": 20_000,
          "checkpoint": 1_000_000}
SPEC_NAMES = {"ppo": "ppo_cartpole_zoo", "dqn": "dqn_cartpole_zoo", "sac": "sac_pendulum_sb3", "trial": "ppo_cartpole_zoo",
              "search": "ppo_cartpole_zoo"}
SEARCH_TRIALS = 4
SLM_SPECS = ROOT / "looplab" / "spec" / "library" / "slm_lab" / "benchmark"
# SLM Lab's own frames per second for one session of its spec on this 2-core machine, as recorded when the
# speed goals were set (SLM Lab itself is not installable here, so it cannot run side by side); the frames
# below scale each run so that it lasts about a minute.
SLM_FPS = {"ppo_cartpole": ("ppo/ppo_cartpole.json", 366, 1.0), "a2c_gae_cartpole": ("a2c/a2c_gae_cartpole.json", 629, 1.0),
           "dqn_boltzmann_cartpole": ("dqn/dqn_cartpole.json", 120, 0.5), "sac_pendulum": ("sac/sac_pendulum.json", 46, 0.25)}


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


def search_pair(frames: int, repeats: int) -> tuple[str, str]:
    """A search of SEARCH_TRIALS trials, one at a time, vs the same trials by hand, one after another.

    Per trial, the search's cost is the trial's own time (its status file: start to end) plus the wait before
    the next one starts; the search's fixed cost (Ray's start, the experiment's analysis and report) is the
    rest of its wall time, reported apart."""
    spec = json.loads(SPECS.read_text())[SPEC_NAMES["search"]]
    spec["env"]["max_frame"] = frames
    spec["agent"]["net"]["lr_scheduler_spec"]["frame"] = frames
    spec["agent"]["algorithm"]["clip_eps_spec"]["end_step"] = frames
    spec["meta"].update(max_trial=1, max_session=1, num_cpus=1, search_resources={"cpu": 1})
    lrs = [0.001, 0.002, 0.0005, 0.003][:SEARCH_TRIALS]
    spec["search"] = {"agent.net.optim_spec.lr__grid_search": lrs}
    folder = Path(tempfile.mkdtemp(prefix="looplab-bench-"))
    spec_file = folder / "search.json"
    spec_file.write_text(json.dumps({"search_bench": spec}))
    base = [sys.executable, "-m", "looplab.cli", "run", str(spec_file), "search_bench"]
    per_trial, by_hand, fixed, ray_start, gaps = [], [], [], [], []
    try:
        for rep in range(repeats):
            data = folder / f"search{rep}"
            wall = timed([*base, "search", "--quiet", "--data-dir", str(data)])[0]
            run = next(p for p in data.iterdir() if p.is_dir())
            ray_start.append(float(json.loads((run / "run.json").read_text()).get("ray_start_s") or 0.0))
            status = sorted((json.loads(f.read_text()) for f in (run / "info").glob("*_trial_status.json")),
                            key=lambda r: r["started"])
            waits = [b["started"] - a["finished"] for a, b in zip(status[:-1], status[1:], strict=True)]
            gaps += waits
            own = [r["finished"] - r["started"] for r in status]
            per_trial.append((sum(own) + sum(waits)) / len(own))
            fixed.append(wall - sum(own) - sum(waits))
            hand = [timed([*base, "train", "--quiet", "--data-dir", str(folder / f"hand{rep}"),
                           "--set", f"agent.net.optim_spec.lr={lr}"])[0] for lr in lrs]
            by_hand.append(statistics.mean(hand))
            print(f"search repeat {rep}: {per_trial[-1]:.1f} s per trial (+{fixed[-1]:.1f} s per search) vs "
                  f"{by_hand[-1]:.1f} s by hand", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    extra = [a - b for a, b in zip(per_trial, by_hand, strict=True)]
    row = (f"| search: {len(lrs)} PPO trials of {frames:,} frames, one at a time | {summary(per_trial)} s per trial | "
           f"{summary(by_hand)} s, the same trial by hand | **{statistics.median(extra):+.1f} s** per trial "
           f"({min(extra):+.1f} to {max(extra):+.1f}) | – | – |")
    note = (f"- search: besides its trials, a search costs {summary(fixed)} s once (Ray's start, {summary(ray_start)} s "
            f"of it, then the experiment's analysis, graphs and report); between one trial's end and the next one's "
            f"start {summary(gaps) if gaps else '–'} s, as the trials reuse Ray's worker processes.")
    return row, note


def slm_pair(frames: int, repeats: int) -> list[str]:
    """LoopLab's frames per second on SLM Lab's own specs, one session, against SLM Lab's recorded figure."""
    rows = []
    for name, (rel, slm_fps, scale) in SLM_FPS.items():
        n = max(1000, int(frames * scale))
        fps, rets = [], []
        for rep in range(repeats):
            data = Path(tempfile.mkdtemp(prefix="looplab-bench-"))
            try:
                timed([sys.executable, "-m", "looplab.cli", "run", str(SLM_SPECS / rel), name, "train", "--quiet",
                       "--data-dir", str(data), "--set", f"env.max_frame={n}", "--set", "meta.max_session=1",
                       "--set", f"meta.random_seed={rep}"])
                run = next(p for p in data.iterdir() if p.is_dir())
                df = read_session_df(next((run / "info").glob("*_session_df_train.csv")))
                fps.append(float(df["fps"].dropna().iloc[-1]))
                rets.append(final_return(run))
            finally:
                shutil.rmtree(data, ignore_errors=True)
            print(f"slm {name} repeat {rep}: {fps[-1]:.0f} fps", flush=True)
        ratios = [f / slm_fps for f in fps]
        rows.append(f"| slm: {name}, 1 session, {n:,} frames | {summary(fps)} fps | {slm_fps} fps (recorded) | "
                    f"**{statistics.median(ratios):.2f}x** ({min(ratios):.2f}–{max(ratios):.2f}) | {ret(rets)} | – |")
    return rows


def checkpoint_pair(size: int, repeats: int) -> str:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "checkpoint_cost.py"), "--size", str(size),
                          "--repeats", str(repeats)], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    ratios = [i / w for i, w in zip(r["incremental_s"], r["whole_s"], strict=True)]
    return (f"| checkpoint: replay of {r['size']:,} transitions ({r['dim']} floats each), {r['added']:,} added since the "
            f"last | {summary(r['incremental_s'], 3)} s, {r['incremental_mib']:.0f} MiB | {summary(r['whole_s'], 3)} s, "
            f"{r['whole_mib']:.0f} MiB (whole buffer) | **{statistics.median(ratios):.3f}x** the time | – | – |")


def summary(xs: list[float], digits: int = 1) -> str:
    return f"{statistics.median(xs):.{digits}f} ({min(xs):.{digits}f}–{max(xs):.{digits}f})"


def ret(xs: list) -> str:
    xs = [x for x in xs if x is not None]
    return f"{statistics.mean(xs):.1f}" if xs else "–"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="ppo,dqn,sac,trial,search,slm,checkpoint")
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
        if pair == "search":
            row, note = search_pair(frames, args.repeats)
            rows.append(row)
            notes.append(note)
            write(args, pairs, sha, load, rows, notes)
            continue
        if pair == "slm":
            rows += slm_pair(frames, args.repeats)
            write(args, pairs, sha, load, rows, notes)
            continue
        if pair == "checkpoint":
            rows.append(checkpoint_pair(frames, args.repeats))
            write(args, pairs, sha, load, rows, notes)
            continue
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
            rows.append(f"| trial: 4 PPO sessions vs 1, {frames:,} frames each | {summary(a_wall)} s | "
                        f"{summary(b_wall)} s | **{statistics.median(ratios):.2f}x** throughput "
                        f"({min(ratios):.2f}–{max(ratios):.2f}) | {ret([r['return'] for r in a_runs])} | "
                        f"{ret([r['return'] for r in b_runs])} |")
        else:
            ratios = [b / a for a, b in zip(a_wall, b_wall, strict=True)]
            rows.append(f"| {pair}: {SPEC_NAMES[pair]}, {frames:,} frames | {summary(a_wall)} s | {summary(b_wall)} s | "
                        f"**{statistics.median(ratios):.2f}x** ({min(ratios):.2f}–{max(ratios):.2f}) | "
                        f"{ret([r['return'] for r in a_runs])} | {ret([r['return'] for r in b_runs])} |")
        if pair == "ppo":
            sizes = [r["run_bytes"] / 2**20 for r in a_runs]
            notes.append(f"- ppo: the run folder of one {frames:,}-frame PPO session (TensorBoard on, log every 1,000 frames): "
                         f"{summary(sizes)} MiB; plotly.js (4.6 MiB) is written once beside the run folders.")
        write(args, pairs, sha, load, rows, notes)


TABLE_HEAD = ("| pair | LoopLab | peer | LoopLab speed-up | LoopLab return | peer return | measured |\n"
              "|---|---|---|---|---|---|---|\n")


def pair_of(line: str) -> str:
    """The pair a table row (`| ppo: ...`) or a note (`- ppo: ...`) belongs to."""
    return line[2:].split(":", 1)[0].strip()


def write(args: argparse.Namespace, pairs: list[str], sha: str, load: float, rows: list[str], notes: list[str]) -> None:
    """bench/RESULTS.md with the pairs done so far (written after each pair: a long run keeps what it measured).
    Rows and notes of pairs this invocation does not run are kept from the file as they were; each row says
    the commit, date and options it was measured with."""
    out = Path(args.out)
    old = out.read_text().splitlines() if out.exists() else []
    measured = (f"git {sha}, {time.strftime('%Y-%m-%d')}, --repeats {args.repeats} --scale {args.scale}, "
                f"load {load:.1f}")
    table = [r + f" {measured} |" for r in rows]
    table += [line for line in old if line.startswith("| ") and not line.startswith("| pair |")
              and line.count("|") == TABLE_HEAD.splitlines()[0].count("|") and pair_of(line) not in pairs]
    kept_notes = [line for line in old if line.startswith("- ") and pair_of(line) in FRAMES and pair_of(line) not in pairs]
    order = list(FRAMES)
    table.sort(key=lambda r: order.index(pair_of(r)) if pair_of(r) in order else len(order))
    all_notes = sorted(notes + kept_notes, key=lambda n: order.index(pair_of(n)))
    header = ("# LoopLab's speed, side by side with its peers\n\n"
              "`make bench` (`python bench/vs_sb3.py --pairs PAIRS --repeats R --scale S`); each row says the commit, "
              f"date, options and load average it was measured at, on {os.cpu_count()} cores. Whole processes, "
              "alternating, one torch thread each; figures are the median (min–max) over the repeats; the speed-up "
              "is the peer's time over LoopLab's (or LoopLab's frames per second over the peer's), pair by pair; "
              "returns are the mean of the last 100 episodes, averaged over the repeats. What each speed lever "
              "gave, measured before and after: [LEVERS.md](LEVERS.md).\n\n"
              "The peer is Stable-Baselines3 unless the row names another; `slm` rows set LoopLab's frames per second "
              "against SLM Lab's as recorded on this kind of machine (SLM Lab is not installable here to run beside "
              "it), so they compare across days, and this machine's speed varies from day to day (LEVERS.md, \"This "
              "machine from one day to the next\", measures by how much). Only the rows against a peer run in the "
              "same invocation are side by side.\n\n")
    text = header + TABLE_HEAD + "\n".join(table) + "\n" + ("\n" + "\n".join(all_notes) + "\n" if all_notes else "")
    io.write_text(out, text)
    print(text, flush=True)


if __name__ == "__main__":
    main()
