"""The replay set shipped with the package: general chat, tool use on tools unrelated to any
user's, and plain answers with tools offered. Mixed into every dataset so that a LoRA trained on
one developer's work keeps its general behaviour (and keeps answering plain questions in text)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPLAY_FILE = Path(__file__).with_name("general.jsonl")


def load() -> list[dict[str, Any]]:
    """`{"messages": [...], "tools"?: [...]}` records, in file order."""
    with REPLAY_FILE.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
