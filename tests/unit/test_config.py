"""Settings come from CLI flags, then the config file, then LORAGATE_* variables, then defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.api.front_door import hostname, is_loopback
from gateway.backends.embedded import threads_for
from gateway.config import load_settings
from gateway.errors import ConfigError


def test_defaults_serve_the_embedded_model_on_loopback(tmp_path: Path) -> None:
    settings = load_settings({}, environ={"LORAGATE_HOME": str(tmp_path)})
    assert (settings.host, settings.port, settings.backend) == ("127.0.0.1", 8420, "llamacpp")
    assert settings.model is None and settings.is_loopback


def test_cli_beats_file_beats_env(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('port = 9000\nbackend = "ollama"\n')
    env = {
        "LORAGATE_PORT": "8000",
        "LORAGATE_BACKEND": "openai",
        "LORAGATE_N_CTX": "2048",
        "LORAGATE_HOME": str(tmp_path),
    }
    settings = load_settings({"port": 9100, "config": str(config)}, environ=env)
    assert settings.port == 9100 and settings.backend == "ollama" and settings.n_ctx == 2048


def test_home_config_toml_is_read_when_present(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[gateway]\nupstream = "http://127.0.0.1:1/v1"\n')
    settings = load_settings({}, environ={"LORAGATE_HOME": str(tmp_path)})
    assert settings.upstream == "http://127.0.0.1:1/v1"


@pytest.mark.parametrize(
    ("cli", "message"),
    [
        ({"backend": "vllm"}, "invalid setting 'backend'"),
        ({"config": "/nonexistent.toml"}, "config file not found"),
    ],
)
def test_bad_settings_are_one_clear_error(tmp_path: Path, cli: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(cli, environ={"LORAGATE_HOME": str(tmp_path)})


def test_a_broken_config_file_says_where(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("port = = 1")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings({"config": str(config)}, environ={})


def test_the_front_door_knows_the_loopback_by_any_name() -> None:
    assert hostname("LocalHost:8420") == "localhost" and hostname("[::1]:8420") == "::1"
    assert hostname("example.com") == "example.com" and hostname("::1") == "::1"
    for name in ("localhost", "app.localhost", "127.0.0.1", "127.3.2.1", "::1", "localhost."):
        assert is_loopback(name), name
    for name in ("attacker.example", "localhost.attacker.example", "10.0.0.1", "0.0.0.0", ""):
        assert not is_loopback(name), name


def test_llama_cpp_decodes_on_all_cores_but_one_and_waits_passively_in_the_gateway() -> None:
    cores = os.cpu_count() or 1
    assert threads_for(None) == (max(cores - 1, 1), cores) and threads_for(3) == (3, 3)
    probe = (
        "import os, sys; from gateway.backends.embedded import passive_waits; passive_waits(); "
        "print('llama_cpp' in sys.modules, os.environ.get('OMP_WAIT_POLICY'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert done.stdout.split() == ["True", "None"]  # loaded with it; programs started later
    mine = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={**env, "OMP_WAIT_POLICY": "active"})  # fmt: skip
    assert mine.stdout.split() == ["False", "active"]  # the user's policy is left alone
