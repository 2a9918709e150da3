"""The web server's settings: environment variables, flags, and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from facelive.settings import Settings, SettingsError


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert (settings.host, settings.port) == ("0.0.0.0", 5000)
    assert settings.certfile is None and settings.keyfile is None and settings.token is None
    assert settings.allowed_origins == ()
    assert (settings.max_client_fps, settings.max_clients) == (30, 32)


def test_environment_then_flags() -> None:
    env = {
        "FACELIVE_HOST": "127.0.0.1",
        "FACELIVE_PORT": "8443",
        "FACELIVE_CERTFILE": "/etc/cert.pem",
        "FACELIVE_KEYFILE": "/etc/key.pem",
        "FACELIVE_TOKEN": "a-long-token",
        "FACELIVE_ALLOWED_ORIGINS": "https://proxy.example/, https://other.example",
        "FACELIVE_MAX_FRAME_BYTES": "200000",
        "FACELIVE_MAX_CLIENT_FPS": "12",
        "FACELIVE_MAX_CLIENTS": "100",
    }
    settings = Settings.from_env(env, port=9000)
    assert (settings.host, settings.port) == ("127.0.0.1", 9000)
    assert settings.certfile == Path("/etc/cert.pem") and settings.keyfile == Path("/etc/key.pem")
    assert settings.token == "a-long-token"
    assert settings.allowed_origins == ("https://proxy.example", "https://other.example")
    assert settings.max_frame_bytes == 200_000
    assert (settings.max_client_fps, settings.max_clients) == (12, 100)
    assert Settings.from_env(env, max_clients=3).max_clients == 3
    assert Settings.from_env({"FACELIVE_MAX_CLIENT_FPS": "0"}).max_client_fps == 0  # no limit


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FACELIVE_PORT": "70000"}, "FACELIVE_PORT"),
        ({"FACELIVE_PORT": "https"}, "FACELIVE_PORT must be an integer"),
        ({"FACELIVE_CERTFILE": "/etc/cert.pem"}, "give both"),
        ({"FACELIVE_TOKEN": "short"}, "at least 8"),
        ({"FACELIVE_MAX_FRAME_BYTES": "10"}, "FACELIVE_MAX_FRAME_BYTES"),
        ({"FACELIVE_MAX_CLIENT_FPS": "-1"}, "FACELIVE_MAX_CLIENT_FPS must be 0..1000 .0: no "
                                             "limit., got -1"),
        ({"FACELIVE_MAX_CLIENT_FPS": "1001"}, "FACELIVE_MAX_CLIENT_FPS must be 0..1000"),
        ({"FACELIVE_MAX_CLIENT_FPS": "2.5"}, "FACELIVE_MAX_CLIENT_FPS must be an integer"),
        ({"FACELIVE_MAX_CLIENTS": "0"}, "FACELIVE_MAX_CLIENTS must be 1..10000, got 0"),
        ({"FACELIVE_MAX_CLIENTS": "-3"}, "FACELIVE_MAX_CLIENTS must be 1..10000"),
        ({"FACELIVE_MAX_CLIENTS": "many"}, "FACELIVE_MAX_CLIENTS must be an integer"),
    ],
)
def test_bad_values_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
