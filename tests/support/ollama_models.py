"""A stand-in for the model-management half of Ollama's HTTP API (no Ollama can be installed
on these machines): blobs, create, show, copy, delete and tags, with Ollama's request and
response shapes and its checks (a blob's bytes must match its digest; create needs every file
uploaded first; names that don't exist are 404 with `{"error": ...}`). Models are kept in
memory, blobs on disk. It does not render templates or run models: `/api/chat` streams
"answered by <model>", which is what a routing test needs to see."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from tests.support.servers import free_port
from tests.support.waiting import wait_until


def _name(model: str) -> str:
    return model if ":" in model else f"{model}:latest"


def app(blobs: Path) -> FastAPI:
    api = FastAPI()
    models: dict[str, dict[str, Any]] = {}
    api.state.models = models

    def missing(model: str) -> JSONResponse:
        return JSONResponse({"error": f"model '{model}' not found"}, status_code=404)

    @api.head("/api/blobs/{digest}")
    async def has_blob(digest: str) -> Response:
        return Response(status_code=200 if (blobs / digest).exists() else 404)

    @api.post("/api/blobs/{digest}")
    async def put_blob(digest: str, request: Request) -> Response:
        data = await request.body()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            return JSONResponse({"error": "digest mismatch"}, status_code=400)
        (blobs / digest).write_bytes(data)
        return Response(status_code=201)

    @api.post("/api/create")
    async def create(request: Request) -> Response:
        body = await request.json()
        for name, digest in (body.get("files") or {}).items():
            if not (blobs / digest).exists():
                return JSONResponse({"error": f"file {name}: blob {digest} not found"}, 400)
        if not body.get("files") and not body.get("from"):
            return JSONResponse({"error": "neither 'from' nor 'files' was specified"}, 400)
        manifest = {k: body.get(k) for k in ("files", "template", "system", "parameters")}
        digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
        size = sum((blobs / d).stat().st_size for d in (body.get("files") or {}).values())
        models[_name(body["model"])] = {**manifest, "digest": digest, "size": size,
                                        "modified_at": time.time()}  # fmt: skip
        steps = ["parsing GGUF", "using existing layer", "writing manifest", "success"]
        if body.get("stream") is False:
            return JSONResponse({"status": "success"})
        lines = (json.dumps({"status": s}) + "\n" for s in steps)
        return StreamingResponse(lines, media_type="application/x-ndjson")

    @api.post("/api/show")
    async def show(request: Request) -> Response:
        model = (await request.json())["model"]
        found = models.get(_name(model))
        if found is None:
            return missing(model)
        parameters = "\n".join(
            f"{k} {json.dumps(v)}" for k, vs in (found["parameters"] or {}).items()
            for v in (vs if isinstance(vs, list) else [vs])
        )  # fmt: skip
        return JSONResponse({
            "modelfile": f"FROM {next(iter(found['files'].values()))}",
            "template": found["template"] or "", "system": found["system"] or "",
            "parameters": parameters, "modified_at": "2026-11-23T00:00:00Z",
            "details": {"format": "gguf", "family": "llama", "parameter_size": "135M",
                        "quantization_level": "Q4_K_M"},
            "model_info": {},
        })  # fmt: skip

    @api.post("/api/copy")
    async def copy(request: Request) -> Response:
        body = await request.json()
        found = models.get(_name(body["source"]))
        if found is None:
            return missing(body["source"])
        models[_name(body["destination"])] = dict(found)
        return Response(status_code=200)

    @api.delete("/api/delete")
    async def delete(request: Request) -> Response:
        model = (await request.json())["model"]
        if models.pop(_name(model), None) is None:
            return missing(model)
        return Response(status_code=200)

    @api.post("/api/chat")
    async def chat(request: Request) -> Response:
        model = (await request.json())["model"]
        if _name(model) not in models:
            return missing(model)
        words = ["answered ", "by ", model]
        chunks = [{"model": model, "created_at": "2026-11-23T00:00:00Z",
                   "message": {"role": "assistant", "content": w}, "done": False}
                  for w in words]  # fmt: skip
        chunks.append({"model": model, "created_at": "2026-11-23T00:00:00Z",
                       "message": {"role": "assistant", "content": ""}, "done": True,
                       "done_reason": "stop", "prompt_eval_count": 5, "eval_count": 3})  # fmt: skip
        lines = (json.dumps(c) + "\n" for c in chunks)
        return StreamingResponse(lines, media_type="application/x-ndjson")

    @api.get("/api/tags")
    async def tags() -> dict[str, Any]:
        return {"models": [
            {"name": name, "model": name, "size": m["size"], "digest": m["digest"],
             "modified_at": "2026-11-23T00:00:00Z",
             "details": {"format": "gguf", "family": "llama"}}
            for name, m in models.items()
        ]}  # fmt: skip

    return api


@contextmanager
def ollama_models(tmp: Path) -> Iterator[tuple[str, dict[str, dict[str, Any]]]]:
    """Yields (host URL, the models it holds by name)."""
    blobs = tmp / "ollama-blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    application = app(blobs)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port,
                                           log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=30, every=0.01, what="the server started")
    try:
        yield f"http://127.0.0.1:{port}", application.state.models
    finally:
        server.should_exit = True
        thread.join(timeout=5)
