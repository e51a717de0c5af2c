"""Engine-neutral generation types and the engine contract the serving logic is written against.

The vLLM adapter (`engine.py`) implements `Engine`; unit tests of the HTTP layer use a fake one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

FinishReason = Literal["length", "eos_token", "stop_sequence"]


@dataclass(frozen=True)
class GenerationParams:
    """What to generate, already validated. temperature 0 means greedy decoding."""

    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int | None = None
    seed: int | None = None
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False
    logprobs: int | None = None  # None: none; 0: the chosen token's; n: also the n most likely
    prompt_logprobs: int | None = None


@dataclass(frozen=True)
class TopToken:
    id: int
    text: str
    log_prob: float


@dataclass(frozen=True)
class Token:
    id: int
    text: str
    log_prob: float | None = None
    top: tuple[TopToken, ...] = ()


@dataclass(frozen=True)
class Chunk:
    """New output of one request since the previous chunk."""

    tokens: tuple[Token, ...]
    text: str
    finish_reason: FinishReason | None = None
    prompt_tokens: tuple[Token, ...] | None = None  # with prompt_logprobs, on the first chunk

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None


@dataclass(frozen=True)
class EngineStats:
    running: int
    waiting: int


class Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...

    def render_chat(self, messages: Sequence[dict[str, object]], template: str | None) -> str: ...


class Engine(Protocol):
    """What the serving logic needs from an inference engine."""

    @property
    def max_model_len(self) -> int: ...

    @property
    def max_batch_size(self) -> int: ...

    @property
    def tokenizer(self) -> Tokenizer: ...

    def generate(self, prompt_ids: list[int], params: GenerationParams, request_id: str) -> AsyncIterator[Chunk]:
        """Stream chunks until one has a finish_reason. Closing the iterator early aborts the request."""
        ...

    async def abort(self, request_id: str) -> None: ...

    def is_healthy(self) -> bool: ...

    def stats(self) -> EngineStats: ...

    async def shutdown(self) -> None: ...


@dataclass
class Completion:
    """A whole request's output, accumulated from chunks."""

    tokens: list[Token] = field(default_factory=list)
    text: str = ""
    finish_reason: FinishReason | None = None
    prompt_tokens: tuple[Token, ...] | None = None

    def add(self, chunk: Chunk) -> None:
        self.tokens.extend(chunk.tokens)
        self.text += chunk.text
        if chunk.prompt_tokens is not None:
            self.prompt_tokens = chunk.prompt_tokens
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
