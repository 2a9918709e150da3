"""Real PostgreSQL and Redis for the tests, started by the tests themselves: PostgreSQL with
initdb/pg_ctl in a temporary folder on a free loopback port, Redis as a plain process. (A
module, not a conftest.py, like live_harness.py.) .ci/run installs Debian's postgresql and
redis-server when they are missing.

initdb refuses to run as root: as root the cluster is made and run as the `postgres` user
(which Debian's package creates) through runuser.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PG_USER = "facelive"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_binaries() -> Path | None:
    """The folder with initdb and pg_ctl: PATH first, then Debian's versioned folders."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(folder, "initdb").exists() and Path(folder, "pg_ctl").exists():
            return Path(folder)
    return None


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@dataclass
class Postgres:
    folder: Path
    port: int
    bindir: Path

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            _as_server_user([str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"),
                             "-m", "immediate", "stop"]),
            capture_output=True, check=False, timeout=60,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres(durable: bool = False) -> Postgres:
    """A fresh cluster (trust auth on loopback only). fsync is off unless `durable`: test data
    is throwaway, while a benchmark of commits wants them on disk as in production."""
    bindir = pg_binaries()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL's initdb/pg_ctl not found (apt-get install postgresql)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        raise FileNotFoundError("running as root needs runuser to start PostgreSQL")
    folder = Path(tempfile.mkdtemp(prefix="facelive-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    subprocess.run(
        _as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", PG_USER,
                         "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"]),
        capture_output=True, check=True, timeout=120,
    )
    port = free_port()
    options = (f"-c port={port} -c listen_addresses=127.0.0.1 "
               f"-c fsync={'on' if durable else 'off'} "
               f"-c unix_socket_directories={folder} -c max_connections=100")
    subprocess.run(
        _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-o", options,
                         "-l", str(folder / "log"), "-w", "-t", "60", "start"]),
        capture_output=True, check=True, timeout=90,
    )
    return Postgres(folder, port, bindir)


@dataclass
class Redis:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        _stop(self.proc)


def start_redis() -> Redis:
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server not found (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return Redis(proc, port)
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("redis-server did not start")
        time.sleep(0.1)


def dump_database(url: str) -> list[object]:
    """Every row of the gallery's tables (and its schema version), in a fixed order: two dumps
    are equal exactly when nothing was changed."""
    import psycopg

    with psycopg.connect(url) as conn:
        out: list[object] = list(conn.execute("SELECT app, version FROM facelive.meta"))
        for table, order in (("people", "id"), ("examples", "id"), ("crop_keys", "example"),
                             ("embeddings", "example, embedder")):
            out.append(list(conn.execute(f"SELECT * FROM facelive.{table} ORDER BY {order}")))
    return out


@dataclass
class Nginx:
    proc: subprocess.Popen[bytes]
    port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def upstreams_seen(self) -> list[tuple[str, str]]:
        """(client address, worker address, status, path) of every request so far."""
        log = self.folder / "access.log"
        if not log.exists():
            return []
        return [tuple(line.split()) for line in log.read_text().splitlines()  # type: ignore[misc]
                if len(line.split()) >= 2]

    def stop(self) -> None:
        _stop(self.proc)
        shutil.rmtree(self.folder, ignore_errors=True)


NGINX_CONF = Path(__file__).resolve().parents[1] / "docker" / "nginx.conf"
UPSTREAM_LINE = "        server facelive:5000 max_fails=3 fail_timeout=10s;\n"


def nginx_config(folder: Path, port: int, workers: list[int], tls_dir: Path) -> str:
    """docker/nginx.conf as shipped, pointed at loopback workers: only the listen address, the
    upstream servers, the certificate folder and the files nginx writes are changed."""
    import pwd

    text = NGINX_CONF.read_text()
    for needed in (UPSTREAM_LINE, "listen 443 ssl http2;", "/etc/nginx/tls/",
                   "worker_processes auto;", "http {\n"):
        if needed not in text:
            raise ValueError(f"docker/nginx.conf no longer has {needed.strip()!r}")
    servers = "".join(f"        server 127.0.0.1:{p} max_fails=3 fail_timeout=10s;\n"
                      for p in workers)
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    files = "".join(f"    {kind}_temp_path {folder}/{kind}_temp;\n"
                    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (text.replace(UPSTREAM_LINE, servers)
            .replace("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;")
            .replace("/etc/nginx/tls/", f"{tls_dir}/")
            .replace("worker_processes auto;",
                     f"{user}worker_processes 2;\ndaemon off;\npid {folder}/nginx.pid;\n"
                     f"error_log {folder}/error.log warn;")
            .replace("http {\n", "http {\n    log_format upstream '$remote_addr $upstream_addr "
                     "$status $request_uri';\n"
                     f"    access_log {folder}/access.log upstream;\n{files}", 1))


def start_nginx(workers: list[int], tls_dir: Path) -> Nginx:
    """Debian's nginx with the shipped config in front of loopback workers (by port)."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                       else None)
    if binary is None:
        raise FileNotFoundError("nginx not found (apt-get install nginx)")
    folder = Path(tempfile.mkdtemp(prefix="facelive-nginx-"))
    port = free_port()
    conf = folder / "nginx.conf"
    conf.write_text(nginx_config(folder, port, workers, tls_dir))
    check = subprocess.run([binary, "-t", "-p", str(folder), "-e", str(folder / "error.log"),
                            "-c", str(conf)], capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t: {check.stderr}")
    proc = subprocess.Popen([binary, "-p", str(folder), "-e", str(folder / "error.log"),
                             "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return Nginx(proc, port, folder)
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("nginx did not start: " + (folder / "error.log").read_text()
                                   if (folder / "error.log").exists() else "") from None
            time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Ask a server to stop, and kill it if it has not within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
