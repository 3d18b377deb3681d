"""What `looplab push` uploads for a run folder and how long push + pull take against a local Hub.

    python bench/hub_round_trip.py data/RUN

Starts the local stand-in for the Hub that the tests use (tests/hub_server.py), then times
`looplab push RUN` and `looplab pull RUN` into an empty data folder through the CLI, as a user runs
them (each time includes the CLI's start-up), and checks that the pulled run equals the pushed one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hub_server import HubServer  # noqa: E402

TOKEN = "hf_local_benchmark_token_000000"


def main(run: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = HubServer(Path(tmp) / "hub", TOKEN).start()
        env = {**os.environ, "HF_ENDPOINT": server.url, "HF_TOKEN": TOKEN, "HF_HOME": f"{tmp}/hf_home",
               "HF_HUB_DISABLE_TELEMETRY": "1", "HF_REPO": "bench/runs", "PYTHONPATH": str(ROOT)}
        env.pop("HF_HUB_OFFLINE", None)

        def cli(*args: str) -> float:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "looplab.cli", *args], check=True, env=env, cwd=ROOT,
                           stdout=subprocess.DEVNULL)
            return time.perf_counter() - t0

        push_s = cli("push", str(run))
        pull_s = cli("pull", run.name, "--data-dir", f"{tmp}/pulled")
        server.stop()
        stored = Path(tmp) / "hub" / "datasets" / "bench" / "runs" / "files" / "data" / run.name
        sent = [p for p in stored.rglob("*") if p.is_file()]
        pulled = Path(tmp) / "pulled" / run.name
        same = all((pulled / p.relative_to(stored)).read_bytes() == p.read_bytes() for p in sent)
        local = [p for p in run.rglob("*") if p.is_file()]
        print(f"run folder: {len(local)} files, {sum(p.stat().st_size for p in local) / 1e6:.1f} MB")
        print(f"pushed:     {len(sent)} files, {sum(p.stat().st_size for p in sent) / 1e6:.1f} MB "
              f"(optimizer states and resume checkpoints left out)")
        by_kind: dict[str, int] = {}
        for p in sent:
            kind = p.suffix if p.suffix in (".html", ".png", ".pt", ".csv", ".json") else (
                "tensorboard" if "tfevents" in p.name else p.suffix or p.name)
            by_kind[kind] = by_kind.get(kind, 0) + p.stat().st_size
        print("  by kind:  " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])))
        print(f"push {push_s:.1f} s, pull {pull_s:.1f} s, round trip {push_s + pull_s:.1f} s "
              f"(pulled run complete: {same})")


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: python bench/hub_round_trip.py RUN_DIR")
    main(Path(sys.argv[1]).resolve())
