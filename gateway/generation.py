"""The internal request and the event stream every backend produces.

Wire formats (OpenAI, Ollama) are translated into a `GenerationRequest` by `gateway.api`, and
backends answer with an async stream of `TextDelta`, `ToolCallDelta` and one final `Finish`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field, with_config

# pydantic validates TypedDicts only from typing_extensions before Python 3.12
from typing_extensions import TypedDict

FinishReason = Literal["stop", "length", "tool_calls"]
ToolChoice = Literal["auto", "none", "required"] | str  # a str other than those = named function


@with_config(ConfigDict(extra="allow"))
class ToolCall(TypedDict):
    """A call in an assistant message, in OpenAI's shape: `function` holds `name` and
    `arguments` (JSON text)."""

    id: NotRequired[str]
    type: NotRequired[str]
    function: dict[str, Any]


@with_config(ConfigDict(extra="allow"))
class Message(TypedDict):
    """A chat message in OpenAI's shape with string content. Keys beyond these (a client's
    own, such as `name` or `images`) are kept as sent."""

    role: str
    content: NotRequired[str | None]
    tool_calls: NotRequired[list[ToolCall]]
    tool_call_id: NotRequired[str]
    name: NotRequired[str]  # a tool result's tool


class GenerationRequest(BaseModel):
    """One generation, independent of the wire format it arrived in.

    Exactly one of `messages` (chat) or `prompt` (plain completion) is set. Messages are in
    OpenAI's shape with string content; tools are OpenAI function tools."""

    model: str = Field(description="The backend's own model name.")
    messages: list[Message] | None = None
    prompt: str | None = None
    suffix: str | None = Field(None, description="Fill-in-the-middle: text after the cursor.")
    raw: bool = Field(False, description="Send `prompt` as is, without the chat template.")
    system: str | None = Field(None, description="System prompt for a templated `prompt`.")
    tools: list[dict[str, Any]] | None = None
    tool_choice: ToolChoice = "auto"
    parallel_tool_calls: bool = True
    json_schema: dict[str, Any] | None = Field(None, description="Constrain output to it.")
    json_mode: bool = Field(False, description="Output must be a JSON object.")
    stop: list[str] = Field(default_factory=list)
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    repeat_penalty: float | None = None
    num_ctx: int | None = None
    stream: bool = Field(True, description="The client streams; proxies may ask upstream whole.")

    @property
    def tools_active(self) -> bool:
        return bool(self.tools) and self.tool_choice != "none"

    def selected_tools(self) -> list[dict[str, Any]]:
        """The tools a call may use: all of them, or just the named one."""
        tools = self.tools or []
        if self.tool_choice in ("auto", "none", "required"):
            return tools
        return [t for t in tools if t.get("function", t).get("name") == self.tool_choice]


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A tool call or a fragment of one. The first fragment of call `index` carries `id` and
    `name`; later ones carry only more `arguments` text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class Finish:
    reason: FinishReason
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens served from the KV cache, not prefilled again
    prompt_eval_seconds: float = 0.0
    eval_seconds: float = 0.0


Event = TextDelta | ToolCallDelta | Finish


@dataclass
class AssembledCall:
    id: str
    name: str
    arguments: str = ""


@dataclass
class Assembled:
    """A whole answer put together from events (for non-streaming responses and records)."""

    text: str = ""
    calls: list[AssembledCall] = field(default_factory=list)
    finish: Finish | None = None

    def add(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self.text += event.text
        elif isinstance(event, ToolCallDelta):
            if event.index >= len(self.calls):
                self.calls.append(AssembledCall(id=event.id or "", name=event.name or ""))
            call = self.calls[event.index]
            call.arguments += event.arguments
        else:
            self.finish = event
