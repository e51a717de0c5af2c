"""The serving core shared by every schema: admission control, prompt checks, generation, timeouts.

Written against the `Engine` protocol; knows nothing of HTTP.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from lmi_serve.errors import BadRequest, EngineFailure, GenerationTimeout, NotReady, Overloaded
from lmi_serve.generation import Chunk, Completion, Engine, GenerationParams

RETRY_AFTER_S = "1"


class Slot:
    """Admission held by a request until released (a context manager, or release() at a stream's end)."""

    def __init__(self, owner: Generator, count: int) -> None:
        self._owner, self._count = owner, count

    def release(self) -> None:
        self._owner.in_flight -= self._count
        self._count = 0

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass
class Prepared:
    """A checked request: its prompt ids and parameters with max_new_tokens fitted to the context."""

    prompt_ids: list[int]
    params: GenerationParams


class Generator:
    """Admits requests up to the batch size plus the queue limit and runs them on the engine."""

    def __init__(self, engine_getter: Callable[[], Engine | None], job_queue_size: int, predict_timeout_s: float,
                 on_in_flight: Callable[[int], None] = lambda _: None,
                 container_in_flight: Callable[[], int] | None = None) -> None:
        """`on_in_flight` hears every change of this process's requests in flight (metrics, peers);
        `container_in_flight`, with several API processes, counts every process's against the one limit."""
        self._engine_getter = engine_getter
        self._job_queue_size = job_queue_size
        self._container_in_flight = container_in_flight
        self._predict_timeout_s = predict_timeout_s
        self._on_in_flight = on_in_flight
        self._in_flight = 0
        # Tokenizing and chat rendering run on one worker thread, as in vLLM's own server: a fast tokenizer
        # releases the GIL while it encodes, so the event loop keeps streaming tokens to other clients.
        self._tokenizer_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmi-tokenizer")

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @in_flight.setter
    def in_flight(self, value: int) -> None:
        self._in_flight = value
        self._on_in_flight(value)

    @property
    def engine(self) -> Engine:
        engine = self._engine_getter()
        if engine is None or not engine.is_healthy():
            raise NotReady("the model is not loaded yet or the engine has failed", headers={"Retry-After": "5"})
        return engine

    def check_capacity(self, count: int = 1) -> None:
        """Refuse at once with 429 when the running batch and the queue are full."""
        limit = self.engine.max_batch_size + self._job_queue_size
        current = self.in_flight if self._container_in_flight is None else self._container_in_flight()
        if current + count > limit:
            where = "" if self._container_in_flight is None else " in all API processes"
            raise Overloaded(f"server busy: {current} requests in flight{where}, limit {limit} "
                             "(max_rolling_batch_size + job_queue_size); retry later",
                             headers={"Retry-After": RETRY_AFTER_S})

    def acquire(self, count: int = 1) -> Slot:
        """Take `count` slots, refusing when full. Streams check capacity before their headers go out and
        acquire when they start, so a stream that never starts holds nothing."""
        self.check_capacity(count)
        self.in_flight += count
        return Slot(self, count)

    async def render_chat(self, messages: Sequence[dict[str, object]], template: str | None) -> str:
        """The chat prompt for `messages`, rendered off the event loop."""
        tokenizer = self.engine.tokenizer
        return await asyncio.get_running_loop().run_in_executor(
            self._tokenizer_pool, tokenizer.render_chat, messages, template)

    async def prepare(self, prompt: str, params: GenerationParams, param_name: str) -> Prepared:
        """Tokenize (off the event loop) and check the prompt against max_model_len; cap max_new_tokens to
        what fits. Full or not ready: refused before the prompt waits for the tokenizer thread."""
        self.check_capacity()
        engine = self.engine
        ids = await asyncio.get_running_loop().run_in_executor(self._tokenizer_pool, engine.tokenizer.encode, prompt)
        limit = engine.max_model_len
        if not ids:
            raise BadRequest(f"{param_name} is empty after tokenization", param=param_name)
        if len(ids) >= limit:
            raise BadRequest(f"{param_name} is {len(ids)} tokens; max_model_len is {limit}, which leaves no room "
                             "to generate. Shorten the input or deploy with a larger option.max_model_len",
                             param=param_name)
        room = limit - len(ids)
        if params.max_new_tokens > room:
            params = replace(params, max_new_tokens=room)
        return Prepared(ids, params)

    async def stream(self, prepared: Prepared) -> AsyncIterator[Chunk]:
        """Chunks of one request. Leaving early (client gone) aborts it in the engine."""
        request_id = uuid.uuid4().hex
        try:
            async for chunk in self.engine.generate(prepared.prompt_ids, prepared.params, request_id):
                yield chunk
        except (NotReady, BadRequest):
            raise
        except ValueError as exc:  # vLLM's own request validation (VLLMValidationError is a ValueError)
            raise BadRequest(f"the engine rejected the request: {exc}") from None
        except Exception as exc:  # the engine failed mid-request: one error for this request
            raise EngineFailure(f"generation failed: {type(exc).__name__}: {exc}") from exc

    async def complete(self, prepared: Prepared) -> Completion:
        """A whole request, bounded by predict_timeout."""
        completion = Completion()
        try:
            async with asyncio.timeout(self._predict_timeout_s):
                async for chunk in self.stream(prepared):
                    completion.add(chunk)
        except TimeoutError:
            raise GenerationTimeout(f"generation took longer than predict_timeout ({self._predict_timeout_s:g} s); "
                                    "use streaming or raise option.predict_timeout") from None
        return completion
