"""The registry: versions, their state per workload, promotion and rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ModelNotFound
from gateway.store import Store
from gateway.versions.registry import ALL, Registry, RegistryError
from tests.support.databases import Database

BASE = "smollm2-135m-instruct"


def fake_gguf(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_bytes(b"GGUF" + name.encode())
    return path


@pytest.fixture
def registry(db: Database, tmp_path: Path) -> Registry:
    registry = Registry(Store(db.target), tmp_path / "home")
    registry.ensure_base(fake_gguf(tmp_path, "base.gguf"), BASE)
    return registry


def new_version(registry: Registry, tmp_path: Path, **kwargs: object) -> str:
    staging = registry.folder_for(BASE)
    gguf = fake_gguf(staging, "model-Q4_K_M.gguf")
    return registry.add(BASE, staging, {"gguf": gguf}, **kwargs).name  # type: ignore[arg-type]


def serving(registry: Registry, workload: str = ALL) -> tuple[str, str | None]:
    slot = registry.routing(BASE)[workload]
    return slot.active.name, slot.candidate.name if slot.candidate else None


def test_the_base_is_v0_and_serves_every_workload(registry: Registry, tmp_path: Path) -> None:
    registry.ensure_base(tmp_path / "base.gguf", BASE)  # a second call changes nothing
    (v0,) = registry.versions()
    assert (v0.name, v0.number, v0.state_for("continue")) == (f"{BASE}@v0", 0, "active")
    assert v0.files["gguf"]["size"] == len(b"GGUFbase.gguf")
    assert len(v0.files["gguf"]["sha256"]) == 64
    assert serving(registry) == (f"{BASE}@v0", None)


def test_a_candidate_shares_its_workload_and_promotion_retires_the_old_active(
    registry: Registry, tmp_path: Path
) -> None:
    before = registry.last_deployment()
    v1 = new_version(registry, tmp_path, run_id="run-1", dataset_hash="abc", parent=f"{BASE}@v0")
    assert v1 == f"{BASE}@v1"
    assert registry.last_deployment() > before
    assert serving(registry) == (f"{BASE}@v0", v1)
    files = registry.get(v1).files["gguf"]
    assert Path(files["path"]) == tmp_path / "home" / "models" / v1 / "model-Q4_K_M.gguf"
    assert Path(files["path"]).exists()

    registry.promote(v1)
    assert serving(registry) == (v1, None)
    assert registry.get(f"{BASE}@v0").states[ALL] == ("retired", f"replaced by {v1}")


def test_rollback_withdraws_a_candidate_first_then_reverses_promotions(
    registry: Registry, tmp_path: Path
) -> None:
    v1 = new_version(registry, tmp_path)
    registry.promote(v1)
    v2 = new_version(registry, tmp_path)
    registry.promote(v2)
    v3 = new_version(registry, tmp_path)

    assert registry.rollback(BASE) == f"candidate {v3} withdrawn from *"
    assert serving(registry) == (v2, None)
    assert registry.get(v3).states[ALL] == ("retired", "withdrawn by rollback")

    assert registry.rollback(BASE) == f"{v1} serves * again; {v2} retired"
    assert serving(registry) == (v1, None)
    assert registry.get(v2).states[ALL] == ("retired", f"rolled back to {v1}")

    registry.rollback(BASE)
    assert serving(registry) == (f"{BASE}@v0", None)
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback(BASE)


def test_rollback_to_a_named_version(registry: Registry, tmp_path: Path) -> None:
    v1 = new_version(registry, tmp_path)
    registry.promote(v1)
    v2 = new_version(registry, tmp_path)
    registry.promote(v2)
    registry.rollback(BASE, to=f"{BASE}@v0")
    assert serving(registry) == (f"{BASE}@v0", None)
    with pytest.raises(RegistryError, match="already serves"):
        registry.rollback(BASE, to=f"{BASE}@v0")
    with pytest.raises(ModelNotFound, match="no model version"):
        registry.rollback(BASE, to=f"{BASE}@v9")


def test_a_version_can_be_a_candidate_for_one_workload_only(
    registry: Registry, tmp_path: Path
) -> None:
    v1 = new_version(registry, tmp_path, workload="continue")
    assert serving(registry, "continue") == (f"{BASE}@v0", v1)
    assert serving(registry) == (f"{BASE}@v0", None)
    registry.promote(v1, "continue")
    assert serving(registry, "continue") == (v1, None)
    assert serving(registry) == (f"{BASE}@v0", None)
    assert registry.get(f"{BASE}@v0").state_for("byllm") == "active"


def test_rm_refuses_active_versions_and_the_base(registry: Registry, tmp_path: Path) -> None:
    v1 = new_version(registry, tmp_path)
    registry.promote(v1)
    v2 = new_version(registry, tmp_path)
    with pytest.raises(RegistryError, match="active for \\*"):
        registry.remove(v1)
    with pytest.raises(RegistryError, match="base model"):
        registry.remove(f"{BASE}@v0")
    folder = tmp_path / "home" / "models" / v2
    assert folder.exists()
    registry.remove(v2)
    assert not folder.exists()
    assert [v.name for v in registry.versions()] == [f"{BASE}@v0", v1]


def test_a_removed_versions_number_is_never_given_again(registry: Registry, tmp_path: Path) -> None:
    new_version(registry, tmp_path)
    v2 = new_version(registry, tmp_path)
    registry.remove(v2)
    assert new_version(registry, tmp_path) == f"{BASE}@v3"


def test_the_cli_names_what_is_wrong_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import main

    home = str(tmp_path / "cli-home")
    not_gguf = tmp_path / "notes.txt"
    not_gguf.write_text("hello")
    cases = [
        (["models", "--home", home, "register", str(tmp_path / "missing.gguf")],
         f"no such file: {tmp_path / 'missing.gguf'}"),
        (["models", "--home", home, "register", str(not_gguf)], f"{not_gguf} is not a GGUF file"),
        (["models", "--home", home, "show", f"{BASE}@v4"],
         f"no model version '{BASE}@v4'; known: {BASE}@v0"),
        (["models", "--home", home, "rm", f"{BASE}@v0"], f"{BASE}@v0 is the base model; it "
         "cannot be removed"),
        (["models", "rm", f"{BASE}@v0", "--home", home], f"{BASE}@v0 is the base model; it "
         "cannot be removed"),  # --home after the verb too
        (["rollback", "--home", home], f"nothing to roll back for *: {BASE}@v0 was not promoted "
         "over another version"),
    ]  # fmt: skip
    for argv, message in cases:
        assert main(argv) == 1, argv
        assert capsys.readouterr().err == f"loragate: error: {message}\n"
    assert main(["models", "--home", home]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == ["VERSION", "STATE", "SIZE", "EVAL", "LOSS", "CREATED"]
    assert listing[1].split()[:3] == [f"{BASE}@v0", "active", "98MB"]
