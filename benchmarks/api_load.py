"""Load on `recause api` against its floor, a lookup of precomputed lists, in the same run, on 127.0.0.1 only.

Two servers are started in turn under uvicorn, each in its own process:
- `api`: the real app (``recause.online.server``), scoring each user's history with the served model in real time,
  choosing the list with the serving policy and appending it to the exposure log;
- `lookup`: the floor, a FastAPI route that returns a user's precomputed top-k (what ``topk.parquet`` holds) as
  bytes from a dict, with no scoring, policy or logging.

Clients (aiohttp, one process, asyncio) ask for sampled users' lists, GET /recommendations/{user}?k=10:
- closed loop at 1, 16 and 64 concurrent clients: each sends its next request when the last one answered, so
  throughput is the server's capacity on this machine and latency is mostly queueing (64 / throughput);
- paced: 64 clients that each send ``--rate`` requests per second on a fixed schedule (users of a product, not a
  flood); latency is measured from the scheduled send time, so a slow server cannot hide its queue
  (coordinated omission).

  .venv/bin/python benchmarks/api_load.py                       # the project's workspace (after `make run`)
  .venv/bin/python benchmarks/scale.py --sizes 10000000 --keep /tmp/scale
  .venv/bin/python benchmarks/api_load.py --workspace /tmp/scale/n10000000 --model itemknn

Prints one table: throughput, p50/p95/p99 (ms) and errors per load, for the api and the floor, and the ratios.
The exposure files the api run wrote are removed afterwards (a benchmark leaves the workspace as it found it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
USERS_SAMPLED = 2_000
K = 10


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def lookup_app(workspace: Path, model: str | None, users: list[str]):  # noqa: ANN201
    """The floor: precomputed lists by user, served as stored bytes."""
    import orjson
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import Response

    from recause.serving import champion, load_served

    served = load_served(workspace, model or champion(workspace))
    rows = np.array([served.user_rows[u] for u in users])
    top = served.top_k(K, rows)
    stored = {
        user: orjson.dumps({"user_id": user, "items": group[["item_id", "title", "score"]].to_dict("records")})
        for user, group in top.groupby("user_id", sort=False)
    }
    app = FastAPI()

    @app.get("/recommendations/{user_id}")
    async def lookup(user_id: str, k: int = K) -> Response:
        if user_id not in stored:
            raise HTTPException(404, "unknown user")
        return Response(stored[user_id], media_type="application/json")

    return app


def sampled_users(workspace: Path, model: str | None) -> list[str]:
    from recause.serving import champion, load_served

    served = load_served(workspace, model or champion(workspace))
    ids = served.users.ids
    chosen = np.random.default_rng(0).choice(len(ids), size=min(USERS_SAMPLED, len(ids)), replace=False)
    return [str(ids[i]) for i in np.sort(chosen)]


def start(
    kind: str, workspace: Path, model: str | None, port: int, users_file: Path, log: Path, workers: int
) -> subprocess.Popen:
    env = {**os.environ, "RECAUSE_API_ROOT": str(workspace), "RECAUSE_API_MODEL": model or ""}
    if kind == "api":
        command = [sys.executable, "-m", "uvicorn", "--factory", "recause.online.server:app_from_environment"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
        command += ["--workers", str(workers)]
    else:
        command = [sys.executable, __file__, "--serve-lookup", str(port), "--workspace", str(workspace)]
        command += ["--users-file", str(users_file)] + (["--model", model] if model else [])
    process = subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=workspace)
    deadline = time.time() + 600
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{kind} server exited: {log.read_text()[-2000:]}")
        try:
            import urllib.request

            path = "/ready" if kind == "api" else "/docs"
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"{kind} server did not become ready in 600 s")


async def load(port: int, users: list[str], clients: int, seconds: float, rate: float | None) -> dict:
    """Requests from ``clients`` clients for ``seconds``: closed loop (rate None) or ``rate`` per client per s."""
    import aiohttp

    latencies: list[float] = []
    errors = 0
    base = f"http://127.0.0.1:{port}/recommendations/"
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        begin = time.perf_counter()
        stop = begin + seconds

        async def client(number: int) -> None:
            nonlocal errors
            next_user, scheduled = number, begin + (number / clients / rate if rate else 0.0)
            while (scheduled if rate else time.perf_counter()) < stop:
                if rate:
                    await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
                sent = scheduled if rate else time.perf_counter()
                try:
                    async with session.get(f"{base}{users[next_user % len(users)]}?k={K}") as answer:
                        await answer.read()
                        errors += answer.status != 200
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - sent)
                next_user += clients
                scheduled += 1.0 / rate if rate else 0.0

        await asyncio.gather(*(client(n) for n in range(clients)))
        took = time.perf_counter() - begin
    ms = np.asarray(latencies) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99]) if len(ms) else (np.nan,) * 3
    return {"rps": len(ms) / took, "p50": p50, "p95": p95, "p99": p99, "errors": errors, "requests": len(ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=ROOT)
    parser.add_argument("--model", help="serve this model by name (default: the workspace's champion)")
    parser.add_argument("--seconds", type=float, default=20.0, help="per closed-loop load")
    parser.add_argument("--paced-seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=10.0, help="paced: requests per second per client")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes of the api")
    parser.add_argument("--only", choices=("api", "lookup"), help="run one server (no ratios)")
    parser.add_argument("--serve-lookup", type=int, help=argparse.SUPPRESS)  # child: the floor server
    parser.add_argument("--users-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    workspace = args.workspace.resolve()
    if args.serve_lookup:
        import uvicorn

        users = args.users_file.read_text().split()
        uvicorn.run(
            lookup_app(workspace, args.model, users),
            host="127.0.0.1",
            port=args.serve_lookup,
            log_level="warning",
            access_log=False,
        )
        return
    from recause.layout import LAYOUT

    users = sampled_users(workspace, args.model)
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"api-load-{os.getpid()}"
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "users.txt").write_text("\n".join(users))
    exposure = LAYOUT.under(workspace).exposure
    before = set(exposure.glob("*")) if exposure.exists() else set()
    loads = [(f"closed, {c} client{'s' if c > 1 else ''}", c, args.seconds, None) for c in args.concurrency]
    loads.append((f"paced, 64 clients x {args.rate:g}/s", 64, args.paced_seconds, args.rate))
    results: dict[tuple[str, str], dict] = {}
    try:
        for kind in (args.only,) if args.only else ("lookup", "api"):
            port = free_port()
            server = start(
                kind, workspace, args.model, port, scratch / "users.txt", scratch / f"{kind}.log", args.workers
            )
            try:
                asyncio.run(load(port, users, 4, 2.0, None))  # warm-up
                for label, clients, seconds, rate in loads:
                    results[(kind, label)] = found = asyncio.run(load(port, users, clients, seconds, rate))
                    print(f"{kind:<6} {label:<26} {found['rps']:7.0f} req/s  p50 {found['p50']:6.1f}  p95 "
                          f"{found['p95']:6.1f}  p99 {found['p99']:6.1f} ms  errors {found['errors']}", flush=True)  # fmt: skip
            finally:
                server.terminate()
                server.wait(timeout=30)
    finally:
        for path in (set(exposure.glob("*")) if exposure.exists() else set()) - before:
            path.unlink()
    if not args.only:
        report(workspace, args.model, loads, results)


def report(workspace: Path, model: str | None, loads: list, results: dict) -> None:
    print(f"\n{workspace} ({model or 'champion'}), {os.cpu_count()} cores, server and clients on one machine\n")
    print("| load | api req/s | api p50 / p95 / p99 ms | floor req/s | floor p99 ms | api errors | p99 vs floor |")
    print("|---|---|---|---|---|---|---|")
    for label, *_ in loads:
        api, floor = results[("api", label)], results[("lookup", label)]
        print(
            f"| {label} | {api['rps']:,.0f} | {api['p50']:.1f} / {api['p95']:.1f} / {api['p99']:.1f} | "
            f"{floor['rps']:,.0f} | {floor['p99']:.1f} | {api['errors']} | {api['p99'] / floor['p99']:.2f}x |"
        )


if __name__ == "__main__":
    main()
