"""What a flow needs around DVC: the workspace lock and running one stage with `dvc repro`."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = Path(".recause/workspace.lock")
SKIPPED_MARKER = "didn't change, skipping"
EXIT_CODE = re.compile(r"exited with (-?\d+)")


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
def workspace_lock(root: Path, log: Callable[[str], None]) -> Iterator[None]:
    """Hold an exclusive lock on the workspace so two flow runs never run DVC in it at once."""
    path = root / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another run"
            log(f"waiting for the workspace lock {path} (held by {holder})")
            started = time.monotonic()
            fcntl.flock(handle, fcntl.LOCK_EX)
            log(f"workspace lock acquired after {time.monotonic() - started:.1f}s")
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def tool_env() -> dict[str, str]:
    """Child environment whose `python` and `dvc` are the ones running this flow."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("DVC_NO_ANALYTICS", "1")
    return env


def repro_stage(root: Path, stage: str, force: bool, log: Callable[[str], None]) -> bool:
    """Run `dvc repro --single-item STAGE`; True if it ran, False if DVC found it up to date."""
    command = [str(Path(sys.executable).parent / "dvc"), "repro", "--single-item", stage]
    if force:
        command.append("--force")
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


def restore_last_good_outputs(root: Path, stage: str, log: Callable[[str], None]) -> None:
    """DVC deletes a stage's outputs before running it; put back the last good ones from its cache."""
    command = [str(Path(sys.executable).parent / "dvc"), "checkout", "--quiet", stage]
    done = subprocess.run(command, cwd=root, env=tool_env(), capture_output=True, text=True)
    if done.returncode == 0:
        log(f"restored the last good outputs of '{stage}' from the DVC cache")
    else:
        log(f"could not restore the outputs of '{stage}': {done.stderr.strip().splitlines()[-1:]}")
