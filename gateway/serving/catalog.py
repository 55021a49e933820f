"""Model names a client may send, and what each one means.

A client may name a workload alias (`auto`, `continue`, `byllm`, ...), a concrete version
(`smollm2-135m-instruct@v0`), or a backend model by the name we publish for it (Ollama clients
may add `:latest`). Anything else is a 404 that lists what exists.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.backends.protocol import Backend, ModelInfo
from gateway.errors import ModelNotFound
from gateway.names import client_safe

# Aliases name a workload; until the router (model versions per workload) exists, each one is
# served by the default model.
WORKLOAD_ALIASES = ("auto", "continue", "jac", "byllm", "jessy", "libcst", "docs", "autocomplete")
BASE_VERSION = "v0"
_REFRESH_SECONDS = 5.0


def published_name(backend_name: str) -> str:
    """The id clients see. Never starts with `gpt` or `o`: Continue routes autocomplete for
    such models to chat."""
    return client_safe(backend_name)


@dataclass(frozen=True)
class Route:
    """Where a request goes: the backend's model, the version it names (if it names one; the
    router chooses otherwise), and the workload its alias names."""

    backend_model: str
    model: str
    pinned: str | None
    workload: str | None
    info: ModelInfo


class Catalog:
    """Resolves client-facing model names against what the backend serves."""

    def __init__(
        self,
        backend: Backend,
        *,
        preferred: str | None = None,
        versions: Callable[[], set[str]] | None = None,
        versioned: tuple[str, str] | None = None,
    ) -> None:
        """`preferred`: the upstream model that aliases and unversioned defaults mean;
        `versions`: the trained versions (`<base>@vN`) being served, beside each `@v0`;
        `versioned`: (`<base>`, the published model it names) when they differ, as when an
        upstream serves the base under its own name."""
        self._backend = backend
        self._versions = versions or set
        self._versioned = versioned
        self._preferred = published_name(preferred.removesuffix(":latest")) if preferred else None
        self._models: dict[str, ModelInfo] = {}
        self._fetched_at = 0.0

    async def refresh(self) -> None:
        infos = await self._backend.models()
        self._models = {published_name(m.name): m for m in infos}
        self._fetched_at = time.monotonic()

    async def models(self) -> list[ModelInfo]:
        if time.monotonic() - self._fetched_at > _REFRESH_SECONDS:
            await self.refresh()
        return list(self._models.values())

    def published(self) -> list[str]:
        return list(self._models)

    def default(self) -> str:
        if not self._models:
            raise ModelNotFound("the backend serves no model")
        if self._preferred in self._models:
            return self._preferred
        return next(iter(self._models))

    def default_version(self) -> str:
        """The version that answers a request naming no version (`none` before start)."""
        return f"{self.default()}@{BASE_VERSION}" if self._models else "none"

    def all_names(self) -> list[str]:
        names = self.published()
        bases = {f"{n}@{BASE_VERSION}" for n in names}
        versions = sorted(v for v in self._versions() if v not in bases and v not in names)
        return [*names, *sorted(bases), *versions, *WORKLOAD_ALIASES]

    async def resolve(self, requested: str) -> Route:
        name = requested.removesuffix(":latest")
        route = self._lookup(name)
        if route is None and time.monotonic() - self._fetched_at > 1.0:
            await self.refresh()  # the upstream may have gained the model since
            route = self._lookup(name)
        if route is None:
            raise ModelNotFound(
                f"model {requested!r} not found; available: {', '.join(self.all_names())}",
                param="model",
            )
        return route

    def _lookup(self, name: str) -> Route | None:
        workload = None
        if name in WORKLOAD_ALIASES and self._models:
            workload, name = name, self.default()
        model, _, version = name.partition("@")
        if self._versioned is not None and model == self._versioned[0]:
            model = self._versioned[1]
        info = self._models.get(model)
        if info is None:
            return None
        if version and version != BASE_VERSION and name not in self._versions():
            return None
        return Route(info.name, model, name if version else None, workload, info)
