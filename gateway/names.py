"""Model names as clients see them."""

from __future__ import annotations


def client_safe(name: str) -> str:
    """`name`, prefixed `local-` if it starts with `gpt` or `o`: Continue sends autocomplete for
    such models to the chat endpoint."""
    return f"local-{name}" if name.lower().startswith(("gpt", "o")) else name
