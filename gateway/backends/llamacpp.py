"""The embedded engine: one GGUF model in-process through llama-cpp-python.

llama.cpp contexts are not re-entrant, so every generation runs on one worker thread, in
arrival order. Each turn of an agent loop resends the same long prefix (system prompt, tool
schemas, earlier turns): the prompt is matched against the tokens already in the KV cache, and
a RAM cache of recent conversation states brings back the longest matching prefix when other
conversations ran in between, so only the new suffix is prefilled.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.backends.embedded import model_name_for, model_path, threads_for
from gateway.backends.protocol import ModelInfo
from gateway.config import QUANT_FILE_TYPES, Settings
from gateway.errors import BadRequest, ContextLengthExceeded, EngineError, LoragateError
from gateway.generation import Event, Finish, GenerationRequest, TextDelta, ToolCallDelta
from gateway.prompts import mtllm
from gateway.prompts.rendering import PromptStyle, build_prompt
from gateway.prompts.toolcalls import (
    OPEN_TAG,
    ParsedCall,
    ToolCallSplitter,
    call_grammar,
    schema_grammar,
)
from gateway.store.hashes import file_sha256

_QUANT_NAMES = {0: "F32", 2: "Q4_0", 3: "Q4_1"} | {t: q for q, t in QUANT_FILE_TYPES.items()}
_FIM_TOKENS = ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")


UTF8_SLACK = 4  # context positions kept free at the end of every answer


def prompt_cache(capacity_bytes: int) -> Any:
    """llama-cpp-python's RAM cache of conversation states, holding no more than it is given.

    Its states also copy the logits of every prompt token (n_tokens x vocabulary floats: 7.5 MB
    for a 38-token prompt of SmolLM2, ~370 MB for an agent's 1,900 tokens), which its cache
    does not count: 256 MB of capacity held 1.1 GB after 60 short requests, and RSS grew
    without bound under traffic. The last prompt token is always evaluated again after a
    restore, so no stored logits are ever read: only the last row is kept, and every byte kept
    is counted."""
    from llama_cpp import LlamaRAMCache

    class PromptCache(LlamaRAMCache):
        @property
        def cache_size(self) -> int:
            return sum(state.llama_state_size + state.scores.nbytes + state.input_ids.nbytes
                       for state in self.cache_state.values())  # fmt: skip

        def __setitem__(self, key: Any, state: Any) -> None:
            state.scores = state.scores[-1:].copy()  # load_state broadcasts it over the rows
            super().__setitem__(key, state)

    return PromptCache(capacity_bytes=capacity_bytes)


@dataclass
class _Job:
    tokens: list[int]
    options: dict[str, Any]
    emit: Callable[[object], object]
    cancel: threading.Event = field(default_factory=threading.Event)
    cached: int = 0
    # GBNF for the rest of a `<tool_call>` block, once the model has opened one on its own
    rest_of_call: str | None = None


@dataclass(frozen=True)
class _Done:
    reason: str
    prompt_seconds: float
    eval_seconds: float


class LlamaCppBackend:
    """Serves one GGUF file; `name` is derived from the file name."""

    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int,
        n_threads: int | None,
        n_batch: int,
        cache_mb: int,
        executor: ThreadPoolExecutor | None = None,
        tool_temperature: float = 0.0,
        constrain_types: bool = False,
    ) -> None:
        """`executor`: a one-thread pool shared with other engines (see `versioned_engine.py`);
        by default the engine has its own. `tool_temperature`: the temperature of requests
        that offer tools and set none. `constrain_types`: a Jac MTLLM call is answered with a
        value of its declared type (evaluation leaves it off: it measures the model)."""
        self.path = path
        self.name = model_name_for(path)
        self._n_ctx, self._n_threads, self._n_batch, self._cache_mb = (
            n_ctx,
            n_threads,
            n_batch,
            cache_mb,
        )
        self._tool_temperature = tool_temperature
        self._constrain_types = constrain_types
        self._llm: Any = None
        self._style: PromptStyle | None = None
        self._info: ModelInfo | None = None
        self._shared = executor is not None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="llamacpp"
        )
        self._in_engine = 0

    def sibling(self, path: Path, executor: ThreadPoolExecutor) -> LlamaCppBackend:
        """Another model with this engine's settings, on `executor`."""
        return LlamaCppBackend(
            path, n_ctx=self._n_ctx, n_threads=self._n_threads, n_batch=self._n_batch,
            cache_mb=self._cache_mb, executor=executor, tool_temperature=self._tool_temperature,
            constrain_types=self._constrain_types,
        )  # fmt: skip

    @classmethod
    def from_settings(cls, settings: Settings) -> LlamaCppBackend:
        path = model_path(settings)
        if not path.is_file():
            raise EngineError(f"model file not found: {path}")
        return cls(
            path,
            n_ctx=settings.n_ctx,
            n_threads=settings.n_threads,
            n_batch=settings.n_batch,
            cache_mb=settings.prompt_cache_mb,
            tool_temperature=settings.tool_temperature,
            constrain_types=settings.constrain_types,
        )

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # A shared worker keeps serving the other engines while this one loads.
        await loop.run_in_executor(None if self._shared else self._executor, self._load)

    def _load(self) -> None:
        from llama_cpp import Llama

        decode, prefill = threads_for(self._n_threads)
        try:
            llm = Llama(
                model_path=str(self.path),
                n_ctx=self._n_ctx,
                n_threads=decode,
                n_threads_batch=prefill,
                n_batch=self._n_batch,
                verbose=False,
            )
        except ValueError as exc:
            raise EngineError(f"llama.cpp could not load {self.path}: {exc}") from exc
        if self._cache_mb > 0:
            llm.set_cache(prompt_cache(self._cache_mb << 20))
        self._llm = llm
        self._style = self._prompt_style(llm)
        self._info = self._describe(llm)

    def _prompt_style(self, llm: Any) -> PromptStyle:
        meta = llm.metadata
        fim = tuple(_FIM_TOKENS) if all(self._is_single_token(t) for t in _FIM_TOKENS) else None
        bos = llm._model.token_get_text(llm.token_bos()) if llm.token_bos() >= 0 else ""
        eos = llm._model.token_get_text(llm.token_eos()) if llm.token_eos() >= 0 else ""
        return PromptStyle.for_model(meta.get("tokenizer.chat_template"), bos, eos, fim)  # type: ignore[arg-type]

    def _is_single_token(self, text: str) -> bool:
        return len(self._llm_or_raise().tokenize(text.encode(), add_bos=False, special=True)) == 1

    def _describe(self, llm: Any) -> ModelInfo:
        meta = llm.metadata
        stat = self.path.stat()
        return ModelInfo(
            name=self.name,
            size=stat.st_size,
            digest="sha256:" + file_sha256(self.path),
            modified_at=stat.st_mtime,
            family=meta.get("general.architecture", ""),
            parameter_size=meta.get("general.size_label", ""),
            quantization_level=_QUANT_NAMES.get(int(meta.get("general.file_type", -1)), ""),
            context_length=self._n_ctx,
            template=self._style.template if self._style else "",
            metadata={k: v for k, v in meta.items() if not k.startswith("tokenizer.ggml.")},
        )

    async def close(self) -> None:
        if self._shared:  # after the jobs already queued on the shared worker
            await asyncio.get_running_loop().run_in_executor(self._executor, self._free)
        else:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._free()

    async def set_threads(self, n: int | None) -> None:
        """Use `n` threads (None: the default, `threads_for`) from the next request on (the
        worker applies it between requests)."""
        self._n_threads = n
        decode, prefill = threads_for(n)

        def apply() -> None:
            if self._llm is not None:
                import llama_cpp

                llama_cpp.llama_set_n_threads(self._llm.ctx, decode, prefill)

        await asyncio.get_running_loop().run_in_executor(self._executor, apply)

    async def drop_cache(self) -> None:
        """Forget the RAM-cached conversation states (up to `prompt_cache_mb`), e.g. while the
        engine stands by, serving nothing."""

        def clear() -> None:
            if self._llm is not None and self._llm.cache is not None:
                self._llm.cache.cache_state.clear()

        await asyncio.get_running_loop().run_in_executor(self._executor, clear)

    def _free(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None

    async def models(self) -> list[ModelInfo]:
        return [self._info] if self._info else []

    def queue_depth(self) -> int:
        return max(0, self._in_engine - 1)

    def _llm_or_raise(self) -> Any:
        if self._llm is None:
            raise EngineError("the model is not loaded yet")
        return self._llm

    # -- generation ---------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[Event, None]:
        llm = self._llm_or_raise()
        assert self._style is not None
        prompt = build_prompt(request, self._style)
        tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        if not tokens:  # an empty raw prompt: generate from the start-of-text token
            if llm.token_bos() < 0:
                raise BadRequest("the prompt is empty", param="prompt")
            tokens = [llm.token_bos()]
        self._check_length(len(tokens))
        job = _Job(tokens=tokens, options=self._options(request, len(tokens)), emit=lambda _: None,
                   rest_of_call=self._rest_of_call(request))  # fmt: skip
        # aclosing: a client that goes away closes this generator, and through it the stream,
        # whose `finally` tells the worker to stop.
        async with aclosing(self._stream(job, _TextEvents(request.tools_active))) as events:
            async for event in events:
                yield event

    def _check_length(self, n_prompt: int) -> None:
        if n_prompt >= self._n_ctx:
            over = n_prompt - self._n_ctx + 1
            raise ContextLengthExceeded(
                f"This model's maximum context length is {self._n_ctx} tokens, but the prompt "
                f"is {n_prompt} tokens: {over} tokens too many. Shorten the messages.",
                param="messages",
            )

    def _options(self, request: GenerationRequest, n_prompt: int) -> dict[str, Any]:
        grammar = self._grammar(request)
        # llama-cpp-python goes on past max_tokens while the text ends inside a UTF-8 character
        # (up to 3 tokens more): an answer allowed to the very end of the context then failed
        # with "llama_decode returned 1" (a full KV cache) instead of finishing with `length`.
        room = max(self._n_ctx - n_prompt - UTF8_SLACK, 1)
        options: dict[str, Any] = {
            "max_tokens": min(request.max_tokens or room, room),
            "temperature": self._temperature(request),
            "top_p": 0.95 if request.top_p is None else request.top_p,
            "top_k": 40 if request.top_k is None else request.top_k,
            "repeat_penalty": request.repeat_penalty or 1.0,
            "stop": list(request.stop) or None,
            "seed": request.seed,
        }
        if grammar is not None:
            from llama_cpp import LlamaGrammar

            options["grammar"] = LlamaGrammar.from_string(grammar, verbose=False)
        return options

    def _temperature(self, request: GenerationRequest) -> float:
        if request.temperature is not None:
            return request.temperature
        return self._tool_temperature if request.tools_active else 0.8

    @property
    def _sorted_arguments(self) -> bool:
        return self._style is not None and self._style.sorted_arguments

    def _rest_of_call(self, request: GenerationRequest) -> str | None:
        """With `tool_choice: auto` the model may answer in text; a call it starts is then
        finished under the grammar of the tools offered (valid JSON, a tool that exists, its
        required arguments), as llama.cpp's lazy grammars do."""
        if not request.tools_active or request.tool_choice != "auto" or not request.tools:
            return None
        return call_grammar(
            request.tools,
            parallel=request.parallel_tool_calls,
            opened=True,
            sorted_arguments=self._sorted_arguments,
        )

    def _grammar(self, request: GenerationRequest) -> str | None:
        if request.json_schema is not None or request.json_mode:
            return schema_grammar(request.json_schema)
        if request.tools_active and request.tool_choice != "auto":
            tools = request.selected_tools()
            if not tools:
                raise BadRequest(
                    f"tool_choice names {request.tool_choice!r}, which is not in tools",
                    param="tool_choice",
                )
            # A named function is called once, as OpenAI does; `required` may call several.
            parallel = request.parallel_tool_calls and request.tool_choice == "required"
            return call_grammar(tools, parallel=parallel, sorted_arguments=self._sorted_arguments)
        if self._constrain_types and (call := mtllm.read_call(request)) is not None:
            return call.grammar()
        return None

    async def _stream(self, job: _Job, text_events: _TextEvents) -> AsyncGenerator[Event, None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        job.emit = lambda item: loop.call_soon_threadsafe(queue.put_nowait, item)
        self._in_engine += 1
        future = loop.run_in_executor(self._executor, self._run, job)
        completion: list[str] = []
        try:
            while not isinstance(item := await queue.get(), _Done):
                if isinstance(item, BaseException):
                    raise item
                completion.append(str(item))
                for event in text_events.feed(str(item)):
                    yield event
            for event in text_events.finish():
                yield event
            yield self._finish(item, job, "".join(completion), text_events.calls)
        finally:
            job.cancel.set()  # the worker stops at the next token or prefill chunk
            future.cancel()
            future.add_done_callback(lambda _: self._job_done())

    def _job_done(self) -> None:
        self._in_engine -= 1

    def _finish(self, done: _Done, job: _Job, text: str, calls: int) -> Finish:
        llm = self._llm_or_raise()
        n_out = len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)) if text else 0
        return Finish(
            reason="tool_calls" if calls else done.reason,  # type: ignore[arg-type]
            prompt_tokens=len(job.tokens),
            completion_tokens=n_out,
            cached_tokens=job.cached,
            prompt_eval_seconds=done.prompt_seconds,
            eval_seconds=done.eval_seconds,
        )

    # -- the worker thread ----------------------------------------------------------------

    def _run(self, job: _Job) -> None:
        try:
            job.emit(self._generate_blocking(job))
        except LoragateError as exc:
            job.emit(exc)
        except Exception as exc:  # llama.cpp raises bare RuntimeError/ValueError
            job.emit(EngineError(f"llama.cpp failed: {exc}"))

    def _generate_blocking(self, job: _Job) -> _Done:
        llm = self._llm_or_raise()
        started = time.perf_counter()
        self._prefill(llm, job)
        prefilled = time.perf_counter()
        reason = "stop" if job.cancel.is_set() else self._decode(llm, job)
        return _Done(reason, prefilled - started, time.perf_counter() - prefilled)

    def _decode(self, llm: Any, job: _Job) -> str:
        """Generate after the prompt; returns the finish reason. A tool call the model opens
        on its own is finished under `job.rest_of_call` (the prompt then holds the text so far,
        whose tokens are still in the KV cache)."""
        opened, reason = self._complete(llm, job.tokens, job.options, job, job.rest_of_call)
        if opened is None or job.cancel.is_set():  # `opened` only when rest_of_call is set
            return reason
        assert job.rest_of_call is not None
        from llama_cpp import LlamaGrammar

        tokens = job.tokens + llm.tokenize(opened.encode("utf-8"), add_bos=False, special=True)
        left = job.options["max_tokens"] - (len(tokens) - len(job.tokens))
        grammar = LlamaGrammar.from_string(job.rest_of_call, verbose=False)
        options = {**job.options, "grammar": grammar, "max_tokens": max(left, 1)}
        return self._complete(llm, tokens, options, job, None)[1]

    def _complete(
        self, llm: Any, tokens: list[int], options: dict[str, Any], job: _Job, watch: str | None
    ) -> tuple[str | None, str]:
        """Stream one completion to the client. With `watch`, stop right after the text opens
        a tool call and return the text up to there; otherwise return None."""
        stream = llm.create_completion(tokens, stream=True, **options)
        text, reason = "", "stop"
        try:
            for chunk in stream:
                choice = chunk["choices"][0]
                shown = len(text)
                text += choice["text"]
                at = text.find(OPEN_TAG, max(shown - len(OPEN_TAG), 0)) if watch else -1
                if at >= 0:
                    end = at + len(OPEN_TAG)
                    if end > shown:
                        job.emit(text[shown:end])
                    return text[:end], reason
                if choice["text"]:
                    job.emit(choice["text"])
                reason = choice.get("finish_reason") or reason
                if job.cancel.is_set():
                    break
        finally:
            stream.close()
        return None, reason

    def _prefill(self, llm: Any, job: _Job) -> None:
        """Evaluate the prompt in chunks, reusing the longest cached prefix, and stop between
        chunks when the client has gone. create_completion then finds it all in the KV cache."""
        from llama_cpp import Llama

        tokens = job.tokens
        # Logits of a prompt prefilled in other chunks differ in the last bits, enough to change
        # a sampled token: a seeded request is evaluated whole, so that it reproduces.
        reuse = 0
        if job.options.get("seed") is None:
            self._restore_longest_prefix(llm, tokens)
            reuse = Llama.longest_token_prefix(llm._input_ids.tolist(), tokens)
        # At least the last prompt token is evaluated again: sampling needs fresh logits.
        llm.n_tokens = job.cached = max(min(reuse, len(tokens) - 1), 0)
        for start in range(llm.n_tokens, len(tokens), self._n_batch):
            if job.cancel.is_set():
                return
            llm.eval(tokens[start : start + self._n_batch])
        if llm.cache is not None and not job.cancel.is_set():
            llm.cache[tokens] = llm.save_state()

    @staticmethod
    def _restore_longest_prefix(llm: Any, tokens: list[int]) -> None:
        """Load the RAM-cached state of another conversation when it shares more of this
        prompt than what the KV cache holds now."""
        from llama_cpp import Llama

        if llm.cache is None:
            return
        try:
            item = llm.cache[tokens]
        except KeyError:
            return
        cached = Llama.longest_token_prefix(item.input_ids.tolist(), tokens)
        if cached > Llama.longest_token_prefix(llm._input_ids.tolist(), tokens):
            llm.load_state(item)


class _TextEvents:
    """Streamed model text to events; with tools, `<tool_call>` blocks become numbered calls."""

    def __init__(self, tools: bool) -> None:
        self._splitter = ToolCallSplitter() if tools else None
        self.calls = 0

    def feed(self, text: str) -> list[Event]:
        if self._splitter is None:
            return [TextDelta(text)] if text else []
        return self._events(*self._splitter.feed(text))

    def finish(self) -> list[Event]:
        return self._events(*self._splitter.finish()) if self._splitter else []

    def _events(self, shown: str, parsed: list[ParsedCall]) -> list[Event]:
        events: list[Event] = [TextDelta(shown)] if shown.strip() or (shown and not parsed) else []
        for call in parsed:
            events.append(ToolCallDelta(index=self.calls, id=call.id, name=call.name))
            events.append(ToolCallDelta(index=self.calls, arguments=call.arguments))
            self.calls += 1
        return events
