"""SageMaker Runtime's own HTTP API on top of the container's routes, so an unmodified boto3
`sagemaker-runtime` client (endpoint_url=http://127.0.0.1:PORT) can invoke a local endpoint:
POST /endpoints/{name}/invocations and POST /endpoints/{name}/invocations-response-stream."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from lmi_serve import eventstream
from lmi_serve.routes import invocations

router = APIRouter()
VARIANT = "AllTraffic"
EVENTSTREAM = "application/vnd.amazon.eventstream"
PART_BYTES_ENV = "LMI_SERVE_PAYLOAD_PART_BYTES"  # split parts like SageMaker does (not on line boundaries)
MODEL_ERROR = "ModelError"


def _check_name(name: str) -> Response | None:
    expected = os.environ.get("LMI_ENDPOINT_NAME")
    if expected and name != expected:
        body = {"message": f"Endpoint {name} not found; this local endpoint is {expected}."}
        return Response(json.dumps(body), status_code=400, media_type="application/json",
                        headers={"x-amzn-ErrorType": "ValidationError"})
    return None


async def _container_response(name: str, request: Request) -> tuple[Response, Response | None]:
    """The container's own answer, and the error SageMaker would return instead (a wrong name, a 4xx/5xx)."""
    refused = _check_name(name)
    if refused is not None:
        return refused, refused
    response = await invocations(request)
    if response.status_code >= 400:
        return response, _model_error(response.status_code, await _body_of(response))
    return response, None


@router.post("/endpoints/{name}/invocations")
async def invoke_endpoint(name: str, request: Request) -> Response:
    response, error = await _container_response(name, request)
    if error is not None:
        return error
    body = await _body_of(response)
    return Response(body, media_type=response.media_type or "application/json",
                    headers={"x-Amzn-Invoked-Production-Variant": VARIANT})


@router.post("/endpoints/{name}/invocations-response-stream")
async def invoke_endpoint_with_response_stream(name: str, request: Request) -> Response:
    response, error = await _container_response(name, request)
    if error is not None:
        return error
    part_bytes = int(os.environ.get(PART_BYTES_ENV, "0") or 0)
    return StreamingResponse(_events(response, part_bytes), media_type=EVENTSTREAM,
                             headers={"x-Amzn-Invoked-Production-Variant": VARIANT,
                                      "X-Amzn-SageMaker-Content-Type": response.media_type or ""})


async def _events(response: Response, part_bytes: int) -> AsyncIterator[bytes]:
    async for chunk in _chunks(response):
        if part_bytes <= 0:
            yield eventstream.payload_part(chunk)
            continue
        for start in range(0, len(chunk), part_bytes):
            yield eventstream.payload_part(chunk[start:start + part_bytes])


async def _chunks(response: Response) -> AsyncIterator[bytes]:
    if isinstance(response, StreamingResponse):
        async for chunk in response.body_iterator:
            yield chunk if isinstance(chunk, bytes) else str(chunk).encode()
    else:
        yield bytes(response.body)


async def _body_of(response: Response) -> bytes:
    return b"".join([chunk async for chunk in _chunks(response)])


def _model_error(status: int, body: bytes) -> Response:
    """SageMaker's ModelError: the container's status and body, as boto3 raises it."""
    text = body.decode(errors="replace")
    payload = {"ErrorCode": "CLIENT_ERROR_FROM_MODEL" if status < 500 else "SERVER_ERROR_FROM_MODEL",
               "OriginalStatusCode": status, "OriginalMessage": text,
               "Message": f"Received {'client' if status < 500 else 'server'} error ({status}) from primary with "
                          f"message \"{text}\"."}
    return Response(json.dumps(payload), status_code=424, media_type="application/json",
                    headers={"x-amzn-ErrorType": MODEL_ERROR})
