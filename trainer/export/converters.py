"""llama.cpp's own GGUF converters, found at run time and never copied into this repository.

`convert_hf_to_gguf.py` and `convert_lora_to_gguf.py` (with `conversion/` and `gguf-py/`) come
from a llama.cpp checkout the user names (`LORAGATE_LLAMA_CPP_DIR`), else from the source
distribution of the installed llama-cpp-python: fetched once with pip, checked against the
digest we know for that version, and unpacked under `<home>/cache/llama.cpp-<version>/`. The
scripts then match the engine that serves their output.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from gateway.errors import ConverterError
from gateway.store.hashes import file_sha256

SCRIPTS = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py")
_NEEDED = (*SCRIPTS, "conversion", "gguf-py")
# sha256 of the sdists we have checked; another version is checked for its layout only.
KNOWN_SDISTS = {
    "0.3.36": "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e",
}
_MARKER = ".loragate-verified.json"


def converter_dir(home: Path, checkout: str | Path | None = None) -> Path:
    """The folder holding llama.cpp's converter scripts: `checkout` (the `llama_cpp_dir`
    setting, `$LORAGATE_LLAMA_CPP_DIR`) when given, else the cached sdist, fetched on first
    use."""
    if checkout:
        folder = Path(checkout).expanduser()
        missing = [name for name in _NEEDED if not (folder / name).exists()]
        if missing:
            raise ConverterError(
                f"{folder} is not a llama.cpp checkout (missing {', '.join(missing)}); "
                "unset LORAGATE_LLAMA_CPP_DIR to use the llama-cpp-python source instead"
            )
        return folder
    version = importlib.metadata.version("llama-cpp-python")
    target = home / "cache" / f"llama.cpp-{version}"
    if _verified(target):
        return target
    _fetch(version, target)
    return target


def _verified(folder: Path) -> bool:
    """The unpacked scripts are complete and unchanged since we unpacked them."""
    try:
        recorded = json.loads((folder / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return all(
        (folder / name).is_file() and file_sha256(folder / name) == digest
        for name, digest in recorded.items()
    )


def _fetch(version: str, target: Path) -> None:
    print(
        f"fetching llama.cpp's converters (llama-cpp-python {version} source, ~75 MB, once) ...",
        file=sys.stderr,
        flush=True,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--quiet",
            "-d",
            tmp,
            f"llama-cpp-python=={version}",
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        sdists = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if done.returncode != 0 or not sdists:
            last = (done.stderr.strip().splitlines() or ["no sdist"])[-1]
            raise ConverterError(
                f"could not fetch the llama-cpp-python {version} source for its converters "
                f"({last}); or set LORAGATE_LLAMA_CPP_DIR to a llama.cpp checkout"
            )
        expected = KNOWN_SDISTS.get(version)
        if expected is not None and file_sha256(sdists[0]) != expected:
            raise ConverterError(
                f"{sdists[0].name} does not have the sha256 of the published release; not used"
            )
        staging = Path(tmp) / "unpacked"
        _unpack(sdists[0], staging)
        missing = [name for name in _NEEDED if not (staging / name).exists()]
        if missing:
            raise ConverterError(f"the llama-cpp-python {version} source lacks {missing}")
        scripts = [p for p in staging.rglob("*.py") if p.is_file()]
        marker = {str(p.relative_to(staging)): file_sha256(p) for p in scripts}
        (staging / _MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)


def _unpack(sdist: Path, into: Path) -> None:
    """Only llama.cpp's converter files: `<sdist>/vendor/llama.cpp/{scripts,conversion,gguf-py}`."""
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if len(parts) < 4 or parts[1:3] != ("vendor", "llama.cpp") or parts[3] not in _NEEDED:
                continue
            member.name = str(Path(*parts[3:]))
            tar.extract(member, into, filter="data")


def run_script(folder: Path, script: str, args: list[str], *, what: str) -> None:
    """Run one converter with this interpreter; its own `gguf-py` goes first on the path.

    Output is passed through as a one-line status; a failure raises with its last line."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(folder / "gguf-py"), str(folder), os.environ.get("PYTHONPATH", "")]
        ),
    }
    env.pop("NO_LOCAL_GGUF", None)
    process = subprocess.Popen(
        [sys.executable, str(folder / script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    tail: list[str] = []
    assert process.stdout is not None
    try:
        for line in process.stdout:
            tail = [*tail[-19:], line.rstrip()]
            if sys.stderr.isatty():
                print(f"\r\033[K{what}: {line.strip()[:100]}", end="", file=sys.stderr, flush=True)
        code = process.wait()
    except KeyboardInterrupt:
        process.kill()
        process.wait()
        raise
    if sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    if code != 0:
        reason = next((t for t in reversed(tail) if "Error" in t), tail[-1] if tail else "")
        raise ConverterError(f"{what} failed ({script} exited {code}): {reason.strip()}")
