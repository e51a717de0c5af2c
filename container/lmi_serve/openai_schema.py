"""OpenAI-style chat completions and completions on top of the serving core."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from lmi_serve.errors import BadRequest
from lmi_serve.generation import Completion, FinishReason, GenerationParams
from lmi_serve.jsontext import dumps
from lmi_serve.protocol import ChatRequest, CompletionRequest
from lmi_serve.serving import Generator, Prepared

_OPENAI_FINISH: dict[FinishReason, str] = {"length": "length", "eos_token": "stop", "stop_sequence": "stop"}


def load_chat_template(option: str | None) -> str | None:
    """option.chat_template is the template itself or a path to a file holding it."""
    if option and len(option) < 4096 and "{" not in option and Path(option).is_file():
        return Path(option).read_text(encoding="utf-8")
    return option


def _params(request: ChatRequest | CompletionRequest, max_tokens: int | None, default_max: int,
            logprobs: int | None) -> GenerationParams:
    return GenerationParams(
        max_new_tokens=max_tokens or default_max,
        temperature=1.0 if request.temperature is None else request.temperature,  # OpenAI's default
        top_p=request.top_p if request.top_p is not None else 1.0,
        top_k=request.top_k if request.top_k not in (None, 0, -1) else None,
        seed=request.seed,
        repetition_penalty=request.repetition_penalty or 1.0,
        presence_penalty=request.presence_penalty or 0.0,
        frequency_penalty=request.frequency_penalty or 0.0,
        stop=request.stop_list(),
        ignore_eos=request.ignore_eos,
        logprobs=logprobs,
    )


class OpenAIService:
    def __init__(self, generator: Generator, model_name: str, default_max_new_tokens: int,
                 chat_template: str | None) -> None:
        self._generator = generator
        self._model = model_name
        self._default_max = default_max_new_tokens
        self._chat_template = chat_template

    async def prepare_chat(self, request: ChatRequest) -> Prepared:
        messages = [m.as_template_input() for m in request.messages]
        self._generator.check_capacity()  # not loaded (503) or full (429): said before any template error
        try:
            prompt = await self._generator.render_chat(messages, self._chat_template)
        except Exception as exc:  # the model has no chat template, or it rejects these messages
            raise BadRequest(f"messages could not be rendered with the chat template: {exc}. Deploy with "
                             "option.chat_template if the model has none", param="messages") from None
        logprobs = (request.top_logprobs or 0) if request.logprobs else None
        params = _params(request, request.max_completion_tokens or request.max_tokens, self._default_max, logprobs)
        return await self._generator.prepare(prompt, params, "messages")

    async def prepare_completion(self, request: CompletionRequest) -> Prepared:
        params = _params(request, request.max_tokens, self._default_max, request.logprobs)
        return await self._generator.prepare(request.prompt, params, "prompt")

    async def _prepare(self, request: ChatRequest | CompletionRequest) -> Prepared:
        if isinstance(request, ChatRequest):
            return await self.prepare_chat(request)
        return await self.prepare_completion(request)

    async def respond(self, request: ChatRequest | CompletionRequest) -> dict[str, Any]:
        chat = isinstance(request, ChatRequest)
        prepared = await self._prepare(request)
        with self._generator.acquire():
            completion = await self._generator.complete(prepared)
        text = completion.text
        if isinstance(request, CompletionRequest) and request.echo:
            text = request.prompt + text
        choice: dict[str, Any] = {"index": 0, "finish_reason": _finish(completion)}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
            choice["logprobs"] = _chat_logprobs(completion) if prepared.params.logprobs is not None else None
        else:
            choice["text"] = text
            choice["logprobs"] = _completion_logprobs(completion) if prepared.params.logprobs is not None else None
        return self._envelope(chat, [choice], usage=_usage(prepared, completion))

    async def open_stream(self, request: ChatRequest | CompletionRequest) -> AsyncIterator[list[str]]:
        prepared = await self._prepare(request)
        self._generator.check_capacity()
        return self._stream(isinstance(request, ChatRequest), prepared, request.include_usage())

    async def _stream(self, chat: bool, prepared: Prepared, include_usage: bool) -> AsyncIterator[list[str]]:
        async for event in self._events(chat, prepared, include_usage):
            yield [dumps(event)]

    async def _events(self, chat: bool, prepared: Prepared, include_usage: bool) -> AsyncIterator[dict[str, Any]]:
        completion = Completion()
        envelope = self._envelope(chat, [], chunk=True)
        if chat:
            yield {**envelope, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                            "finish_reason": None}]}
        with self._generator.acquire():
            async for chunk in self._generator.stream(prepared):
                completion.add(chunk)
                finish = _finish(completion) if chunk.finished else None
                body: dict[str, Any] = {"delta": {"content": chunk.text}} if chat else {"text": chunk.text}
                yield {**envelope, "choices": [{"index": 0, **body, "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            yield {**envelope, "choices": [], "usage": _usage(prepared, completion)}

    def _envelope(self, chat: bool, choices: list[dict[str, Any]], usage: dict[str, int] | None = None,
                  chunk: bool = False) -> dict[str, Any]:
        kind = "text_completion"  # OpenAI names completions and their stream chunks alike
        if chat:
            kind = "chat.completion.chunk" if chunk else "chat.completion"
        body: dict[str, Any] = {
            "id": ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex,
            "object": kind,
            "created": int(time.time()),
            "model": self._model,
            "choices": choices,
        }
        if usage is not None:
            body["usage"] = usage
        return body


def _finish(completion: Completion) -> str | None:
    return _OPENAI_FINISH[completion.finish_reason] if completion.finish_reason else None


def _usage(prepared: Prepared, completion: Completion) -> dict[str, int]:
    prompt, generated = len(prepared.prompt_ids), len(completion.tokens)
    return {"prompt_tokens": prompt, "completion_tokens": generated, "total_tokens": prompt + generated}


def _chat_logprobs(completion: Completion) -> dict[str, Any]:
    return {"content": [
        {"token": t.text, "logprob": t.log_prob,
         "top_logprobs": [{"token": top.text, "logprob": top.log_prob} for top in t.top]}
        for t in completion.tokens
    ]}


def _completion_logprobs(completion: Completion) -> dict[str, Any]:
    """The legacy completions shape: parallel lists of tokens, their log probabilities and top alternatives."""
    offsets, position = [], 0
    for token in completion.tokens:
        offsets.append(position)
        position += len(token.text)
    return {
        "tokens": [t.text for t in completion.tokens],
        "token_logprobs": [t.log_prob for t in completion.tokens],
        "top_logprobs": [{top.text: top.log_prob for top in t.top} for t in completion.tokens],
        "text_offset": offsets,
    }
