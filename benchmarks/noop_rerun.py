"""Cost of a run that has nothing to do: the Prefect flow against plain `dvc repro` (the peer).

Run in a workspace whose pipeline is up to date (it runs `dvc repro` first if not):
  .venv/bin/python benchmarks/noop_rerun.py [--repeats 3]
Prints wall times, the flow's own time for its stages (from its log line) and the ratios.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FLOW_LINE = re.compile(r"(\d+) stage\(s\) in ([0-9.]+)s: ran (.+?); skipped (\d+)")


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return elapsed, done.stdout + done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    timed([str(BIN / "dvc"), "repro"], env)  # bring the workspace up to date first

    dvc_times = [timed([str(BIN / "dvc"), "repro"], env)[0] for _ in range(repeats)]
    flow_walls, flow_stage_times = [], []
    for _ in range(repeats):
        wall, output = timed([str(BIN / "recause"), "run"], env)
        found = FLOW_LINE.search(output)
        if not found or found.group(3) != "none":
            raise SystemExit(f"the flow was expected to skip every stage:\n{output[-2000:]}")
        flow_walls.append(wall)
        flow_stage_times.append(float(found.group(2)))

    dvc_s, wall_s, stages_s = (statistics.median(v) for v in (dvc_times, flow_walls, flow_stage_times))
    print(f"no-op rerun, median of {repeats}")
    print(f"  dvc repro (peer)                     {dvc_s:6.2f} s   1.00x")
    print(f"  flow: stage tasks (dvc per stage)    {stages_s:6.2f} s   {stages_s / dvc_s:5.2f}x")
    print(f"  recause run wall (incl. Prefect      {wall_s:6.2f} s   {wall_s / dvc_s:5.2f}x")
    print("   import + ephemeral server start/stop)")


if __name__ == "__main__":
    main()
