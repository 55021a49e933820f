"""A model as judge of text answers: yes or no against the reference, forced by a schema."""

from __future__ import annotations

import json
from typing import Any

from gateway.errors import EvalError
from gateway.generation import Assembled
from gateway.versions.bandit import wilson
from trainer.evaluation.items import Item

_VERDICT: dict[str, Any] = {
    "type": "object",
    "properties": {"verdict": {"type": "string", "enum": ["yes", "no"]}},
    "required": ["verdict"],
}


class Judge:
    """A model that says whether a text answer is right given the reference: any model an
    OpenAI-compatible endpoint serves (this gateway, with a version pinned as `model@vN`, or
    an upstream). Its verdict is constrained to yes/no by a response schema."""

    def __init__(self, model: str, base_url: str, api_key: str | None = None) -> None:
        import openai

        self.model = model
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "none", max_retries=1)

    def check(self) -> None:
        """Fail before any answer is generated if the judge's endpoint does not answer."""
        import openai

        try:
            self.client.models.list()
        except openai.OpenAIError as exc:
            raise EvalError(f"the judge {self.model} at {self.client.base_url}: {exc}") from exc

    def __call__(self, item: Item, answer: str) -> bool:
        import openai

        question = next((m.get("content") for m in reversed(item.messages)
                         if m["role"] == "user"), "")  # fmt: skip
        prompt = (
            f"Question: {question}\nReference answer: {item.reference.get('content') or ''}\n"
            f"Answer to judge: {answer}\n\nDoes the answer say what the reference says? "
            'Reply with {"verdict": "yes"} or {"verdict": "no"}.'
        )
        try:
            reply = self.client.chat.completions.create(
                model=self.model, temperature=0, max_tokens=16,
                messages=[{"role": "user", "content": prompt}],
                response_format={"type": "json_schema",
                                 "json_schema": {"name": "verdict", "schema": _VERDICT}},
            )  # fmt: skip
        except openai.OpenAIError as exc:
            raise EvalError(f"the judge {self.model} at {self.client.base_url}: {exc}") from exc
        try:
            return json.loads(reply.choices[0].message.content or "")["verdict"] == "yes"
        except (json.JSONDecodeError, KeyError, TypeError):
            return False  # an unreadable verdict is not a yes


def judged(items: list[Item], answers: list[Assembled], judge: Judge) -> dict[str, Any] | None:
    """The judge's accuracy on the text items (those without tools or a schema)."""
    verdicts = [judge(item, answer.text) for item, answer in zip(items, answers, strict=True)
                if not item.tools and item.json_schema is None]  # fmt: skip
    if not verdicts:
        return None
    low, high = wilson(sum(verdicts), len(verdicts))
    return {"rate": sum(verdicts) / len(verdicts), "n": len(verdicts), "interval": [low, high]}
