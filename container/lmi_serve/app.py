"""The app factory: routes, metrics middleware and the lifespan that loads and stops the engine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from lmi_serve.metrics import MetricsMiddleware
from lmi_serve.routes import router
from lmi_serve.runtime_api import router as runtime_router
from lmi_serve.state import AppState

log = logging.getLogger("lmi_serve")

Loader = Callable[[AppState], Coroutine[Any, Any, None]]


def create_app(state: AppState, loader: Loader | None = None) -> FastAPI:
    """An app serving `state`. `loader`, when given, runs in the background after start-up (so /ping
    answers 503 while the model loads); the engine is shut down when the app stops."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task: asyncio.Task[None] | None = asyncio.create_task(loader(state)) if loader else None
        try:
            yield
        finally:
            state.draining = True
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if state.engine is not None:
                await state.engine.shutdown()

    app = FastAPI(title="lmi-serve", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.lmi = state
    app.include_router(router)
    app.include_router(runtime_router)
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_middleware(MetricsMiddleware, metrics=lambda: state.metrics)
    return app


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Unknown paths and wrong methods answer in the same JSON error shape as every other error."""
    return JSONResponse({"error": f"{request.method} {request.url.path}: {exc.detail}", "code": exc.status_code},
                        status_code=exc.status_code, headers=exc.headers)
