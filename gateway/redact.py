"""Secrets are removed from every text before it touches disk.

Patterns cover private keys, cloud and API tokens, JWTs, credentials in URLs and
`password=`-style assignments. They run on serialized JSON, so a PEM key whose newlines are
escaped is still one match.
"""

from __future__ import annotations

import re

MARK = "[REDACTED]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----", re.S
        ),
        MARK,
    ),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), MARK),  # AWS access key id
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{20,}"), MARK),
    (re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"), MARK),  # OpenAI, Anthropic
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), MARK),  # Slack
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), MARK),  # Google API key
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), MARK),  # JWT
    (re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/\s:@\"']+:[^/\s@\"']+@", re.I), rf"\1{MARK}@"),
    (
        re.compile(
            r"(?i)\b((?:[a-z0-9_]*_)?(?:password|passwd|pwd|secret|api_?key|access_?key|token)"
            r"[a-z0-9_]*[\"']?\s*[:=]\s*[\"']?)(?!\[REDACTED\])[^\s\"',;\\]{4,}"
        ),
        rf"\1{MARK}",
    ),
)


def redact(text: str) -> tuple[str, int]:
    """The text with secrets replaced by `[REDACTED]`, and how many were replaced."""
    total = 0
    for pattern, replacement in _PATTERNS:
        text, count = pattern.subn(replacement, text)
        total += count
    return text, total
