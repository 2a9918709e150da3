"""`facelive serve` start-up failures: one clear line, exit status 2."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

from facelive.app.server import page_urls
from facelive.cli.serve import add_serve_command, serve_settings


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "facelive.cli.serve", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )


def test_missing_models_fail_with_one_line(tmp_path: Path) -> None:
    result = _serve("--models-dir", str(tmp_path / "no-models"), "--data-dir", str(tmp_path),
                    "--host", "127.0.0.1", "--port", "0")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("facelive: error: MTCNN weights are missing")
    assert "facelive models fetch" in lines[0]
    assert "https://" not in result.stdout  # no URL for a server that is not running


def test_bad_settings_fail_with_one_line(tmp_path: Path) -> None:
    result = _serve("--data-dir", str(tmp_path), "--certfile", str(tmp_path / "cert.pem"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "facelive: error: FACELIVE_CERTFILE and FACELIVE_KEYFILE go together: give both"
    )


def test_serve_command_plugs_into_a_parser() -> None:
    parser = argparse.ArgumentParser(prog="facelive")
    add_serve_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--port", "8443", "--host", "::", "--data-dir", "d"])
    assert (args.port, args.host, args.data_dir, args.certfile) == (8443, "::", "d", None)
    assert args.func.__name__ == "cmd_serve"
    assert args.max_clients is None  # not given: the environment's or the default
    limited = parser.parse_args(["serve", "--max-clients", "3", "--data-dir", "d",
                                 "--models-dir", "m"])
    assert limited.max_clients == 3
    assert serve_settings(limited).max_clients == 3


def test_a_port_in_use_fails_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve("--models-dir", str(tmp_path), "--data-dir", str(tmp_path),
                        "--host", "127.0.0.1", "--port", str(port))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"facelive: error: port {port} on 127.0.0.1 is in use: choose another with --port"
    )


def test_page_urls_carry_the_token() -> None:
    assert page_urls("192.168.1.5", 5000, "tok") == ["https://192.168.1.5:5000/?token=tok"]
    assert page_urls("fe80::1", 443, "tok") == ["https://[fe80::1]:443/?token=tok"]
    everywhere = page_urls("0.0.0.0", 5000, "tok")
    assert everywhere[0] == f"https://{socket.gethostname()}:5000/?token=tok"
    assert everywhere[-1] == "https://127.0.0.1:5000/?token=tok"
