"""The uvicorn entry point: ``create_app`` for the workspace and model named by the environment, so that each of
uvicorn's worker processes builds its own app (``--workers``: one model copy and one exposure file per process)."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

ROOT_ENV, MODEL_ENV, HOST_ENV = "RECAUSE_API_ROOT", "RECAUSE_API_MODEL", "RECAUSE_API_HOST"


def app_from_environment() -> FastAPI:
    from recause.config import load_params
    from recause.layout import LAYOUT
    from recause.online.app import create_app

    root = Path(os.environ.get(ROOT_ENV, "."))
    params = load_params(LAYOUT.under(root).params)
    if os.environ.get(HOST_ENV):
        params = params.model_copy(update={"serving": params.serving.model_copy(update={"host": os.environ[HOST_ENV]})})
    return create_app(root, params, os.environ.get(MODEL_ENV) or None)
