"""The HTTP API over a trained workspace: the champion's recommendations and explanations in real time, exposure
logged with propensities, new events taken in for the next retraining. ``create_app`` builds it; `recause api`
runs it under uvicorn.

Every list is scored when it is asked for (the user's history through the model, then the serving policy), never
read from ``topk.parquet``. With the greedy policy a user's list is exactly what `recause recommend` prints.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import secrets
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import scipy.sparse as sp
from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import generate_latest

from recause.config import Params
from recause.data.keys import existing_pseudonym_key
from recause.data.pseudonym import pseudonym
from recause.errors import RecauseError
from recause.layout import LAYOUT, Layout
from recause.online import schemas
from recause.online.events import ID, EventIntake, EventsRejected
from recause.online.exposure import ExposureLog
from recause.online.middleware import ApiMetrics, BodyLimit, Measured
from recause.online.policy import PolicySettings, choose
from recause.online.responses import explanation_body, recommendation_items
from recause.online.state import LiveModel, ModelHolder
from recause.serving import item_column, user_row

LOOPBACK_NAMES = {"localhost"}


class JSON(JSONResponse):
    """JSON by orjson, without a second validation pass: the bodies are built to the documented schemas, and
    the fuzz test checks every response against them."""

    def render(self, content: object) -> bytes:
        return orjson.dumps(content)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in LOOPBACK_NAMES


def api_key_problem(host: str, key_env: str) -> str | None:
    """Why the server must not start: bound beyond loopback with no API key to guard POST /events."""
    if not is_loopback(host) and not os.environ.get(key_env):
        return f"refusing to bind {host} without an API key: set {key_env} (POST /events requires it off loopback)"
    return None


@dataclass
class ApiContext:
    params: Params
    holder: ModelHolder
    metrics: ApiMetrics
    policy: PolicySettings
    key: bytes | None  # the workspace's pseudonym key
    exposure: ExposureLog | None
    intake: EventIntake | None = None


def _live(context: ApiContext) -> LiveModel:
    model = context.holder.current
    if model is None:
        raise HTTPException(503, f"no model loaded yet: {context.holder.last_error or 'loading'}")
    return model


def _rng(seed: int, request_id: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{request_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _serve(context: ApiContext, model: LiveModel, scores: np.ndarray, seen: np.ndarray | None, k: int,
           request_id: str, logged_user: str, explained: sp.csr_matrix | None,
           by_model: bool = True) -> list[dict]:  # fmt: skip
    """The policy's list for one user, logged; each item with its top reason when ``explained`` (the user's
    history) is given. ``by_model``: the scores are the model's, so its long-tail re-ranker (if any) applies."""
    reranker = model.served.reranker if by_model else None
    rerank = reranker.top_k if reranker is not None else None
    shown = choose(scores, seen, k, context.policy, _rng(context.params.serving.seed, request_id), rerank)
    if context.exposure is not None:
        ids = model.served.items.ids[shown.items].tolist()
        context.exposure.append(
            request_id, logged_user, ids, shown.propensities.tolist(), context.policy.name, model.version
        )
    return recommendation_items(model, shown, explained)


def _recommend_known_or_cold(
    context: ApiContext, model: LiveModel, user_id: str, k: int, request_id: str, explain: bool
) -> dict:
    try:
        row = user_row(model.served, user_id, context.key)
    except RecauseError as error:
        if context.params.serving.unknown_user == "not_found":
            raise HTTPException(404, str(error)) from None
        logged = pseudonym(user_id, context.key) if context.key is not None else user_id
        popular = model.popularity.astype(np.float32)
        items = _serve(context, model, popular, None, k, request_id, logged, None, by_model=False)
        return {"known_user": False, "cold_start": True, "items": items}
    history = model.served.history[row]
    scores = np.asarray(model.served.scores(np.array([row]), history), dtype=np.float32)[0]
    explained = history if explain and model.explainable else None
    user = str(model.served.users.ids[row])
    items = _serve(context, model, scores, history.toarray()[0] > 0, k, request_id, user, explained)
    return {"known_user": True, "cold_start": False, "items": items}


def _context(root: Path, params: Params, model: str | None) -> ApiContext:
    settings = params.serving
    policy = PolicySettings(
        settings.policy, settings.epsilon, settings.temperature, settings.exploration_pool, settings.propensity_samples
    )
    key = existing_pseudonym_key(params.data, root) if params.data.pseudonymise else None
    return ApiContext(params, ModelHolder(root, model, params.fairness), ApiMetrics(), policy, key, None)


def _lifespan(context: ApiContext, layout: Layout):  # noqa: ANN202
    """Load the model, then look for a promotion every ``reload_interval_s`` (a new model swaps in whole)."""
    settings = context.params.serving

    def load() -> None:
        if context.holder.refresh():
            live = context.holder.current
            assert live is not None
            context.metrics.model_live(live.name, live.version)
            users, items = live.served.users.ids.tolist(), live.served.items.ids.tolist()
            rules = context.params.validate_
            context.intake = EventIntake(layout.incoming, rules, users, items, context.key, layout.events_lock)

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # noqa: ANN202
        context.exposure = ExposureLog(layout.exposure) if settings.log_exposure else None
        await asyncio.to_thread(load)

        async def watch() -> None:
            while True:
                await asyncio.sleep(settings.reload_interval_s)
                await asyncio.to_thread(load)

        watcher = asyncio.create_task(watch())
        try:
            yield
        finally:
            watcher.cancel()
            if context.exposure is not None:
                context.exposure.close()

    return lifespan


def create_app(root: Path, params: Params, model: str | None = None) -> FastAPI:
    """The API over the workspace at ``root`` serving ``model`` (None: the champion, swapped on promotion)."""
    context = _context(root, params, model)
    app = FastAPI(
        title="recause",
        summary="The champion recommender in real time, with reasons; exposure logged for off-policy evaluation.",
        default_response_class=JSON,
        lifespan=_lifespan(context, LAYOUT.under(root)),
    )
    app.state.context = context
    app.add_middleware(BodyLimit, limit=params.serving.max_body_bytes)
    app.add_middleware(Measured, metrics=context.metrics)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSON:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()[:10]]
        return JSON({"detail": "; ".join(problems)}, status_code=422)

    _status_routes(app, context)
    _list_routes(app, context)
    _explanation_and_event_routes(app, context)
    return app


PROBLEM = {"model": schemas.Problem}
USER = PathParam(min_length=1, max_length=128, pattern=ID, description="Raw user id or its pseudonym.")


def _status_routes(app: FastAPI, context: ApiContext) -> None:
    @app.get("/health", responses={200: {"model": schemas.Health}})
    async def health() -> JSON:
        return JSON({"status": "ok"})

    @app.get("/ready", responses={200: {"model": schemas.Readiness}, 503: {"model": schemas.Readiness}})
    async def ready() -> JSON:
        live = context.holder.current
        body = {"ready": live is not None, "model": live and live.name, "version": live and live.version}
        if live is None:
            body["detail"] = context.holder.last_error or "loading"
        return JSON(body, status_code=200 if live is not None else 503)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(context.metrics.registry).decode())


def _list_routes(app: FastAPI, context: ApiContext) -> None:
    settings = context.params.serving
    k_query = Query(default=settings.default_k, ge=1, le=settings.max_k)
    request_query = Query(default=None, min_length=1, max_length=128, pattern=ID, description="Replays a list.")
    listed = {200: {"model": schemas.Recommendations}, 422: PROBLEM, 503: PROBLEM}

    @app.get("/recommendations/{user_id}", responses={**listed, 404: PROBLEM})
    async def recommendations(
        user_id: str = USER, k: int = k_query, explain: bool = False, request_id: str | None = request_query
    ) -> JSON:
        live = _live(context)
        request_id = request_id or uuid.uuid4().hex
        found = _recommend_known_or_cold(context, live, user_id, k, request_id, explain)
        return JSON(_envelope(context, live, user_id, request_id, found))

    @app.post("/recommendations", responses={**listed, 409: PROBLEM})
    async def fold_in(body: schemas.FoldIn) -> JSON:
        live = _live(context)
        request_id = body.request_id or uuid.uuid4().hex
        found = _fold_in(context, live, body, request_id)
        return JSON(_envelope(context, live, "anonymous", request_id, found))


def _fold_in(context: ApiContext, live: LiveModel, body: schemas.FoldIn, request_id: str) -> dict:
    """A new user's list from the items they liked, scored as a history (the model never saw them)."""
    settings = context.params.serving
    if not live.explainable:
        raise HTTPException(409, f"{live.name} scores users by their ids: it cannot score a new user's history")
    columns = live.served.items.positions(np.asarray(body.liked, dtype=str))
    if (columns < 0).any():
        unknown = [i for i, c in zip(body.liked, columns, strict=True) if c < 0][:5]
        raise HTTPException(422, f"liked: unknown item id(s) {', '.join(unknown)}")
    if len(body.liked) > settings.max_liked_items:
        raise HTTPException(422, f"liked: at most {settings.max_liked_items} items (serving.max_liked_items)")
    k = body.k or settings.default_k
    if k > settings.max_k:
        raise HTTPException(422, f"k: at most {settings.max_k} (serving.max_k)")
    columns = np.unique(columns)
    shape = (1, len(live.served.items))
    history = sp.csr_matrix((np.ones(len(columns)), (np.zeros(len(columns), int), columns)), shape=shape)
    scores = np.asarray(live.served.model.score(history), dtype=np.float32)[0]
    seen = np.zeros(len(scores), dtype=bool)
    seen[columns] = True
    items = _serve(context, live, scores, seen, k, request_id, "anonymous", history if body.explain else None)
    return {"known_user": False, "cold_start": False, "items": items}


def _explanation_and_event_routes(app: FastAPI, context: ApiContext) -> None:
    settings = context.params.serving
    explained = {200: {"model": schemas.Explanation}, 404: PROBLEM, 409: PROBLEM, 422: PROBLEM, 503: PROBLEM}

    @app.get("/explanations/{user_id}/{item_id}", responses=explained)
    async def explanation(
        user_id: str = USER,
        item_id: str = PathParam(min_length=1, max_length=128, pattern=ID),
        k: int = Query(default=settings.default_k, ge=1, le=settings.max_k),
        reasons: int = Query(default=3, ge=1, le=20),
    ) -> JSON:
        live = _live(context)
        if not live.explainable:
            raise HTTPException(409, f"{live.name} scores users by their ids: no history item explains its list")
        try:
            row, column = user_row(live.served, user_id, context.key), item_column(live.served, item_id)
        except RecauseError as error:
            raise HTTPException(404, str(error)) from None
        history = live.served.history[row]
        if history[0, column] > 0:
            raise HTTPException(409, f"user '{user_id}' already interacted with item '{item_id}': lists exclude it")
        return JSON(explanation_body(live, user_id, history, column, k, reasons))

    @app.post("/events", responses={200: {"model": schemas.EventsAccepted}, 401: PROBLEM, 422: PROBLEM, 503: PROBLEM})
    async def events(body: schemas.EventBatch, x_api_key: str | None = Header(default=None)) -> JSON:
        expected = os.environ.get(settings.api_key_env)
        keyed = bool(expected and x_api_key and secrets.compare_digest(x_api_key, expected))
        if not is_loopback(settings.host) and not keyed:
            raise HTTPException(401, "POST /events needs the X-API-Key header off loopback")
        _live(context)
        if len(body.events) > settings.max_events_per_request:
            limit = settings.max_events_per_request
            raise HTTPException(422, f"events: at most {limit} (serving.max_events_per_request)")
        assert context.intake is not None
        try:
            taken = await asyncio.to_thread(context.intake.append, body.events)
        except EventsRejected as error:
            raise HTTPException(422, str(error)) from None
        return JSON({"accepted": taken.accepted, "duplicates": taken.duplicates})


def _envelope(context: ApiContext, live: LiveModel, user_id: str, request_id: str, found: dict) -> dict:
    return {
        "user_id": user_id,
        "known_user": found["known_user"],
        "cold_start": found["cold_start"],
        "model": live.name,
        "version": live.version,
        "policy": context.policy.name,
        "request_id": request_id,
        "items": found["items"],
    }
