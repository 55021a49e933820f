"""Ollama request bodies, as pydantic models (fields as in Ollama's api/types.go)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


class Options(_Wire):
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    num_predict: int | None = None
    num_ctx: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    repeat_penalty: float | None = None


class OllamaFunctionCall(_Wire):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class OllamaToolCall(_Wire):
    function: OllamaFunctionCall


class OllamaMessage(_Wire):
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    images: list[str] | None = None
    tool_calls: list[OllamaToolCall] | None = None
    tool_name: str | None = None


class _Request(_Wire):
    model: str = Field(min_length=1, examples=["auto"])
    stream: bool = True
    format: Literal["json", ""] | dict[str, Any] | None = None
    options: Options | None = None
    keep_alive: str | int | float | None = None


class ChatRequest(_Request):
    messages: list[OllamaMessage] = Field(default_factory=list)
    tools: list[dict[str, Any]] | None = None


class GenerateRequest(_Request):
    prompt: str = ""
    suffix: str | None = None
    system: str | None = None
    raw: bool = False
    images: list[str] | None = None


class ShowRequest(_Wire):
    model: str | None = Field(None, examples=["auto"])
    name: str | None = None
