"""Where the Jobs API is and which token it gets: flags, environment, the user config."""

from __future__ import annotations

from pathlib import Path

import pytest

from skate.errors import SkateError
from skate.launch.connect import auth_problem, find_token, normalise, resolve_address, translated


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    config = tmp_path / "skate.yaml"
    monkeypatch.setenv("SKATE_CONFIG", str(config))
    return config


def test_the_flag_wins_then_an_http_ray_address_then_the_user_config(monkeypatch: pytest.MonkeyPatch,
                                                                     clean_env: Path) -> None:
    clean_env.write_text("cluster: {address: 10.0.0.5:8265}\n")
    assert resolve_address(None) == "http://10.0.0.5:8265"
    monkeypatch.setenv("RAY_ADDRESS", "local")  # not a dashboard: passed over
    assert resolve_address(None) == "http://10.0.0.5:8265"
    monkeypatch.setenv("RAY_ADDRESS", "http://head:8265")
    assert resolve_address(None) == "http://head:8265"
    assert resolve_address("127.0.0.1:9000") == "http://127.0.0.1:9000"


def test_no_address_anywhere_says_where_to_put_one() -> None:
    with pytest.raises(SkateError, match=r"no cluster address: pass --address http://HEAD:8265, set RAY_ADDRESS"):
        resolve_address(None)


def test_addresses_are_normalised_or_refused() -> None:
    assert normalise("https://ray.example.com") == "https://ray.example.com:8265"
    with pytest.raises(SkateError, match="not a dashboard address"):
        normalise("ray://head:10001")


def test_a_malformed_user_config_is_named(clean_env: Path) -> None:
    clean_env.write_text("- a list\n")
    with pytest.raises(SkateError, match=r"skate.yaml: expected a mapping"):
        resolve_address(None)


def test_the_token_is_found_where_ray_looks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert find_token().value is None and find_token().source.endswith(".ray/auth_token")
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("from-home\n")
    assert find_token().value == "from-home"
    (tmp_path / "tok").write_text("from-path")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "tok"))
    assert find_token().value == "from-path" and "RAY_AUTH_TOKEN_PATH" in find_token().source
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert find_token() .value == "from-env" and find_token().source == "RAY_AUTH_TOKEN"


def test_refusals_say_whether_the_token_was_missing_or_wrong() -> None:
    token = find_token()
    missing = translated(RuntimeError("Authentication required: Unauthorized: Missing authentication token"), token, "u")
    assert "none was found" in str(missing)
    wrong = translated(RuntimeError("Authentication failed: Forbidden: Invalid authentication token"), token, "u")
    assert "refused the authentication token from" in str(wrong)
    assert auth_problem(500, token) is None
    assert str(translated(RuntimeError("Job x does not exist\ndetails"), token, "u")) == "u: Job x does not exist"


def test_a_token_file_others_can_read_is_warned_of(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import warnings

    from skate.errors import ExposureWarning

    token = tmp_path / "tok"
    token.write_text("secret")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    token.chmod(0o644)
    with pytest.warns(ExposureWarning, match=r"tok: the Ray token is readable by others \(mode 644\); chmod 600"):
        assert find_token().value == "secret"
    token.chmod(0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert find_token().value == "secret"


@pytest.mark.parametrize(("url", "warned"), [
    ("http://10.0.0.5:8265", True), ("http://head.example.com:8265", True), ("http://127.0.0.1:8265", False),
    ("http://localhost:8265", False), ("http://[::1]:8265", False), ("https://head.example.com:8265", False),
])
def test_a_token_over_plain_http_to_another_host_is_warned_of(url: str, warned: bool) -> None:
    import warnings

    from skate.errors import ExposureWarning
    from skate.launch.connect import Token, warn_if_in_clear

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_if_in_clear(url, Token("secret", "RAY_AUTH_TOKEN"))
        warn_if_in_clear(url, Token(None, "~/.ray/auth_token"))  # no token, nothing to expose
    assert [w.category for w in caught] == ([ExposureWarning] if warned else [])
    if warned:
        assert "over plain http, readable on the way" in str(caught[0].message)
