"""What every backend implements, and the description of a model it serves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gateway.generation import Event, GenerationRequest

if TYPE_CHECKING:
    from trainer.registry import Version


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

    def generate(self, request: GenerationRequest) -> AsyncIterator[Event]:
        """Stream the answer; closing the iterator early cancels the generation."""

    def queue_depth(self) -> int:
        """Requests waiting for the engine (0 for upstreams that queue on their side)."""


class VersionHost(Protocol):
    """Where a backend keeps the trained versions of one base model (`<name>@v<N>`).

    The embedded engine loads each version's GGUF itself (`backends/versions.py`); an Ollama
    holds each as a tag, an OpenAI-compatible server with runtime LoRA as a loaded adapter
    (`backends/upstream_versions.py`). v0 is the base as the backend serves it."""

    name: str  # the base's name in the registry
    path: Path  # the base GGUF versions are trained from (v0's file)

    def loaded(self) -> set[str]:
        """Versions that requests can be sent to now."""

    async def load(self, version: Version) -> None:
        """Make `version` servable (a no-op when it is); a typed error when it cannot be."""

    async def release(self, name: str) -> None:
        """Send no more requests to `name`; those in flight finish."""

    def backend_model(self, version: str) -> str:
        """The model name the backend knows `version` by."""
