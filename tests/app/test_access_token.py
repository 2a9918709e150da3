"""The access token: from the environment, or made once and kept private in the data dir."""

from __future__ import annotations

from pathlib import Path

from facelive.app.auth import resolve_token, token_matches
from facelive.settings import Settings


def test_token_from_the_environment_wins(tmp_path: Path) -> None:
    settings = Settings.from_env({"FACELIVE_TOKEN": "from-the-env"}, data_dir=tmp_path)
    assert resolve_token(settings) == "from-the-env"
    assert not (tmp_path / "token").exists()


def test_token_is_made_once_kept_and_private(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=tmp_path / "data")
    token = resolve_token(settings)
    assert len(token) >= 24
    path = tmp_path / "data" / "token"
    assert path.stat().st_mode & 0o777 == 0o600
    assert resolve_token(settings) == token  # the printed URL keeps working after a restart


def test_token_comparison() -> None:
    assert token_matches("abc-123-xyz", "abc-123-xyz")
    assert not token_matches("abc-123-xy", "abc-123-xyz")
    assert not token_matches("", "abc-123-xyz")
    assert not token_matches(None, "abc-123-xyz")
    assert not token_matches(["abc-123-xyz"], "abc-123-xyz")
