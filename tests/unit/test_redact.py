"""Secrets never reach the disk: each kind is replaced, and counted."""

from __future__ import annotations

import json

import pytest

from gateway.recording.redact import MARK, redact, unsupported_detectors

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
        ("export HF_TOKEN=hf_abcdefghijklmnop1", "hf_abcdefghijklmnop1"),
        ('headers = {"Authorization": "Bearer abcdefghijklmnop1234"}', "abcdefghijklmnop1234"),
        # found by detect-secrets' own detectors
        ("stripe.api = sk_live_" + "a1" * 12, "sk_live_a1a1"),
        ("SG." + "a" * 22 + "." + "b" * 43, "aaaaaaaaaaaaaaaaaaaaaa"),
        ("glpat-" + "x7" * 10, "glpat-x7x7"),
        ("bot 123456789:" + "A" * 35, "AAAAAAAAAAAAAAAAAAAAAAAA"),
        ("DefaultEndpointsProtocol=https;AccountKey=" + "k" * 88, "kkkkkkkkkkkkkkkk"),
        ('aws_secret_access_key = "' + "Ab1/" * 10 + '"', "Ab1/Ab1/Ab1/"),
    ],
)
def test_each_kind_of_secret_is_replaced(text: str, secret: str) -> None:
    cleaned, count = redact(text)
    assert secret not in cleaned and MARK in cleaned and count >= 1


def test_a_key_inside_serialized_json_is_caught_whole() -> None:
    cleaned, count = redact(json.dumps({"content": PEM}))
    assert "MIIE" not in cleaned and count == 1
    assert json.loads(cleaned) == {"content": MARK}


@pytest.mark.parametrize(
    "text",
    [
        "def password_strength(pw):\n    return len(pw) > 8  # token count",
        "tokens = llm.tokenize(prompt.encode())\nmax_tokens=512\nn_tokens = job.cached",
        'tokenizer.pad_token = tokenizer.eos_token\nunk_token = "<unk>"\nbos_token: 0',
        'password = os.environ["DB_PASSWORD"]\nsecret = "%(secret)s"\nself.api_key = api_key',
        "token: str\nif token == EOS_TOKEN:\n    break",
    ],
)
def test_ordinary_code_is_left_alone(text: str) -> None:
    assert redact(text) == (text, 0)


def test_every_detect_secrets_detector_runs_in_the_one_pass() -> None:
    assert unsupported_detectors() == []
