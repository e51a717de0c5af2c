"""HTTP only: SageMaker's /ping and /invocations, LMI's /predictions/{model}, OpenAI's /v1 routes, /metrics."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from lmi_serve.errors import BadRequest, PayloadTooLarge, RequestError, error_body, from_validation_error
from lmi_serve.jsontext import dumps
from lmi_serve.protocol import ChatRequest, CompletionRequest, LmiRequest
from lmi_serve.state import AppState

JSONLINES = "application/jsonlines"
SSE = "text/event-stream"
_LONE_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")  # \uD800-\uDFFF

router = APIRouter()
T = TypeVar("T")


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.lmi
    return state


@router.get("/ping")
async def ping(request: Request) -> Response:
    state = _state(request)
    if state.healthy():
        return JSONResponse({"status": "healthy"})
    return JSONResponse({"status": state.status()}, status_code=503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    text, content_type = _state(request).metrics.render()
    return Response(text, media_type=content_type)


@router.post("/invocations")
async def invocations(request: Request) -> Response:
    return await _dispatch(request, await _read_json(request), schema=None)


@router.post("/predictions/{model_name}")
async def predictions(model_name: str, request: Request) -> Response:
    state = _state(request)
    if model_name != state.model_name:
        return _error(BadRequest(f"no model named {model_name!r}; this server serves {state.model_name!r}",
                                 param="model_name"), status=404)
    return await _dispatch(request, await _read_json(request), schema=None)


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    return await _dispatch(request, await _read_json(request), schema="chat")


@router.post("/v1/completions")
async def completions(request: Request) -> Response:
    return await _dispatch(request, await _read_json(request), schema="completions")


async def _dispatch(request: Request, body: dict[str, Any] | RequestError, schema: str | None) -> Response:
    if isinstance(body, RequestError):
        return _error(body)
    state = _state(request)
    try:
        schema = schema or _schema_of(body)
        if schema == "lmi":
            lmi = _parse(LmiRequest, body)
            if lmi.stream:
                sse = SSE in request.headers.get("accept", "") or state.output_formatter == "sse"
                return _stream(await state.lmi.open_stream(lmi), sse=sse, done_marker=False)
            return JSONResponse(await _unless_disconnected(request, state.lmi.respond(lmi)))
        openai = _parse(ChatRequest if schema == "chat" else CompletionRequest, body)
        if openai.stream:
            return _stream(await state.openai.open_stream(openai), sse=True, done_marker=True)
        return JSONResponse(await _unless_disconnected(request, state.openai.respond(openai)))
    except RequestError as exc:
        return _error(exc)


async def _unless_disconnected(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """Run `work`, cancelling it (which aborts its engine requests) if the client goes away first."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
    return task.result()  # CancelledError when the client left: nobody is there to answer


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _schema_of(body: dict[str, Any]) -> str:
    if "inputs" in body:
        return "lmi"
    if "messages" in body:
        return "chat"
    if "prompt" in body:
        return "completions"
    raise BadRequest("the body needs inputs (LMI), messages (OpenAI chat) or prompt (OpenAI completions)",
                     param="inputs")


def _parse(model: Any, body: dict[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise from_validation_error(exc) from None


async def _read_json(request: Request) -> dict[str, Any] | RequestError:
    """The body as a JSON object, refusing oversized bodies without reading them whole."""
    limit = _state(request).max_payload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return PayloadTooLarge(f"body is {declared} bytes; the limit is {limit} (SAGEMAKER_MAX_PAYLOAD_IN_MB)")
    data = bytearray()
    async for part in request.stream():
        data += part
        if len(data) > limit:
            return PayloadTooLarge(f"body exceeds the limit of {limit} bytes (SAGEMAKER_MAX_PAYLOAD_IN_MB)")
    try:
        body = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return BadRequest(f"body is not valid JSON: {exc}", param="body")
    except RecursionError:
        return BadRequest("body is not valid JSON: it nests too deeply", param="body")
    if not isinstance(body, dict):
        return BadRequest("body must be a JSON object", param="body")
    escapes = json.detect_encoding(data) not in ("utf-8", "utf-8-sig") or _LONE_SURROGATE_ESCAPE.search(data)
    if escapes and _has_lone_surrogate(body):
        return BadRequest("body is not valid JSON: a \\u escape is a lone UTF-16 surrogate (not a character)",
                          param="body")
    return body


def _has_lone_surrogate(value: object) -> bool:
    """True when a string anywhere in `value` holds a lone surrogate (which no tokenizer and no UTF-8 answer
    can carry). Only called when the body may have a \\uD800-\\uDFFF escape: valid bodies pay nothing."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _error(exc: RequestError, status: int | None = None) -> JSONResponse:
    code, body = error_body(exc)
    if status is not None:
        body["code"] = code = status
    return JSONResponse(body, status_code=code, headers=exc.headers)


def _stream(events: AsyncIterator[list[str]], sse: bool, done_marker: bool) -> StreamingResponse:
    return StreamingResponse(_frames(events, sse, done_marker), media_type=SSE if sse else JSONLINES,
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _frames(events: AsyncIterator[list[str]], sse: bool, done_marker: bool) -> AsyncIterator[bytes]:
    """One write per engine chunk (all its lines), as produced; an error after the headers ends the stream
    with an error line, never silently."""
    try:
        async for texts in events:
            yield _frame(texts, sse)
    except Exception as exc:
        _, body = error_body(exc)
        yield _frame([dumps(body)], sse)
        return
    if done_marker:
        yield b"data: [DONE]\n\n"


def _frame(texts: list[str], sse: bool) -> bytes:
    if sse:
        return "".join(f"data: {text}\n\n" for text in texts).encode()
    return ("\n".join(texts) + "\n").encode()
