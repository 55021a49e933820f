"""Backends by name. Each module registers one class; adding a backend is one line here."""

from __future__ import annotations

from importlib import import_module

from gateway.backends.protocol import Backend, ModelInfo
from gateway.config import Settings

# Imported lazily so that, e.g., the Ollama proxy never loads llama.cpp.
_REGISTRY: dict[str, str] = {
    "llamacpp": "gateway.backends.versioned_engine:VersionedEngines",
    "ollama": "gateway.backends.ollama:OllamaBackend",
    "openai": "gateway.backends.openai_compat:OpenAICompatBackend",
}


def backend_names() -> list[str]:
    return sorted(_REGISTRY)


def create_backend(settings: Settings) -> Backend:
    """Build the backend `settings.backend` names, configured from `settings`."""
    module_name, class_name = _REGISTRY[settings.backend].split(":")
    cls = getattr(import_module(module_name), class_name)
    return cls.from_settings(settings)


__all__ = ["Backend", "ModelInfo", "backend_names", "create_backend"]
