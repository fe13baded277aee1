"""One Prefect server per test run, shared by every pytest-xdist worker and every subprocess.

Each `recause run` would otherwise start an ephemeral server (~10 s of migrations and start-up on 2
cores). The first test that needs the server starts `prefect server start` on a free port, with its own
PREFECT_HOME, under a watchdog that stops it when the pytest process that owns the run exits (so a killed
run leaves no server behind); the others find it through a file in the run's shared directory. The
pytest process that owns the run (the xdist controller, or pytest itself without xdist) stops it at the
end (``stop``, from tests/conftest.py).

Run as a script, this module is that watchdog: ``prefect_server.py HOME PORT WATCHED_PID``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from recause.environment import quiet_environment

STATE_FILE = "prefect-server.json"  # where the launched server is (url, home, log, watchdog pid)
READY_FILE = "prefect-server-ready.json"  # how long it took to answer
START_TIMEOUT_S = 180
# Loops the tests never need (no schedules, workers, pauses or cancellations to watch): each wakes every
# few seconds for the whole run. Runs, task runs, events and artifacts are recorded as usual.
IDLE_SERVICES = ("SCHEDULER", "LATE_RUNS", "FOREMAN", "PAUSE_EXPIRATIONS", "REPOSSESSOR", "CANCELLATION_CLEANUP")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class PrefectServer:
    url: str  # the API: http://127.0.0.1:<port>/api
    home: Path
    log: Path

    @property
    def base(self) -> str:
        return self.url.removesuffix("/api")

    def env(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` pointed at this server (no other PREFECT_ setting from outside leaks in)."""
        clean = {key: value for key, value in env.items() if not key.startswith("PREFECT_")}
        # Flow runs keep their logs in their own output, which the tests read; no test reads them back
        # from the API, and shipping every DVC line to the shared server costs both sides CPU.
        ours = {"PREFECT_API_URL": self.url, "PREFECT_HOME": str(self.home), "PREFECT_LOGGING_TO_API_ENABLED": "false"}
        return dict(quiet_environment(clean | ours))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with _NO_PROXY.open(f"{url}/health", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def launch(shared: Path, owner_pid: int) -> None:
    """Start the run's server unless it is started already; return at once (``shared_server`` waits for it).

    Called as soon as a worker knows a test will need the server (tests/conftest.py), so that its
    start-up overlaps the collection and the first tests instead of holding up the tiny build.
    """
    shared.mkdir(parents=True, exist_ok=True)
    state = shared / STATE_FILE
    with FileLock(shared / f"{STATE_FILE}.lock"):
        if state.exists():
            return
        home, log, port = shared / "prefect-home", shared / "prefect-server.log", free_port()
        home.mkdir(exist_ok=True)
        with log.open("wb") as sink:
            watchdog = subprocess.Popen(
                [sys.executable, __file__, str(home), str(port), str(owner_pid)],
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        launched = {"url": f"http://127.0.0.1:{port}/api", "home": str(home), "log": str(log), "pid": watchdog.pid}
        state.write_text(json.dumps({**launched, "launched_at": time.time()}))


def shared_server(shared: Path, owner_pid: int) -> PrefectServer:
    """The run's server, once it answers: launched by the first caller (any xdist worker) if nobody did."""
    launch(shared, owner_pid)
    found = json.loads((shared / STATE_FILE).read_text())
    while not healthy(found["url"]):
        if not _alive(found["pid"]) or time.time() - found["launched_at"] > START_TIMEOUT_S:
            _terminate(found["pid"])
            raise RuntimeError(
                f"prefect server did not start at {found['url']}:\n{Path(found['log']).read_text()[-3000:]}"
            )
        time.sleep(0.3)
    ready = shared / READY_FILE
    with FileLock(shared / f"{STATE_FILE}.lock"):
        if not ready.exists():  # the first to see it answer records how long start-up took
            ready.write_text(json.dumps({"started_in_s": round(time.time() - found["launched_at"], 1)}))
    return PrefectServer(found["url"], Path(found["home"]), Path(found["log"]))


def stop(shared: Path) -> None:
    """Stop the run's server if one was started (the watchdog stops the server, then exits)."""
    state = shared / STATE_FILE
    if state.exists():
        _terminate(json.loads(state.read_text())["pid"])


def started_in_s(shared: Path) -> float | None:
    """How long the run's one server took to start, if one was started and waited for."""
    ready = shared / READY_FILE
    return json.loads(ready.read_text())["started_in_s"] if ready.exists() else None


def _terminate(pid: int, grace_s: float = 30) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)  # whatever is left of the watchdog's group (it leads it)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) is gone for our purposes
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _watch(home: str, port: str, owner_pid: str) -> None:
    """Run the server until SIGTERM or until the owning pytest process is gone, then stop it."""
    env = dict(os.environ) | {
        "PREFECT_HOME": home,
        # the UI asks these (not --port) where its API is
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": port,
        **{f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in IDLE_SERVICES},
    }
    env.pop("PREFECT_API_URL", None)
    quiet_environment(env)
    prefect = Path(sys.executable).parent / "prefect"
    # same process group as this watchdog: whoever kills the group kills the server too
    server = subprocess.Popen([str(prefect), "server", "start", "--host", "127.0.0.1", "--port", port], env=env)
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    while not stopping and server.poll() is None and _alive(int(owner_pid)):
        time.sleep(1)
    if server.poll() is None:
        server.send_signal(signal.SIGINT)  # Ctrl-C: the server shuts down its web server and services
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


if __name__ == "__main__":
    _watch(*sys.argv[1:4])
