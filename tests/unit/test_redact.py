"""Secrets never reach the disk: each kind is replaced, and counted."""

from __future__ import annotations

import json

import pytest

from gateway.redact import MARK, redact

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabc\n-----END RSA PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"key: {PEM} end", "MIIEowIBAAKCAQEA7"),
        ("aws AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE"),
        ("token ghp_" + "a1B2" * 9, "ghp_a1B2"),
        ("OPENAI_KEY sk-proj-" + "x9Y8" * 8, "sk-proj-x9Y8"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
            "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "dozjgNryP4J3",
        ),
        ("git clone https://alice:hunter2pass@example.com/repo.git", "hunter2pass"),
        ('DB_PASSWORD="correct-horse-battery"', "correct-horse-battery"),
        ("api_key = 9f8e7d6c5b4a", "9f8e7d6c5b4a"),
    ],
)
def test_each_kind_of_secret_is_replaced(text: str, secret: str) -> None:
    cleaned, count = redact(text)
    assert secret not in cleaned and MARK in cleaned and count >= 1


def test_a_key_inside_serialized_json_is_caught_whole() -> None:
    cleaned, count = redact(json.dumps({"content": PEM}))
    assert "MIIE" not in cleaned and count == 1
    assert json.loads(cleaned) == {"content": MARK}


def test_ordinary_code_is_left_alone() -> None:
    text = "def password_strength(pw):\n    return len(pw) > 8  # token count"
    assert redact(text) == (text, 0)
