"""Trained versions served by an upstream, and the factory that picks a host for a backend.

With `train_base` set, a gateway in front of Ollama or an OpenAI-compatible server routes
between model versions just as the embedded engine does; the versions live on the upstream:
- Ollama: each version is the tag `<base>:v<N>`, created from its merged GGUF on first use
  (`gateway/versions/ollama_tags.py`); tags are kept when a version is released, for rollback.
- OpenAI-compatible servers with runtime LoRA (vLLM started with `--enable-lora` and
  `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`): each version's PEFT adapter is loaded by name with
  `POST /v1/load_lora_adapter` and unloaded with `/v1/unload_lora_adapter` when released.
In both, v0 is the upstream's own model (`--model`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gateway.backends.embedded import default_model_path, model_name_for, model_path
from gateway.backends.protocol import Backend
from gateway.config import Settings
from gateway.errors import ConfigError, LoragateError
from gateway.versions.ollama_tags import OllamaDeployer, version_tag
from gateway.versions.registry import Version

if TYPE_CHECKING:
    from gateway.backends.ollama import OllamaBackend
    from gateway.backends.openai_compat import OpenAICompatBackend
    from gateway.backends.versioned_engine import VersionedEngines


class VersionHost(Protocol):
    """Where a backend keeps the trained versions of one base model (`<name>@v<N>`).

    The embedded engine loads each version's GGUF itself (`gateway.backends.versioned_engine`);
    an Ollama holds each as a tag, an OpenAI-compatible server with runtime LoRA as a loaded
    adapter (both below). v0 is the base as the backend serves it."""

    @property
    def name(self) -> str:
        """The base's name in the registry."""

    @property
    def path(self) -> Path:
        """The base GGUF versions are trained from (v0's file)."""

    def loaded(self) -> set[str]:
        """Versions that requests can be sent to now."""

    async def load(self, version: Version) -> None:
        """Make `version` servable (a no-op when it is); a typed error when it cannot be."""

    async def release(self, name: str) -> None:
        """Send no more requests to `name`; those in flight finish."""

    def backend_model(self, version: str) -> str:
        """The model name the backend knows `version` by."""


class UpstreamVersions:
    """What both upstream hosts share: v0 is `served_model`, versions are tracked by name."""

    def __init__(self, name: str, path: Path, served_model: str) -> None:
        self.name = name
        self.path = path
        self.served_model = served_model
        self.base_version = f"{name}@v0"
        self._loaded = {self.base_version}

    def loaded(self) -> set[str]:
        return set(self._loaded)

    def backend_model(self, version: str) -> str:
        return self.served_model if version == self.base_version else self._model_of(version)

    def _model_of(self, version: str) -> str:
        raise NotImplementedError

    async def load(self, version: Version) -> None:
        if version.name not in self._loaded:
            await self._put(version)
            self._loaded.add(version.name)

    async def _put(self, version: Version) -> None:
        raise NotImplementedError

    async def release(self, name: str) -> None:
        if name != self.base_version and name in self._loaded:
            self._loaded.discard(name)
            await self._drop(name)

    async def _drop(self, name: str) -> None:
        """Nothing by default: the upstream keeps what it was given."""


class OllamaTags(UpstreamVersions):
    """Versions as Ollama tags, created from their merged GGUFs when first routed to."""

    def __init__(self, name: str, path: Path, served_model: str, deployer: OllamaDeployer):
        super().__init__(name, path, served_model)
        self.deployer = deployer

    def _model_of(self, version: str) -> str:
        return version_tag(version)

    async def _put(self, version: Version) -> None:
        def ensure() -> None:
            if not self.deployer.has(self._model_of(version.name)):
                self.deployer.push(version)

        await asyncio.to_thread(ensure)


class RuntimeLoras(UpstreamVersions):
    """Versions as LoRA adapters loaded at run time by an OpenAI-compatible server (vLLM)."""

    def __init__(self, name: str, path: Path, served_model: str, backend: OpenAICompatBackend):
        super().__init__(name, path, served_model)
        self.backend = backend
        self._standby: str | None = None

    def _model_of(self, version: str) -> str:
        return version  # loaded under its own name

    async def _put(self, version: Version) -> None:
        peft = version.files.get("peft")
        if peft is None:
            raise LoragateError(
                f"{version.name} has no PEFT adapter (a GGUF registered by hand?): an "
                "OpenAI-compatible upstream can only load adapters"
            )
        status, text = await self.backend.post(
            "/load_lora_adapter", {"lora_name": version.name, "lora_path": peft["path"]}
        )
        if status < 400 or "already been loaded" in text:
            return
        if status in (404, 405) and "lora" not in text.lower():
            raise LoragateError(
                f"upstream {self.backend.upstream} does not load LoRA adapters at run time "
                "(vLLM: start it with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)"
            )
        raise LoragateError(
            f"upstream {self.backend.upstream} refused adapter {version.name}: "
            f"HTTP {status}: {_message(text)}"
        )

    async def _drop(self, name: str) -> None:
        """`name` stays loaded as the standby (requests in flight on it finish, a rollback to
        it is immediate); the standby before it is unloaded."""
        previous, self._standby = self._standby, name
        if previous is not None and previous not in self._loaded:
            await self.backend.post("/unload_lora_adapter", {"lora_name": previous})


def _message(text: str) -> str:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text[:300]
    inner = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(inner, dict):
        return str(inner.get("message") or inner.get("detail") or inner)[:300]
    return str(inner)[:300]


def training_base(settings: Settings) -> Path | None:
    """The GGUF that versions are trained from: the embedded engine's model, or `train_base`
    for an upstream (None: no versions)."""
    if settings.backend == "llamacpp":
        return model_path(settings)
    if settings.train_base is None:
        return None
    if settings.train_base == "default":
        return default_model_path()
    path = Path(settings.train_base).expanduser()
    if not path.is_file():
        raise ConfigError(f"train_base {path} is not a file")
    return path


HostFactory = Callable[[Settings, Any], VersionHost | None]


def _embedded(settings: Settings, engines: VersionedEngines) -> VersionHost:
    return engines  # loads each version's GGUF itself


def _upstream_base(settings: Settings) -> tuple[str, Path, str] | None:
    """The registry name and GGUF of the base an upstream's versions are trained from, and the
    upstream's name for its model."""
    path = training_base(settings)
    if path is None:
        return None
    if not settings.model:
        raise ConfigError(
            "train_base needs --model: the upstream's name for the model it was made from"
        )
    return model_name_for(path), path, settings.model


def _ollama_tags(settings: Settings, backend: OllamaBackend) -> VersionHost | None:
    if (base := _upstream_base(settings)) is None:
        return None
    return OllamaTags(*base, OllamaDeployer(backend.upstream))


def _runtime_loras(settings: Settings, backend: OpenAICompatBackend) -> VersionHost | None:
    if (base := _upstream_base(settings)) is None:
        return None
    return RuntimeLoras(*base, backend)


# Keyed by `settings.backend`, as `gateway.backends` builds the backend.
HOSTS: dict[str, HostFactory] = {
    "llamacpp": _embedded,
    "ollama": _ollama_tags,
    "openai": _runtime_loras,
}


def version_host(settings: Settings, backend: Backend) -> VersionHost | None:
    """Where `backend` keeps model versions; None when it keeps none (no `train_base`)."""
    return HOSTS[settings.backend](settings, backend)
