"""Running DVC in a workspace: the workspace lock, one stage with `dvc repro`, and the workspace's flows.

The flows (Prefect wiring, ``<root>/flows``) and the CLI share these; the library never imports the
flows, it only loads them by path from the workspace when the CLI starts one.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from filelock import FileLock, Timeout

from recause.errors import RecauseError
from recause.layout import LAYOUT

Log = Callable[[str], None]
SKIPPED_MARKER = "didn't change, skipping"
EXIT_CODE = re.compile(r"exited with (-?\d+)")
FLOWS_PACKAGE = "flows"


def killed_by(returncode: int) -> signal.Signals | None:
    """The signal that ended a process, from Python's -N or a POSIX shell's 128+N (DVC uses `$SHELL`
    or `/bin/sh`; dash reports 137 where bash execs the command and Python sees -9)."""
    number = -returncode if returncode < 0 else returncode - 128 if 128 < returncode < 128 + 65 else None
    try:
        return signal.Signals(number) if number is not None else None
    except ValueError:
        return None


class StageFailed(RuntimeError):
    """A stage exited non-zero. Exit code 2 is a user error (bad params/data): never retried."""

    def __init__(self, stage: str, returncode: int, reason: str) -> None:
        death = killed_by(returncode)
        how = f"killed by {death.name}, exit {returncode}" if death else f"exit {returncode}"
        super().__init__(f"stage '{stage}' failed ({how}): {reason}")
        self.stage, self.returncode, self.reason, self.signal = stage, returncode, reason, death

    @property
    def transient(self) -> bool:
        return self.returncode != 2


@contextmanager
def workspace_lock(root: Path, log: Log) -> Iterator[None]:
    """Hold an exclusive lock on the workspace so two flow runs never run DVC in it at once.

    ``filelock`` opens (and truncates) the lock file on every attempt, so who holds the lock is kept
    in a file beside it, for the waiting run to name.
    """
    layout = LAYOUT.under(root)
    layout.workspace_lock.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(layout.workspace_lock)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        holder = _read_holder(layout.workspace_lock_holder) or "another run"
        log(f"waiting for the workspace lock {layout.workspace_lock} (held by {holder})")
        started = time.monotonic()
        lock.acquire()
        log(f"workspace lock acquired after {time.monotonic() - started:.1f}s")
    try:
        layout.workspace_lock_holder.write_text(
            f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n", encoding="utf-8"
        )
        yield
    finally:
        layout.workspace_lock_holder.unlink(missing_ok=True)
        lock.release()


def _read_holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""


def tool_env() -> dict[str, str]:
    """Child environment whose `python` and `dvc` are the ones running this process."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("DVC_NO_ANALYTICS", "1")
    return env


def dvc_command(*args: str) -> list[str]:
    """The `dvc` of this environment with ``args``."""
    return [str(Path(sys.executable).parent / "dvc"), *args]


def run_dvc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `dvc ARGS` in the workspace and capture what it says."""
    return subprocess.run(dvc_command(*args), cwd=root, env=tool_env(), capture_output=True, text=True)


def up_to_date_stages(root: Path) -> set[str]:
    """The stages `dvc status` finds unchanged (deps, params, outs and command), asked once, in process.

    One status of the whole workspace costs about what DVC's start-up costs for one stage; a flow that
    finds most stages up to date launches `dvc repro` only for the rest. When DVC cannot say (no `.dvc/`
    yet, say), no stage is known to be up to date and every one goes through `dvc repro`.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    if not LAYOUT.under(root).dvc_dir.is_dir():
        return set()
    try:
        with Repo(str(root)) as repo:
            changed = repo.status()  # keyed by each stage's address (relative to the working directory)
            dvc_yaml = LAYOUT.under(root).dvc_yaml.resolve()
            ours = [stage for stage in repo.index.stages if Path(stage.path).resolve() == dvc_yaml]
            return {stage.name for stage in ours if stage.addressing not in changed}
    except DvcException:
        return set()


def repro_stage(root: Path, stage: str, force: bool, log: Log) -> bool:
    """Run `dvc repro --single-item STAGE`; True if it ran, False if DVC found it up to date."""
    command = dvc_command("repro", "--single-item", stage, *(["--force"] if force else []))
    process = subprocess.Popen(
        command, cwd=root, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    skipped, ours, dvcs, stage_code = False, [], [], None
    for raw in process.stdout:
        line = raw.rstrip()
        if not line:
            continue
        log(line)
        skipped |= SKIPPED_MARKER in line
        if line.startswith("error: "):  # the one-line message of a recause stage
            ours.append(line.removeprefix("error: "))
        elif line.startswith("ERROR: "):
            dvcs.append(line.removeprefix("ERROR: "))
            found = EXIT_CODE.search(line)
            stage_code = int(found.group(1)) if found else stage_code
    returncode = process.wait()
    if returncode != 0:
        restore_last_good_outputs(root, stage, log)
        reason = (ours or dvcs or ["no output"])[0]
        raise StageFailed(stage, stage_code if stage_code is not None else returncode, reason)
    return not skipped


def restore_last_good_outputs(root: Path, stage: str, log: Log) -> None:
    """DVC deletes a stage's outputs before running it; put back the last good ones from its cache."""
    done = run_dvc(root, "checkout", "--quiet", stage)
    if done.returncode == 0:
        log(f"restored the last good outputs of '{stage}' from the DVC cache")
    else:
        log(f"could not restore the outputs of '{stage}': {done.stderr.strip().splitlines()[-1:]}")


def _flows_folder(root: Path) -> Path:
    folder = (root / FLOWS_PACKAGE).resolve()
    if not (folder / "__init__.py").is_file():
        raise RecauseError(f"{folder / '__init__.py'} not found: the workspace has no flows package")
    return folder


def load_flows(root: Path, module: str) -> ModuleType:
    """The module ``flows.<module>`` of the workspace at ``root``, loaded from its file, to run in this process.

    Flows live in the workspace, not in the package. Only the ``flows`` package is made importable
    (from ``<root>/flows``); the workspace is not put on ``sys.path``, so its other folders (tasks,
    tests) can neither be imported by accident nor shadow an installed package.
    """
    folder = _flows_folder(root)
    loaded = sys.modules.get(FLOWS_PACKAGE)
    if loaded is None or [str(Path(p).resolve()) for p in getattr(loaded, "__path__", [])] != [str(folder)]:
        for name in [n for n in sys.modules if n == FLOWS_PACKAGE or n.startswith(f"{FLOWS_PACKAGE}.")]:
            del sys.modules[name]  # another workspace's flows: this workspace's own ones win
        init = folder / "__init__.py"
        spec = importlib.util.spec_from_file_location(FLOWS_PACKAGE, init, submodule_search_locations=[str(folder)])
        assert spec is not None and spec.loader is not None
        package = importlib.util.module_from_spec(spec)
        sys.modules[FLOWS_PACKAGE] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{FLOWS_PACKAGE}.{module}")


def flows_command(root: Path, module: str, *args: str) -> list[str]:
    """`python -m flows.<module> ARGS`, to run with the workspace as working directory.

    For flows that Prefect runs in other processes (`serve` starts each flow run in a spawned
    child that imports the flow by its module name): run from the workspace, as DVC runs
    `python -m tasks.<stage>`, the flows are importable there and in every child.
    """
    _flows_folder(root)
    return [sys.executable, "-m", f"{FLOWS_PACKAGE}.{module}", *args]
