"""Fixtures for change capture: a SQLite file per test and, when installed, a real PostgreSQL."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, Optional

import pytest

from tests.support.waiting import free_port


def _pg_bin() -> Optional[Path]:
    """Directory holding initdb and pg_ctl: Debian's /usr/lib/postgresql/<v>/bin, else PATH."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(os.path.join(candidate, "initdb"), os.X_OK):
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _as_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as `nobody` then."""
    return ["runuser", "-u", "nobody", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free port (SQLAlchemy URL), stopped at the end."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'psycopg[binary]')")
    pg_bin = _pg_bin()
    if pg_bin is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql")
    root = Path(tempfile.mkdtemp(prefix="defer-pg-"))
    data, port = root / "data", free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "nobody")
        root.chmod(0o700)
    run = lambda *args: subprocess.run(_as_user([str(pg_bin / args[0]), *args[1:]]),  # noqa: E731
                                       capture_output=True, text=True, timeout=60)
    try:
        init = run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        if init.returncode != 0:
            pytest.skip(f"initdb failed: {init.stderr.strip()[-500:]}")
        start = run("pg_ctl", "-D", str(data), "-l", str(root / "pg.log"), "-w", "-t", "30",
                    "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        if start.returncode != 0:
            log = (root / "pg.log").read_text(errors="replace") if (root / "pg.log").exists() else ""
            pytest.fail(f"pg_ctl start failed: {start.stderr}\n{log[-2000:]}")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "-t", "20", "stop")
        shutil.rmtree(root, ignore_errors=True)
