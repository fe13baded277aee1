"""What a clone of the project does not have, left out when tests copy it into a workspace."""

from __future__ import annotations

import shutil

NOT_COPIED = shutil.ignore_patterns(
    ".venv",
    ".venv-*",
    ".git",
    ".dvc",
    ".prefect",
    ".recause",
    "__pycache__",
    ".pytest_cache",
    "*.egg-info",
    "dvc.lock",
    "checkpoints",
    "test-artifacts",
)
