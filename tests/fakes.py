"""A fake engine for in-process tests of the HTTP layer (the real engine is tested end to end too)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from lmi_serve.generation import Chunk, EngineStats, GenerationParams, Token, TopToken


class FakeTokenizer:
    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def render_chat(self, messages: Sequence[dict[str, object]], template: str | None) -> str:
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"


class FakeEngine:
    """Generates " t0", " t1", ... one token per step; `fail_after` raises mid-request, `step_s` slows it."""

    def __init__(self, max_model_len: int = 64, max_batch_size: int = 2, step_s: float = 0.0,
                 fail_after: int | None = None) -> None:
        self._max_model_len = max_model_len
        self._max_batch_size = max_batch_size
        self.step_s = step_s
        self.fail_after = fail_after
        self.healthy = True
        self.running: set[str] = set()
        self.aborted: list[str] = []
        self.seen: list[GenerationParams] = []

    @property
    def max_model_len(self) -> int:
        return self._max_model_len

    @property
    def max_batch_size(self) -> int:
        return self._max_batch_size

    @property
    def tokenizer(self) -> FakeTokenizer:
        return FakeTokenizer()

    async def generate(self, prompt_ids: list[int], params: GenerationParams, request_id: str
                       ) -> AsyncIterator[Chunk]:
        self.seen.append(params)
        self.running.add(request_id)
        finished = False
        try:
            text = ""
            for index in range(params.max_new_tokens):
                await asyncio.sleep(self.step_s)
                if self.fail_after is not None and index >= self.fail_after:
                    raise RuntimeError("device lost")
                piece = f" t{index}"
                text += piece
                stop = next((s for s in params.stop if s in text), None)
                last = index == params.max_new_tokens - 1
                reason = "stop_sequence" if stop else ("length" if last else None)
                log_prob = -0.5 if params.logprobs is not None else None
                top = tuple(TopToken(200 + k, f" a{k}", -1.0 - k) for k in range(params.logprobs or 0))
                prompt = None
                if index == 0 and params.prompt_logprobs is not None:
                    prompt = tuple(Token(i, chr(i), -2.0) for i in prompt_ids)
                yield Chunk((Token(100 + index, piece, log_prob, top),), piece, reason, prompt)  # type: ignore[arg-type]
                if reason:
                    finished = True
                    return
        finally:
            self.running.discard(request_id)
            if not finished:
                self.aborted.append(request_id)

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)

    def is_healthy(self) -> bool:
        return self.healthy

    def stats(self) -> EngineStats:
        return EngineStats(running=len(self.running), waiting=0)

    async def shutdown(self) -> None:
        self.healthy = False
