"""Request schemas (pydantic, strict): LMI's `{"inputs", "parameters", "stream"}` and OpenAI's chat and
completions. Unknown fields are errors that name the field, unlike the reference which ignores them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_TOP_N = 20
MAX_TEMPERATURE = 2.0  # vLLM rejects more (after the response has started, were it not checked here)

# Limits vLLM enforces itself once the request reaches the engine, checked here so they are 400s that name the
# parameter: integers travel to the engine as MessagePack (64 bits), stop strings must not be empty.
MAX_INT64 = 2**63 - 1
Seed = Annotated[int, Field(ge=-(2**63), le=2**64 - 1)]
StopString = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class LmiParameters(_Strict):
    """LMI generation parameters. Greedy decoding unless do_sample is true or a temperature is given."""

    max_new_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=MAX_TEMPERATURE)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=-1, le=MAX_INT64)
    do_sample: bool = False
    stop: list[StopString] | StopString | None = None
    seed: Seed | None = None
    repetition_penalty: float | None = Field(None, gt=0)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    return_full_text: bool = False
    details: bool = False
    decoder_input_details: bool = False
    ignore_eos_token: bool = False
    top_n_tokens: int | None = Field(None, ge=0, le=MAX_TOP_N)

    def stop_list(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class LmiRequest(_Strict):
    inputs: str | list[str]
    parameters: LmiParameters = Field(default_factory=LmiParameters)
    stream: bool = False

    @field_validator("inputs")
    @classmethod
    def _not_empty(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("must be a string or a non-empty list of strings")
        return value


class _OpenAISampling(_Strict):
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=MAX_TEMPERATURE)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=-1, le=MAX_INT64)
    n: Literal[1] = 1
    stop: list[StopString] | StopString | None = None
    seed: Seed | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    repetition_penalty: float | None = Field(None, gt=0)
    ignore_eos: bool = False
    stream: bool = False
    stream_options: dict[str, bool] | None = None
    user: str | None = None

    def stop_list(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.get("include_usage"))


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None

    def as_template_input(self) -> dict[str, object]:
        content = self.content
        if isinstance(content, list):  # OpenAI content parts: only text is served
            content = "".join(str(part.get("text", "")) for part in content if part.get("type") == "text")
        return {"role": self.role, "content": content or ""}


class ChatRequest(_OpenAISampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_N)


class CompletionRequest(_OpenAISampling):
    prompt: str = Field(min_length=1)
    logprobs: int | None = Field(None, ge=0, le=MAX_TOP_N)
    echo: bool = False
