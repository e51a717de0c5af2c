"""Request errors and their HTTP status codes, in one place. JSON bodies and stream error lines share one
shape: {"error": message, "code": status}."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class RequestError(Exception):
    """An error that fails one request alone, with the status it is answered with."""

    status = 400

    def __init__(self, message: str, *, param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "code": self.status}
        if self.param:
            body["param"] = self.param
        return body


class BadRequest(RequestError):
    status = 400


class PayloadTooLarge(RequestError):
    status = 413


class UnsupportedMediaType(RequestError):
    status = 415


class Overloaded(RequestError):
    status = 429


class NotReady(RequestError):
    status = 503


class EngineFailure(RequestError):
    status = 500


class GenerationTimeout(RequestError):
    status = 504


def from_validation_error(error: ValidationError, prefix: str = "") -> BadRequest:
    """One message naming every offending field, e.g. `parameters.max_new_tokens: Input should be ...`."""
    parts = []
    first_param = None
    for item in error.errors(include_url=False):
        location = ".".join(str(p) for p in item["loc"])
        location = f"{prefix}{location}" if location else prefix.rstrip(".") or "body"
        first_param = first_param or location
        message = "unknown parameter" if item["type"] == "extra_forbidden" else item["msg"]
        parts.append(f"{location}: {message}")
    return BadRequest("; ".join(parts), param=first_param)


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """Status and body for any exception raised while serving a request."""
    if isinstance(exc, RequestError):
        return exc.status, exc.body()
    return 500, {"error": f"internal error: {type(exc).__name__}: {exc}", "code": 500}
