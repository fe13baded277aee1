"""Training infrastructure: device and precision, the one run builder (``run.plan_run``: step count, loop
settings, progress bar), the resumable loop, run digests for checkpoints, injected faults, loss plots."""
