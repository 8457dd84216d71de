"""The FastAPI application and the process entry point that serves it with uvicorn."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from phone_core import bootstrap
from phone_core.api import audit_routes, docs, errors, routes, sources_routes
from phone_core.api.context import RequestIdMiddleware
from phone_core.api.headers import SecurityHeadersMiddleware
from phone_core.api.limits import BodyTooLarge, RequestLimitsMiddleware, body_too_large_handler
from phone_core.api.schemas import API_VERSION
from phone_core.runtime import Runtime
from phone_core.settings import Settings, get_settings

log = logging.getLogger(__name__)

DESCRIPTION = """\
Process multiple records for phone enrichment in batch mode.

Submit 1-1000 records (or ids from your person store), get a run id at once, and find
`results.csv` and `credits.csv` in S3 when the run ends. Authenticate with
`Authorization: Bearer <API key>`; every response carries `X-Request-ID`.
"""


def create_app(rt: Runtime | None = None, *, settings: Settings | None = None) -> FastAPI:
    """The API over ``rt``; without one, the process runtime is started at app startup
    (from ``settings``, else the environment) and shut down when the app stops.

    The API's own limits (body size, request rate, failed key attempts) come from
    ``settings`` when given, else from ``rt``'s settings, else from the environment."""
    if settings is not None:
        conf = settings
    elif rt is not None:
        conf = rt.settings
    else:
        conf = get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bound = app.state.rt is None  # no runtime given: use (or start) the process's one
        started = bound and bootstrap.current() is None
        if bound:
            rt_now = await run_in_threadpool(bootstrap.get_runtime, settings)
            app.state.rt = rt_now
            app.state.limiter = None  # built on first use, over this runtime's state DB
            app.state.attempts = None  # built on first use, over this runtime's state DB
        try:
            yield
        finally:
            if started:  # only stop what this app started
                await run_in_threadpool(bootstrap.shutdown)
            if bound:
                app.state.rt = None

    app = FastAPI(
        title="Phone Enrichment Batch API",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load Swagger UI / ReDoc from a CDN: see docs.py
        redoc_url=None,
    )
    app.state.rt = rt
    app.state.api_settings = conf
    app.state.limiter = None
    app.state.attempts = None
    errors.install(app)
    app.add_exception_handler(BodyTooLarge, body_too_large_handler)
    # Outermost last: headers on every response, then the request id, then the limits.
    app.add_middleware(RequestLimitsMiddleware, max_body_bytes=conf.api_max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.include_router(routes.router)
    app.include_router(audit_routes.router)  # GET /v1/audit (admin keys)
    app.include_router(sources_routes.router)
    docs.install(app)
    return app


def serve(settings: Settings | None = None, workers: int = 1) -> None:
    """Run the API with uvicorn on ``settings.api_host:api_port`` until interrupted. With
    ``workers`` > 1, uvicorn runs that many API processes on the port, each building its
    app (``create_app``) from the environment, as this process read ``settings``."""
    settings = settings or get_settings()
    log.info("phone API on %s:%s (%d process(es))", settings.api_host, settings.api_port, workers)
    if workers > 1:
        uvicorn.run(
            "phone_core.api.app:create_app",
            factory=True,
            workers=workers,
            host=settings.api_host,
            port=settings.api_port,
        )
        return
    uvicorn.run(create_app(settings=settings), host=settings.api_host, port=settings.api_port)
