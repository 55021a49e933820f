"""Typed settings, built once at start: CLI flags > config file > `LORAGATE_*` env > defaults.

The resulting `Settings` object is passed down explicitly; nothing reads the environment later.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.errors import ConfigError

BackendName = Literal["llamacpp", "ollama", "openai"]
# How served GGUFs are quantized (trainer.export makes them), with llama.cpp's file type of each.
Quant = Literal["Q4_K_M", "Q5_K_M", "Q8_0", "F16"]
QUANT_FILE_TYPES: dict[str, int] = {"Q4_K_M": 15, "Q5_K_M": 17, "Q8_0": 7, "F16": 1}
STORE_FILE = "store.db"
LogLevel = Literal["debug", "info", "warning", "error"]
ENV_PREFIX = "LORAGATE_"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def store_target(home: Path, url: str | None) -> Path | str:
    """Where the store is: the PostgreSQL `url` when given, else the SQLite file in `home`."""
    return url or home / STORE_FILE


def parse_duration(text: str) -> float:
    """`30m`, `12h`, `7d`, `1w` → seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration: use e.g. 30m, 12h, 7d or 1w")
    return float(match.group(1)) * _SECONDS[match.group(2)]


class Settings(BaseModel):
    """Everything the gateway needs to start. Each field has a `LORAGATE_<FIELD>` env var."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Address to bind; non-loopback needs api_key.")
    port: int = Field(8420, ge=0, le=65535, description="TCP port (0 picks a free one).")
    backend: BackendName = Field("llamacpp", description="Which engine answers requests.")
    model: str | None = Field(
        None, description="GGUF path (llamacpp) or the upstream's model name; None = default."
    )
    upstream: str | None = Field(None, description="Base URL of the ollama/openai upstream.")
    train_base: str | None = Field(
        None,
        description="ollama/openai backends: the GGUF the upstream's --model was made from "
        "('default' = the packaged SmolLM2). Set, versions are trained from it and routed "
        "between on the upstream (Ollama tags, runtime LoRA adapters).",
    )
    home: Path = Field(Path("~/.loragate"), description="Where config, store and models live.")
    config: Path | None = Field(None, description="The TOML config file that was read.")
    api_key: str | None = Field(None, description="Bearer key clients must send, if set.")
    allowed_hosts: str = Field(
        "",
        description="Comma-separated Host names (globs; '*' = any) served besides the loopback's "
        "while bound to the loopback.",
    )
    origins: str = Field(
        "",
        description="Comma-separated browser origins (globs, e.g. 'https://app.example') allowed "
        "besides the loopback's and local apps'; '*' = any.",
    )
    upstream_api_key: str | None = Field(None, description="Bearer key for the upstream.")
    log_level: LogLevel = Field(
        "info", description="What the gateway logs to stderr: loads, swaps, promotions at info."
    )
    n_ctx: int = Field(8192, ge=64, description="llama.cpp context size in tokens.")
    n_threads: int | None = Field(
        None,
        ge=1,
        description="llama.cpp threads for decoding and prefill (None = all cores but one to "
        "decode, all to prefill).",
    )
    n_batch: int = Field(256, ge=8, description="Prefill chunk; cancellation is checked between.")
    tool_temperature: float = Field(
        0.0,
        ge=0,
        le=2,
        description="llama.cpp: the temperature of requests that offer tools and set none "
        "(a call's arguments must be exact; others keep llama.cpp's 0.8).",
    )
    constrain_types: bool = Field(
        True,
        description="llama.cpp: answer a Jac MTLLM call with a value of the type it declares "
        "(a grammar built from its [Output Information] and [Type Explanations]).",
    )
    upstream_timeout: float = Field(600.0, gt=0, description="Seconds before a 504.")
    shutdown_grace: float = Field(
        5.0, ge=0, description="Seconds running generations get to finish on SIGTERM/Ctrl-C."
    )
    store_url: str | None = Field(
        None,
        description="postgresql://user@host/db to keep the record in PostgreSQL; "
        "None = SQLite at <home>/store.db.",
    )
    record: bool = Field(True, description="Store every exchange (the product's memory).")
    record_skip_workloads: str = Field(
        "", description="Comma-separated workloads never recorded (e.g. a private one)."
    )
    record_skip_paths: str = Field(
        "",
        description="Comma-separated globs: requests that mention a matching file path "
        "(in messages or tool-call arguments) are not recorded, e.g. '*/secrets/*,*.env'.",
    )
    canary_share: float = Field(
        0.1,
        ge=0,
        le=0.5,
        description="A candidate's share of its workload while nothing says it is better; it "
        "grows toward canary_cap as P(candidate better) grows.",
    )
    canary_cap: float = Field(
        0.9, gt=0, le=1, description="The most a candidate may answer before it is promoted."
    )
    canary_outcomes: int = Field(
        3,
        ge=1,
        description="Live judged outcomes a candidate needs before it is promoted or rolled back.",
    )
    auto_promote: bool = Field(
        True,
        description="Promote a candidate when P(better) > 0.95 on live rewards, roll it back "
        "when < 0.05.",
    )
    fallback: str | None = Field(
        None,
        description="When an answer's tool call or JSON fails its schema, answer once more "
        "with this: 'next' (the lane's other version) or a model name. Requests with tools or "
        "a response schema are then streamed only after the check.",
    )
    shadow_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of a candidate's workload (requests with tools or a schema) it also "
        "answers in the background: checked and recorded, never shown.",
    )
    retrain_every: str | None = Field(
        None, description="Retrain from serve this often (30m, 12h, 7d, 1w); None = never."
    )
    retrain_min_new_examples: int = Field(
        50, ge=1, description="Judged interactions since the last retrain that make one due."
    )
    export_quant: Quant | None = Field(
        None,
        description="How retrained versions are quantized for serving; None: Q8_0 for models "
        "under 1B parameters (4 bits cost a small model measurably), Q4_K_M above.",
    )
    ollama_deploy: str | None = Field(
        None, description="URL of an Ollama that model versions are also deployed to."
    )
    ollama_tag: str | None = Field(
        None,
        description="The Ollama tag clients use, moved on promotion and rollback "
        "(default <base>:latest).",
    )
    prompt_cache_mb: int = Field(
        256, ge=0, description="RAM for KV states of recent conversations (0 = last one only)."
    )
    collect_continue: bool = Field(
        True,
        description="While serving, follow Continue's dev-data files (when the folder exists) "
        "and record the judgements in them.",
    )
    collect_libcst: str = Field(
        "",
        description="Project folders of the LibCST repair agent, separated by the path "
        "separator (':' here): while serving, follow each one's .agent_data/success_memory.jsonl "
        "as `loragate collect libcst` reads it.",
    )
    llama_cpp_dir: Path | None = Field(
        None,
        description="A llama.cpp checkout whose converter scripts export uses; None = those of "
        "the installed llama-cpp-python's source distribution.",
    )

    @field_validator("retrain_every")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @property
    def store_target(self) -> Path | str:
        return store_target(self.home, self.store_url)

    @property
    def skipped_workloads(self) -> frozenset[str]:
        return frozenset(w.strip() for w in self.record_skip_workloads.split(",") if w.strip())

    @property
    def skipped_paths(self) -> tuple[str, ...]:
        return tuple(g.strip() for g in self.record_skip_paths.split(",") if g.strip())

    @property
    def libcst_projects(self) -> list[Path]:
        return [Path(p).expanduser() for p in self.collect_libcst.split(os.pathsep) if p.strip()]

    @property
    def is_loopback(self) -> bool:
        return self.host in {"127.0.0.1", "localhost", "::1"} or self.host.startswith("127.")


def _env_values(environ: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw not in (None, ""):
            values[name] = raw
    return values


def _file_values(path: Path) -> dict[str, Any]:
    try:
        with path.expanduser().open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    section = data.get("gateway", data)
    return {k: v for k, v in section.items() if not isinstance(v, dict)}


def load_settings(
    cli: dict[str, Any] | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Merge the layers; a config file is `--config`, else `$LORAGATE_CONFIG`, else
    `<home>/config.toml` when it exists."""
    environ = dict(os.environ) if environ is None else environ
    cli = {k: v for k, v in (cli or {}).items() if v is not None}
    env = _env_values(environ)
    merged: dict[str, Any] = {**env}
    config_path = cli.get("config") or env.get("config")
    home = Path(cli.get("home") or env.get("home") or "~/.loragate").expanduser()
    if config_path is None and (home / "config.toml").exists():
        config_path = home / "config.toml"
    if config_path is not None:
        merged.update(_file_values(Path(config_path)))
        merged["config"] = config_path
    merged.update(cli)
    merged["home"] = home
    try:
        return Settings(**merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {field!r}: {first['msg']}") from exc
