"""An OpenAI-compatible upstream that answers instantly, to measure what a proxy adds.

Plain asyncio (no framework) so that it is never the bottleneck: every chat request gets the
same one-word completion, as JSON or as a three-event SSE stream.

    python tests/support/instant_upstream.py PORT
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

_COMPLETION = {
    "id": "chatcmpl-instant",
    "object": "chat.completion",
    "created": 0,
    "model": "instant",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "ok"},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}
_MODELS = {
    "object": "list",
    "data": [{"id": "instant", "object": "model", "created": 0, "owned_by": "bench"}],
}


def _chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> str:
    choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
    body = {
        "id": "chatcmpl-instant",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "instant",
        "choices": choices,
        "usage": usage,
    }
    return "data: " + json.dumps(body) + "\n\n"


_STREAM = (
    _chunk({"role": "assistant", "content": "ok"})
    + _chunk({}, "stop")
    + _chunk({}, usage=_COMPLETION["usage"])
    + "data: [DONE]\n\n"
)


def _response(body: bytes, content_type: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: "
        + content_type
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


RESPONSES = {
    "json": _response(json.dumps(_COMPLETION).encode(), b"application/json"),
    "sse": _response(_STREAM.encode(), b"text/event-stream"),
    "models": _response(json.dumps(_MODELS).encode(), b"application/json"),
}


class InstantHTTP(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body, self.buffer = self.buffer[head_end + 4 : end], self.buffer[end:]
            self.transport.write(self._answer(head, body))  # type: ignore[attr-defined]

    def _answer(self, head: str, body: bytes) -> bytes:
        if head.startswith("GET"):
            return RESPONSES["models"]
        return (
            RESPONSES["sse"] if b'"stream":true' in body.replace(b" ", b"") else RESPONSES["json"]
        )


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(InstantHTTP, "127.0.0.1", port)
    print(f"instant upstream on 127.0.0.1:{port} since {time.time():.0f}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(int(sys.argv[1])))
