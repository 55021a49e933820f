"""A stand-in for an OpenAI-compatible server that loads LoRA adapters at run time, with the
endpoints and checks of vLLM's (`--enable-lora`, `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`);
vLLM itself needs a GPU and cannot be installed here. `POST /v1/load_lora_adapter` takes
`{"lora_name", "lora_path"}` and wants a PEFT folder there (adapter_config.json and
adapter_model.safetensors); a name loaded twice is a 400, unloading an unknown one a 404.
Adapters are listed in `/v1/models` with their base as parent. Chat answers are
"answered by <model>": enough for a routing test, no model runs."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from tests.support.servers import free_port
from tests.support.waiting import wait_until


@dataclass
class LoraServer:
    url: str  # the /v1 base URL
    base: str
    adapters: dict[str, str] = field(default_factory=dict)  # name -> path
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)  # the model of each chat request
    # for requests with tools: the arguments (JSON text) each model calls the first tool with
    arguments: dict[str, str] = field(default_factory=dict)
    # what a chat without tools is answered, from its messages (a scripted model)
    writer: Callable[[list[dict[str, Any]]], str] | None = None


def _error(message: str, status: int) -> JSONResponse:
    kind = "NotFoundError" if status == 404 else "BadRequestError"
    body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return JSONResponse(body, status_code=status)


def app(state: LoraServer, *, runtime_lora: bool) -> FastAPI:
    api = FastAPI()

    @api.get("/v1/models")
    async def models() -> dict[str, Any]:
        def card(name: str, root: str, parent: str | None) -> dict[str, Any]:
            return {"id": name, "object": "model", "created": 0, "owned_by": "vllm",
                    "root": root, "parent": parent}  # fmt: skip

        cards = [card(state.base, state.base, None)]
        cards += [card(name, path, state.base) for name, path in state.adapters.items()]
        return {"object": "list", "data": cards}

    @api.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        model = body["model"]
        if model != state.base and model not in state.adapters:
            return _error(f"The model `{model}` does not exist.", 404)
        state.answered.append(model)
        text = state.writer(body["messages"]) if state.writer else f"answered by {model}"
        usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
        message: dict[str, Any] = {"role": "assistant", "content": text}
        finish = "stop"
        answered_a_call = (body.get("messages") or [{}])[-1].get("role") == "tool"
        if body.get("tools") and not answered_a_call:  # after the tool's result: words
            name = body["tools"][0]["function"]["name"]
            function = {"name": name, "arguments": state.arguments.get(model, "{}")}
            call = {"id": f"call_{len(state.answered)}", "type": "function", "function": function}
            message, finish = (
                {"role": "assistant", "content": None, "tool_calls": [call]},
                "tool_calls",
            )
        if not body.get("stream"):
            return JSONResponse({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "finish_reason": finish, "message": message}],
                "usage": usage,
            })  # fmt: skip
        if "tool_calls" in message:
            message = {
                "role": "assistant",
                "tool_calls": [{"index": 0, **message["tool_calls"][0]}],
            }

        def chunks() -> Iterator[str]:
            for delta, end in ((message, None), ({}, finish)):
                choice = {"index": 0, "delta": delta, "finish_reason": end}
                chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0,
                         "model": model, "choices": [choice]}  # fmt: skip
                yield f"data: {json.dumps(chunk)}\n\n"
            yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream")

    if not runtime_lora:
        return api

    @api.post("/v1/load_lora_adapter")
    async def load(request: Request) -> Response:
        body = await request.json()
        state.calls.append(("load", body))
        name, path = body.get("lora_name"), body.get("lora_path")
        if not name or not path:
            return _error("Both 'lora_name' and 'lora_path' must be provided.", 400)
        if name in state.adapters:
            return _error(f"The lora adapter '{name}' has already been loaded.", 400)
        folder = Path(path)
        if (
            not (folder / "adapter_config.json").is_file()
            or not (folder / "adapter_model.safetensors").is_file()
        ):
            return _error(f"No adapter found for {path}", 400)
        state.adapters[name] = path
        return PlainTextResponse(f"Success: LoRA adapter '{name}' added successfully.")

    @api.post("/v1/unload_lora_adapter")
    async def unload(request: Request) -> Response:
        body = await request.json()
        state.calls.append(("unload", body))
        name = body.get("lora_name")
        if state.adapters.pop(name, None) is None:
            return _error(f"The lora adapter '{name}' cannot be found.", 404)
        return PlainTextResponse(f"Success: LoRA adapter '{name}' removed successfully.")

    return api


@contextmanager
def lora_server(
    base: str,
    *,
    runtime_lora: bool = True,
    writer: Callable[[list[dict[str, Any]]], str] | None = None,
) -> Iterator[LoraServer]:
    port = free_port()
    state = LoraServer(url=f"http://127.0.0.1:{port}/v1", base=base, writer=writer)
    config = uvicorn.Config(app(state, runtime_lora=runtime_lora), host="127.0.0.1", port=port,
                            log_level="warning")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=30, every=0.01, what="the server started")
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(timeout=5)
