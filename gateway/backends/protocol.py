"""What every backend implements, and the description of a model it serves."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.generation import Event, GenerationRequest


@dataclass(frozen=True)
class ModelInfo:
    """A model a backend can serve, with what `/api/tags` and `/api/show` report about it."""

    name: str
    size: int = 0
    digest: str = ""
    modified_at: float = 0.0
    family: str = ""
    parameter_size: str = ""
    quantization_level: str = ""
    context_length: int = 0
    template: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    """An engine or upstream that turns a `GenerationRequest` into a stream of events.

    Implementations translate their own errors into `gateway.errors` at this boundary."""

    async def start(self) -> None:
        """Load the model or check the upstream; `/healthz` is 200 only after this returns."""

    async def close(self) -> None:
        """Free the engine or the connection pool."""

    async def models(self) -> list[ModelInfo]:
        """The models this backend can serve right now."""

    def generate(self, request: GenerationRequest) -> AsyncGenerator[Event, None]:
        """Stream the answer; closing the iterator early cancels the generation."""

    def queue_depth(self) -> int:
        """Requests waiting for the engine (0 for upstreams that queue on their side)."""
