"""Secrets are removed from every text before it touches disk.

Patterns cover private keys, cloud and API tokens, JWTs, credentials in URLs and
`password=`-style assignments. They run on serialized JSON, so a PEM key whose newlines are
escaped is still one match.
"""

from __future__ import annotations

import re

MARK = "[REDACTED]"

# Each alternative is a named group; `keep` is the prefix a replacement leaves in place
# (the URL scheme, the `password=` part). One combined pattern scans the text once.
_KINDS: tuple[tuple[str, str, str | None], ...] = (
    ("pem", r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----", None),
    ("aws", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", None),
    ("github", r"\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{20,}", None),
    ("apikey", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}", None),  # OpenAI, Anthropic
    ("slack", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", None),
    ("google", r"\bAIza[0-9A-Za-z_-]{35}\b", None),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", None),
    ("url", r"\b(?P<url_keep>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s:@\"']+:[^/\s@\"']+@", "url_keep"),
    (
        "assign",
        r"\b(?P<assign_keep>(?i:(?:[a-z0-9_]*_)?(?:password|passwd|pwd|secret|api_?key"
        r"|access_?key|token)[a-z0-9_]*)[\"']?\s*[:=]\s*[\"']?)(?!\[REDACTED\])[^\s\"',;\\]{4,}",
        "assign_keep",
    ),
)
_PATTERN = re.compile("|".join(f"(?P<{name}>{rx})" for name, rx, _ in _KINDS), re.S)
_KEEP = {name: keep for name, _, keep in _KINDS}


def _replace(match: re.Match[str]) -> str:
    keep = _KEEP[match.lastgroup or ""]
    return (match.group(keep) if keep else "") + MARK + ("@" if match.lastgroup == "url" else "")


def redact(text: str) -> tuple[str, int]:
    """The text with secrets replaced by `[REDACTED]`, and how many were replaced."""
    return _PATTERN.subn(_replace, text)
