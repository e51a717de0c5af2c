"""The vLLM adapter: the only module that imports vLLM. Works with vLLM 0.24 (GPU host) and 0.32 (CPU build)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import json
import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lmi_deploy.errors import LmiDeployError
from lmi_deploy.options.schema import nearest
from lmi_serve.generation import (
    Chunk,
    EngineStats,
    FinishReason,
    GenerationParams,
    Token,
    TopToken,
)

log = logging.getLogger("lmi_serve.engine")


class EngineStartError(LmiDeployError):
    """The engine could not start: bad arguments, an unsupported model, not enough memory."""


def check_engine_args(engine_args: Mapping[str, Any]) -> None:
    """Every argument must be a field of the installed vLLM's AsyncEngineArgs (versions differ)."""
    from vllm.engine.arg_utils import AsyncEngineArgs

    fields = {f.name for f in dataclasses.fields(AsyncEngineArgs)}
    for name in engine_args:
        if name not in fields:
            guess = nearest(name, fields)
            import vllm

            raise EngineStartError(
                f"option.{name} is not an engine argument of the installed vLLM {vllm.__version__}. "
                f"Fix: remove it{f' or use option.{guess}' if guess else ''}."
            )


def check_architecture(model_dir: Path) -> None:
    """Fail at once, naming the family and what to use instead, when this vLLM cannot serve the model."""
    import vllm
    from vllm import ModelRegistry

    from lmi_serve.families import unsupported_message

    config = json.loads((model_dir / "config.json").read_text())
    message = unsupported_message(config, set(ModelRegistry.get_supported_archs()), vllm.__version__)
    if message is not None:
        raise EngineStartError(message)


class VllmTokenizer:
    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer

    def encode(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text))

    def render_chat(self, messages: Sequence[dict[str, object]], template: str | None) -> str:
        rendered = self._tokenizer.apply_chat_template(
            list(messages), chat_template=template, tokenize=False, add_generation_prompt=True
        )
        return str(rendered)


class VllmEngine:
    """vLLM's AsyncLLM (continuous batching) behind the `Engine` protocol."""

    def __init__(self, llm: Any, tokenizer: Any) -> None:
        self._llm = llm
        self._tokenizer = VllmTokenizer(tokenizer)
        self._sampling_params: Any = None
        self._delta: Any = None

    @classmethod
    async def start(cls, engine_args: Mapping[str, Any]) -> VllmEngine:
        """Create the engine in a worker thread so the event loop keeps answering /ping meanwhile."""
        check_engine_args(engine_args)
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.usage.usage_lib import UsageContext
        from vllm.v1.engine.async_llm import AsyncLLM

        args = AsyncEngineArgs(**{"disable_log_stats": False, **engine_args})
        # The OpenAI server's usage context: vLLM then picks the same defaults as `vllm serve`
        # (max_num_seqs, max_num_batched_tokens), so the two compare like for like.
        llm = await asyncio.to_thread(AsyncLLM.from_engine_args, args, usage_context=UsageContext.OPENAI_API_SERVER)
        return await cls._wrap(llm)

    @classmethod
    async def connect(cls, args: Any, client_config: Mapping[str, Any]) -> VllmEngine:
        """In one of several API processes (`run_api_processes`): a client of engines already started, built as
        vLLM's own API server processes build theirs. `args` and `client_config` are what vLLM handed the process."""
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.usage.usage_lib import UsageContext
        from vllm.v1.engine.async_llm import AsyncLLM

        addresses = dict(client_config)
        addresses.pop("api_server_loads", None)  # vLLM's own server balances accept() with it; uvicorn cannot
        count, index = int(addresses.pop("client_count")), int(addresses.pop("client_index"))
        engine_args = AsyncEngineArgs.from_cli_args(args)
        engine_args._api_process_count, engine_args._api_process_rank = count, index

        def build() -> Any:
            vllm_config = engine_args.create_engine_config(usage_context=UsageContext.OPENAI_API_SERVER)
            return AsyncLLM.from_vllm_config(vllm_config=vllm_config, usage_context=UsageContext.OPENAI_API_SERVER,
                                             disable_log_stats=engine_args.disable_log_stats,
                                             client_addresses=addresses, client_count=count, client_index=index)

        return await cls._wrap(await asyncio.to_thread(build))

    @classmethod
    async def _wrap(cls, llm: Any) -> VllmEngine:
        tokenizer = llm.get_tokenizer()
        if inspect.isawaitable(tokenizer):  # async in some vLLM versions
            tokenizer = await tokenizer
        return cls(llm, tokenizer)

    @property
    def max_model_len(self) -> int:
        return int(self._llm.model_config.max_model_len)

    @property
    def max_batch_size(self) -> int:
        """Requests the engine runs at once: max_num_seqs for each model copy."""
        config = self._llm.vllm_config
        return int(config.scheduler_config.max_num_seqs) * int(config.parallel_config.data_parallel_size)

    @property
    def tokenizer(self) -> VllmTokenizer:
        return self._tokenizer

    async def generate(self, prompt_ids: list[int], params: GenerationParams, request_id: str
                       ) -> AsyncIterator[Chunk]:
        sampling = self._to_sampling_params(params)
        stream = self._llm.generate({"prompt_token_ids": prompt_ids}, sampling, request_id)
        first = True
        try:
            async for output in stream:
                yield _to_chunk(output, first and params.prompt_logprobs is not None, params.logprobs or 0)
                first = False
        except Exception as exc:
            if _is_client_error(exc):  # the request's fault (vLLM's validation): the caller answers 400
                raise ValueError(str(exc)) from exc
            raise
        finally:
            await stream.aclose()  # vLLM aborts the request when its generator is closed early

    async def abort(self, request_id: str) -> None:
        await self._llm.abort(request_id)

    def is_healthy(self) -> bool:
        return not self._llm.errored

    def stats(self) -> EngineStats:
        processor = getattr(self._llm, "output_processor", None)
        unfinished = processor.get_num_unfinished_requests() if processor is not None else 0
        return EngineStats(running=unfinished, waiting=0)

    async def shutdown(self) -> None:
        await asyncio.to_thread(self._llm.shutdown)

    def _to_sampling_params(self, params: GenerationParams) -> Any:
        if self._sampling_params is None:
            from vllm import SamplingParams
            from vllm.sampling_params import RequestOutputKind

            self._sampling_params, self._delta = SamplingParams, RequestOutputKind.DELTA
        extra: dict[str, Any] = {} if params.top_k is None else {"top_k": params.top_k}
        return self._sampling_params(
            max_tokens=params.max_new_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            repetition_penalty=params.repetition_penalty,
            presence_penalty=params.presence_penalty,
            frequency_penalty=params.frequency_penalty,
            stop=list(params.stop) or None,
            ignore_eos=params.ignore_eos,
            logprobs=params.logprobs,
            prompt_logprobs=params.prompt_logprobs,
            output_kind=self._delta,
            **extra,
        )


#: What an API process runs: worker(listen_address, sock, args, client_config), args holding `lmi_payload`.
ApiWorker = Callable[[str, Any, Any, dict[str, Any]], None]


def run_api_processes(engine_args: Mapping[str, Any], host: str, port: int, count: int, worker: ApiWorker,
                      payload: object, shutdown_timeout_s: int) -> None:
    """Start the engine processes (every model copy) and `count` API processes that accept on one socket bound to
    host:port -- `vllm serve`'s own code path for api_server_count > 1 (its start-up handshake differs between vLLM
    versions, so it is reused, not copied) with `worker` in place of vLLM's OpenAI server. Each API process gets
    vLLM's serve arguments with `lmi_payload` = `payload` added. Blocks until the processes end. SIGTERM raises
    SystemExit once the API processes were given `shutdown_timeout_s` to drain; RuntimeError when one dies."""
    check_engine_args(engine_args)
    from vllm.entrypoints.cli import serve as vllm_serve
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    args = vllm_serve.make_arg_parser(FlexibleArgumentParser()).parse_args([])
    for name, value in {"disable_log_stats": False, **engine_args}.items():
        setattr(args, name, value)
    args.host, args.port, args.api_server_count, args.headless = host, port, count, False
    args.shutdown_timeout = shutdown_timeout_s  # after SIGTERM: API processes, then engines, drain at most this long
    args.lmi_payload = payload
    if "APIServerProcessManager" not in vllm_serve.run_multi_api_server.__code__.co_names:  # it moved: say so
        import vllm

        raise EngineStartError(f"vLLM {vllm.__version__}'s `vllm serve` no longer starts its API processes through "
                               "APIServerProcessManager, which lmi-serve replaces. Fix: set "
                               "option.api_server_count=1 (one API process for every model copy)")
    manager = vllm_serve.APIServerProcessManager  # its target_server_fn is the documented override
    vllm_serve.APIServerProcessManager = functools.partial(manager, target_server_fn=worker)
    try:
        vllm_serve.run_multi_api_server(args)
    finally:
        vllm_serve.APIServerProcessManager = manager


def _is_client_error(exc: BaseException) -> bool:
    """vLLM's errors about the request itself (VLLMClientError and its subclasses in recent vLLMs, whose
    validation errors are not ValueErrors), found by name so that vLLMs without that class work too."""
    return any(cls.__name__ == "VLLMClientError" for cls in type(exc).__mro__)


def _to_chunk(output: Any, with_prompt: bool, top_n: int) -> Chunk:
    completion = output.outputs[0]
    ids = list(completion.token_ids)
    tokens = _tokens(ids, completion.text, completion.logprobs, top_n)
    prompt = _prompt_tokens(output) if with_prompt else None
    return Chunk(tokens=tokens, text=completion.text, finish_reason=_finish_reason(completion), prompt_tokens=prompt)


def _tokens(ids: list[int], text: str, logprobs: Any, top_n: int) -> tuple[Token, ...]:
    """One Token per new id, whose texts always add up to the delta's text.

    A delta holds several ids when the engine ran ahead of the reader. Each id then gets its own decoded
    text (from logprobs) only where those pieces add up to the delta's text; otherwise -- a byte-fallback
    token whose bytes the detokenizer completed or replaced -- the delta's text goes to its last id."""
    entries = [logprobs[i] if logprobs and i < len(logprobs) else None for i in range(len(ids))]
    chosen = [entry.get(token_id) if entry else None for entry, token_id in zip(entries, ids, strict=True)]
    pieces = [c.decoded_token if c is not None else None for c in chosen]
    if len(ids) > 1 and None not in pieces and "".join(p or "" for p in pieces) == text:
        texts = [p or "" for p in pieces]
    else:
        texts = [""] * (len(ids) - 1) + [text] if ids else []
    return tuple(
        Token(id=token_id, text=piece, log_prob=_finite(c.logprob) if c is not None else None, top=_top(entry, top_n))
        for token_id, piece, c, entry in zip(ids, texts, chosen, entries, strict=True)
    )


def _top(entry: Any, top_n: int) -> tuple[TopToken, ...]:
    """The top_n most likely tokens (vLLM adds the chosen one to the dict when it ranks lower)."""
    if not entry or top_n <= 0:
        return ()
    ranked = sorted(entry.items(), key=lambda item: item[1].rank or 0)[:top_n]
    return tuple(TopToken(token_id, lp.decoded_token or "", _finite(lp.logprob) or 0.0) for token_id, lp in ranked)


def _prompt_tokens(output: Any) -> tuple[Token, ...]:
    ids = list(output.prompt_token_ids or [])
    entries = output.prompt_logprobs or []
    tokens = []
    for index, token_id in enumerate(ids):
        entry = entries[index] if index < len(entries) else None
        chosen = entry.get(token_id) if entry else None
        text = chosen.decoded_token if chosen is not None and chosen.decoded_token is not None else ""
        tokens.append(Token(token_id, text, _finite(chosen.logprob) if chosen is not None else None))
    return tuple(tokens)


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _finish_reason(completion: Any) -> FinishReason | None:
    reason = completion.finish_reason
    if reason is None:
        return None
    if reason == "length":
        return "length"
    if reason == "stop" and isinstance(completion.stop_reason, str):
        return "stop_sequence"
    if reason == "stop":
        return "eos_token"
    raise RuntimeError(f"generation ended with {reason!r}")  # "abort": the engine gave up on the request
