"""Secrets are removed from every text before it touches disk.

Our own patterns cover private keys (the whole PEM block), cloud and API tokens, JWTs,
credentials in URLs and `password = "..."`-style assignments; to them we add every regex-based
detector that ships with `detect-secrets` (Stripe, Twilio, SendGrid, GitLab, PyPI, npm, Azure,
Telegram, Discord, ...). All of them are compiled into one RE2 automaton, so a text is scanned
once in linear time: ~4 ns per character here, against ~1 ms per line for detect-secrets' own
scanner and ~400 ns per character for the same alternation in Python's `re`, both far too slow
for the recorder's write path. Texts are redacted as serialized JSON, so a PEM key whose
newlines are escaped is still one match.

Recorded prompts are mostly code, so the assignment pattern is strict: the secret's name must
end the identifier (`api_key =`, not `max_tokens =`), and the value must be quoted, or carry a
digit and no code punctuation (`TOKEN=ab12cd`, not `token = job.tokens`).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from functools import cache

import re2

MARK = "[REDACTED]"

# Each alternative is a named group; `keep` is the prefix a replacement leaves in place
# (the URL scheme, the `password = "` part). RE2 syntax: no lookarounds.
# `token` alone names many things in ML code (`pad_token`, `max_tokens`), so only the bare word
# and credential-shaped compounds count; passwords, secrets and keys may carry any prefix.
_ASSIGN_NAME = (
    r"(?i:(?:[a-z0-9_.-]*?(?:password|passwd|pwd|secret|secret_?key|api_?key|access_?key"
    r"|private_?key|client_?secret))|(?:[a-z0-9_.-]*?(?:auth|access|api|bearer|refresh"
    r"|session|secret|github|gitlab|slack|npm|pypi|hf)_?)?token)"
)
_QUOTE = r"\\?[\"'`]"
# A quoted value that is a placeholder or template (`"<unk>"`, `"%(secret)s"`, `"${TOKEN}"`)
# is not a secret; a bare value must hold a digit and be 5+ characters (`TOKEN=ab12cd`).
_QUOTED_VALUE = r"[^\s\"'`\\<>%{}()$]{4,}"
_C = r"[A-Za-z0-9_+/~=.-]"
_BARE_VALUE = rf"(?:{_C}*[0-9]{_C}{{4,}}|{_C}{{4,}}[0-9]{_C}*)"
_KINDS: tuple[tuple[str, str, str | None], ...] = (
    (
        "pem",
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)-----END [A-Z0-9 ]*PRIVATE KEY-----",
        None,
    ),
    ("aws", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", None),
    ("github", r"\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{20,}", None),
    ("apikey", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}", None),  # OpenAI, Anthropic
    ("slack", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", None),
    ("google", r"\bAIza[0-9A-Za-z_-]{35}\b", None),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", None),
    ("bearer", r"\b(?P<bearer_keep>(?i:bearer)\s+)[A-Za-z0-9._~+/-]{16,}=*", "bearer_keep"),
    ("url", r"\b(?P<url_keep>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s:@\"']+:[^/\s@\"']+@", "url_keep"),
    (
        "quoted",
        rf"\b(?P<quoted_keep>{_ASSIGN_NAME}(?:{_QUOTE})?\s*[:=]\s*{_QUOTE}){_QUOTED_VALUE}",
        "quoted_keep",
    ),
    (
        "bare",
        rf"\b(?P<bare_keep>{_ASSIGN_NAME}\s*[:=]\s*){_BARE_VALUE}",
        "bare_keep",
    ),
)

# Detectors that flag a marker rather than the secret (private keys: ours takes the whole
# block), or that hit ordinary text (public IPs; Artifactory's `AP[0-9A-F]...` matches words;
# IBM Cloud IAM's, without the lookbehind RE2 lacks, matches `cache_key] = <44 letters>`).
_SKIPPED_DETECTORS = {
    "PrivateKeyDetector", "IPPublicDetector", "ArtifactoryDetector", "IbmCloudIamDetector"
}  # fmt: skip
# RE2 builds its DFA lazily within `max_mem`; the default (8 MB) is too small for this many
# alternatives and it would fall back to a 20x slower engine.
_RE2_MAX_MEM = 256 << 20
# Where a detect-secrets pattern captures the secret itself (e.g. the 40-character AWS secret
# after `aws_secret_key = `), only that group is replaced; otherwise the whole match. Some
# capture a token's short prefix instead (`(glpat|gldt)-...`): a group that short is no secret.
_MIN_CAPTURED_SECRET = 12


def _detect_secrets_patterns() -> list[re.Pattern[str]]:
    """The regexes of detect-secrets' regex-based detectors, as shipped with the package."""
    import detect_secrets.plugins as plugins
    from detect_secrets.plugins.base import RegexBasedDetector

    found: list[re.Pattern[str]] = []
    for info in pkgutil.iter_modules(plugins.__path__):
        module = importlib.import_module(f"{plugins.__name__}.{info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, RegexBasedDetector)
                and cls.__module__ == module.__name__
                and not inspect.isabstract(cls)
                and name not in _SKIPPED_DETECTORS
            ):
                found.extend(cls().denylist)
    return found


_LOOKAROUND_EDGES = (  # boundary assertions RE2 lacks; dropping them only widens the match
    (re.compile(r"\(\?:\(\?<=\\W\)\|\(\?<=\^\)\)"), ""),
    (re.compile(r"\(\?!(?:\\w|\[[^\]]*\])\)"), ""),
    (re.compile(r"\{(\d+),(\d{4,})\}"), r"{\1,1000}"),  # RE2 caps repetition at 1000
)


def _for_re2(pattern: re.Pattern[str]) -> str | None:
    """The pattern in RE2 syntax with its flags inline, or None if RE2 cannot take it."""
    text = pattern.pattern
    for rx, replacement in _LOOKAROUND_EDGES:
        text = rx.sub(replacement, text)
    flags = "".join(f for f, bit in (("i", re.I), ("s", re.S)) if pattern.flags & bit)
    scoped = f"(?{flags}:{text})" if flags else f"(?:{text})"
    try:
        re2.compile(scoped, _options())
    except re2.error:
        return None
    return scoped


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = _RE2_MAX_MEM
    options.log_errors = False
    return options


@cache
def _compiled() -> tuple[re2._Regexp, dict[str, str | None], dict[str, int], list[str]]:
    """(pattern, keep-group per kind, secret-group per detector, detectors RE2 cannot run)."""
    parts = [f"(?P<{name}>{rx})" for name, rx, _ in _KINDS]
    detectors, unsupported = [], []
    for i, pattern in enumerate(_detect_secrets_patterns()):
        translated = _for_re2(pattern)
        if translated is None:
            unsupported.append(pattern.pattern)
            continue
        detectors.append((f"ds{i}", pattern.groups))
        parts.append(f"(?P<ds{i}>{translated})")
    compiled = re2.compile("|".join(parts), _options())
    inner = {name: compiled.groupindex[name] + 1 for name, groups in detectors if groups}
    return compiled, {name: keep for name, _, keep in _KINDS}, inner, unsupported


def unsupported_detectors() -> list[str]:
    """detect-secrets patterns left out because RE2 cannot express them."""
    return _compiled()[3]


def _replace(match: re2._Match) -> str:
    _, keeps, inner, _ = _compiled()
    kind = match.lastgroup or ""
    group = inner.get(kind)
    captured = match.group(group) if group is not None else None
    if captured is not None and len(captured) >= _MIN_CAPTURED_SECRET:
        start, end = match.span(group)
        text, offset = match.group(0), match.start()
        return text[: start - offset] + MARK + text[end - offset :]
    keep = keeps.get(kind)
    return (match.group(keep) if keep else "") + MARK + ("@" if kind == "url" else "")


def redact(text: str) -> tuple[str, int]:
    """The text with secrets replaced by `[REDACTED]`, and how many were replaced."""
    pattern = _compiled()[0]
    if pattern.search(text) is None:  # the common case: one pass, no rebuilding
        return text, 0
    return pattern.subn(_replace, text)
