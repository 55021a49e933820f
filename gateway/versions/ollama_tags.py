"""Model versions on an Ollama server, for clients that talk to Ollama directly.

Ollama no longer creates models from an `ADAPTER`, so what it gets is the merged GGUF:
uploaded as a blob (`create_blob`, skipped when Ollama has it), made a model with the
workload's Modelfile (`modelfiles/<workload>.Modelfile`, else `chatml-tools.Modelfile`:
the Go-template twin of the Jinja template training uses), checked with `show`. Each version
is the tag `<base>:v<N>`; the tag clients use (`ollama_tag`, default `<base>:latest`) is a copy
of the active version's, so promotion and rollback move it and nothing else. A Modelfile is
also written next to the GGUF, so `ollama create NAME -f Modelfile` works by hand.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from gateway.config import Settings
from gateway.errors import DeployError
from gateway.versions.registry import ALL, Registry, Version
from modelfiles import MODELFILES_DIR

_BLOCK = re.compile(r'^(TEMPLATE|SYSTEM)\s+"""(.*?)"""\s*$', re.S | re.M)


@dataclass
class Modelfile:
    template: str | None = None
    system: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Modelfile:
        """The TEMPLATE, SYSTEM and PARAMETER lines (a repeated parameter becomes a list)."""
        found = cls()
        for name, body in _BLOCK.findall(text):
            setattr(found, name.lower(), body)
        rest = _BLOCK.sub("", text)
        for line in rest.splitlines():
            words = shlex.split(line, comments=True)
            if len(words) == 3 and words[0].upper() == "PARAMETER":
                key, value = words[1], _number(words[2])
                if key == "stop":
                    found.parameters.setdefault(key, []).append(value)
                else:
                    found.parameters[key] = value
        return found

    def render(self, source: str) -> str:
        lines = [f"FROM {source}"]
        if self.template is not None:
            lines.append(f'TEMPLATE """{self.template}"""')
        if self.system is not None:
            lines.append(f'SYSTEM """{self.system}"""')
        for key, value in self.parameters.items():
            for item in value if isinstance(value, list) else [value]:
                lines.append(f"PARAMETER {key} {_quoted(item)}")
        return "\n".join(lines) + "\n"


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _quoted(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def modelfile_for(workload: str) -> Modelfile:
    """The shared `chatml-tools.Modelfile`, with what a workload's own `<workload>.Modelfile`
    sets on top (its SYSTEM, PARAMETERs; a TEMPLATE only if it has one)."""
    shared = Modelfile.parse((MODELFILES_DIR / "chatml-tools.Modelfile").read_text("utf-8"))
    own = MODELFILES_DIR / f"{workload}.Modelfile"
    if workload == ALL or not own.exists():
        return shared
    mine = Modelfile.parse(own.read_text(encoding="utf-8"))
    return Modelfile(
        template=mine.template or shared.template,
        system=mine.system if mine.system is not None else shared.system,
        parameters={**shared.parameters, **mine.parameters},
    )


def version_tag(version: str) -> str:
    """`smollm2-135m-instruct@v3` → `smollm2-135m-instruct:v3` (Ollama names are name:tag)."""
    base, _, number = version.partition("@")
    return f"{base}:{number}"


class OllamaDeployer:
    def __init__(self, host: str, *, client_tag: str | None = None, timeout: float = 600) -> None:
        import ollama

        self.host = host
        self.client = ollama.Client(host=host, timeout=timeout)
        self.client_tag = client_tag
        self._errors = (ollama.ResponseError, ConnectionError, OSError)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._errors as exc:
            raise DeployError(f"Ollama at {self.host}: {what} failed: {exc}") from exc

    def has(self, tag: str) -> bool:
        listed = self._call("listing models", self.client.list)
        return any(m.model == tag for m in listed.models)

    def push(self, version: Version, workload: str = ALL) -> str:
        """Create the version's tag (idempotent) and write its Modelfile; returns the tag."""
        modelfile = modelfile_for(workload)
        gguf = version.gguf
        tag = version_tag(version.name)
        digest = self._call("uploading the GGUF", self.client.create_blob, gguf)
        expected = "sha256:" + version.files["gguf"]["sha256"]
        if digest != expected:
            raise DeployError(f"Ollama stored {gguf.name} as {digest}, not {expected}")
        for progress in self._call(
            "creating the model", self.client.create, model=tag, files={gguf.name: digest},
            template=modelfile.template, system=modelfile.system,
            parameters=modelfile.parameters or None, stream=True,
        ):  # fmt: skip
            if progress.status and progress.status.startswith("error"):
                raise DeployError(f"Ollama could not create {tag}: {progress.status}")
        shown = self._call("checking the model", self.client.show, tag)
        if modelfile.template is not None and (shown.template or "") != modelfile.template:
            raise DeployError(f"Ollama's {tag} does not carry the template it was given")
        if version.number > 0:  # v0's GGUF lives in an installed package: not written there
            (gguf.parent / "Modelfile").write_text(modelfile.render(f"./{gguf.name}"), "utf-8")
        return tag

    def point(self, version: Version) -> str | None:
        """Make the clients' tag a copy of `version`'s; returns the clients' tag."""
        if self.client_tag is None:
            return None
        self._call("moving the tag", self.client.copy, version_tag(version.name), self.client_tag)
        return self.client_tag

    def remove(self, version: str) -> None:
        if self.has(version_tag(version)):
            self._call("deleting the model", self.client.delete, version_tag(version))

    def sync(self, registry: Registry, base: str) -> list[str]:
        """Make Ollama match the registry: every active and candidate version has its tag, and
        the clients' tag is the active one's. Returns what was done, a line each."""
        done: list[str] = []
        slot = registry.routing(base).get(ALL)
        if slot is None:
            return done
        for version in (slot.active, slot.candidate):
            if version is not None and not self.has(version_tag(version.name)):
                done.append(f"Ollama: created {self.push(version)}")
        tag = self.point(slot.active)
        if tag is not None:
            done.append(f"Ollama: {tag} is {version_tag(slot.active.name)}")
        return done


def deployer_of(settings: Settings, base: str) -> OllamaDeployer | None:
    """The Ollama that versions are deployed to, when `ollama_deploy` names one."""
    if not settings.ollama_deploy:
        return None
    return OllamaDeployer(
        settings.ollama_deploy, client_tag=settings.ollama_tag or f"{base}:latest"
    )
