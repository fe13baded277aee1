"""Injected faults, so tests (and drills) can prove that failures are survived.

``RECAUSE_FAULTS`` lists faults as ``stage:kind:count[@step]`` separated by commas, e.g.
``finetune:oom:1@3,pretrain:kill:1@2``. Kinds: ``oom`` (a CUDA out-of-memory error), ``kill``
(SIGKILL to this process, as the OS out-of-memory killer does), ``connection`` (a transient
network error). Each fires ``count`` times in total, across processes: what has fired is counted
in files under ``RECAUSE_FAULTS_STATE`` (default ``.recause/faults``), so a retried process does
not fail again forever.
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass
from pathlib import Path

import torch

from recause.errors import ParamsError
from recause.layout import LAYOUT

KINDS = ("oom", "kill", "connection")


@dataclass(frozen=True)
class Fault:
    stage: str
    kind: str
    count: int
    step: int


ENTRY = re.compile(rf"^(?P<stage>[A-Za-z0-9_.-]+):(?P<kind>{'|'.join(KINDS)}):(?P<count>[0-9]+)(?:@(?P<step>[0-9]+))?$")


def parse_faults(spec: str) -> list[Fault]:
    faults = []
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        match = ENTRY.match(entry)
        if match is None:
            raise ParamsError(f"RECAUSE_FAULTS entry {entry!r}: expected stage:kind:count[@step], kind one of {KINDS}")
        faults.append(Fault(match["stage"], match["kind"], int(match["count"]), int(match["step"] or 0)))
    return faults


class FaultInjector:
    """Fires the configured faults of one stage at their step."""

    def __init__(self, stage: str, spec: str | None = None, state_dir: Path | None = None):
        spec = os.environ.get("RECAUSE_FAULTS", "") if spec is None else spec
        self.faults = [f for f in parse_faults(spec) if f.stage == stage]
        self.state_dir = state_dir or Path(os.environ.get("RECAUSE_FAULTS_STATE", str(LAYOUT.state / "faults")))

    def _fired(self, fault: Fault) -> Path:
        return self.state_dir / f"{fault.stage}-{fault.kind}-{fault.step}.count"

    def __call__(self, step: int) -> None:
        for fault in self.faults:
            if fault.step != step:
                continue
            counter = self._fired(fault)
            fired = int(counter.read_text()) if counter.exists() else 0
            if fired >= fault.count:
                continue
            counter.parent.mkdir(parents=True, exist_ok=True)
            counter.write_text(str(fired + 1))
            if fault.kind == "oom":
                raise torch.OutOfMemoryError(f"CUDA out of memory (injected fault at step {step})")
            if fault.kind == "connection":
                raise ConnectionError(f"connection reset (injected fault at step {step})")
            os.kill(os.getpid(), signal.SIGKILL)
