"""From a `GenerationRequest` to the exact prompt text a llama.cpp model sees."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import BadRequest
from gateway.generation import GenerationRequest, Message
from gateway.prompts import templates

CHATML_MARK = "<|im_start|>"


@dataclass(frozen=True)
class PromptStyle:
    """How one model wants its prompts: chat template, special tokens, FIM tokens."""

    template: str
    bos_token: str = ""
    eos_token: str = ""
    fim: tuple[str, str, str] | None = None  # (prefix, suffix, middle) tokens
    # the model writes a call's arguments with sorted keys, not in the tool schema's order
    sorted_arguments: bool = False

    @classmethod
    def for_model(
        cls,
        own_template: str | None,
        bos_token: str = "",
        eos_token: str = "",
        fim: tuple[str, str, str] | None = None,
    ) -> PromptStyle:
        """Use the model's own template when it renders tools; ChatML models whose template
        ignores tools (SmolLM2), and models trained here that carry an older copy of it, get
        the shipped Hermes-style `chatml-tools` template."""
        if templates.is_tools_template(own_template):
            source = templates.template_source(templates.TOOLS_TEMPLATE)
        elif own_template and templates.template_handles_tools(own_template):
            source = own_template
        elif own_template is None or CHATML_MARK in own_template:
            source = templates.template_source(templates.TOOLS_TEMPLATE)
        else:
            source = own_template
        return cls(template=source, bos_token=bos_token, eos_token=eos_token, fim=fim,
                   sorted_arguments=templates.writes_sorted_arguments(own_template))  # fmt: skip


def build_prompt(request: GenerationRequest, style: PromptStyle) -> str:
    """Render chat messages, a templated prompt, a raw prompt or a fill-in-the-middle prompt."""
    if request.messages is not None:
        tools = request.tools if request.tools_active else None
        return _render(style, request.messages, tools)
    prompt = request.prompt or ""
    if request.suffix is not None:
        return _fim_prompt(request, style)
    if request.raw:
        return prompt
    messages: list[Message] = (
        [{"role": "system", "content": request.system}] if request.system else []
    )
    messages.append({"role": "user", "content": prompt})
    return _render(style, messages, None)


def _render(style: PromptStyle, messages: list[Message], tools: list[dict] | None) -> str:
    return templates.render(
        style.template, messages, tools, bos_token=style.bos_token, eos_token=style.eos_token
    )


def _fim_prompt(request: GenerationRequest, style: PromptStyle) -> str:
    if style.fim is None:
        raise BadRequest(
            f"model {request.model!r} does not support insert: it has no fill-in-the-middle "
            "tokens; send the prompt without `suffix`",
            param="suffix",
        )
    pre, suf, mid = style.fim
    return f"{pre}{request.prompt or ''}{suf}{request.suffix}{mid}"
