"""`enjoy@RUN_DIR`: replay the best checkpoint of a run, without training or exploration, into a NEW folder.

The source run is only read. The best session is the one whose best checkpoint has the highest
moving-average return (or the session a `..._t{T}_s{S}...` path names). `--render` shows the env
where a display exists; `--record` writes the episodes as an MP4 (imageio's ffmpeg plugin) or a GIF.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from looplab import io
from looplab.agent.algorithm import ALGORITHMS
from looplab.agent.validate import validate_spec
from looplab.env import Clock, Env
from looplab.errors import LoopLabError
from looplab.experiment import checkpoint
from looplab.experiment.logs import setup_logging
from looplab.experiment.resume import load_run
from looplab.runfolder import SUBDIRS, RunPaths, data_dir, run_name
from looplab.spec import parse_set
from looplab.spec.load import apply_overrides
from looplab.spec.schema import Spec

log = logging.getLogger("looplab")
SESSION_RE = re.compile(r"_t(\d+)_s(\d+)")


def locate(target: str) -> tuple[Path, int | None]:
    """(run folder, session index or None for the best) of an enjoy target."""
    path = Path(target)
    if path.is_dir() and path.name not in SUBDIRS:
        return path, None
    m = SESSION_RE.search(path.name)
    if m is None:
        raise LoopLabError(f"enjoy@{target}: give a run folder or a session's file (NAME_t0_s1_...)")
    root = path.parent.parent if path.parent.name in SUBDIRS else path.parent
    if not root.is_dir():
        raise LoopLabError(f"run folder not found: {root}")
    return root, int(m.group(2))


def best_session(paths: RunPaths, session: int | None) -> tuple[int, dict]:
    """The session to replay and its best checkpoint."""
    found = {}
    for f in sorted(paths.model_dir.glob(paths.checkpoints(0, best=True))):
        m = SESSION_RE.search(f.name)
        if m:
            found[int(m.group(2))] = f
    if session is not None:
        found = {s: f for s, f in found.items() if s == session}
    if not found:
        which = f"session {session}" if session is not None else "any session"
        raise LoopLabError(f"{paths.root}: no best checkpoint (model/*_ckpt-best.pt) for {which}")
    ckpts = {s: checkpoint.load(f) for s, f in found.items()}
    best = max(ckpts, key=lambda s: (ckpts[s]["best_ma"], -s))
    return best, ckpts[best]


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or os.name == "nt"


def write_video(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    """MP4 through imageio's ffmpeg plugin; a GIF where ffmpeg is not available."""
    import imageio.v2 as imageio

    def write(target: Path) -> None:
        tmp = target.with_name(f".{target.name}.tmp{target.suffix}")
        try:
            if target.suffix == ".mp4":
                imageio.mimwrite(tmp, frames, fps=fps, macro_block_size=1)
            else:
                imageio.mimwrite(tmp, frames, duration=1000 / fps, loop=0)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()

    try:
        write(path.with_suffix(".mp4"))
        return path.with_suffix(".mp4")
    except (ImportError, RuntimeError, ValueError, OSError) as e:
        log.warning("MP4 writing failed (%s); writing a GIF", e)
        write(path.with_suffix(".gif"))
        return path.with_suffix(".gif")


def replay(spec: Spec, nets: dict, env_state: dict | None, seed: int, episodes: int, render_mode: str | None,
           record: bool) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Run the greedy policy for `episodes` episodes in one env; returns per-episode rows and frames."""
    env = Env(spec, seed, render_mode=render_mode, autoreset="same_step")
    clock = Clock(num_envs=env.num_envs)
    agent = ALGORITHMS.get(spec.algorithm.name)(spec, env.info, clock, seed)
    agent.load_state_dict({"nets": nets}, weights_only=True)
    agent.training = False
    for net in agent.nets().values():
        net.eval()
    if env_state is not None and checkpoint.transform_state(env_state) is not None:
        env.load_state_dict(checkpoint.transform_state(env_state))
    env.freeze()
    sub = env.venv.unwrapped.envs[0] if hasattr(env.venv.unwrapped, "envs") else None
    frames: list[np.ndarray] = []
    rows: list[dict] = []
    state = env.reset()
    if record and sub is not None:
        frames.append(sub.render())
    ep_len = 0
    with torch.inference_mode():
        while env.episodes < episodes and clock.frame < spec.env.max_frame:
            action = agent.act(state)
            state, _, terminated, truncated, _ = env.step(action)
            clock.tick()
            ep_len += 1
            if record and sub is not None:
                frames.append(sub.render())
            if (terminated | truncated)[0]:
                rows.append({"episode": len(rows), "frame": clock.frame, "length": ep_len,
                             "total_reward": env.returns[-1]})
                ep_len = 0
    env.close()
    return pd.DataFrame(rows, columns=["episode", "frame", "length", "total_reward"]), frames


def run_enjoy(spec_file: str, spec_name: str, target: str | None, set_vars: list[str] | None,
              overrides: list[str] | None, data: str | None, quiet: bool, render: bool = False,
              record: bool = False, episodes: int = 5) -> Path:
    """Replay the best checkpoint of the run `target` into a new run folder; returns that folder."""
    if not target:
        raise LoopLabError("enjoy needs a run: enjoy@RUN_DIR or enjoy@RUN_DIR/model/NAME_t0_s0_...")
    if episodes < 1:
        raise LoopLabError(f"--episodes must be at least 1, got {episodes}")
    root, session = locate(target)
    name = run_name(root)
    raw, _, _ = load_run(root, name)
    src = RunPaths(root, name)
    index, best = best_session(src, session)
    raw = dict(raw)
    apply_overrides(raw, parse_set(overrides), str(src.spec()), name)
    raw["env"] = {**raw["env"], "num_envs": 1, "vectorization_mode": "sync"}
    spec = validate_spec(raw, str(src.spec()), name, check_env=False)
    render_mode = None
    if record:
        render_mode = "rgb_array"
        if render:
            log.warning("--render and --record: recording (rgb_array) only")
    elif render:
        if has_display():
            render_mode = "human"
        else:
            log.warning("--render: no display found (DISPLAY unset); running without rendering")
    out = RunPaths.create(data_dir(data), name)
    if out.root.resolve() == root.resolve():
        raise LoopLabError("enjoy would write into the run it replays")
    setup_logging(str(out.log_file()), console=not quiet)
    seed = int((raw.get("meta") or {}).get("random_seed") or 0)
    log.info("enjoy: %s session %d (best ma %.2f at frame %d) -> %s", root, index, best["best_ma"], best["frame"],
             out.root)
    io.write_json(out.spec(), raw)
    io.write_json(out.status, {
        "status": "running", "mode": "enjoy", "spec_name": name, "env": spec.env.name,
        "algorithm": spec.algorithm.name, "source": str(root), "source_session": index,
        "source_frame": best["frame"], "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    df, frames = replay(spec, best["nets"], best.get("env"), seed, episodes, render_mode, record)
    io.write_csv(out.session_df(0, 0, "enjoy"), df)
    metrics = {"episodes": len(df), "total_reward_mean": float(df["total_reward"].mean()) if len(df) else None,
               "total_reward_std": float(df["total_reward"].std(ddof=0)) if len(df) else None,
               "source": str(root), "source_session": index, "source_frame": best["frame"]}
    io.write_json(out.session_metrics(0, 0, "enjoy"), metrics)
    video = None
    if frames:
        fps = int((getattr(spec.env, "model_extra", None) or {}).get("render_fps", 0) or 30)
        video = write_video(out.video(0, 0), frames, fps)
        log.info("enjoy: video %s (%d frames)", video, len(frames))
    status = io.read_json(out.status)
    status.update(status="finished", finished=time.strftime("%Y-%m-%d %H:%M:%S"),
                  total_reward_ma=metrics["total_reward_mean"], video=str(video) if video else None)
    io.write_json(out.status, status)
    if not quiet:
        print(f"enjoy: {len(df)} episode(s), mean return {metrics['total_reward_mean']}")
        print(f"run folder: {out.root}")
    return out.root
