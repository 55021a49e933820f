"""The databases the store runs on, for tests: a SQLite file, or a fresh database in a throwaway
PostgreSQL cluster that the test session starts itself (initdb + pg_ctl on a free loopback port).
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gateway.store import Store

_BIN_DIRS = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14")]
_counter = itertools.count()


def postgres_bin() -> Path | None:
    for folder in _BIN_DIRS:
        if (folder / "initdb").exists():
            return folder
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Start PostgreSQL in a new temporary folder; yields the URL of its `postgres` database.
    PostgreSQL refuses to run as root, so as root the cluster belongs to `nobody` (and lives
    outside pytest's root-only temp folders)."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (no initdb found)")
    folder = Path(tempfile.mkdtemp(prefix="loragate-pg-"))
    user = "nobody" if os.geteuid() == 0 else None
    if user:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = folder / "data"

    def run(*argv: str) -> None:
        done = subprocess.run(argv, capture_output=True, text=True, user=user, cwd=folder)
        if done.returncode:
            raise RuntimeError(f"{Path(argv[0]).name} failed: {done.stderr.strip()}")

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "loragate", "--auth=trust", "-E", "UTF8")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"),
        "-w", "start")  # fmt: skip
    try:
        yield f"postgresql://loragate@127.0.0.1:{port}/postgres"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(cluster_url: str) -> str:
    """A new, empty database in the cluster; returns its URL."""
    import psycopg

    name = f"t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(cluster_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return cluster_url.rsplit("/", 1)[0] + "/" + name


@dataclass
class Database:
    """Where a test's store lives: `url` is None for SQLite under `home`."""

    home: Path
    url: str | None = None

    @property
    def target(self) -> Path | str:
        return self.url or self.home / "store.db"

    def rows(self, sql: str) -> list[tuple]:
        store = Store(self.target)
        try:
            return [tuple(r) for r in store.query(sql)]
        finally:
            store.close()

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Another client holds the write lock for the duration."""
        if self.url is None:
            import sqlite3

            blocker = sqlite3.connect(self.home / "store.db", isolation_level=None)
            blocker.execute("BEGIN EXCLUSIVE")
            try:
                yield
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            return
        import psycopg

        with psycopg.connect(self.url) as blocker:  # a transaction until the block ends
            blocker.execute("LOCK TABLE interactions IN ACCESS EXCLUSIVE MODE")
            yield
            blocker.rollback()
