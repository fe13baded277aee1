"""Shared fixtures (the real MovieLens-100K and Open Bandit files, read out of their wheels once per
session) and the run-wide set-up that pytest-xdist workers share: a directory for what is built once per
test run (the Prefect server, the tiny workspace: tests/integration/conftest.py), and the test order.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from filelock import FileLock

from recause.config import WheelSource
from recause.data.schemas import Tables
from recause.data.wheels import extract_wheel_files, load_movielens, locate_wheel
from recause.environment import quiet_environment
from tests.integration.prefect_server import launch as launch_prefect_server
from tests.integration.prefect_server import stop as stop_prefect_server
from tests.integration.workspaces import run_summary
from tests.shared_run import announce, run_dir, run_owner_pid

ROOT = Path(__file__).resolve().parents[1]
WHEEL_CACHE = ROOT / "data" / "external" / "wheels"

quiet_environment()


def _owns_the_run(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")  # an xdist worker has workerinput


@pytest.hookimpl(trylast=True)  # after pytest's tmp_path plugin set up its factory
def pytest_configure(config: pytest.Config) -> None:
    if _owns_the_run(config):
        # Under pytest's base temp, so its retention policy (pyproject) cleans it like any tmp_path.
        announce(config._tmp_path_factory.getbasetemp() / "run")  # type: ignore[attr-defined]
        if (config.getoption("numprocesses", default=None) or 0) > 1:
            # One thread per process when xdist runs one worker per core: a 2-thread torch or BLAS call
            # next to another busy process waits on its slower thread. Workers and stages inherit it.
            os.environ.setdefault("OMP_NUM_THREADS", "1")


RUN_SUMMARY = pytest.StashKey[list[str]]()


@pytest.hookimpl(tryfirst=True)  # before pytest's own clean-up of the base temp (the run directory)
def pytest_sessionfinish(session: pytest.Session) -> None:
    if _owns_the_run(session.config):
        stop_prefect_server(run_dir())
        session.config.stash[RUN_SUMMARY] = run_summary(run_dir())


@pytest.hookimpl(trylast=True)  # after pytest-randomly's shuffle and -m/-k deselection
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Launch the run's Prefect server if a selected test needs it, and order the tests.

    The tests on the tiny workspace go last but one, which goes first: its set-up builds the workspace
    (minutes, on one core) while the other tests run beside it; the rest then find it built. Within each
    part, tests marked slow go first (the longest first packs the workers best); otherwise the order
    stays pytest-randomly's."""

    def slow_first(part: list[pytest.Item]) -> list[pytest.Item]:
        return sorted(part, key=lambda item: item.get_closest_marker("slow") is None)  # stable

    if any("prefect_server" in getattr(item, "fixturenames", ()) for item in items):
        launch_prefect_server(run_dir(), run_owner_pid())  # starts while the first tests run; fixtures wait for it
    on_tiny = [item for item in items if "tiny_build" in getattr(item, "fixturenames", ())]
    others = [item for item in items if "tiny_build" not in getattr(item, "fixturenames", ())]
    builder = next((item for item in on_tiny if not item.get_closest_marker("skipif")), None)
    first = [] if builder is None else [builder]  # not one that may skip (the browser test): it builds nothing
    items[:] = [*first, *slow_first(others), *slow_first([item for item in on_tiny if item is not builder])]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    for line in config.stash.get(RUN_SUMMARY, []):
        terminalreporter.write_line(line)


def _wheel(source: WheelSource) -> Path:
    with FileLock(run_dir() / f"{source.package}-wheel.lock"):  # one download, whichever worker asks first
        return locate_wheel(source)


@pytest.fixture(scope="session")
def ml100k_wheel() -> Path:
    return _wheel(WheelSource(cache_dir=str(WHEEL_CACHE)))


@pytest.fixture(scope="session")
def ml100k_raw(ml100k_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The raw atomic files (raw user ids), by table."""
    return extract_wheel_files(ml100k_wheel, WheelSource().path, tmp_path_factory.mktemp("raw") / "ml-100k")


@pytest.fixture(scope="session")
def open_bandit_random(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Open Bandit Dataset sample logged by the uniform-random policy (campaign 'all')."""
    wheel = _wheel(WheelSource(package="obp", version="0.4.1", cache_dir=str(WHEEL_CACHE)))
    target = tmp_path_factory.mktemp("obd") / "random_all.csv"
    with zipfile.ZipFile(wheel) as archive:
        target.write_bytes(archive.read("obp/dataset/obd/random/all/all.csv"))
    return target


@pytest.fixture(scope="session")
def ml100k(ml100k_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Tables:
    tables, _ = load_movielens(
        WheelSource(cache_dir=str(ml100k_wheel.parent)), tmp_path_factory.mktemp("raw") / "ml-100k"
    )
    return tables
