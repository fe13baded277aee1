"""Prefect's server on PostgreSQL instead of SQLite, via PREFECT_API_DATABASE_CONNECTION_URL.

Starts a throwaway PostgreSQL (Debian's `postgresql` package: initdb and pg_ctl under
/usr/lib/postgresql/*/bin, or on PATH) on a free local port, runs a one-task flow in a subprocess
whose ephemeral Prefect server points at it, then reads the flow run, task run and artifact back out
of PostgreSQL's own tables. Skipped, with the reason, where the PostgreSQL server is not installed.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

DB_USER = "recause"
DB_NAME = "prefect"
FLOW_NAME = "postgres-backend-smoke"
ARTIFACT_KEY = "postgres-backend-smoke"

DRIVER = textwrap.dedent(
    f"""
    import json
    from prefect import flow, task
    from prefect.artifacts import create_markdown_artifact

    @task
    def square(x):
        create_markdown_artifact(markdown="# squared\\n", key={ARTIFACT_KEY!r})
        return x * x

    @flow(name={FLOW_NAME!r})
    def smoke(x):
        return square(x)

    state = smoke(7, return_state=True)
    report = {{
        "state": state.type.value,
        "result": state.result(),
        "flow_run_id": str(state.state_details.flow_run_id),
    }}
    print("REPORT " + json.dumps(report))
    """
)


def find_postgres_bin_dir() -> Path | None:
    """The directory holding both `initdb` and `pg_ctl`: PATH first, then Debian's versioned dirs, newest first."""
    candidates = [Path(found).parent for found in (shutil.which("initdb"), shutil.which("pg_ctl")) if found]

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    candidates += [Path(d) for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in ("initdb", "pg_ctl")):
            return directory
    return None


def unprivileged_user() -> pwd.struct_passwd | None:
    """initdb and postgres refuse to run as root: the account to run them as (Debian's `postgres`, else `nobody`)."""
    for name in ("postgres", "nobody"):
        try:
            account = pwd.getpwnam(name)
        except KeyError:
            continue
        if account.pw_uid != 0:
            return account
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _execute(port: int, database: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(host="127.0.0.1", port=port, user=DB_USER, database=database)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _fetch(port: int, query: str, *args: object) -> list[dict]:
    import asyncpg

    connection = await asyncpg.connect(host="127.0.0.1", port=port, user=DB_USER, database=DB_NAME)
    try:
        return [dict(row) for row in await connection.fetch(query, *args)]
    finally:
        await connection.close()


@dataclass(frozen=True)
class Postgres:
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"

    def fetch(self, query: str, *args: object) -> list[dict]:
        return asyncio.run(_fetch(self.port, query, *args))


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    bin_dir = find_postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    run_as: dict = {}
    account = None
    if os.geteuid() == 0:
        account = unprivileged_user()
        if account is None:
            pytest.skip("running as root and no unprivileged user (postgres, nobody) to run initdb/pg_ctl as")
        run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    # Not pytest's tmp_path: that sits under a root-only 0700 directory the unprivileged user cannot reach.
    base = Path(tempfile.mkdtemp(prefix="recause-pg-"))
    data, sockets, log = base / "data", base / "sock", base / "server.log"
    sockets.mkdir()
    if account is not None:
        for path in (base, sockets):
            os.chown(path, account.pw_uid, account.pw_gid)

    def pg(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(bin_dir / args[0]), *args[1:]], cwd=base, capture_output=True, text=True, timeout=120, **run_as
        )
        if check and done.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            pytest.fail(f"{args[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{server_log}")
        return done

    port = free_port()
    try:
        pg("initdb", "-D", str(data), "-A", "trust", "-U", DB_USER, "-E", "UTF8", "--no-locale", "--no-sync")
        options = f"-h 127.0.0.1 -p {port} -k {sockets} -c fsync=off -c full_page_writes=off"
        pg("pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        asyncio.run(_execute(port, "postgres", f"CREATE DATABASE {DB_NAME}"))
        yield Postgres(port)
    finally:
        if (data / "postmaster.pid").exists():
            pg("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_prefect_stores_runs_in_postgresql_when_given_its_url(postgres: Postgres, tmp_path: Path) -> None:
    """A flow run through the ephemeral server lands in PostgreSQL's tables, and no SQLite file is made."""
    prefect_home = tmp_path / ".prefect"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_API_DATABASE_CONNECTION_URL": postgres.url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    }
    done = subprocess.run(
        [sys.executable, "-c", DRIVER], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0 and lines, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads(lines[-1].removeprefix("REPORT "))
    assert report["state"] == "COMPLETED" and report["result"] == 49

    flow_runs = postgres.fetch(
        "SELECT fr.id::text AS id, fr.state_type::text AS state FROM flow_run fr"
        " JOIN flow f ON f.id = fr.flow_id WHERE f.name = $1",
        FLOW_NAME,
    )
    assert flow_runs == [{"id": report["flow_run_id"], "state": "COMPLETED"}]
    task_runs = postgres.fetch(
        "SELECT task_key, state_type::text AS state FROM task_run WHERE flow_run_id = $1::uuid",
        report["flow_run_id"],
    )
    assert [run["state"] for run in task_runs] == ["COMPLETED"] and "square" in task_runs[0]["task_key"]
    artifacts = postgres.fetch(
        "SELECT type, data::text AS data, flow_run_id::text AS flow_run_id FROM artifact WHERE key = $1",
        ARTIFACT_KEY,
    )
    assert [(a["type"], json.loads(a["data"]), a["flow_run_id"]) for a in artifacts] == [
        ("markdown", "# squared\n", report["flow_run_id"])
    ]

    sqlite_files = [p for p in prefect_home.rglob("*") if p.suffix in {".db", ".sqlite"} or "prefect.db" in p.name]
    assert sqlite_files == [], f"Prefect fell back to SQLite: {sqlite_files}"
