"""`loragate continue-config --write` merges into the user's Continue config, keeping the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main

USERS = """\
# my Continue set-up
name: Mine
version: 1.0.0
schema: v1
models:
  # the cloud model I use for hard things
  - name: big
    provider: anthropic
    model: claude
    apiKey: ${{ secrets.ANTHROPIC }}
  - name: loragate
    provider: openai
    model: old-name
    apiBase: http://127.0.0.1:9999/v1/
rules:
  - Be brief.
"""


def write(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    home = tmp_path / "home"
    assert main(["continue-config", "--home", str(home), "--write", "--file", str(config)]) == 0
    return capsys.readouterr().out


def test_without_write_the_blocks_are_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["continue-config"]) == 0
    out = capsys.readouterr().out
    assert "apiBase: http://127.0.0.1:8420/v1/" in out
    assert "destination: http://127.0.0.1:8420/devdata" in out
    assert "  - tool_use" in out and "apiKey: none" in out


def test_write_replaces_its_own_entries_and_keeps_everything_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(USERS)
    said = write(tmp_path, config, capsys)
    after = config.read_text()
    backups = list(tmp_path.glob("config.yaml.bak-*"))
    assert len(backups) == 1 and backups[0].read_text() == USERS
    assert "kept the previous file as" in said
    # the user's comments, models, secrets and rules are as they were
    for kept in ("# my Continue set-up", "# the cloud model I use for hard things",
                 "apiKey: ${{ secrets.ANTHROPIC }}", "rules:\n  - Be brief."):  # fmt: skip
        assert kept in after
    assert "old-name" not in after and after.count("name: loragate") == 2  # model and data
    assert "apiBase: http://127.0.0.1:8420/v1/" in after
    assert "destination: http://127.0.0.1:8420/devdata" in after
    # a second write changes nothing and keeps no second backup
    assert "already points Continue at" in write(tmp_path, config, capsys)
    assert config.read_text() == after
    assert len(list(tmp_path.glob("config.yaml.bak-*"))) == 1


def test_write_creates_a_config_where_there_is_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / ".continue" / "config.yaml"
    write(tmp_path, config, capsys)
    text = config.read_text()
    assert text.startswith("name: Local config\nversion: 1.0.0\nschema: v1\nmodels:\n")


def test_a_config_that_is_not_yaml_is_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("models: [unclosed\n")
    assert refused(tmp_path, config, capsys).startswith(
        "loragate: error: Continue's config.yaml is not valid YAML, left as it is"
    )
    assert config.read_text() == "models: [unclosed\n"


def test_a_config_that_cannot_be_written_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where a folder should be\n")
    config = blocked / "config.yaml"
    assert refused(tmp_path, config, capsys).startswith(f"loragate: error: cannot write {config}: ")


def refused(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """`continue-config --write` into `config`, which must fail in one line: that line."""
    home = tmp_path / "home"
    assert main(["continue-config", "--home", str(home), "--write", "--file", str(config)]) == 1
    return capsys.readouterr().err
