"""`loragate continue-config`: the blocks that point Continue at this gateway, printed, or
merged into Continue's `config.yaml` with `--write`.

The merge goes through a YAML parser that keeps comments and layout (ruamel.yaml): the
`loragate` model and data entries are added or replaced, every other model and setting is left
as it was, and the file before the change is kept as `config.yaml.bak-<time>`. Writing twice
changes nothing the second time.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path
from typing import Any

from gateway.cli.common import add_command, gateway_url, settings_of
from gateway.config import Settings
from gateway.errors import ConfigError

NAME = "loragate"
DATA_EVENTS = ["autocomplete", "editOutcome", "toolUsage", "chatFeedback"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "continue-config",
        help="print (or --write) the Continue config.yaml blocks for this gateway",
        description="A model for chat, edit, apply and autocomplete with tool use, and a data "
        "destination that sends Continue's judgements to /devdata.",
    )
    p.add_argument("--write", action="store_true",
                   help="merge them into Continue's config.yaml (a backup is kept)")  # fmt: skip
    p.add_argument("--file", help="the config.yaml [$CONTINUE_GLOBAL_DIR/config.yaml, "
                   "~/.continue/config.yaml]")  # fmt: skip
    p.set_defaults(func=cmd_continue_config)


def cmd_continue_config(args: argparse.Namespace) -> None:
    settings = settings_of(args)
    url = gateway_url(settings)
    model, data = model_block(url, settings), data_block(url)
    if not args.write:
        print(_dump({"models": [model], "data": [data]}), end="")
        return
    path = Path(args.file).expanduser() if args.file else config_path()
    before = path.read_text(encoding="utf-8") if path.exists() else None
    after = merged(before, model, data)
    if after == before:
        print(f"{path} already points Continue at {url}")
        return
    try:
        if before is not None:
            backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
            backup.write_text(before, encoding="utf-8")
            print(f"kept the previous file as {backup}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(after, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc
    print(f"{path}: model {NAME!r} and data destination {NAME!r} point at {url}")


def config_path() -> Path:
    from collectors.continue_devdata import continue_dir

    return continue_dir() / "config.yaml"


def model_block(url: str, settings: Settings) -> dict[str, Any]:
    """`auto`: the gateway tells autocomplete from chat by the request's shape. The key, when
    one is set, is named, never written: Continue reads it from its secrets."""
    key = "${{ secrets.LORAGATE_API_KEY }}" if settings.api_key else "none"
    return {
        "name": NAME, "provider": "openai", "model": "auto", "apiBase": f"{url}/v1/",
        "apiKey": key, "roles": ["chat", "edit", "apply", "autocomplete"],
        "capabilities": ["tool_use"],
    }  # fmt: skip


def model_yaml(url: str, settings: Settings) -> str:
    """The model entry as it goes under `models:` in Continue's config.yaml."""
    return _dump([model_block(url, settings)])


def data_block(url: str) -> dict[str, Any]:
    return {"name": NAME, "destination": f"{url}/devdata", "schema": "0.2.0", "level": "all",
            "events": DATA_EVENTS}  # fmt: skip


def merged(text: str | None, model: dict[str, Any], data: dict[str, Any]) -> str:
    """`text` (a config.yaml, or None) with the two entries added or replaced by name."""
    from ruamel.yaml import YAMLError
    from ruamel.yaml.comments import CommentedMap

    yaml = _yaml()
    try:
        doc = yaml.load(text) if text else None
    except YAMLError as exc:
        raise ConfigError(
            f"Continue's config.yaml is not valid YAML, left as it is: {exc}"
        ) from exc
    if doc is None:
        doc = CommentedMap([("name", "Local config"), ("version", "1.0.0"), ("schema", "v1")])
    if not isinstance(doc, dict):
        raise ConfigError("Continue's config.yaml is not a mapping, left as it is")
    for section, entry in (("models", model), ("data", data)):
        entries = doc.setdefault(section, [])
        if not isinstance(entries, list):
            raise ConfigError(f"`{section}` in Continue's config.yaml is not a list, left as it is")
        mine = [i for i, e in enumerate(entries) if isinstance(e, dict) and e.get("name") == NAME]
        if mine:
            current = entries[mine[0]]
            if _plain(current) != entry:
                current.clear()
                current.update(entry)
        else:
            entries.append(entry)
    return _dump(doc, yaml)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def _dump(doc: Any, yaml: Any = None) -> str:
    out = io.StringIO()
    (yaml or _yaml()).dump(doc, out)
    return out.getvalue()
