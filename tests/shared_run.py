"""What every pytest-xdist worker of one test run shares: a directory, and the pytest process that owns
the run (the xdist controller, or pytest itself without xdist), which tests/conftest.py names in the
environment the workers inherit."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

RUN_DIR_VARIABLE = "RECAUSE_TEST_RUN_DIR"
OWNER_PID_VARIABLE = "RECAUSE_TEST_OWNER_PID"


def announce(directory: Path) -> None:
    """Called by the owning process before any worker starts."""
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[RUN_DIR_VARIABLE] = str(directory)
    os.environ[OWNER_PID_VARIABLE] = str(os.getpid())


def run_dir() -> Path:
    """The directory shared by every worker of this test run."""
    return Path(os.environ.get(RUN_DIR_VARIABLE) or tempfile.gettempdir())


def run_owner_pid() -> int:
    """The pytest process whose exit ends the run (what the shared Prefect server's watchdog watches)."""
    return int(os.environ.get(OWNER_PID_VARIABLE) or os.getpid())
