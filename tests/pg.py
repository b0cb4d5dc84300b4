"""A throwaway PostgreSQL cluster for the historian tests (initdb in a temp dir, unix socket only).

The server listens on no TCP port at all (``listen_addresses=''``): only a unix
socket in the cluster's directory.  As root, the cluster belongs to the
``postgres`` user (initdb refuses to run as root).  Where no server is
installed the tests are skipped with the reason — unless
``GRIDBUS_REQUIRE_POSTGRES=1`` (set by CI), where they fail instead.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def unavailable(reason: str) -> None:
    if os.environ.get("GRIDBUS_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here (GRIDBUS_REQUIRE_POSTGRES=1) but {reason}")
    pytest.skip(f"no PostgreSQL server: {reason} (make test installs Debian's postgresql when run as root)")


class Cluster:
    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _bin("initdb"), _bin("pg_ctl")
        if not self.initdb or not self.pg_ctl:
            unavailable("initdb/pg_ctl not found")
        self.root = Path(tempfile.mkdtemp(prefix="gridbus-pg-"))
        self.data, self.socket, self.logfile = self.root / "data", self.root, self.root / "server.log"
        self.user = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                unavailable("running as root and there is no postgres user to own the cluster")
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self._run(self.initdb, "-D", str(self.data), "-A", "trust", "-U", "gridbus", "--no-sync")
        self.start()

    def _run(self, *cmd: str) -> subprocess.CompletedProcess:
        if self.user is not None:
            cmd = ("runuser", "-u", "postgres", "--", *cmd)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            log = self.logfile.read_text() if self.logfile.exists() else ""
            unavailable(f"{' '.join(cmd[-6:])} failed: {proc.stderr.strip()} {log[-500:]}")
        return proc

    @property
    def url(self) -> str:
        return f"postgresql://gridbus@/postgres?host={self.socket}"

    def url_for(self, user: str, password: str | None = None, database: str = "postgres") -> str:
        secret = f":{password}" if password is not None else ""
        return f"postgresql://{user}{secret}@/{database}?host={self.socket}"

    def sql(self, *statements: str, database: str = "postgres") -> None:
        """Run statements as the superuser (autocommit, so CREATE DATABASE works)."""
        import psycopg

        with psycopg.connect(self.url.replace("/postgres?", f"/{database}?"), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def add_role(self, name: str, password: str, read_only: bool = False) -> None:
        """A login role that must give its password (scram), optionally read-only."""
        self.sql(
            f"CREATE ROLE {name} LOGIN PASSWORD '{password}'",
            f"GRANT ALL ON SCHEMA public TO {name}",
            *([f"ALTER ROLE {name} SET default_transaction_read_only = on"] if read_only else []),
        )
        hba = self.data / "pg_hba.conf"
        hba.write_text(f"local all {name} scram-sha-256\n" + hba.read_text())
        self._run(self.pg_ctl, "-D", str(self.data), "reload")

    def start(self) -> None:
        self._run(
            self.pg_ctl,
            "-D",
            str(self.data),
            "-l",
            str(self.logfile),
            "-w",
            "-t",
            "30",
            "-o",
            f"-k {self.socket} -c listen_addresses='' -c fsync=off",
            "start",
        )

    def stop(self) -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        except BaseException:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
