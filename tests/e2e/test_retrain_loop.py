"""The whole loop through the real CLI: recorded corrections → `loragate retrain` → a checked
GGUF registered as a candidate → the serving gateway loads it → promotion → rollback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest

from tests.support.recordings import record_corrections
from tests.support.servers import gateway, served_by_in_a_row

BASE = "smollm2-135m-instruct"


def loragate(
    home: Path, *args: str, timeout: float = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command, *rest = args
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", command, "--home", str(home), *rest],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )  # fmt: skip


def versions(home: Path) -> dict[str, dict]:
    listed = loragate(home, "models", "--json")
    assert listed.returncode == 0, listed.stderr
    return {v["name"]: v for v in json.loads(listed.stdout)}


def served_by(client: openai.OpenAI, model: str = BASE) -> tuple[str, str]:
    raw = client.chat.completions.with_raw_response.create(
        model=model, max_tokens=24, temperature=0,
        messages=[{"role": "user", "content": "What port does loragate listen on?"}],
    )  # fmt: skip
    text = raw.parse().choices[0].message.content or ""
    return raw.headers["x-loragate-model-version"], text


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_retrain_serves_candidates_and_rollback_undoes_one_change_at_a_time(
    tmp_path: Path,
) -> None:
    with gateway(tmp_path, "--n-ctx", "1024") as server:
        home = server.home
        assert home is not None
        await record_corrections(home)

        dry = loragate(home, "retrain", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "dry run: nothing trained or registered" in dry.stderr
        assert list(versions(home)) == [f"{BASE}@v0"]

        # a stage that fails stops the run in one line, and registers nothing
        nowhere = {"LORAGATE_LLAMA_CPP_DIR": str(tmp_path / "no-llama.cpp")}
        broken = loragate(home, "retrain", "--max-steps", "1", env=nowhere)
        assert broken.returncode == 1
        assert broken.stderr.strip().splitlines()[-1] == (
            f"loragate: error: {tmp_path / 'no-llama.cpp'} is not a llama.cpp checkout (missing "
            "convert_hf_to_gguf.py, convert_lora_to_gguf.py, conversion, gguf-py); unset "
            "LORAGATE_LLAMA_CPP_DIR to use the llama-cpp-python source instead"
        )
        assert "export failed after" in broken.stderr
        assert list(versions(home)) == [f"{BASE}@v0"]
        assert list((home / "models").iterdir()) == []

        # two dozen recorded asks leave a handful of held-out items: too few for the gate to
        # see a difference, so this retrain goes to live routing with the gate's verdict noted
        done = loragate(home, "retrain", "--epochs", "6", "--no-gate",
                        env={"LORAGATE_PORT": str(server.port)})  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "failed the gate: held-out:" in done.stdout and "(gate off)" in done.stdout
        assert "general: right" in done.stdout and "held-out: right" in done.stdout
        assert (
            done.stdout.strip()
            .splitlines()[-1]
            .startswith(f"the gateway at {server.url} serves {BASE}@v1 (")
        )
        for stage in ("[1/5] dataset", "[2/5] train", "[3/5] export", "[5/5] register"):
            assert stage in done.stderr
        assert f"{BASE}@v1: candidate beside {BASE}@v0" in done.stdout

        v1 = versions(home)[f"{BASE}@v1"]
        assert v1["states"]["*"]["state"] == "candidate"
        assert v1["parent"] == f"{BASE}@v0" and v1["run_id"].startswith("run-")
        assert set(v1["files"]) == {"gguf", "adapter_gguf", "peft"}
        for record in v1["files"].values():
            assert Path(record["path"]).exists() and len(record["sha256"]) == 64
        assert v1["metrics"]["eval_loss"] < v1["metrics"]["base_eval_loss"]
        assert v1["metrics"]["checks"]["tokenizer_round_trip"] is True

        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="none", max_retries=0)
        for _ in range(200):
            if f"{BASE}@v1" in [m.id for m in client.models.list().data]:
                break
            time.sleep(0.1)
        version, text = served_by(client, f"{BASE}@v1")
        assert version == f"{BASE}@v1"
        assert "8420" in text  # the corrected fact, from the exported, quantized GGUF
        assert "8420" not in served_by(client, f"{BASE}@v0")[1]

        promoted = loragate(home, "models", "promote", f"{BASE}@v1")
        assert promoted.returncode == 0, promoted.stderr
        # as a candidate it already answered some requests: the promotion has arrived when
        # it answers all of them
        served_by_in_a_row(server, f"{BASE}@v1", lambda: served_by(client), timeout=60)
        assert f"INFO serving * → {BASE}@v1\n" in server.output()

        # the next retrain is judged against the active trained version, and two steps of
        # training do not beat it: stored as failed with the gate's reason, nothing changes
        again = loragate(home, "retrain", "--max-steps", "2", "--quant", "Q8_0",
                         env={"LORAGATE_PORT": "9"})  # fmt: skip
        assert again.returncode == 0, again.stderr
        v2 = versions(home)[f"{BASE}@v2"]
        assert v2["files"]["gguf"]["path"].endswith("model-Q8_0.gguf")
        assert v2["parent"] == f"{BASE}@v1"
        assert isinstance(v2["metrics"]["active_eval_loss"], float)
        assert f"active {BASE}@v1" in again.stdout
        assert v2["states"]["*"]["state"] == "failed"
        assert v2["states"]["*"]["reason"].startswith("failed the gate: held-out:")
        assert (
            again.stdout.strip()
            .splitlines()[-1]
            .startswith(f"{BASE}@v2: failed; still served: {BASE}@v1 (")
        )
        assert served_by(client)[0] == f"{BASE}@v1"

        rolled = loragate(home, "rollback")
        assert rolled.stdout.strip() == f"{BASE}@v0 serves * again; {BASE}@v1 retired"
        served_by_in_a_row(server, f"{BASE}@v0", lambda: served_by(client), timeout=60)
        assert versions(home)[f"{BASE}@v1"]["states"]["*"] == {
            "state": "retired", "reason": f"rolled back to {BASE}@v0"}  # fmt: skip


@pytest.mark.slow
def test_retrain_with_nothing_to_learn_from_fails_in_one_line_and_registers_nothing(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    failed = loragate(home, "retrain", timeout=300)
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1].startswith("loragate: error: no trainable")
    assert list(versions(home)) == [f"{BASE}@v0"]
    assert not any((home / "models").glob("*")) if (home / "models").exists() else True
