"""LMI's request/response schema on top of the serving core.

Responses: `{"generated_text", "details"?}` (a list of them for a list of inputs). Streams: one
`{"token": {"id", "text", "log_prob"}}` object per generated token, the last one adding `generated_text`
and `details`. Token log probabilities are spelt `log_prob` everywhere; they are null unless `details`
or `top_n_tokens` asked for them (computing them costs engine time).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from lmi_serve.errors import BadRequest
from lmi_serve.generation import Completion, GenerationParams, Token
from lmi_serve.jsontext import dumps, token_line
from lmi_serve.protocol import LmiParameters, LmiRequest
from lmi_serve.serving import Generator, Prepared


def to_generation_params(parameters: LmiParameters, default_max_new_tokens: int) -> GenerationParams:
    p = parameters
    sampling = p.do_sample or (p.temperature is not None and p.temperature > 0)
    temperature = (p.temperature if p.temperature is not None else 1.0) if sampling else 0.0
    wants_logprobs = p.details or p.top_n_tokens is not None
    return GenerationParams(
        max_new_tokens=p.max_new_tokens or default_max_new_tokens,
        temperature=temperature,
        top_p=p.top_p if sampling and p.top_p is not None else 1.0,
        top_k=p.top_k if sampling and p.top_k not in (None, 0, -1) else None,
        seed=p.seed,
        repetition_penalty=p.repetition_penalty or 1.0,
        presence_penalty=p.presence_penalty or 0.0,
        frequency_penalty=p.frequency_penalty or 0.0,
        stop=p.stop_list(),
        ignore_eos=p.ignore_eos_token,
        logprobs=(p.top_n_tokens or 0) if wants_logprobs else None,
        prompt_logprobs=0 if p.decoder_input_details else None,
    )


class LmiService:
    def __init__(self, generator: Generator, default_max_new_tokens: int) -> None:
        self._generator = generator
        self._default_max_new_tokens = default_max_new_tokens

    async def _prepare_all(self, request: LmiRequest) -> list[Prepared]:
        params = to_generation_params(request.parameters, self._default_max_new_tokens)
        if isinstance(request.inputs, str):
            return [await self._generator.prepare(request.inputs, params, "inputs")]
        return [await self._generator.prepare(text, params, f"inputs[{i}]") for i, text in enumerate(request.inputs)]

    async def respond(self, request: LmiRequest) -> dict[str, Any] | list[dict[str, Any]]:
        """The whole response; every input is checked before any is generated."""
        prepared = await self._prepare_all(request)
        inputs = [request.inputs] if isinstance(request.inputs, str) else request.inputs
        with self._generator.acquire(len(prepared)):
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(self._generator.complete(p)) for p in prepared]
            except ExceptionGroup as failed:  # one input failed: the request fails with its error
                raise failed.exceptions[0] from None
        results = [self._result(text, task.result(), request.parameters) for text, task in zip(inputs, tasks,
                                                                                               strict=True)]
        return results[0] if isinstance(request.inputs, str) else results

    async def open_stream(self, request: LmiRequest) -> AsyncIterator[list[str]]:
        """Check the request (raising before any byte is sent), then stream JSON lines, chunk by chunk."""
        if not isinstance(request.inputs, str):
            if len(request.inputs) != 1:
                raise BadRequest("streaming takes one input; send a string or a list of one", param="inputs")
            request = request.model_copy(update={"inputs": request.inputs[0]})
        (prepared,) = await self._prepare_all(request)
        self._generator.check_capacity()
        return self._stream(request, prepared)

    async def _stream(self, request: LmiRequest, prepared: Prepared) -> AsyncIterator[list[str]]:
        """One list of JSON texts per engine chunk: a token object per token, the last adding the result."""
        completion = Completion()
        top_n = request.parameters.top_n_tokens
        with self._generator.acquire():
            async for chunk in self._generator.stream(prepared):
                completion.add(chunk)
                texts = [token_line(t) if not top_n else dumps({"token": _token(t, top_n)}) for t in chunk.tokens]
                if chunk.finished:
                    last: dict[str, Any] = {"token": _token(chunk.tokens[-1], top_n) if chunk.tokens else None}
                    last.update(self._result(str(request.inputs), completion, request.parameters,
                                             always_details=True))
                    texts[-1:] = [dumps(last)]
                yield texts

    @staticmethod
    def _result(inputs: str, completion: Completion, parameters: LmiParameters, always_details: bool = False
                ) -> dict[str, Any]:
        text = inputs + completion.text if parameters.return_full_text else completion.text
        result: dict[str, Any] = {"generated_text": text}
        if parameters.details or parameters.decoder_input_details or always_details:
            details: dict[str, Any] = {
                "finish_reason": completion.finish_reason,
                "generated_tokens": len(completion.tokens),
                "inputs": inputs,
                "tokens": [_token(t, parameters.top_n_tokens) for t in completion.tokens]
                if parameters.details or parameters.top_n_tokens is not None else [],
            }
            if parameters.decoder_input_details and completion.prompt_tokens is not None:
                details["prefill"] = [_token(t, None) for t in completion.prompt_tokens]
            result["details"] = details
        return result


def _token(token: Token, top_n: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": token.id, "text": token.text, "log_prob": token.log_prob}
    if top_n:
        body["top_tokens"] = [{"id": t.id, "text": t.text, "log_prob": t.log_prob} for t in token.top]
    return body
