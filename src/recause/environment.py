"""The quiet, offline environment every recause process runs in (the CLI, stages, flows, tests)."""

from __future__ import annotations

import os
from collections.abc import MutableMapping

# Telemetry off and nothing fetched from a model hub; a user's own setting always wins.
QUIET_ENVIRONMENT = {
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def quiet_environment(env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Set the quiet defaults in ``env`` (default: this process's environment) where not already set."""
    target = os.environ if env is None else env
    for key, value in QUIET_ENVIRONMENT.items():
        target.setdefault(key, value)
    return target
