"""Model versions and which of them serves each workload.

A version is `<base>@v<N>`: v0 is the served base GGUF itself, every later one an export of a
trained adapter (or a GGUF registered by hand). Per workload a version is `candidate`,
`active`, `retired` or `failed`; the workload `*` stands for every workload without a state of
its own. Each change of state is also a row in `deployments`: gateways watch its newest id to
pick changes up, and rollback reads it to know what to undo. Files live under
`<home>/models/<version>/` and are recorded with their sha256 and size.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import ModelNotFound, RegistryError
from gateway.store import Store
from gateway.store.engines import Params
from gateway.store.hashes import file_sha256

ALL = "*"
STATES = ("candidate", "active", "retired", "failed")
Statement = tuple[str, Params]
_SET_STATE = (
    "INSERT INTO version_states (version, workload, state, reason, changed_at) "
    "VALUES (:version, :workload, :state, :reason, :at) ON CONFLICT (version, workload) "
    "DO UPDATE SET state = excluded.state, reason = excluded.reason, "
    "changed_at = excluded.changed_at"
)
_INIT_STATE = (
    "INSERT INTO version_states (version, workload, state, reason, changed_at) "
    "VALUES (:version, :workload, :state, :reason, :at) ON CONFLICT (version, workload) DO NOTHING"
)
_INSERT_BASE = (
    "INSERT INTO model_versions (name, base, number, files, metrics, created_at) "
    "VALUES (?, ?, 0, ?, '{}', ?) ON CONFLICT (name) DO NOTHING"
)
_INSERT_VERSION = (
    "INSERT INTO model_versions (name, base, number, parent, run_id, dataset_hash, files, "
    "metrics, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_LOG = (
    "INSERT INTO deployments (at, workload, action, version, previous, reason) "
    "VALUES (:at, :workload, :action, :version, :previous, :reason)"
)


def _set_state(version: str, workload: str, state: str, reason: str | None, at: float) -> Statement:
    return _SET_STATE, {"version": version, "workload": workload, "state": state,
                        "reason": reason, "at": at}  # fmt: skip


def _logged(action: str, version: str, workload: str, previous: str | None, reason: str | None,
            at: float) -> Statement:  # fmt: skip
    return _LOG, {"at": at, "workload": workload, "action": action, "version": version,
                  "previous": previous, "reason": reason}  # fmt: skip


@dataclass
class Version:
    name: str
    base: str
    number: int
    files: dict[str, dict[str, Any]]
    created_at: float
    parent: str | None = None
    run_id: str | None = None
    dataset_hash: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    states: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    @property
    def gguf(self) -> Path:
        return Path(self.files["gguf"]["path"])

    @property
    def size(self) -> int:
        return int(self.files["gguf"]["size"])

    def state_for(self, workload: str) -> str | None:
        own = self.states.get(workload) or self.states.get(ALL)
        return own[0] if own else None


@dataclass(frozen=True)
class Slot:
    """What serves one workload: its active version and at most one candidate."""

    active: Version
    candidate: Version | None = None


def file_record(path: Path) -> dict[str, Any]:
    return {"path": str(path.resolve()), "sha256": file_sha256(path), "size": path.stat().st_size}


def _folder_record(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(item.relative_to(path).as_posix().encode() + b"\0" + item.read_bytes())
        size += item.stat().st_size
    return {"path": str(path.resolve()), "sha256": digest.hexdigest(), "size": size}


class Registry:
    def __init__(self, store: Store, home: Path) -> None:
        self.store = store
        self.home = home

    # -- reading ------------------------------------------------------------------------

    def versions(self, base: str | None = None) -> list[Version]:
        where, params = ("WHERE base = ?", (base,)) if base else ("", ())
        rows = self.store.query(
            f"SELECT * FROM model_versions {where} ORDER BY base, number", params
        )
        states: dict[str, dict[str, tuple[str, str | None]]] = {}
        for s in self.store.query("SELECT version, workload, state, reason FROM version_states"):
            states.setdefault(s["version"], {})[s["workload"]] = (s["state"], s["reason"])
        return [self._version(row, states.get(row["name"], {})) for row in rows]

    @staticmethod
    def _version(row: Any, states: dict[str, tuple[str, str | None]]) -> Version:
        return Version(
            name=row["name"],
            base=row["base"],
            number=row["number"],
            files=json.loads(row["files"]),
            created_at=row["created_at"],
            parent=row["parent"],
            run_id=row["run_id"],
            dataset_hash=row["dataset_hash"],
            metrics=json.loads(row["metrics"] or "{}"),
            states=states,
        )

    def get(self, name: str) -> Version:
        for version in self.versions(name.partition("@")[0]):
            if version.name == name:
                return version
        known = ", ".join(v.name for v in self.versions()) or "none"
        raise ModelNotFound(f"no model version {name!r}; known: {known}")

    def state_since(self, name: str, workload: str) -> float:
        """When `name` took its present state for `workload` (0 if it has none of its own)."""
        row = self.store.one(
            "SELECT changed_at FROM version_states WHERE version = ? AND workload = ?",
            (name, workload),
        )
        return float(row[0]) if row else 0.0

    def last_deployment(self) -> int:
        """The id of the newest deployment (change of state); 0 before the first."""
        return int(self.store.one("SELECT coalesce(max(id), 0) FROM deployments")[0])

    def routing(self, base: str) -> dict[str, Slot]:
        """Per workload (and `*`), what serves it."""
        versions = self.versions(base)
        slots: dict[str, dict[str, Version]] = {}
        for version in versions:
            for workload, (state, _) in version.states.items():
                if state in ("active", "candidate"):
                    slots.setdefault(workload, {})[state] = version
        out: dict[str, Slot] = {}
        fallback = slots.get(ALL, {}).get("active") or (versions[0] if versions else None)
        for workload, pair in slots.items():
            active = pair.get("active") or fallback
            if active is not None:
                out[workload] = Slot(active, pair.get("candidate"))
        if fallback is not None and ALL not in out:
            out[ALL] = Slot(fallback)
        return out

    def active(self, base: str, workload: str = ALL) -> Version | None:
        slot = self.routing(base).get(workload) or self.routing(base).get(ALL)
        return slot.active if slot else None

    def candidate(self, base: str, workload: str = ALL) -> Version | None:
        slot = self.routing(base).get(workload)
        return slot.candidate if slot else None

    # -- adding -------------------------------------------------------------------------

    def ensure_base(self, gguf: Path, base: str) -> Version:
        """The row for v0, the base model as served; active for every workload at first."""
        name = f"{base}@v0"
        existing = self.store.one("SELECT name FROM model_versions WHERE name = ?", (name,))
        if existing is None:
            now = time.time()
            self.store.run_all(
                [
                    (
                        _INSERT_BASE,
                        (name, base, json.dumps({"gguf": file_record(gguf)}), now),
                    ),
                    (
                        _INIT_STATE,
                        {
                            "version": name,
                            "workload": ALL,
                            "state": "active",
                            "reason": "the base model",
                            "at": now,
                        },
                    ),
                ]
            )
        return self.get(name)

    def add(
        self,
        base: str,
        staging: Path,
        files: dict[str, Path],
        *,
        workload: str = ALL,
        state: str = "candidate",
        reason: str | None = None,
        parent: str | None = None,
        run_id: str | None = None,
        dataset_hash: str | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> Version:
        """Register a version whose `files` were made in `staging` (from `folder_for`): the
        folder becomes `models/<version>/` first, so that a gateway that sees the row (and
        loads the file at once) finds the files where the row says they are."""
        if state not in STATES:
            raise RegistryError(f"unknown state {state!r}")
        number = self.next_number(base)
        name = f"{base}@v{number}"
        final = self.home / "models" / name
        staging.replace(final)
        moved = {role: final / path.relative_to(staging) for role, path in files.items()}
        records = {
            role: (_folder_record(p) if p.is_dir() else file_record(p)) for role, p in moved.items()
        }
        now = time.time()
        row = (name, base, number, parent, run_id, dataset_hash, json.dumps(records),
               json.dumps(metrics or {}), now)  # fmt: skip
        statements: list[Statement] = [(_INSERT_VERSION, row)]
        statements += self._change(name, workload, state, reason, now, base=base)
        try:
            self.store.run_all(statements)
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise
        return self.get(name)

    def next_number(self, base: str) -> int:
        """One more than any number this base ever had: a removed version's number (still in
        recorded interactions and the deployment log) is never given to another model."""
        rows = self.store.query(
            "SELECT name FROM model_versions WHERE base = ? UNION "
            "SELECT version FROM deployments WHERE version LIKE ?",
            (base, f"{base}@v%"),
        )
        numbers = [
            int(r[0].rpartition("@v")[2]) for r in rows if r[0].rpartition("@v")[2].isdigit()
        ]
        return max(numbers, default=0) + 1

    def folder_for(self, base: str) -> Path:
        """A fresh folder for the next version's files (it becomes the version's on `add`)."""
        staging = self.home / "models" / f".{base}-{time.time_ns()}"
        staging.mkdir(parents=True)
        return staging

    def register_gguf(
        self,
        path: Path,
        base: str,
        *,
        workload: str,
        candidate: bool,
        verify: Callable[[Path], object],
    ) -> Version:
        """A GGUF made elsewhere, copied in, checked by `verify` (which raises when the copy is
        unusable), and registered (as active unless `candidate`)."""
        if not path.is_file():
            raise RegistryError(f"no such file: {path}")
        with path.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                raise RegistryError(f"{path} is not a GGUF file")
        folder = self.folder_for(base)
        target = folder / path.name
        shutil.copyfile(path, target)
        try:
            verify(target)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return self.add(
            base, folder, {"gguf": target}, workload=workload,
            state="candidate" if candidate else "active", reason=f"registered from {path}",
        )  # fmt: skip

    # -- changing state -----------------------------------------------------------------

    def _change(
        self,
        name: str,
        workload: str,
        state: str,
        reason: str | None,
        now: float,
        *,
        base: str,
        action: str | None = None,
    ) -> list[Statement]:
        """Statements that put `name` in `state` for `workload`, displacing the version that
        held that role, and log the change."""
        statements: list[Statement] = []
        previous = None
        if state in ("active", "candidate"):
            holder = (self.active if state == "active" else self.candidate)(base, workload)
            own = holder is not None and holder.states.get(workload, ("", None))[0] == state
            if holder is not None and holder.name != name:
                previous = holder.name
                if own or workload == ALL:
                    statements.append(
                        _set_state(holder.name, workload, "retired", f"replaced by {name}", now)
                    )
        statements.append(_set_state(name, workload, state, reason, now))
        displaced = previous if state == "active" else None
        statements.append(_logged(action or state, name, workload, displaced, reason, now))
        return statements

    def set_state(
        self, name: str, workload: str, state: str, reason: str | None, action: str | None = None
    ) -> None:
        version = self.get(name)
        self.store.run_all(
            self._change(
                name, workload, state, reason, time.time(), base=version.base, action=action
            )
        )

    def promote(self, name: str, workload: str = ALL, reason: str | None = None) -> None:
        self.set_state(name, workload, "active", reason or "promoted", action="promote")

    def rollback(
        self, base: str, workload: str = ALL, to: str | None = None, reason: str | None = None
    ) -> str:
        """Undo the most recent change for `workload`: withdraw its candidate, else reverse the
        promotion of its active version (or make `to` active); returns what was done."""
        now = time.time()
        candidate = self.candidate(base, workload)
        if candidate is not None and to is None:
            reason = reason or "withdrawn by rollback"
            self.store.run_all(
                [
                    _set_state(candidate.name, workload, "retired", reason, now),
                    _logged("withdraw", candidate.name, workload, None, reason, now),
                ]
            )
            return f"candidate {candidate.name} withdrawn from {workload}"
        current = self.active(base, workload)
        if to is not None:
            previous = self.get(to).name
        else:
            row = self.store.one(
                "SELECT previous FROM deployments WHERE workload = ? AND version = ? AND action "
                "IN ('promote', 'active') AND previous IS NOT NULL ORDER BY id DESC LIMIT 1",
                (workload, current.name if current else ""),
            )
            if current is None or row is None:
                what = current.name if current else base
                raise RegistryError(
                    f"nothing to roll back for {workload}: {what} was not promoted over another "
                    "version"
                )
            previous = row["previous"]
        if current is not None and current.name == previous:
            raise RegistryError(f"{previous} already serves {workload}")
        replaced = current.name if current else None
        statements: list[Statement] = []
        if replaced is not None:
            back = reason or f"rolled back to {previous}"
            statements.append(_set_state(replaced, workload, "retired", back, now))
        statements += [
            _set_state(previous, workload, "active", f"rollback of {replaced or '-'}", now),
            _logged("rollback", previous, workload, replaced, reason or "rollback", now),
        ]
        self.store.run_all(statements)
        retired = f"; {current.name} retired" if current else ""
        return f"{previous} serves {workload} again{retired}"

    def remove(self, name: str) -> None:
        version = self.get(name)
        if version.number == 0:
            raise RegistryError(f"{name} is the base model; it cannot be removed")
        serving = [w for w, (s, _) in version.states.items() if s == "active"]
        if serving:
            raise RegistryError(
                f"{name} is active for {', '.join(serving)}; promote or roll "
                "back to another version first"
            )
        self.store.execute("DELETE FROM model_versions WHERE name = ?", (name,))
        shutil.rmtree(self.home / "models" / name, ignore_errors=True)


def table(versions: list[Version]) -> str:
    """`loragate models`: one line per version with its states, size and headline metrics."""
    lines = [f"{'VERSION':<32} {'STATE':<28} {'SIZE':>7}  {'EVAL LOSS':>9}  CREATED"]
    for v in versions:
        states = ", ".join(
            state if workload == ALL else f"{state} ({workload})"
            for workload, (state, _) in sorted(v.states.items())
        )
        loss = v.metrics.get("eval_loss")
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created_at))
        lines.append(
            f"{v.name:<32} {states or '-':<28} {v.size / 1e6:>5.0f}MB  "
            f"{(f'{loss:.3f}' if loss is not None else '-'):>9}  {created}"
        )
    return "\n".join(lines)


def as_dict(version: Version) -> dict[str, Any]:
    return {
        "name": version.name, "base": version.base, "number": version.number,
        "parent": version.parent, "run_id": version.run_id,
        "dataset_hash": version.dataset_hash, "files": version.files,
        "metrics": version.metrics, "created_at": version.created_at,
        "states": {w: {"state": s, "reason": r} for w, (s, r) in version.states.items()},
    }  # fmt: skip
