"""docker/compose.yml and docker/nginx.conf, checked without a Docker engine: the compose file
names every service the README's "Running several workers" relies on, with health checks and
volumes, and nginx accepts the shipped config (Debian's nginx, `nginx -t`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import skip_or_fail
from services import free_port, nginx_config

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def test_compose_file_runs_the_whole_cluster() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "facelive", "nginx"}
    for name in ("postgres", "redis", "nginx"):
        assert services[name]["healthcheck"]["test"], name
    # The worker's health check is the image's HEALTHCHECK.
    assert "HEALTHCHECK" in (DOCKER / "Dockerfile").read_text()
    worker = services["facelive"]
    env = worker["environment"]
    assert env["FACELIVE_DATABASE_URL"].startswith("postgresql://facelive:")
    assert env["FACELIVE_DATABASE_URL"].endswith("@postgres:5432/facelive")
    assert env["FACELIVE_MESSAGE_QUEUE"] == "redis://redis:6379/0"
    assert "FACELIVE_TOKEN" in env and "FACELIVE_VIEW_TOKEN" in env
    assert worker["deploy"]["replicas"] and "ports" not in worker  # reached through nginx only
    for name in ("postgres", "redis"):
        assert worker["depends_on"][name]["condition"] == "service_healthy"
    assert services["nginx"]["depends_on"]["facelive"]["condition"] == "service_healthy"
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in services["nginx"]["volumes"]
    assert "pg-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "pg-data" in compose["volumes"]


def test_nginx_accepts_the_shipped_config(tmp_path: Path) -> None:
    text = (DOCKER / "nginx.conf").read_text()
    for needed in ("ip_hash;", "proxy_set_header    Upgrade $http_upgrade;", "ssl_certificate",
                   "location /socket.io/"):
        assert needed in text
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        skip_or_fail("nginx not found (apt-get install nginx)")
    tls = tmp_path / "tls"
    tls.mkdir()
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=facelive", "-keyout", str(tls / "key.pem"), "-out", str(tls / "cert.pem")],
        capture_output=True, text=True, timeout=60,
    )
    if made.returncode != 0:
        pytest.skip(f"openssl cannot make a test certificate: {made.stderr}")
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_config(tmp_path, free_port(), [5001, 5002], tls))
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "e.log"),
                             "-c", str(conf)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
